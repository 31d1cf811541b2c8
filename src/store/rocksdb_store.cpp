// The embedded chat database. Every table is a column family whose keys are
// the ScyllaDB primary key (partition key, then clustering key) encoded so
// that byte order is sort order: fixed-width big-endian integers, newest-first
// clustering as the bitwise complement, a string only as the last component.
// docs/adr/003-store-key-design.md explains the layout and the locking.
//
// This file opens and closes the database and holds the row access every
// table shares; each group of tables has a file of its own
// (rocksdb_participants.cpp, rocksdb_conversations.cpp, ...), and the
// encodings are in rocksdb_codec.h.
#include "store/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include <stdexcept>

#include "store/rocksdb_store_internal.h"

namespace chatd::store::rocksdb_backend {

rocksdb_chat_store::rocksdb_chat_store(const rocksdb_options& o) {
  write_options_.sync = o.sync_writes;

  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  dbo.max_background_jobs = 2;
  dbo.keep_log_file_num = 3;
  // Caps the memtables of all the tables together.
  dbo.db_write_buffer_size = 128ULL << 20;

  auto cache = rocksdb::NewLRUCache(std::max<std::size_t>(o.block_cache_mb, 1) << 20);
  rocksdb::BlockBasedTableOptions bbt;
  bbt.block_cache = cache;
  bbt.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  bbt.cache_index_and_filter_blocks = true;
  bbt.pin_l0_filter_and_index_blocks_in_cache = true;
  bbt.format_version = 5;
  auto table_factory = std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(bbt));

  auto supported = rocksdb::GetSupportedCompressions();
  bool lz4 = std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();

  auto cf_options = [&](std::string_view name) {
    rocksdb::ColumnFamilyOptions cfo;
    cfo.table_factory = table_factory;
    cfo.write_buffer_size = (name == "messages" ? 32ULL : 8ULL) << 20;
    if (lz4) cfo.compression = rocksdb::kLZ4Compression;
    cfo.level_compaction_dynamic_level_bytes = true;
    return cfo;
  };

  // Open every family the directory has, ours and any a newer version
  // added, because RocksDB refuses to open a database with some left out.
  // Ours that are missing are created afterwards in one call, which is
  // several times faster than create_missing_column_families (one OPTIONS
  // file instead of one per family).
  std::vector<std::string> existing;
  if (!rocksdb::DB::ListColumnFamilies(dbo, o.path, &existing).ok() || existing.empty()) {
    existing = {rocksdb::kDefaultColumnFamilyName};  // a new database
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (auto& n : existing) descriptors.emplace_back(n, cf_options(n));
  std::vector<rocksdb::ColumnFamilyDescriptor> missing;
  for (auto* n : table_names) {
    if (std::find(existing.begin(), existing.end(), n) == existing.end()) missing.emplace_back(n, cf_options(n));
  }

  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(dbo, o.path, descriptors, &all_handles_, &raw);
  if (!s.ok()) throw std::runtime_error("cannot open the RocksDB store at '" + o.path + "': " + s.ToString());
  db_.reset(raw);
  if (!missing.empty()) {
    std::vector<rocksdb::ColumnFamilyHandle*> created;
    s = db_->CreateColumnFamilies(missing, &created);
    all_handles_.insert(all_handles_.end(), created.begin(), created.end());
    if (!s.ok()) {
      close();
      throw std::runtime_error("cannot create the tables of the RocksDB store at '" + o.path + "': " + s.ToString());
    }
  }
  for (auto* h : all_handles_) {
    auto at = std::find(table_names.begin(), table_names.end(), h->GetName());
    if (at != table_names.end()) handles_[at - table_names.begin()] = h;
  }
}

void rocksdb_chat_store::close() {
  for (auto* h : all_handles_) (void)db_->DestroyColumnFamilyHandle(h);
  all_handles_.clear();
  // Close reports background errors, and there is no one to report them to
  // here; the WAL already has every acknowledged write.
  (void)db_->Close();
  db_.reset();
}

void rocksdb_chat_store::put(rocksdb::WriteBatch& b, table t, const std::string& k, const std::string& v) {
  // WriteBatch copies into its buffer; its Status is only non-OK past 4 GiB.
  (void)b.Put(cf(t), k, v);
}

status rocksdb_chat_store::write(rocksdb::WriteBatch& b) {
  auto s = db_->Write(write_options_, &b);
  if (!s.ok()) return unavailable(s);
  return {};
}

// The value, or nullopt when the key is absent.
result<std::optional<std::string>> rocksdb_chat_store::get(table t, const std::string& k,
                                                           const rocksdb::Snapshot* snap) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  auto s = db_->Get(ro, cf(t), k, &v);
  if (s.IsNotFound()) return std::optional<std::string>{};
  if (!s.ok()) return unavailable(s);
  return std::optional<std::string>{std::move(v)};
}

result<id_t> rocksdb_chat_store::read_id_or_zero(table t, const std::string& k) {
  auto v = get(t, k);
  if (!v) return std::move(v).err();
  if (!*v) return id_t{0};
  return decode_id(**v, t);
}

}  // namespace chatd::store::rocksdb_backend

namespace chatd::store {

std::unique_ptr<chat_store> open_rocksdb_store(const rocksdb_options& options) {
  return std::make_unique<rocksdb_backend::rocksdb_chat_store>(options);
}

}  // namespace chatd::store
