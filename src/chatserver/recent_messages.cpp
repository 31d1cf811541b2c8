#include "chatserver/recent_messages.h"

#include <algorithm>

namespace chatd::chatserver {

namespace {
auto position_of(std::deque<store::message>& q, std::uint64_t id) {
  return std::lower_bound(q.begin(), q.end(), id, [](const store::message& x, std::uint64_t v) { return x.id < v; });
}
}  // namespace

std::size_t recent_messages::remember(const store::message& m, std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  auto& q = by_conversation_[m.conversation_id];
  // Records arrive almost always in id order, so the common case is an
  // append; a late one is placed by binary search.
  if (q.empty() || q.back().id < m.id) {
    q.push_back(m);
    ++total_;
  } else if (auto pos = position_of(q, m.id); pos != q.end() && pos->id == m.id) {
    *pos = m;
  } else {
    q.insert(pos, m);
    ++total_;
  }
  arrivals_.push_back({now_ms, m.conversation_id, m.id});
  if (q.size() > limits_.per_conversation) {
    q.pop_front();
    --total_;
  }
  auto cutoff = now_ms - limits_.window_ms;
  while (!arrivals_.empty() && (arrivals_.size() > limits_.max_total || arrivals_.front().at_ms < cutoff)) {
    forget(arrivals_.front());
    arrivals_.pop_front();
  }
  return total_;
}

void recent_messages::forget(const arrival& a) {
  auto it = by_conversation_.find(a.conversation);
  if (it == by_conversation_.end()) return;
  auto& q = it->second;
  if (auto pos = position_of(q, a.id); pos != q.end() && pos->id == a.id) {
    q.erase(pos);
    --total_;
  }
  if (q.empty()) by_conversation_.erase(it);
}

std::vector<store::message> recent_messages::after(std::uint64_t conversation, std::uint64_t after_id) const {
  std::vector<store::message> out;
  std::lock_guard lock(mu_);
  auto it = by_conversation_.find(conversation);
  if (it == by_conversation_.end()) return out;
  for (const auto& m : it->second) {
    if (m.id > after_id) out.push_back(m);
  }
  return out;
}

std::size_t recent_messages::size() const {
  std::lock_guard lock(mu_);
  return total_;
}

std::size_t recent_messages::conversations() const {
  std::lock_guard lock(mu_);
  return by_conversation_.size();
}

}  // namespace chatd::chatserver
