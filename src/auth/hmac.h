// HMAC-SHA256 (webhook signatures, tokens), constant-time comparison and
// random secrets.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace chatd::auth {

// Raw 32-byte HMAC-SHA256 of `data` under `key` (any key length).
std::string hmac_sha256(std::string_view key, std::string_view data);
// The same, as 64 lower-case hex digits (the X-Chatd-Signature form).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// True when a and b hold the same bytes. The time taken depends only on the
// lengths, never on where the first difference is.
bool constant_time_equal(std::string_view a, std::string_view b);

// `bytes` bytes from the OS CSPRNG, as 2*bytes lower-case hex digits.
std::string random_secret(std::size_t bytes);

std::string to_hex(std::string_view bytes);

}  // namespace chatd::auth
