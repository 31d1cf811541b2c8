// Snowflake-style 64-bit ids: 41 bits of milliseconds since chatd's epoch,
// 10 bits of node number, 12 bits of sequence. Ids from one generator are
// strictly increasing even if the wall clock steps back.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace chatd {

inline constexpr std::int64_t id_epoch_ms = 1704067200000;  // 2024-01-01T00:00:00Z
inline constexpr int id_node_bits = 10;
inline constexpr int id_sequence_bits = 12;
inline constexpr std::uint32_t id_max_node = (1u << id_node_bits) - 1;

std::int64_t now_ms();  // wall clock, ms since the Unix epoch

// Milliseconds since the Unix epoch encoded in an id.
inline std::int64_t id_timestamp_ms(std::uint64_t id) {
  return static_cast<std::int64_t>(id >> (id_node_bits + id_sequence_bits)) + id_epoch_ms;
}
// The smallest id that any generator could produce at `ms`.
inline std::uint64_t id_floor_for_ms(std::int64_t ms) {
  return ms <= id_epoch_ms ? 0 : static_cast<std::uint64_t>(ms - id_epoch_ms) << (id_node_bits + id_sequence_bits);
}

class id_generator {
 public:
  // node must be <= id_max_node; throws std::invalid_argument otherwise.
  // clock_offset_ms shifts this generator's clock (tests of skewed hosts).
  explicit id_generator(std::uint32_t node, std::int64_t clock_offset_ms = 0);
  // Throw std::runtime_error("node id lease lost") once disable() was called.
  std::uint64_t next();
  // An id greater than `floor` (an id minted anywhere, e.g. the newest
  // message of a conversation): when this host's clock is behind the one
  // that minted `floor`, the id takes the millisecond after floor's, as a
  // hybrid logical clock does, so ids keep increasing across hosts.
  std::uint64_t next_after(std::uint64_t floor);
  // next() and next_after() for request paths: errc::unavailable instead of
  // an exception once disabled (the process lost its lease and is stopping;
  // the client sends again to another server).
  result<std::uint64_t> try_next();
  result<std::uint64_t> try_next_after(std::uint64_t floor);
  // For tests: use this clock instead of now_ms().
  std::uint64_t next_at(std::int64_t wall_ms);
  std::uint32_t node() const { return node_; }

  // Stops minting for good: a process that lost the lease of its node number
  // (store/node_lease.h) must never mint another id with it, since another
  // process may hold the number now. Thread-safe; an id being minted
  // concurrently is the last one.
  void disable();
  bool disabled() const { return disabled_.load(std::memory_order_acquire); }

 private:
  std::mutex mu_;
  std::atomic<bool> disabled_{false};
  std::uint32_t node_;
  std::int64_t clock_offset_ms_;
  std::int64_t last_ms_ = 0;  // ms since id epoch of the last id
  std::uint32_t sequence_ = 0;
};

// Decimal wire form. parse_id accepts only 1..20 ASCII digits that fit in
// 64 bits and are not zero.
std::string format_id(std::uint64_t id);
std::optional<std::uint64_t> parse_id(std::string_view s);

}  // namespace chatd
