#include "auth/password.h"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

#include "auth/sodium_init.h"

namespace chatd::auth {

namespace {

// An empty string_view may have a null data(); libsodium accepts that only by
// accident of its argument checks, so hand it a real (empty) string instead.
const char* bytes_of(std::string_view s) { return s.empty() ? "" : s.data(); }

// libsodium wants NUL-terminated hash strings of bounded length; a copy into
// a fixed buffer also rejects embedded NULs that would silently truncate.
bool to_c_string(std::string_view encoded, char (&buf)[crypto_pwhash_STRBYTES]) {
  if (encoded.empty() || encoded.size() >= sizeof buf) return false;
  if (std::memchr(encoded.data(), '\0', encoded.size()) != nullptr) return false;
  std::memcpy(buf, encoded.data(), encoded.size());
  buf[encoded.size()] = '\0';
  return true;
}

}  // namespace

password_params default_password_params() {
  // Measured in README.md: t=2, m=64 MiB is ~73 ms on this machine. 64 MiB per
  // hash in flight is the memory-hardness; the pool size bounds the total.
  return {2, std::size_t{64} << 20};
}

password_params fast_password_params() { return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN}; }

std::string hash_password(std::string_view password, const password_params& params) {
  detail::ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, bytes_of(password), password.size(), params.opslimit, params.memlimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("password hashing failed (out of memory or bad parameters)");
  }
  return std::string(out);
}

bool verify_password(std::string_view encoded, std::string_view password) {
  detail::ensure_sodium();
  char buf[crypto_pwhash_STRBYTES];
  if (!to_c_string(encoded, buf)) return false;
  return crypto_pwhash_str_verify(buf, bytes_of(password), password.size()) == 0;
}

bool password_needs_rehash(std::string_view encoded, const password_params& params) {
  detail::ensure_sodium();
  char buf[crypto_pwhash_STRBYTES];
  if (!to_c_string(encoded, buf)) return true;
  // Non-zero is "different parameters" (1) or "not an Argon2id string" (-1).
  return crypto_pwhash_argon2id_str_needs_rehash(buf, params.opslimit, params.memlimit) != 0;
}

}  // namespace chatd::auth
