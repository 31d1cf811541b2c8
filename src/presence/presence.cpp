#include "presence/presence.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/ids.h"
#include "common/log.h"

namespace chatd::presence {

namespace {
// Rows are kept long after going offline so last_seen_at stays known; rows of
// online participants are rewritten every sweep with a short TTL, so if the
// presence service itself dies they read as offline soon after.
constexpr std::int64_t offline_ttl_ms = 30LL * 24 * 3600 * 1000;
// How long after start the route table may still miss connections: one
// snapshot period plus the time a snapshot takes to arrive.
constexpr std::int64_t warmup_margin_ms = 1000;
}  // namespace

struct service::impl {
  impl(store::chat_store& db, const presence_config& cfg, change_listener l)
      : db(db), timeout_ms(cfg.timeout_ms), on_change(std::move(l)) {}

  struct conn_key {
    std::string server;
    std::uint64_t id;
    bool operator<(const conn_key& o) const { return std::tie(server, id) < std::tie(o.server, o.id); }
  };
  struct participant_state {
    std::map<conn_key, presence_state> conns;
    presence_state aggregate = presence_state::offline;
    std::int64_t last_seen_at = 0;
  };

  store::chat_store& db;
  std::int64_t timeout_ms;
  change_listener on_change;

  mutable std::mutex mu;
  std::unordered_map<std::uint64_t, participant_state> people;
  std::map<std::string, std::int64_t> leases;                               // server id -> last refresh (ms)
  std::map<std::string, std::map<std::uint64_t, std::uint64_t>> by_server;  // server -> conn -> participant

  // Until a snapshot period after start, chat servers that held connections
  // before this process started have not all reported yet.
  std::int64_t complete_after = 0;

  std::mutex thread_mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread sweeper;

  static presence_state aggregate_of(const participant_state& p) {
    if (p.conns.empty()) return presence_state::offline;
    for (const auto& [k, s] : p.conns) {
      if (s == presence_state::active) return presence_state::active;
    }
    return presence_state::inactive;
  }

  std::int64_t ttl_for(presence_state s) const {
    return s == presence_state::offline ? offline_ttl_ms : std::max<std::int64_t>(3 * timeout_ms, 60'000);
  }

  // Called with mu held; returns the change to publish, if any.
  std::optional<store::presence> recompute(std::uint64_t pid, participant_state& p, std::int64_t now) {
    auto next = aggregate_of(p);
    p.last_seen_at = now;
    if (next == p.aggregate) return std::nullopt;
    p.aggregate = next;
    return store::presence{pid, next, now};
  }

  void publish(const std::optional<store::presence>& change) {
    if (!change) return;
    if (auto s = db.put_presence(*change, ttl_for(change->state)); !s) {
      spdlog::warn("presence: cannot store state of {}: {}", change->participant_id, s.err().message);
    }
    if (on_change) on_change(*change);
  }
};

service::service(store::chat_store& db, const presence_config& cfg, change_listener on_change)
    : impl_(std::make_unique<impl>(db, cfg, std::move(on_change))) {}

service::~service() { stop(); }

void service::start() {
  std::lock_guard lock(impl_->thread_mu);
  if (impl_->sweeper.joinable()) return;
  impl_->stopping = false;
  {
    std::lock_guard mu_lock(impl_->mu);
    impl_->complete_after = now_ms() + snapshot_period_ms(impl_->timeout_ms) + warmup_margin_ms;
  }
  impl_->sweeper = std::thread([this] {
    std::unique_lock lock(impl_->thread_mu);
    auto period = std::chrono::milliseconds(snapshot_period_ms(impl_->timeout_ms));
    while (!impl_->stopping) {
      impl_->cv.wait_for(lock, period, [this] { return impl_->stopping; });
      if (impl_->stopping) break;
      lock.unlock();
      sweep(now_ms());
      lock.lock();
    }
  });
}

void service::stop() {
  {
    std::lock_guard lock(impl_->thread_mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->sweeper.joinable()) impl_->sweeper.join();
}

void service::connection_state(const std::string& server_id, std::uint64_t connection_id, std::uint64_t participant_id,
                               presence_state state) {
  std::optional<store::presence> change;
  auto now = now_ms();
  {
    std::lock_guard lock(impl_->mu);
    auto& p = impl_->people[participant_id];
    p.conns[{server_id, connection_id}] = state;
    impl_->by_server[server_id][connection_id] = participant_id;
    impl_->leases.try_emplace(server_id, now);
    change = impl_->recompute(participant_id, p, now);
  }
  impl_->publish(change);
}

void service::connection_closed(const std::string& server_id, std::uint64_t connection_id,
                                std::uint64_t participant_id) {
  std::optional<store::presence> change;
  auto now = now_ms();
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->people.find(participant_id);
    if (it == impl_->people.end()) return;
    it->second.conns.erase({server_id, connection_id});
    if (auto s = impl_->by_server.find(server_id); s != impl_->by_server.end()) s->second.erase(connection_id);
    change = impl_->recompute(participant_id, it->second, now);
    if (it->second.conns.empty()) impl_->people.erase(it);
  }
  impl_->publish(change);
}

void service::sync(const std::string& server_id, const std::vector<connection_report>& open, std::int64_t now) {
  std::vector<std::optional<store::presence>> changes;
  {
    std::lock_guard lock(impl_->mu);
    impl_->leases[server_id] = now;
    auto& conns = impl_->by_server[server_id];
    std::map<std::uint64_t, std::uint64_t> next;  // connection -> participant
    std::set<std::uint64_t> touched;
    for (const auto& c : open) {
      next[c.connection_id] = c.participant_id;
      auto& p = impl_->people[c.participant_id];
      auto& st = p.conns[{server_id, c.connection_id}];
      if (st != c.state || p.conns.size() == 1) touched.insert(c.participant_id);
      st = c.state;
    }
    for (const auto& [cid, pid] : conns) {
      if (next.count(cid) != 0) continue;
      if (auto it = impl_->people.find(pid); it != impl_->people.end()) {
        it->second.conns.erase({server_id, cid});
        touched.insert(pid);
      }
    }
    conns = std::move(next);
    for (auto pid : touched) {
      auto it = impl_->people.find(pid);
      if (it == impl_->people.end()) continue;
      changes.push_back(impl_->recompute(pid, it->second, now));
      if (it->second.conns.empty()) impl_->people.erase(it);
    }
  }
  for (auto& c : changes) impl_->publish(c);
}

std::size_t service::connection_count() const {
  std::lock_guard lock(impl_->mu);
  std::size_t n = 0;
  for (const auto& [server, conns] : impl_->by_server) n += conns.size();
  return n;
}

void service::refresh(const std::string& server_id) { refresh_at(server_id, now_ms()); }

void service::refresh_at(const std::string& server_id, std::int64_t now) {
  std::lock_guard lock(impl_->mu);
  impl_->leases[server_id] = now;
}

result<store::presence> service::get(std::uint64_t participant_id) {
  {
    std::lock_guard lock(impl_->mu);
    if (auto it = impl_->people.find(participant_id); it != impl_->people.end()) {
      return store::presence{participant_id, it->second.aggregate, it->second.last_seen_at};
    }
  }
  return impl_->db.get_presence(participant_id);
}

result<routes> service::routes_of(const std::vector<std::uint64_t>& participant_ids) {
  return routes_at(participant_ids, now_ms());
}

result<routes> service::routes_at(const std::vector<std::uint64_t>& participant_ids, std::int64_t now) {
  routes out;
  out.servers.reserve(participant_ids.size());
  std::lock_guard lock(impl_->mu);
  out.complete = now >= impl_->complete_after;
  for (auto pid : participant_ids) {
    auto& servers = out.servers.emplace_back();
    auto it = impl_->people.find(pid);
    if (it == impl_->people.end()) continue;
    for (const auto& [k, st] : it->second.conns) {
      if (servers.empty() || servers.back() != k.server) servers.push_back(k.server);  // conns are ordered by server
    }
  }
  return out;
}

std::size_t service::sweep(std::int64_t now) {
  std::vector<std::optional<store::presence>> changes;
  std::vector<store::presence> still_online;
  std::size_t expired = 0;
  {
    std::lock_guard lock(impl_->mu);
    for (auto lease = impl_->leases.begin(); lease != impl_->leases.end();) {
      if (now - lease->second <= impl_->timeout_ms) {
        ++lease;
        continue;
      }
      // The server stopped refreshing: its connections are gone.
      auto conns = impl_->by_server.find(lease->first);
      if (conns != impl_->by_server.end()) {
        for (const auto& [cid, pid] : conns->second) {
          auto it = impl_->people.find(pid);
          if (it == impl_->people.end()) continue;
          it->second.conns.erase({lease->first, cid});
          ++expired;
          changes.push_back(impl_->recompute(pid, it->second, now));
          if (it->second.conns.empty()) impl_->people.erase(it);
        }
        impl_->by_server.erase(conns);
      }
      spdlog::warn("presence: chat server {} stopped refreshing; {} connections expired", lease->first, expired);
      lease = impl_->leases.erase(lease);
    }
    for (const auto& [pid, p] : impl_->people) still_online.push_back({pid, p.aggregate, p.last_seen_at});
  }
  for (auto& c : changes) impl_->publish(c);
  for (auto& p : still_online) {
    (void)impl_->db.put_presence(p, impl_->ttl_for(p.state));
  }
  return expired;
}

}  // namespace chatd::presence
