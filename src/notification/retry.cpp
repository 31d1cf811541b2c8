#include "notification/retry.h"

#include <algorithm>
#include <random>

namespace chatd::notification {

std::chrono::milliseconds retry_delay(const notifications_config& cfg, std::uint32_t failed_attempts, double jitter) {
  const double initial = static_cast<double>(std::max<std::int64_t>(cfg.retry_initial_ms, 0));
  const double cap = static_cast<double>(std::max<std::int64_t>(cfg.retry_max_ms, 0));
  double base = initial;
  // Doubling stops at the cap, so a large attempt count cannot overflow.
  for (std::uint32_t i = 1; i < failed_attempts && base < cap; ++i) base *= 2;
  base = std::min(base, cap);
  jitter = std::clamp(jitter, -max_jitter, max_jitter);
  return std::chrono::milliseconds(static_cast<std::int64_t>(base * (1.0 + jitter)));
}

double random_jitter() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> d(-max_jitter, max_jitter);
  return d(rng);
}

}  // namespace chatd::notification
