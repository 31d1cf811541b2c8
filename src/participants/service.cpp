#include "participants/service.h"

#include "auth/password.h"
#include "auth/token.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

namespace chatd::participants {

service::service(store::chat_store& db, const auth::token_signer& tokens, const auth::password_params& cost,
                 id_generator& ids, std::int64_t token_ttl_s)
    : db_(db),
      tokens_(tokens),
      cost_(std::make_unique<auth::password_params>(cost)),
      ids_(ids),
      token_ttl_s_(token_ttl_s),
      dummy_hash_(auth::hash_password("not a real password", cost)) {}

service::~service() = default;

status service::validate_username(std::string_view u) {
  if (u.size() < 3 || u.size() > 32) return make_error(errc::bad_request, "username must be 3 to 32 characters");
  for (char c : u) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) return make_error(errc::bad_request, "username may contain only a-z, 0-9, '_', '.' and '-'");
  }
  return {};
}

status service::validate_password(std::string_view p) {
  if (!valid_utf8(p)) return make_error(errc::bad_request, "password is not valid UTF-8");
  if (utf8_length(p) < 8) return make_error(errc::bad_request, "password must be at least 8 characters");
  if (p.size() > 1024) return make_error(errc::bad_request, "password must be at most 1024 bytes");
  return {};
}

namespace {
status validate_text(std::string_view what, std::string_view s, std::size_t min, std::size_t max) {
  if (!valid_utf8(s)) return make_error(errc::bad_request, std::string(what) + " is not valid UTF-8");
  auto n = utf8_length(s);
  if (n < min || n > max) {
    return make_error(errc::bad_request, std::string(what) + " must be " + std::to_string(min) + " to " +
                                             std::to_string(max) + " characters");
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return make_error(errc::bad_request, std::string(what) + " contains control characters");
  }
  return {};
}
}  // namespace

result<participant> service::register_participant(const registration& r) {
  if (auto s = validate_username(r.username); !s) return std::move(s).err();
  if (auto s = validate_password(r.password); !s) return std::move(s).err();
  if (auto s = validate_text("display_name", r.display_name, 1, 64); !s) return std::move(s).err();
  if (!r.description.empty()) {
    if (!valid_utf8(r.description) || utf8_length(r.description) > 1000) {
      return make_error(errc::bad_request, "description must be valid UTF-8 of at most 1000 characters");
    }
  }
  // Cheap conflict check before the expensive hash; the store's insert is the
  // authoritative one.
  if (auto existing = db_.find_participant(r.kind, r.username); existing) {
    return make_error(errc::conflict, "username is taken");
  } else if (existing.err().code != errc::not_found) {
    return std::move(existing).err();
  }
  participant p;
  auto id = ids_.try_next();
  if (!id) return std::move(id).err();
  p.id = *id;
  p.kind = r.kind;
  p.username = r.username;
  p.display_name = r.display_name;
  p.description = r.description;
  p.password_hash = auth::hash_password(r.password, *cost_);
  p.created_at = now_ms();
  if (auto s = db_.create_participant(p); !s) return std::move(s).err();
  return p;
}

result<login_answer> service::login(participant_kind kind, std::string_view username, std::string_view password) {
  auto found = db_.find_participant(kind, std::string(username));
  if (!found) {
    if (found.err().code != errc::not_found) return std::move(found).err();
    (void)auth::verify_password(dummy_hash_, password);
    return make_error(errc::unauthorized, "wrong username or password");
  }
  if (!auth::verify_password(found->password_hash, password)) {
    return make_error(errc::unauthorized, "wrong username or password");
  }
  if (found->banned) return make_error(errc::forbidden, "participant is banned");
  if (auth::password_needs_rehash(found->password_hash, *cost_)) {
    // The only moment the plain password is at hand: a hash made with weaker
    // (or other) parameters is replaced, so raising the cost reaches every
    // account that logs in. A failure only postpones it to the next login.
    auto stronger = auth::hash_password(password, *cost_);
    if (auto s = db_.set_password_hash(found->id, stronger); s) {
      found->password_hash = std::move(stronger);
    } else {
      spdlog::warn("password rehash of participant {} not stored: {}", found->id, s.err().message);
    }
  }
  auth::token_claims claims;
  claims.sub = found->id;
  claims.kind = std::string(store::kind_name(found->kind));
  claims.iat = now_ms() / 1000;
  claims.exp = claims.iat + token_ttl_s_;
  login_answer a;
  a.access_token = tokens_.sign(claims);
  a.expires_in = token_ttl_s_;
  a.who = std::move(found.value());
  return a;
}

result<authenticated> service::authenticate_session(std::string_view token) const {
  auto claims = tokens_.verify(token, now_ms() / 1000);
  if (!claims) return std::move(claims).err();
  auto p = db_.get_participant(claims->sub);
  if (!p) {
    if (p.err().code == errc::not_found) return make_error(errc::unauthorized, "unknown participant");
    return std::move(p).err();
  }
  if (store::kind_name(p->kind) != claims->kind) return make_error(errc::unauthorized, "invalid token");
  if (p->banned) return make_error(errc::forbidden, "participant is banned");
  return authenticated{std::move(p.value()), claims->exp};
}

result<participant> service::authenticate(std::string_view token) const {
  auto a = authenticate_session(token);
  if (!a) return std::move(a).err();
  return std::move(a->who);
}

result<participant> service::get(std::uint64_t id) const { return db_.get_participant(id); }

result<std::vector<participant>> service::search(participant_kind kind, std::string_view prefix,
                                                 std::size_t limit) const {
  return db_.search_participants(kind, std::string(prefix), limit);
}

status service::set_banned(const participant& actor, std::uint64_t target, bool banned) {
  if (actor.kind != participant_kind::admin) return make_error(errc::forbidden, "only admins can ban");
  if (target == actor.id) return make_error(errc::bad_request, "admins cannot ban themselves");
  if (auto s = db_.set_banned(target, banned); !s) return s;
  if (banned) {
    for (auto& l : ban_listeners_) l(target);
  }
  spdlog::info("participant {} {} by admin {}", target, banned ? "banned" : "unbanned", actor.id);
  return {};
}

bool service::ensure_admin(const std::string& username, const std::string& password, const std::string& display_name) {
  if (auto s = validate_username(username); !s) throw std::runtime_error("admin username: " + s.err().message);
  if (auto s = validate_password(password); !s) throw std::runtime_error("admin password: " + s.err().message);
  if (db_.find_participant(participant_kind::admin, username)) return false;
  registration r{participant_kind::admin, username, password, display_name, ""};
  auto p = register_participant(r);
  if (!p) {
    if (p.err().code == errc::conflict) return false;
    throw std::runtime_error("cannot create admin: " + p.err().message);
  }
  return true;
}

}  // namespace chatd::participants
