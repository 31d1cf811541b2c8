#include "auth/sodium_init.h"

#include <sodium.h>

#include <stdexcept>

namespace chatd::auth::detail {

void ensure_sodium() {
  // A function-local static is initialised exactly once even under
  // concurrent first calls; sodium_init() returns 1 if already initialised.
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("libsodium could not be initialised");
}

}  // namespace chatd::auth::detail
