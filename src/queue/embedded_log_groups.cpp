// The embedded log's consumer groups: membership and rebalancing, polls,
// and committed offsets.
#include <algorithm>

#include "queue/embedded_log_internal.h"

namespace chatd::queue::embedded {

// ---- consumer groups -----------------------------------------------------

// Round-robin over the group's members in join order, walking the sorted
// list of every partition any member subscribes to (Kafka's RoundRobin
// assignor). A member keeps its position in partitions it keeps; a partition
// new to it starts at the group's committed offset, or per its start rule.
void log_engine::rebalance_locked(group_state& g) {
  std::vector<topic_partition> all;
  for (auto& [name, t] : topics_) {
    bool wanted = false;
    for (auto& m : g.members) {
      wanted = wanted || std::find(m->topics.begin(), m->topics.end(), name) != m->topics.end();
    }
    if (!wanted) continue;
    for (std::int32_t p = 0; p < static_cast<std::int32_t>(t->partitions.size()); ++p) all.push_back({name, p});
  }
  std::vector<std::map<topic_partition, assigned_partition>> next(g.members.size());
  std::size_t cursor = 0;
  for (auto& tp : all) {
    for (std::size_t tries = 0; tries < g.members.size(); ++tries, ++cursor) {
      auto& m = *g.members[cursor % g.members.size()];
      if (std::find(m.topics.begin(), m.topics.end(), tp.topic) == m.topics.end()) continue;
      auto& slot = next[cursor % g.members.size()][tp];
      if (auto old = m.assigned.find(tp); old != m.assigned.end()) {
        slot = old->second;
      } else if (auto c = g.committed.find(tp); c != g.committed.end()) {
        slot.position = c->second;
      } else {
        const auto& ps = *topics_.at(tp.topic)->partitions[tp.partition];
        slot.position = m.where == start_position::earliest ? ps.low : ps.high;
      }
      ++cursor;
      break;
    }
  }
  for (std::size_t i = 0; i < g.members.size(); ++i) g.members[i]->assigned = std::move(next[i]);
}

result<std::shared_ptr<member_state>> log_engine::join(std::string group, std::vector<std::string> topics,
                                                       start_position where) {
  if (group.empty()) return make_error(errc::bad_request, "queue: empty group name");
  if (topics.empty()) return make_error(errc::bad_request, "queue: no topics to subscribe to");
  for (auto& t : topics) {
    if (!valid_topic_name(t)) return make_error(errc::bad_request, "queue: invalid topic name");
  }
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());

  auto m = std::make_shared<member_state>();
  m->topics = std::move(topics);
  m->where = where;
  {
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    auto& g = groups_[group];
    if (!g) {
      g = std::make_unique<group_state>();
      g->name = group;
    }
    m->id = next_member_id_++;
    m->group = g.get();
    g->members.push_back(m);
    rebalance_locked(*g);
  }
  cv_.notify_all();
  return m;
}

void log_engine::leave(member_state& m) {
  {
    std::lock_guard lock(mu_);
    if (m.closed) return;
    m.closed = true;
    auto& members = m.group->members;
    members.erase(std::remove_if(members.begin(), members.end(), [&](auto& p) { return p.get() == &m; }),
                  members.end());
    m.assigned.clear();
    rebalance_locked(*m.group);
  }
  cv_.notify_all();
}

void log_engine::wakeup(member_state& m) {
  {
    std::lock_guard lock(mu_);
    m.wakeup = true;
  }
  cv_.notify_all();
}

std::vector<topic_partition> log_engine::assignment(member_state& m) {
  std::lock_guard lock(mu_);
  std::vector<topic_partition> out;
  for (auto& [tp, _] : m.assigned) out.push_back(tp);
  return out;
}

result<std::vector<record>> log_engine::poll(member_state& m, std::chrono::milliseconds timeout,
                                             std::size_t max_records) {
  max_records = std::max<std::size_t>(1, max_records);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  struct fetch {
    const topic_partition* tp;
    const partition_state* ps;
    std::int64_t from;
    std::int64_t to;
  };
  std::vector<fetch> todo;
  std::unique_lock lock(mu_);
  for (;;) {
    if (closed_ || m.closed) return closed_error();
    if (m.wakeup) {
      m.wakeup = false;
      return std::vector<record>{};
    }

    // Partitions with records past the position, starting at a rotating one.
    // The topic_partition keys stay valid: map nodes are stable and only
    // rebalance (under mu_) replaces the map, which the re-check below catches.
    todo.clear();
    for (auto& [tp, a] : m.assigned) {
      const auto* t = find_topic_locked(tp.topic);
      const auto& ps = *t->partitions[tp.partition];
      if (a.position < ps.high) todo.push_back({&tp, &ps, a.position, ps.high});
    }
    if (!todo.empty()) {
      std::rotate(todo.begin(), todo.begin() + static_cast<std::ptrdiff_t>(m.cursor++ % todo.size()), todo.end());
      // Copies of the keys: after unlock a rebalance may free the map nodes.
      std::vector<topic_partition> tps;
      tps.reserve(todo.size());
      for (auto& f : todo) tps.push_back(*f.tp);
      lock.unlock();

      std::vector<record> out;
      std::vector<std::size_t> per_fetch(todo.size(), 0);
      std::vector<bool> read(todo.size(), false);
      {
        std::shared_lock db_lock(db_mu_);
        if (!db_) return closed_error();
        for (std::size_t i = 0; i < todo.size() && out.size() < max_records; ++i) {
          const auto& f = todo[i];
          auto n = read_range_shared(f.ps->prefix, tps[i].topic, tps[i].partition, f.from, f.to, max_records, out);
          if (!n) return std::move(n).err();
          per_fetch[i] = *n;
          read[i] = true;
        }
      }

      lock.lock();
      if (closed_ || m.closed) return closed_error();
      // Keep only what still follows the member's position: a rebalance while
      // reading may have moved a partition away (its new owner reads it from
      // the committed offset) or back with another position.
      std::vector<record> kept;
      kept.reserve(out.size());
      std::size_t at = 0;
      for (std::size_t i = 0; i < todo.size(); ++i) {
        const std::size_t n = per_fetch[i];
        auto a = m.assigned.find(tps[i]);
        if (a != m.assigned.end() && a->second.position == todo[i].from) {
          if (n > 0) {
            a->second.position = out[at + n - 1].offset + 1;
            a->second.consumed = true;
            for (std::size_t j = 0; j < n; ++j) kept.push_back(std::move(out[at + j]));
          } else if (read[i]) {
            // Nothing in [from, to): retention deleted it meanwhile (it then
            // moved low past `from`), or the log is damaged. Do not spin on
            // the latter.
            if (todo[i].ps->low <= todo[i].from) {
              return make_error(errc::unavailable, "queue: records missing in " + tps[i].topic);
            }
            a->second.position = todo[i].ps->low;
          }
        }
        at += n;
      }
      if (!kept.empty()) return kept;
      continue;
    }

    if (std::chrono::steady_clock::now() >= deadline) return std::vector<record>{};
    cv_.wait_until(lock, deadline);
  }
}

// Commits hold the group's commit_mu across the ownership check, the write
// and the in-memory update, so a group's offsets on disk and in memory change
// in the same order; mu_ is held only for the check and the update, never
// across the write (an fsync must not stall polls and the writer). A
// rebalance can still slip in between the check and the write; the late
// commit is then harmless: its member did process everything before the
// offset, so it can only make the new owner read again, never skip.
status log_engine::commit(member_state& m, const record& r) {
  std::lock_guard commit_lock(m.group->commit_mu);
  const topic_partition tp{r.topic, r.partition};
  {
    std::lock_guard lock(mu_);
    if (closed_ || m.closed) return closed_error();
    if (!m.assigned.contains(tp)) {
      return make_error(errc::conflict, "queue: partition " + r.topic + "/" + std::to_string(r.partition) +
                                            " is not assigned to this consumer");
    }
    const auto& ps = *find_topic_locked(r.topic)->partitions[r.partition];
    if (r.offset < 0 || r.offset >= ps.high) return make_error(errc::bad_request, "queue: offset out of range");
  }
  std::string v;
  put_be64(v, static_cast<std::uint64_t>(r.offset + 1));
  {
    std::shared_lock db_lock(db_mu_);
    if (!db_) return closed_error();
    auto s = db_->Put(write_options(), offsets_cf_, offset_key(m.group->name, r.topic, r.partition), v);
    if (!s.ok()) return unavailable("committing offset", s);
  }
  ++commits_written_;
  std::lock_guard lock(mu_);
  m.group->committed[tp] = r.offset + 1;
  return {};
}

status log_engine::commit_polled(member_state& m) {
  std::lock_guard commit_lock(m.group->commit_mu);
  rocksdb::WriteBatch wb;
  std::vector<std::pair<topic_partition, std::int64_t>> changes;
  {
    std::lock_guard lock(mu_);
    if (closed_ || m.closed) return closed_error();
    for (auto& [tp, a] : m.assigned) {
      if (!a.consumed) continue;
      auto c = m.group->committed.find(tp);
      if (c != m.group->committed.end() && c->second == a.position) continue;
      std::string v;
      put_be64(v, static_cast<std::uint64_t>(a.position));
      wb.Put(offsets_cf_, offset_key(m.group->name, tp.topic, tp.partition), v);
      changes.emplace_back(tp, a.position);
    }
  }
  if (changes.empty()) return {};
  {
    std::shared_lock db_lock(db_mu_);
    if (!db_) return closed_error();
    auto s = db_->Write(write_options(), &wb);
    if (!s.ok()) return unavailable("committing offsets", s);
  }
  commits_written_ += changes.size();
  std::lock_guard lock(mu_);
  for (auto& [tp, off] : changes) m.group->committed[tp] = off;
  return {};
}

}  // namespace chatd::queue::embedded
