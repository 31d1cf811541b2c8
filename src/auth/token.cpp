#include "auth/token.h"

#include <array>
#include <boost/json.hpp>
#include <stdexcept>

#include "auth/hmac.h"
#include "common/ids.h"

namespace chatd::auth {

namespace json = boost::json;

namespace {

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (std::size_t i = 0; i < alphabet.size(); ++i)
    t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto decode_table = make_decode_table();

// The only header this signer produces or accepts.
constexpr std::string_view header_json = R"({"alg":"HS256","typ":"JWT"})";

error invalid() { return make_error(errc::unauthorized, "invalid token"); }

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);  // UTF-8 validated, depth <= 32
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// A JSON integer that fits int64 (not a double, not a uint64 beyond it).
std::optional<std::int64_t> as_int64(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  return std::nullopt;
}

bool header_ok(std::string_view b64) {
  auto text = base64url_decode(b64);
  if (!text) return false;
  auto o = parse_object(*text);
  // Exactly alg and typ: "alg":"none", HS512, RS256 (key confusion) and
  // extensions such as "crit", "jku" or "kid" are all refused.
  if (!o || o->size() != 2) return false;
  const json::value* alg = o->if_contains("alg");
  const json::value* typ = o->if_contains("typ");
  return alg != nullptr && typ != nullptr && alg->is_string() && alg->get_string() == "HS256" && typ->is_string() &&
         typ->get_string() == "JWT";
}

std::optional<token_claims> parse_claims(std::string_view b64) {
  auto text = base64url_decode(b64);
  if (!text) return std::nullopt;
  auto o = parse_object(*text);
  if (!o || o->size() != 4) return std::nullopt;  // exactly sub, kind, iat, exp
  const json::value* sub = o->if_contains("sub");
  const json::value* kind = o->if_contains("kind");
  const json::value* iat = o->if_contains("iat");
  const json::value* exp = o->if_contains("exp");
  if (sub == nullptr || kind == nullptr || iat == nullptr || exp == nullptr) return std::nullopt;
  if (!sub->is_string() || !kind->is_string()) return std::nullopt;
  token_claims c;
  auto id = parse_id(std::string_view(sub->get_string()));  // 1..20 digits, non-zero, fits 64 bits
  if (!id) return std::nullopt;
  c.sub = *id;
  std::string_view k = kind->get_string();
  if (k != "user" && k != "shop" && k != "admin") return std::nullopt;
  c.kind = std::string(k);
  auto i = as_int64(*iat);
  auto e = as_int64(*exp);
  if (!i || !e || *e < *i) return std::nullopt;
  c.iat = *i;
  c.exp = *e;
  return c;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                      static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                      static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(alphabet[(n >> 6) & 63]);
    out.push_back(alphabet[n & 63]);
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
  } else if (rest == 2) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                      static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(alphabet[(n >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  // A lone trailing character would carry only 6 bits: never a whole byte.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    std::int8_t v = decode_table[static_cast<unsigned char>(ch)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Non-zero leftover bits would make several encodings decode to the same
  // bytes; only the canonical one is accepted.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

token_signer::token_signer(std::string secret) : secret_(std::move(secret)) {
  if (secret_.empty()) throw std::invalid_argument("the token secret must not be empty");
}

std::string token_signer::sign(const token_claims& claims) const {
  json::object payload;  // keeps insertion order, so the output is stable
  payload["sub"] = format_id(claims.sub);
  payload["kind"] = claims.kind;
  payload["iat"] = claims.iat;
  payload["exp"] = claims.exp;
  std::string token = base64url_encode(header_json);
  token.push_back('.');
  token += base64url_encode(json::serialize(payload));
  std::string mac = hmac_sha256(secret_, token);
  token.push_back('.');
  token += base64url_encode(mac);
  return token;
}

result<token_claims> token_signer::verify(std::string_view token, std::int64_t now_s) const {
  if (token.empty() || token.size() > max_token_bytes) return invalid();
  const std::size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return invalid();
  const std::size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) return invalid();
  const std::string_view header = token.substr(0, dot1);
  const std::string_view payload = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature = token.substr(dot2 + 1);
  if (header.empty() || payload.empty() || signature.empty()) return invalid();

  // The algorithm comes from our configuration, never from the token: the
  // header is only checked to be the one HS256 header.
  if (!header_ok(header)) return invalid();
  auto mac = base64url_decode(signature);
  if (!mac || mac->size() != 32) return invalid();
  // The MAC covers the received text, so nothing unauthenticated is parsed
  // beyond the small header.
  if (!constant_time_equal(*mac, hmac_sha256(secret_, token.substr(0, dot2)))) return invalid();

  auto claims = parse_claims(payload);
  if (!claims) return invalid();
  if (claims->exp <= now_s) return make_error(errc::unauthorized, "token expired");
  return std::move(*claims);
}

}  // namespace chatd::auth
