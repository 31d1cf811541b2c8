// The one backoff rule every retry in chatd follows (the consume loop, the
// webhook schedule, calls between roles): after `failures` (>= 1) failures in
// a row, wait `first` doubled per further failure, never more than `cap`.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace chatd {

constexpr std::chrono::milliseconds backoff_delay(std::chrono::milliseconds first, std::chrono::milliseconds cap,
                                                  std::uint32_t failures) {
  auto wait = first;
  // Doubling stops at the cap, so a large failure count cannot overflow.
  for (std::uint32_t i = 1; i < failures && wait < cap; ++i) wait *= 2;
  return std::min(wait, cap);
}

}  // namespace chatd
