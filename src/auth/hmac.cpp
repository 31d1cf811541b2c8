#include "auth/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <stdexcept>
#include <vector>

#include "auth/sodium_init.h"

namespace chatd::auth {

std::string hmac_sha256(std::string_view key, std::string_view data) {
  // To OpenSSL's HMAC_Init_ex a null key means "keep the previous key", and
  // some 3.0 releases fail the one-shot HMAC() on it: an empty key (or data)
  // must still be a valid pointer.
  static const unsigned char empty = 0;
  const auto* k = key.empty() ? &empty : reinterpret_cast<const unsigned char*>(key.data());
  const auto* d = data.empty() ? &empty : reinterpret_cast<const unsigned char*>(data.data());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), k, static_cast<int>(key.size()), d, data.size(), out, &len) == nullptr || len != 32) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) { return to_hex(hmac_sha256(key, data)); }

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Only the length may leak; both inputs are MACs or digests of fixed size.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_secret(std::size_t bytes) {
  detail::ensure_sodium();
  std::vector<unsigned char> buf(bytes);
  if (bytes != 0) randombytes_buf(buf.data(), buf.size());
  std::string hex = to_hex(std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
  sodium_memzero(buf.data(), buf.size());
  return hex;
}

}  // namespace chatd::auth
