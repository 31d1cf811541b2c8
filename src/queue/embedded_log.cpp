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
#include "queue/embedded_log.h"

#include <pthread.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>

#include "common/ids.h"

namespace chatd::queue {
namespace {

constexpr std::int32_t max_partitions = 4096;
// Kafka's default message.max.bytes is about 1 MiB; refusing bigger records
// here keeps the two backends interchangeable.
constexpr std::size_t max_record_bytes = 1024 * 1024;
constexpr std::size_t max_batch_bytes = 16 * 1024 * 1024;
// Bounds one retention scan of one partition so a pass never stalls for long.
constexpr std::int64_t max_retention_scan = 100'000;
constexpr std::string_view topic_meta_prefix = "topic/";

void put_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
std::uint32_t get_be32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
std::uint64_t get_be64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Topic names never contain \0 (valid_topic_name), so "topic \0" cannot be a
// prefix of another topic's keys.
std::string partition_prefix(std::string_view topic, std::int32_t partition) {
  std::string k;
  k.reserve(topic.size() + 1 + 4 + 8);
  k.append(topic);
  k.push_back('\0');
  put_be32(k, static_cast<std::uint32_t>(partition));
  return k;
}
std::string record_key(const std::string& prefix, std::int64_t offset) {
  std::string k = prefix;
  put_be64(k, static_cast<std::uint64_t>(offset));
  return k;
}
std::string offset_key(std::string_view group, std::string_view topic, std::int32_t partition) {
  std::string k;
  put_be32(k, static_cast<std::uint32_t>(group.size()));
  k.append(group);
  k.append(partition_prefix(topic, partition));
  return k;
}
std::string encode_value(std::int64_t ts, std::string_view key, std::string_view value) {
  std::string v;
  v.reserve(12 + key.size() + value.size());
  put_be64(v, static_cast<std::uint64_t>(ts));
  put_be32(v, static_cast<std::uint32_t>(key.size()));
  v.append(key);
  v.append(value);
  return v;
}
bool decode_value(rocksdb::Slice v, record& r) {
  if (v.size() < 12) return false;
  r.timestamp_ms = static_cast<std::int64_t>(get_be64(v.data()));
  const std::uint32_t key_size = get_be32(v.data() + 8);
  if (v.size() - 12 < key_size) return false;
  r.key.assign(v.data() + 12, key_size);
  r.value.assign(v.data() + 12 + key_size, v.size() - 12 - key_size);
  return true;
}

error unavailable(std::string what, const rocksdb::Status& s) {
  return make_error(errc::unavailable, "queue: " + what + ": " + s.ToString());
}
error closed_error() { return make_error(errc::unavailable, "queue: closed"); }

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

void log_engine::open() {
  std::error_code ec;
  std::filesystem::create_directories(opt_.path, ec);
  if (ec) throw std::runtime_error("queue: cannot create " + opt_.path + ": " + ec.message());

  rocksdb::DBOptions db_opt;
  db_opt.create_if_missing = true;
  db_opt.create_missing_column_families = true;
  db_opt.max_background_jobs = 2;
  db_opt.keep_log_file_num = 4;
  // Recover up to the last intact WAL record after a crash, dropping only a
  // torn tail (which no acknowledged record can be in: it was acknowledged
  // only after its whole write).
  db_opt.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;

  rocksdb::ColumnFamilyOptions cf_opt;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs{
      {rocksdb::kDefaultColumnFamilyName, cf_opt},
      {"records", cf_opt},
      {"offsets", cf_opt},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_opt, opt_.path, cfs, &handles, &raw);
  if (!s.ok()) throw std::runtime_error("queue: cannot open embedded log at " + opt_.path + ": " + s.ToString());
  db_.reset(raw);
  meta_cf_ = handles[0];
  records_cf_ = handles[1];
  offsets_cf_ = handles[2];

  // Topics, and each partition's watermarks from its first and last key.
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
    for (it->Seek(topic_meta_prefix); it->Valid() && it->key().starts_with(topic_meta_prefix); it->Next()) {
      if (it->value().size() != 4) throw std::runtime_error("queue: corrupt topic metadata in " + opt_.path);
      auto t = std::make_unique<topic_state>();
      t->name = it->key().ToString().substr(topic_meta_prefix.size());
      const auto n = static_cast<std::int32_t>(get_be32(it->value().data()));
      if (n < 1 || n > max_partitions) throw std::runtime_error("queue: corrupt topic metadata in " + opt_.path);
      for (std::int32_t p = 0; p < n; ++p) {
        auto ps = std::make_unique<partition_state>();
        ps->prefix = partition_prefix(t->name, p);
        std::unique_ptr<rocksdb::Iterator> rit(db_->NewIterator(rocksdb::ReadOptions(), records_cf_));
        rit->Seek(ps->prefix);
        if (rit->Valid() && rit->key().starts_with(ps->prefix) && rit->key().size() == ps->prefix.size() + 8) {
          ps->low = static_cast<std::int64_t>(get_be64(rit->key().data() + ps->prefix.size()));
          rit->SeekForPrev(record_key(ps->prefix, std::numeric_limits<std::int64_t>::max()));
          if (!rit->Valid() || !rit->key().starts_with(ps->prefix) || rit->key().size() != ps->prefix.size() + 8) {
            throw std::runtime_error("queue: corrupt record keys in " + opt_.path);
          }
          ps->high = static_cast<std::int64_t>(get_be64(rit->key().data() + ps->prefix.size())) + 1;
        }
        if (!rit->status().ok())
          throw std::runtime_error("queue: cannot read " + opt_.path + ": " + rit->status().ToString());
        ps->next = ps->high;
        t->partitions.push_back(std::move(ps));
      }
      topics_.emplace(t->name, std::move(t));
    }
    if (!it->status().ok())
      throw std::runtime_error("queue: cannot read " + opt_.path + ": " + it->status().ToString());
  }

  // Committed offsets.
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), offsets_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto k = it->key();
      if (k.size() < 4 || it->value().size() != 8) continue;
      const std::uint32_t gsize = get_be32(k.data());
      if (k.size() < 4 + gsize + 1 + 4) continue;
      std::string group(k.data() + 4, gsize);
      std::string_view rest(k.data() + 4 + gsize, k.size() - 4 - gsize);
      const auto nul = rest.find('\0');
      if (nul == std::string_view::npos || rest.size() != nul + 1 + 4) continue;
      topic_partition tp{std::string(rest.substr(0, nul)), static_cast<std::int32_t>(get_be32(rest.data() + nul + 1))};
      auto& g = groups_[group];
      if (!g) {
        g = std::make_unique<group_state>();
        g->name = group;
      }
      g->committed[tp] = static_cast<std::int64_t>(get_be64(it->value().data()));
    }
    if (!it->status().ok())
      throw std::runtime_error("queue: cannot read " + opt_.path + ": " + it->status().ToString());
  }

  writer_ = std::thread([this] { writer_loop(); });
  writer_id_ = writer_.get_id();
  // Named for profiles and /proc: the writer also runs the producers'
  // completions (acks), so its share of CPU is worth telling apart.
  pthread_setname_np(writer_.native_handle(), "log-writer");
  if (opt_.retention_time.count() > 0 || opt_.retention_records > 0) {
    retention_ = std::thread([this] { retention_loop(); });
    pthread_setname_np(retention_.native_handle(), "log-retention");
  }
}

void log_engine::shutdown() {
  std::call_once(shutdown_once_, [this] {
    // 1. The writer writes what is queued, then stops; later produces fail.
    {
      std::lock_guard lock(write_mu_);
      stopping_ = true;
    }
    write_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    {
      std::lock_guard lock(retention_wait_mu_);
      retention_stop_ = true;
    }
    retention_cv_.notify_all();
    if (retention_.joinable()) retention_.join();
    // 2. Consumers: blocked polls return, later calls fail.
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
    // 3. Close the database once no call is using it.
    std::unique_lock lock(db_mu_);
    if (db_) {
      for (auto* h : {meta_cf_, records_cf_, offsets_cf_}) {
        if (h) db_->DestroyColumnFamilyHandle(h);
      }
      meta_cf_ = records_cf_ = offsets_cf_ = nullptr;
      auto s = db_->Close();
      if (!s.ok()) spdlog::warn("queue: closing the embedded log: {}", s.ToString());
      db_.reset();
    }
  });
}

result<topic_state*> log_engine::get_or_create_topic(std::string_view name, std::int32_t partitions) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    if (auto* t = find_topic_locked(name)) return t;
  }
  std::lock_guard create_lock(create_mu_);
  {
    std::lock_guard lock(mu_);
    if (auto* t = find_topic_locked(name)) return t;  // created meanwhile
  }
  {
    std::shared_lock db_lock(db_mu_);
    if (!db_) return closed_error();
    std::string v;
    put_be32(v, static_cast<std::uint32_t>(partitions));
    // The metadata reaches the WAL before any record of the topic, so
    // recovery never finds records of an unknown topic.
    auto s = db_->Put(write_options(), meta_cf_, std::string(topic_meta_prefix) + std::string(name), v);
    if (!s.ok()) return unavailable("creating topic", s);
  }
  auto t = std::make_unique<topic_state>();
  t->name = std::string(name);
  for (std::int32_t p = 0; p < partitions; ++p) {
    auto ps = std::make_unique<partition_state>();
    ps->prefix = partition_prefix(name, p);
    t->partitions.push_back(std::move(ps));
  }
  topic_state* raw = t.get();
  {
    std::lock_guard lock(mu_);
    topics_.emplace(raw->name, std::move(t));
    // Members already subscribed to this topic get its partitions now.
    for (auto& [_, g] : groups_) {
      bool wanted = false;
      for (auto& m : g->members) {
        wanted = wanted || std::find(m->topics.begin(), m->topics.end(), name) != m->topics.end();
      }
      if (wanted) rebalance_locked(*g);
    }
  }
  cv_.notify_all();
  return raw;
}

status log_engine::ensure_topic(std::string_view topic, std::int32_t partitions) {
  if (!valid_topic_name(topic)) return make_error(errc::bad_request, "queue: invalid topic name");
  if (partitions < 1 || partitions > max_partitions) {
    return make_error(errc::bad_request, "queue: partitions must be 1.." + std::to_string(max_partitions));
  }
  auto t = get_or_create_topic(topic, partitions);
  if (!t) return std::move(t).err();
  return {};
}

result<std::int32_t> log_engine::partition_count(std::string_view topic) {
  std::lock_guard lock(mu_);
  if (closed_) return closed_error();
  auto* t = find_topic_locked(topic);
  if (!t) return make_error(errc::not_found, "queue: no such topic");
  return static_cast<std::int32_t>(t->partitions.size());
}

result<watermarks> log_engine::watermark_offsets(std::string_view topic, std::int32_t partition) {
  std::lock_guard lock(mu_);
  auto ps = find_partition_locked(topic, partition);
  if (!ps) return std::move(ps).err();
  return watermarks{(*ps)->low, (*ps)->high};
}

result<std::vector<record>> log_engine::read(std::string_view topic, std::int32_t partition, std::int64_t from,
                                             std::size_t max_records) {
  max_records = std::max<std::size_t>(1, max_records);
  std::string prefix;
  std::int64_t high = 0;
  {
    std::lock_guard lock(mu_);
    auto ps = find_partition_locked(topic, partition);
    if (!ps) return std::move(ps).err();
    prefix = (*ps)->prefix;
    high = (*ps)->high;  // only what is published: a record being written is not read
    from = std::max(from, (*ps)->low);
  }
  std::vector<record> out;
  if (from >= high) return out;
  std::shared_lock db_lock(db_mu_);
  if (!db_) return closed_error();
  const std::string upper = record_key(prefix, high);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
  for (it->Seek(record_key(prefix, from)); it->Valid() && out.size() < max_records; it->Next()) {
    record r;
    r.topic = std::string(topic);
    r.partition = partition;
    r.offset = static_cast<std::int64_t>(get_be64(it->key().data() + prefix.size()));
    if (!decode_value(it->value(), r)) return make_error(errc::unavailable, "queue: corrupt record in " + r.topic);
    out.push_back(std::move(r));
  }
  if (!it->status().ok()) return unavailable("reading records", it->status());
  return out;
}

result<std::int64_t> log_engine::lag(std::string_view group, std::string_view topic) {
  std::lock_guard lock(mu_);
  if (closed_) return closed_error();
  auto* t = find_topic_locked(topic);
  if (!t) return make_error(errc::not_found, "queue: no such topic");
  auto git = groups_.find(group);
  std::int64_t sum = 0;
  for (std::int32_t p = 0; p < static_cast<std::int32_t>(t->partitions.size()); ++p) {
    const auto& ps = *t->partitions[p];
    std::int64_t from = ps.low;
    if (git != groups_.end()) {
      auto cit = git->second->committed.find(topic_partition{t->name, p});
      if (cit != git->second->committed.end()) from = cit->second;
    }
    sum += std::max<std::int64_t>(0, ps.high - from);
  }
  return sum;
}

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
          const std::string upper = record_key(f.ps->prefix, f.to);
          rocksdb::Slice upper_slice(upper);
          rocksdb::ReadOptions ro;
          ro.iterate_upper_bound = &upper_slice;
          std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
          // Below the low watermark (retention deleted it) the seek lands on
          // the oldest record still held.
          for (it->Seek(record_key(f.ps->prefix, f.from)); it->Valid() && out.size() < max_records; it->Next()) {
            record r;
            r.topic = tps[i].topic;
            r.partition = tps[i].partition;
            r.offset = static_cast<std::int64_t>(get_be64(it->key().data() + f.ps->prefix.size()));
            if (!decode_value(it->value(), r)) {
              return make_error(errc::unavailable, "queue: corrupt record in " + tps[i].topic);
            }
            out.push_back(std::move(r));
            ++per_fetch[i];
          }
          if (!it->status().ok()) return unavailable("reading records", it->status());
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

// ---- the port's objects --------------------------------------------------

class producer_impl final : public producer {
 public:
  explicit producer_impl(std::shared_ptr<log_engine> engine) : engine_(std::move(engine)) {}

  void produce_async(std::string_view topic, std::string_view key, std::string_view value, callback done) override {
    {
      std::lock_guard lock(inflight_->mu);
      ++inflight_->count;
    }
    engine_->append(topic, key, value, [inflight = inflight_, done = std::move(done)](result<record_position> r) {
      // Counted down even if `done` throws, or flush() would wait forever.
      struct count_down {
        struct inflight* f;
        ~count_down() {
          {
            std::lock_guard lock(f->mu);
            --f->count;
          }
          f->cv.notify_all();
        }
      } guard{inflight.get()};
      if (done) done(std::move(r));
    });
  }

  result<record_position> produce(std::string_view topic, std::string_view key, std::string_view value) override {
    // The writer thread would wait for itself.
    if (engine_->on_writer_thread()) {
      return make_error(errc::internal, "queue: blocking produce from a produce callback");
    }
    return producer::produce(topic, key, value);
  }

  status flush(std::chrono::milliseconds timeout) override {
    if (engine_->on_writer_thread()) return make_error(errc::internal, "queue: flush from a produce callback");
    std::unique_lock lock(inflight_->mu);
    if (!inflight_->cv.wait_for(lock, timeout, [&] { return inflight_->count == 0; })) {
      return make_error(errc::unavailable, "queue: flush timed out");
    }
    return {};
  }

 private:
  struct inflight {
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t count = 0;
  };
  std::shared_ptr<log_engine> engine_;
  std::shared_ptr<inflight> inflight_ = std::make_shared<inflight>();
};

class consumer_impl final : public consumer {
 public:
  consumer_impl(std::shared_ptr<log_engine> engine, std::shared_ptr<member_state> member)
      : engine_(std::move(engine)), member_(std::move(member)) {}
  ~consumer_impl() override { close(); }

  result<std::vector<record>> poll(std::chrono::milliseconds timeout, std::size_t max_records) override {
    return engine_->poll(*member_, timeout, max_records);
  }
  status commit(const record& r) override { return engine_->commit(*member_, r); }
  status commit_polled() override { return engine_->commit_polled(*member_); }
  std::vector<topic_partition> assignment() override { return engine_->assignment(*member_); }
  void wakeup() override { engine_->wakeup(*member_); }
  void close() override { engine_->leave(*member_); }

 private:
  std::shared_ptr<log_engine> engine_;
  std::shared_ptr<member_state> member_;
};

class embedded_log_impl final : public embedded_log {
 public:
  explicit embedded_log_impl(std::shared_ptr<log_engine> engine) : engine_(std::move(engine)) {}
  ~embedded_log_impl() override { engine_->shutdown(); }

  status ensure_topic(std::string_view topic, std::int32_t partitions) override {
    return engine_->ensure_topic(topic, partitions);
  }
  result<std::int32_t> partition_count(std::string_view topic) override { return engine_->partition_count(topic); }
  std::unique_ptr<producer> make_producer() override { return std::make_unique<producer_impl>(engine_); }
  result<std::unique_ptr<consumer>> subscribe(std::string group, std::vector<std::string> topics,
                                              start_position where_no_commit) override {
    auto m = engine_->join(std::move(group), std::move(topics), where_no_commit);
    if (!m) return std::move(m).err();
    return std::unique_ptr<consumer>(std::make_unique<consumer_impl>(engine_, std::move(m).value()));
  }
  result<watermarks> watermark_offsets(std::string_view topic, std::int32_t partition) override {
    return engine_->watermark_offsets(topic, partition);
  }
  result<std::vector<record>> read(std::string_view topic, std::int32_t partition, std::int64_t from,
                                   std::size_t max_records) override {
    return engine_->read(topic, partition, from, max_records);
  }
  result<std::int64_t> lag(std::string_view group, std::string_view topic) override {
    return engine_->lag(group, topic);
  }
  embedded_log_stats stats() const override { return engine_->stats(); }
  status enforce_retention() override { return engine_->enforce_retention(); }

 private:
  std::shared_ptr<log_engine> engine_;
};

}  // namespace

std::unique_ptr<embedded_log> open_embedded_log(const embedded_log_options& options) {
  if (options.path.empty()) throw std::runtime_error("queue: embedded log path is empty");
  if (options.partitions < 1 || options.partitions > max_partitions) {
    throw std::runtime_error("queue: partitions must be 1.." + std::to_string(max_partitions));
  }
  auto opt = options;
  if (opt.max_batch_records == 0) opt.max_batch_records = 1;
  auto engine = std::make_shared<log_engine>(std::move(opt));
  engine->open();
  return std::make_unique<embedded_log_impl>(std::move(engine));
}

}  // namespace chatd::queue
