#include "common/rate_limiter.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace chatd {

namespace {

// Refill arithmetic in doubles can land a hair under a whole token (e.g.
// 60000 ms at 1/60 per second); that still counts as a token.
constexpr double token_epsilon = 1e-9;

bool valid(double v) { return std::isfinite(v) && v >= 0; }

}  // namespace

rate_limiter::rate_limiter(double tokens_per_second, double burst, std::size_t max_keys)
    : per_s_(tokens_per_second),
      per_ms_(tokens_per_second / 1000.0),
      burst_(burst),
      shard_count_(1),
      shard_capacity_(1) {
  if (!valid(tokens_per_second) || !valid(burst)) {
    throw std::invalid_argument("rate limits must be finite and not negative");
  }
  burst_ = std::max(burst_, 1.0);
  shard_count_ = std::clamp<std::size_t>(max_keys / min_keys_per_shard, 1, max_shards);
  shard_capacity_ = std::max<std::size_t>(1, max_keys / shard_count_);
}

bool rate_limiter::allow(std::string_view key) {
  using namespace std::chrono;
  return allow(key, duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

bool rate_limiter::allow(std::string_view key, std::int64_t now_ms) {
  if (!enabled()) return true;
  // Fibonacci hashing, high bits: the shard choice should not correlate with
  // the unordered_map's own bucket choice from the same hash.
  std::uint64_t h = std::hash<std::string_view>{}(key);
  h *= 0x9E3779B97F4A7C15ull;
  shard& s = shards_[(h >> 32) % shard_count_];

  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) {
    if (s.index.size() >= shard_capacity_) make_room(s, now_ms);
    // A key never seen (or forgotten) starts with a full bucket, this call
    // taking one token.
    s.lru.push_front(bucket{std::string(key), burst_ - 1, now_ms});
    s.index.emplace(s.lru.front().key, s.lru.begin());
    return true;
  }
  bucket& b = *it->second;
  if (now_ms > b.last_ms) {  // a clock that goes back refills nothing
    b.tokens = std::min(burst_, b.tokens + static_cast<double>(now_ms - b.last_ms) * per_ms_);
    b.last_ms = now_ms;
  }
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  if (b.tokens + token_epsilon < 1) return false;
  b.tokens = std::max(0.0, b.tokens - 1);
  return true;
}

void rate_limiter::make_room(shard& s, std::int64_t now_ms) {
  // A full bucket is indistinguishable from a forgotten key, so dropping those
  // loses nothing. If that is not enough, the least recently used go too.
  // Freeing at least 1/8 of the shard each time keeps this O(n) pass
  // amortised to O(1) per new key.
  const std::size_t target = shard_capacity_ - std::max<std::size_t>(1, shard_capacity_ / 8);
  for (auto it = s.lru.begin(); it != s.lru.end();) {
    double elapsed = now_ms > it->last_ms ? static_cast<double>(now_ms - it->last_ms) : 0.0;
    if (it->tokens + elapsed * per_ms_ + token_epsilon >= burst_) {
      s.index.erase(it->key);
      it = s.lru.erase(it);
    } else {
      ++it;
    }
  }
  while (s.index.size() > target) {
    s.index.erase(s.lru.back().key);
    s.lru.pop_back();
  }
}

std::size_t rate_limiter::size() const {
  std::size_t n = 0;
  for (const shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.index.size();
  }
  return n;
}

}  // namespace chatd
