// Private to src/auth: libsodium must be initialised before its randomness
// and hashing functions are used, and from one thread only.
#pragma once

namespace chatd::auth::detail {

// Calls sodium_init() once per process (thread-safe); aborts start-up with
// std::runtime_error if libsodium cannot initialise.
void ensure_sodium();

}  // namespace chatd::auth::detail
