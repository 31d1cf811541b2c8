#include "discovery/memory_registry.h"

#include <chrono>

namespace chatd::discovery {

memory_registry::memory_registry(clock_fn now) : clock_(std::move(now)) {}

std::int64_t memory_registry::now() const {
  if (clock_) return clock_();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

status memory_registry::heartbeat(const server_info& s, std::chrono::milliseconds ttl) {
  if (auto v = validate_heartbeat(s, ttl); !v) return v;
  std::int64_t expires = now() + ttl.count();
  std::lock_guard lock(mu_);
  auto& e = entries_[s.id];
  e.info = s;
  e.expires_at = expires;
  return {};
}

status memory_registry::remove(const std::string& id) {
  std::lock_guard lock(mu_);
  entries_.erase(id);
  return {};
}

result<std::vector<server_info>> memory_registry::healthy() {
  std::int64_t t = now();
  std::vector<server_info> out;
  std::lock_guard lock(mu_);
  // Expired entries are dropped here rather than by a timer: reads are the
  // only place where their presence would matter, and servers that went away
  // for good would otherwise stay in the map for ever.
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.expires_at <= t) {
      it = entries_.erase(it);
    } else {
      out.push_back(it->second.info);
      ++it;
    }
  }
  return out;
}

}  // namespace chatd::discovery
