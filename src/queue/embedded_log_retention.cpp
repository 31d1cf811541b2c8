// The embedded log's retention: records older than retention_time or
// beyond the newest retention_records are deleted, per partition.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/ids.h"
#include "queue/embedded_log_internal.h"

namespace chatd::queue::embedded {

// ---- retention -------------------------------------------------------------

void log_engine::retention_loop() {
  std::unique_lock lock(retention_wait_mu_);
  for (;;) {
    if (retention_cv_.wait_for(lock, opt_.retention_check_interval, [&] { return retention_stop_; })) return;
    lock.unlock();
    auto s = retention_pass();
    if (!s) spdlog::warn("queue: retention: {}", s.err().message);
    lock.lock();
  }
}

status log_engine::enforce_retention() { return retention_pass(); }

status log_engine::retention_pass() {
  std::lock_guard pass_lock(retention_mu_);
  struct item {
    partition_state* ps;
    std::int64_t low;
    std::int64_t high;
  };
  std::vector<item> items;
  {
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    for (auto& [_, t] : topics_) {
      for (auto& ps : t->partitions) {
        if (ps->high - ps->low > 1) items.push_back({ps.get(), ps->low, ps->high});
      }
    }
  }
  const std::int64_t expire_before = now_ms() - opt_.retention_time.count();
  std::vector<std::pair<partition_state*, std::int64_t>> moved;
  // mu_ is taken after db_mu_ is released: commit() takes them the other way.
  auto publish = [&] {
    {
      std::lock_guard lock(mu_);
      for (auto& [ps, low] : moved) ps->low = low;
    }
    moved.clear();
  };
  std::shared_lock db_lock(db_mu_);
  if (!db_) return closed_error();
  for (auto& [ps, low, high] : items) {
    std::int64_t cutoff = low;
    if (opt_.retention_records > 0) cutoff = std::max(cutoff, high - opt_.retention_records);
    if (opt_.retention_time.count() > 0) {
      // Timestamps grow with offsets (one writer, wall clock), so the expired
      // records are a prefix of the partition.
      const std::string upper = record_key(ps->prefix, high - 1);
      rocksdb::Slice upper_slice(upper);
      rocksdb::ReadOptions ro;
      ro.iterate_upper_bound = &upper_slice;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
      std::int64_t scanned = 0;
      for (it->Seek(record_key(ps->prefix, cutoff)); it->Valid() && scanned < max_retention_scan;
           it->Next(), ++scanned) {
        if (it->value().size() < 8 || static_cast<std::int64_t>(get_be64(it->value().data())) >= expire_before) break;
        cutoff = static_cast<std::int64_t>(get_be64(it->key().data() + ps->prefix.size())) + 1;
      }
      if (!it->status().ok()) {
        db_lock.unlock();
        publish();
        return unavailable("retention scan", it->status());
      }
    }
    cutoff = std::min(cutoff, high - 1);  // the newest record carries the next offset
    if (cutoff <= low) continue;
    rocksdb::WriteBatch wb;
    wb.DeleteRange(records_cf_, record_key(ps->prefix, low), record_key(ps->prefix, cutoff));
    auto s = db_->Write(write_options(), &wb);
    if (!s.ok()) {
      db_lock.unlock();
      publish();
      return unavailable("retention delete", s);
    }
    moved.emplace_back(ps, cutoff);
  }
  db_lock.unlock();
  publish();
  return {};
}

}  // namespace chatd::queue::embedded
