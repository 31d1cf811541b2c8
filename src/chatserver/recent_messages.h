// The chat server's short memory of messages it pushed: it closes the window
// between the queue delivering a message and the store returning it, for
// `ready` and `?since=`. Bounded three ways, so that a server that runs for
// months holds no more than `max_total` messages whatever it has seen: per
// conversation, by age, and in total (oldest arrival evicted first).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "store/store.h"

namespace chatd::chatserver {

class recent_messages {
 public:
  struct limits {
    std::size_t per_conversation = 256;
    std::size_t max_total = 65536;
    std::int64_t window_ms = 120'000;
  };

  explicit recent_messages(limits l) : limits_(l) {}

  // Keeps `m` (replacing an earlier copy with the same id, as an edit does).
  // now_ms is the arrival time that ages the entry out. Returns how many
  // messages are kept now.
  std::size_t remember(const store::message& m, std::int64_t now_ms);
  // The kept messages of `conversation` with an id above `after`, in id order.
  std::vector<store::message> after(std::uint64_t conversation, std::uint64_t after_id) const;

  std::size_t size() const;
  std::size_t conversations() const;

 private:
  struct arrival {
    std::int64_t at_ms;
    std::uint64_t conversation;
    std::uint64_t id;
  };

  void forget(const arrival& a);

  limits limits_;
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, std::deque<store::message>> by_conversation_;  // each in id order
  // Every remember() in arrival order. An entry whose message is already gone
  // (pushed out by its conversation's bound) is skipped when it comes up, so
  // this holds at most max_total entries too.
  std::deque<arrival> arrivals_;
  std::size_t total_ = 0;
};

}  // namespace chatd::chatserver
