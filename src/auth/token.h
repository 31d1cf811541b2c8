// Access tokens: JWT (RFC 7519) signed with HMAC-SHA256 ("HS256"). The key is
// auth.jwt_secret's bytes; every service verifies tokens itself.
//
//   base64url('{"alg":"HS256","typ":"JWT"}') . base64url(payload) . base64url(mac)
//   payload = {"sub":"<decimal id>","kind":"user|shop|admin","iat":<s>,"exp":<s>}
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace chatd::auth {

// Longer tokens are refused before any decoding (ours are ~150 bytes).
inline constexpr std::size_t max_token_bytes = 4096;

struct token_claims {
  std::uint64_t sub = 0;  // participant id; a decimal string on the wire
  std::string kind;       // "user", "shop" or "admin"
  std::int64_t iat = 0;   // issued at, seconds since the Unix epoch
  std::int64_t exp = 0;   // expires at, seconds since the Unix epoch
};

class token_signer {
 public:
  // Throws std::invalid_argument for an empty secret (start-up error).
  explicit token_signer(std::string secret);

  std::string sign(const token_claims& claims) const;

  // The claims of a token this secret signed that has not expired at now_s.
  // Every failure is errc::unauthorized: "token expired" for a genuine but
  // expired token, "invalid token" for anything else (the reason is not told).
  result<token_claims> verify(std::string_view token, std::int64_t now_s) const;

 private:
  std::string secret_;
};

// RFC 4648 section 5 alphabet, without padding. Decoding is strict: no
// padding, no whitespace, no other characters, unused trailing bits zero.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace chatd::auth
