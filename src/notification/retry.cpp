#include "notification/retry.h"

#include <algorithm>
#include <random>

#include "common/backoff.h"

namespace chatd::notification {

std::chrono::milliseconds retry_delay(const notifications_config& cfg, std::uint32_t failed_attempts, double jitter) {
  const auto base =
      backoff_delay(std::chrono::milliseconds(std::max<std::int64_t>(cfg.retry_initial_ms, 0)),
                    std::chrono::milliseconds(std::max<std::int64_t>(cfg.retry_max_ms, 0)), failed_attempts);
  jitter = std::clamp(jitter, -max_jitter, max_jitter);
  return std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(base.count()) * (1.0 + jitter)));
}

double random_jitter() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> d(-max_jitter, max_jitter);
  return d(rng);
}

}  // namespace chatd::notification
