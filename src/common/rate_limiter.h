// Token buckets per key (participant id, client IP): each key may do `burst`
// actions at once and `tokens_per_second` on average. Thread-safe, with a
// bounded number of remembered keys.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/config.h"

namespace chatd {

class rate_limiter {
 public:
  // tokens_per_second == 0 disables the limiter (allow() is always true).
  // A burst below 1 is raised to 1 (otherwise nothing would ever pass).
  // max_keys bounds memory: when it is reached, keys whose bucket is full are
  // forgotten first (that loses nothing), then the least recently used ones
  // (that can only make the limiter more lenient for them).
  // Throws std::invalid_argument for negative or non-finite numbers.
  rate_limiter(double tokens_per_second, double burst, std::size_t max_keys = 100000);
  rate_limiter(const rate_limiter&) = delete;
  rate_limiter& operator=(const rate_limiter&) = delete;

  // "n per minute", all of which may be used at once (rate n/60, burst n).
  static rate_limiter per_minute(double n, std::size_t max_keys = 100000) {
    return rate_limiter(n / 60.0, n, max_keys);
  }

  // Takes one token from `key`'s bucket if it has one. now_ms_steady is a
  // monotonic clock in milliseconds (any origin, used consistently).
  bool allow(std::string_view key, std::int64_t now_ms_steady);
  // The same with std::chrono::steady_clock.
  bool allow(std::string_view key);

  bool enabled() const { return per_s_ > 0; }
  double tokens_per_second() const { return per_s_; }
  double burst() const { return burst_; }
  // Keys currently remembered (for tests and metrics).
  std::size_t size() const;

 private:
  // Up to 16 shards, but at least 1024 keys per shard: with fewer, eviction
  // per shard would be a poor approximation of LRU over the whole limiter.
  static constexpr std::size_t max_shards = 16;
  static constexpr std::size_t min_keys_per_shard = 1024;

  struct bucket {
    std::string key;
    double tokens;
    std::int64_t last_ms;
  };
  struct shard {
    mutable std::mutex mu;
    std::list<bucket> lru;  // most recently used first
    // Views into the keys owned by `lru` nodes, which never move.
    std::unordered_map<std::string_view, std::list<bucket>::iterator> index;
  };

  void make_room(shard& s, std::int64_t now_ms);

  double per_s_;
  double per_ms_;
  double burst_;
  std::size_t shard_count_;
  std::size_t shard_capacity_;
  std::array<shard, max_shards> shards_;
};

// The per-participant limits of one process, shared by every path a request
// can take (WebSocket frames and HTTP routes alike), so that a client cannot
// spend its WebSocket burst and then get a fresh one over HTTP.
struct participant_limits {
  explicit participant_limits(const rate_limits_config& c)
      : writes(c.send_per_second, c.send_burst),
        reads(c.read_per_second, c.read_burst),
        typing(c.typing_per_second, c.typing_burst) {}

  rate_limiter writes;  // send, edit, delete, read markers, conversations, members, bans
  rate_limiter reads;   // history pages and every other authenticated GET
  rate_limiter typing;  // typing frames
};

}  // namespace chatd
