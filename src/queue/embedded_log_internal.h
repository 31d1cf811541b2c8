// The embedded log on RocksDB. Layout (docs/adr/004-embedded-log.md):
//   column family "records":  topic \0 partition(be32) offset(be64)
//                             -> timestamp_ms(be64) key_size(be32) key value
//   column family "offsets":  group_size(be32) group topic \0 partition(be32)
//                             -> committed offset(be64)
//   default column family:    "topic/" topic -> partitions(be32)
// Big-endian integers make RocksDB's bytewise order the offset order, so a
// partition is one contiguous key range and its next offset is one seek away.
//
// Concurrency: one mutex (mu_) guards the in-memory metadata (topics,
// watermarks, groups, members); consumers wait on one condition variable
// (cv_) notified by every change they could care about. Records are written by
// a single writer thread (group commit) and read by the consumers' own threads
// without mu_ held. No RocksDB call is made with mu_ held, so an fsync never
// stalls polls; mu_ and db_mu_ are never held together. Lock order:
// group_state::commit_mu, then mu_ or db_mu_; create_mu_, then mu_ or db_mu_.
//
// This header holds what the embedded log's files share: the encodings,
// the in-memory state and the engine class (log_engine). Private to
// chatd_queue_embedded: it includes RocksDB's headers, which
// embedded_log.h must not.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/big_endian.h"
#include "queue/embedded_log.h"

namespace chatd::queue::embedded {

constexpr std::int32_t max_partitions = 4096;
// Kafka's default message.max.bytes is about 1 MiB; refusing bigger records
// here keeps the two backends interchangeable.
constexpr std::size_t max_record_bytes = 1024 * 1024;
constexpr std::size_t max_batch_bytes = 16 * 1024 * 1024;
// Bounds one retention scan of one partition so a pass never stalls for long.
constexpr std::int64_t max_retention_scan = 100'000;
constexpr std::string_view topic_meta_prefix = "topic/";

// Topic names never contain \0 (valid_topic_name), so "topic \0" cannot be a
// prefix of another topic's keys.
inline std::string partition_prefix(std::string_view topic, std::int32_t partition) {
  std::string k;
  k.reserve(topic.size() + 1 + 4 + 8);
  k.append(topic);
  k.push_back('\0');
  put_be32(k, static_cast<std::uint32_t>(partition));
  return k;
}
inline std::string record_key(const std::string& prefix, std::int64_t offset) {
  std::string k = prefix;
  put_be64(k, static_cast<std::uint64_t>(offset));
  return k;
}
inline std::string offset_key(std::string_view group, std::string_view topic, std::int32_t partition) {
  std::string k;
  put_be32(k, static_cast<std::uint32_t>(group.size()));
  k.append(group);
  k.append(partition_prefix(topic, partition));
  return k;
}
inline std::string encode_value(std::int64_t ts, std::string_view key, std::string_view value) {
  std::string v;
  v.reserve(12 + key.size() + value.size());
  put_be64(v, static_cast<std::uint64_t>(ts));
  put_be32(v, static_cast<std::uint32_t>(key.size()));
  v.append(key);
  v.append(value);
  return v;
}
inline bool decode_value(rocksdb::Slice v, record& r) {
  if (v.size() < 12) return false;
  r.timestamp_ms = static_cast<std::int64_t>(get_be64(v.data()));
  const std::uint32_t key_size = get_be32(v.data() + 8);
  if (v.size() - 12 < key_size) return false;
  r.key.assign(v.data() + 12, key_size);
  r.value.assign(v.data() + 12 + key_size, v.size() - 12 - key_size);
  return true;
}

inline error unavailable(std::string what, const rocksdb::Status& s) {
  return make_error(errc::unavailable, "queue: " + what + ": " + s.ToString());
}
inline error closed_error() { return make_error(errc::unavailable, "queue: closed"); }

struct partition_state {
  std::string prefix;     // const after creation
  std::int64_t low = 0;   // guarded by mu_; moved by retention
  std::int64_t high = 0;  // guarded by mu_; published after each group commit
  std::int64_t next = 0;  // the writer thread's own: next offset to assign
};

struct topic_state {
  std::string name;
  std::vector<std::unique_ptr<partition_state>> partitions;  // size fixed at creation
};

struct assigned_partition {
  std::int64_t position = 0;  // next offset poll() returns
  bool consumed = false;      // poll() returned records of it since assignment
};

struct group_state;

struct member_state {
  std::uint64_t id = 0;
  group_state* group = nullptr;
  std::vector<std::string> topics;
  start_position where = start_position::earliest;
  std::map<topic_partition, assigned_partition> assigned;
  std::size_t cursor = 0;  // rotates the first partition read, for fairness
  bool wakeup = false;
  bool closed = false;
};

struct group_state {
  std::mutex commit_mu;  // serialises the group's commits (see commit())
  std::string name;
  std::vector<std::shared_ptr<member_state>> members;  // join order
  std::map<topic_partition, std::int64_t> committed;
};

struct pending_record {
  partition_state* partition = nullptr;
  std::int32_t partition_index = 0;
  std::string value;  // encoded
  producer::callback done;
};

class log_engine {
 public:
  explicit log_engine(embedded_log_options options) : opt_(std::move(options)) {}
  ~log_engine() { shutdown(); }

  void open();
  void shutdown();

  // producer side
  void append(std::string_view topic, std::string_view key, std::string_view value, producer::callback done);
  bool on_writer_thread() const { return std::this_thread::get_id() == writer_id_; }

  // topics
  status ensure_topic(std::string_view topic, std::int32_t partitions);
  result<std::int32_t> partition_count(std::string_view topic);
  result<watermarks> watermark_offsets(std::string_view topic, std::int32_t partition);
  result<std::vector<record>> read(std::string_view topic, std::int32_t partition, std::int64_t from,
                                   std::size_t max_records);
  result<std::int64_t> lag(std::string_view group, std::string_view topic);

  // consumer side
  result<std::shared_ptr<member_state>> join(std::string group, std::vector<std::string> topics, start_position where);
  void leave(member_state& m);
  result<std::vector<record>> poll(member_state& m, std::chrono::milliseconds timeout, std::size_t max_records);
  status commit(member_state& m, const record& r);
  status commit_polled(member_state& m);
  std::vector<topic_partition> assignment(member_state& m);
  void wakeup(member_state& m);

  status enforce_retention();
  embedded_log_stats stats() const { return {records_written_.load(), group_commits_.load(), commits_written_.load()}; }

 private:
  topic_state* find_topic_locked(std::string_view name) {
    auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : it->second.get();
  }
  // Under mu_: the partition, or errc::unavailable when closed, not_found
  // when the topic or partition does not exist.
  result<const partition_state*> find_partition_locked(std::string_view topic, std::int32_t partition) {
    if (closed_) return closed_error();
    auto* t = find_topic_locked(topic);
    if (!t || partition < 0 || partition >= static_cast<std::int32_t>(t->partitions.size())) {
      return make_error(errc::not_found, "queue: no such topic or partition");
    }
    return static_cast<const partition_state*>(t->partitions[partition].get());
  }
  // Under db_mu_ (shared): appends the records of one partition in [from, to)
  // to `out` until it holds max_records; the number appended.
  result<std::size_t> read_range_shared(const std::string& prefix, std::string_view topic, std::int32_t partition,
                                        std::int64_t from, std::int64_t to, std::size_t max_records,
                                        std::vector<record>& out);
  result<topic_state*> get_or_create_topic(std::string_view name, std::int32_t partitions);
  void rebalance_locked(group_state& g);
  void writer_loop();
  void retention_loop();
  status retention_pass();
  rocksdb::WriteOptions write_options() const {
    rocksdb::WriteOptions wo;
    wo.sync = opt_.fsync;
    wo.disableWAL = false;  // the WAL is the durability of the log; never off
    return wo;
  }

  const embedded_log_options opt_;

  // RocksDB handles. Reads and commits hold db_mu_ shared; shutdown() takes
  // it exclusively to close the database, so no call is left using it.
  std::shared_mutex db_mu_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* records_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* offsets_cf_ = nullptr;

  // Metadata and consumer state.
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::map<std::string, std::unique_ptr<topic_state>, std::less<>> topics_;
  std::map<std::string, std::unique_ptr<group_state>, std::less<>> groups_;
  std::uint64_t next_member_id_ = 1;

  std::mutex create_mu_;  // serialises topic creation (metadata write + publish)

  // Group commit.
  std::mutex write_mu_;
  std::condition_variable write_cv_;
  std::deque<pending_record> pending_;
  bool stopping_ = false;
  std::thread writer_;
  std::thread::id writer_id_;

  // Retention.
  std::mutex retention_mu_;  // one pass at a time
  std::mutex retention_wait_mu_;
  std::condition_variable retention_cv_;
  bool retention_stop_ = false;
  std::thread retention_;

  std::once_flag shutdown_once_;
  std::atomic<std::uint64_t> records_written_{0};
  std::atomic<std::uint64_t> group_commits_{0};
  std::atomic<std::uint64_t> commits_written_{0};
};

}  // namespace chatd::queue::embedded
