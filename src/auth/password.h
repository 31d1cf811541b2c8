// Password storage: Argon2id (libsodium) in the PHC string format
// "$argon2id$v=19$m=...,t=...,p=1$<salt>$<hash>", which carries its own salt
// and cost, so the parameters can change without invalidating stored hashes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace chatd::auth {

struct password_params {
  unsigned long long opslimit;  // Argon2 passes (t)
  std::size_t memlimit;         // bytes of memory (m)
};

// About 70 ms of one core per hash on the reference machine (see README.md).
password_params default_password_params();
// The libsodium minimum: for tests only, never for real passwords.
password_params fast_password_params();

// Hashes with a fresh random salt. Throws std::runtime_error only if the
// memory cannot be allocated. Blocking and CPU-heavy: run it on a worker pool.
std::string hash_password(std::string_view password, const password_params& params);

// True iff `encoded` is a well-formed hash of `password`. Garbage, truncated
// or unknown-algorithm strings are false, never a crash. Costs as much as the
// hash that produced `encoded`.
bool verify_password(std::string_view encoded, std::string_view password);

// True when `encoded` was made with other parameters than `params` (or is not
// an Argon2id hash), i.e. it should be re-hashed at the next successful login.
bool password_needs_rehash(std::string_view encoded, const password_params& params);

}  // namespace chatd::auth
