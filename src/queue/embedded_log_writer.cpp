// The embedded log's producing side: appends queue up for one writer
// thread, which writes them in group commits.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "common/ids.h"
#include "queue/embedded_log_internal.h"

namespace chatd::queue::embedded {

// ---- producing: group commit -------------------------------------------

void log_engine::append(std::string_view topic, std::string_view key, std::string_view value, producer::callback done) {
  if (!valid_topic_name(topic)) return done(make_error(errc::bad_request, "queue: invalid topic name"));
  if (key.size() + value.size() > max_record_bytes) {
    return done(make_error(errc::too_large, "queue: record larger than 1 MiB"));
  }
  auto t = get_or_create_topic(topic, opt_.partitions);
  if (!t) return done(std::move(t).err());
  const auto p = partition_for_key(key, static_cast<std::int32_t>((*t)->partitions.size()));
  pending_record rec{(*t)->partitions[p].get(), p, encode_value(now_ms(), key, value), std::move(done)};
  {
    std::unique_lock lock(write_mu_);
    if (!stopping_) {
      pending_.push_back(std::move(rec));
      lock.unlock();
      write_cv_.notify_one();
      return;
    }
  }
  rec.done(closed_error());
}

void log_engine::writer_loop() {
  std::vector<pending_record> batch;
  // Offsets before this batch, to undo the assignment if the write fails.
  std::vector<std::pair<partition_state*, std::int64_t>> touched;
  std::size_t last_batch_size = 0;
  for (;;) {
    batch.clear();
    touched.clear();
    {
      std::unique_lock lock(write_mu_);
      write_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything queued is written
      // With fsync, a write costs milliseconds, and the producers just
      // acknowledged are typically about to produce again: wait a little for
      // as many records as the last batch had, so they share the next fsync
      // instead of each paying for one (MySQL's binlog_group_commit_sync_delay,
      // Kafka's linger.ms). A lone producer (last batch of 1) never waits.
      if (opt_.fsync && opt_.group_commit_linger.count() > 0 && pending_.size() < last_batch_size) {
        write_cv_.wait_for(lock, opt_.group_commit_linger,
                           [&] { return stopping_ || pending_.size() >= last_batch_size; });
      }
      // Everything that queued up while the previous batch was being written
      // goes into this one: that is the group commit.
      std::size_t bytes = 0;
      while (!pending_.empty() && batch.size() < opt_.max_batch_records &&
             (batch.empty() || bytes + pending_.front().value.size() <= max_batch_bytes)) {
        bytes += pending_.front().value.size();
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }

    last_batch_size = batch.size();
    rocksdb::WriteBatch wb;
    std::vector<std::int64_t> offsets(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto* ps = batch[i].partition;
      if (std::none_of(touched.begin(), touched.end(), [&](auto& e) { return e.first == ps; })) {
        touched.emplace_back(ps, ps->next);
      }
      offsets[i] = ps->next++;
      wb.Put(records_cf_, record_key(ps->prefix, offsets[i]), batch[i].value);
    }
    auto s = db_->Write(write_options(), &wb);
    if (s.ok()) {
      records_written_ += batch.size();
      ++group_commits_;
      {
        std::lock_guard lock(mu_);
        for (auto& [ps, _] : touched) ps->high = ps->next;
      }
      cv_.notify_all();
    } else {
      spdlog::error("queue: group commit of {} records failed: {}", batch.size(), s.ToString());
      for (auto& [ps, before] : touched) ps->next = before;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      result<record_position> r = s.ok()
                                      ? result<record_position>(record_position{batch[i].partition_index, offsets[i]})
                                      : result<record_position>(unavailable("writing records", s));
      try {
        batch[i].done(std::move(r));
      } catch (const std::exception& e) {
        spdlog::error("queue: produce callback threw: {}", e.what());
      } catch (...) {
        spdlog::error("queue: produce callback threw");
      }
    }
  }
}

}  // namespace chatd::queue::embedded
