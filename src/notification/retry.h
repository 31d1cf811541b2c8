// The webhook retry schedule, separate so that it can be tested exactly.
#pragma once

#include <chrono>
#include <cstdint>

#include "common/config.h"

namespace chatd::notification {

// The wait after `failed_attempts` (>= 1) failed attempts: retry_initial_ms
// doubled per further failure, capped at retry_max_ms, then scaled by
// (1 + jitter) where jitter is in [-0.2, 0.2]. Spreading retries keeps a
// receiver that comes back from being hit by every sender at once.
std::chrono::milliseconds retry_delay(const notifications_config& cfg, std::uint32_t failed_attempts, double jitter);

// A uniformly random jitter in [-0.2, 0.2] (thread-safe).
double random_jitter();

inline constexpr double max_jitter = 0.2;

}  // namespace chatd::notification
