// The participant APIs (user / shop / admin): registration, login, lookup,
// search and bans. Transport-free: the gateway maps HTTP onto it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "store/store.h"

namespace chatd {
class id_generator;
namespace auth {
class token_signer;
struct password_params;
}  // namespace auth
}  // namespace chatd

namespace chatd::participants {

using store::participant;
using store::participant_kind;

struct registration {
  participant_kind kind = participant_kind::user;
  std::string username;
  std::string password;
  std::string display_name;
  std::string description;
};

struct authenticated {
  participant who;
  std::int64_t expires_at_s = 0;
};

struct login_answer {
  std::string access_token;
  std::int64_t expires_in = 0;  // seconds
  participant who;
};

// Called when a participant is banned, so live connections can be closed.
using ban_listener = std::function<void(std::uint64_t participant_id)>;

class service {
 public:
  service(store::chat_store& db, const auth::token_signer& tokens, const auth::password_params& cost, id_generator& ids,
          std::int64_t token_ttl_s);
  ~service();

  // Validates (username [a-z0-9_.-]{3,32}, password >= 8 chars and <= 1024
  // bytes, display name 1..64 chars, description <= 1000 chars), hashes, stores.
  result<participant> register_participant(const registration& r);
  // 401 for an unknown user or wrong password (same answer, same cost),
  // 403 for a banned one.
  result<login_answer> login(participant_kind kind, std::string_view username, std::string_view password);
  // A bearer token -> its participant, which must exist and not be banned.
  result<participant> authenticate(std::string_view token) const;
  // The same, with when the token stops being valid (Unix seconds): a
  // connection that outlives its token is closed then.
  result<authenticated> authenticate_session(std::string_view token) const;
  result<participant> get(std::uint64_t id) const;
  result<std::vector<participant>> search(participant_kind kind, std::string_view prefix, std::size_t limit) const;
  // Admin only; the target must exist. Admins cannot be banned by themselves.
  status set_banned(const participant& actor, std::uint64_t target, bool banned);
  // Creates the admin unless one with that username exists (start-up bootstrap).
  // Returns true when it was created. Throws std::runtime_error on bad input.
  bool ensure_admin(const std::string& username, const std::string& password, const std::string& display_name);

  void on_ban(ban_listener l) { ban_listeners_.push_back(std::move(l)); }

  static status validate_username(std::string_view u);
  static status validate_password(std::string_view p);

 private:
  store::chat_store& db_;
  const auth::token_signer& tokens_;
  std::unique_ptr<auth::password_params> cost_;
  id_generator& ids_;
  std::int64_t token_ttl_s_;
  std::string dummy_hash_;  // verified against on unknown usernames so timing does not tell
  std::vector<ban_listener> ban_listeners_;
};

}  // namespace chatd::participants
