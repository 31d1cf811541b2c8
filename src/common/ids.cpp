#include "common/ids.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <stdexcept>

namespace chatd {

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

id_generator::id_generator(std::uint32_t node, std::int64_t clock_offset_ms)
    : node_(node), clock_offset_ms_(clock_offset_ms) {
  if (node > id_max_node) throw std::invalid_argument("id node number must be 0.." + std::to_string(id_max_node));
}

std::uint64_t id_generator::next() { return next_at(now_ms() + clock_offset_ms_); }

std::uint64_t id_generator::next_after(std::uint64_t floor) {
  // Any id in a later millisecond than floor's is greater than floor.
  return next_at(std::max(now_ms() + clock_offset_ms_, id_timestamp_ms(floor) + 1));
}

namespace {
error lease_lost() {
  return make_error(errc::unavailable, "this server can no longer assign ids (it is stopping): try again");
}
}  // namespace

result<std::uint64_t> id_generator::try_next() {
  if (disabled()) return lease_lost();
  try {
    return next();
  } catch (const std::runtime_error&) {  // disabled between the check and next()
    return lease_lost();
  }
}

result<std::uint64_t> id_generator::try_next_after(std::uint64_t floor) {
  if (disabled()) return lease_lost();
  try {
    return next_after(floor);
  } catch (const std::runtime_error&) {
    return lease_lost();
  }
}

void id_generator::disable() {
  // Under the lock: once disable() returns, no next() is between its check
  // and its return.
  std::lock_guard lock(mu_);
  disabled_.store(true, std::memory_order_release);
}

std::uint64_t id_generator::next_at(std::int64_t wall_ms) {
  std::lock_guard lock(mu_);
  if (disabled_.load(std::memory_order_relaxed)) throw std::runtime_error("node id lease lost");
  std::int64_t ms = wall_ms - id_epoch_ms;
  if (ms < 0) ms = 0;
  if (ms > last_ms_) {
    last_ms_ = ms;
    sequence_ = 0;
  } else {
    // Same millisecond, or the clock stepped back: keep counting on the last
    // timestamp; when its sequence is used up, borrow the next millisecond.
    if (++sequence_ >= (1u << id_sequence_bits)) {
      ++last_ms_;
      sequence_ = 0;
    }
  }
  return (static_cast<std::uint64_t>(last_ms_) << (id_node_bits + id_sequence_bits)) |
         (static_cast<std::uint64_t>(node_) << id_sequence_bits) | sequence_;
}

std::string format_id(std::uint64_t id) { return std::to_string(id); }

std::optional<std::uint64_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size() || v == 0) return std::nullopt;
  return v;
}

}  // namespace chatd
