// Access tokens (auth/token.h): the bearer token of every authenticated HTTP
// call, the WebSocket upgrade and the `refresh` frame.
//
// The first byte picks the mode: verify the rest as a token as it came, or
// treat the rest as the payload of a correctly signed token, since a forged
// MAC never gets past the signature check and the claims parser would
// otherwise stay unreached.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/hmac.h"
#include "auth/token.h"

namespace {
const std::string secret = "fuzz-secret-fuzz-secret-fuzz-sec";
constexpr std::int64_t now_s = 1'700'000'000;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chatd::auth;
  if (size == 0) return 0;
  static const token_signer signer(secret);
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::string token;
  if (data[0] & 1) {
    token = base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(rest);
    std::string mac = hmac_sha256(secret, token);
    token += "." + base64url_encode(mac);
  } else {
    token = std::string(rest);
    // The decoder round-trips what it accepts.
    if (auto bytes = base64url_decode(rest); bytes && base64url_encode(*bytes) != rest) __builtin_trap();
  }

  auto claims = signer.verify(token, now_s);
  if (claims) {
    // What verifies re-signs into a token that verifies to the same claims.
    auto again = signer.verify(signer.sign(*claims), now_s);
    if (!again || again->sub != claims->sub || again->kind != claims->kind || again->exp != claims->exp) {
      __builtin_trap();
    }
  }
  return 0;
}
