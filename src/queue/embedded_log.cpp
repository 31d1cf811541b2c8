// The embedded log on RocksDB: opening and closing the engine, and the
// port's objects over it. The layout and the locking are described in
// embedded_log_internal.h; producing (group commit), consumer groups and
// retention have files of their own.
#include "queue/embedded_log.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <limits>
#include <stdexcept>

#include "queue/embedded_log_internal.h"

namespace chatd::queue::embedded {

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

// ---- the port's objects --------------------------------------------------

namespace {

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

}  // namespace chatd::queue::embedded

namespace chatd::queue {

using embedded::embedded_log_impl;
using embedded::log_engine;
using embedded::max_partitions;

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
