// The embedded chat database: RocksDB with one column family per table and
// the key design of the ScyllaDB schema (docs/adr/003-store-key-design.md).
// RocksDB's headers stay out of this file so that services and tests that
// only open a store do not pay for them.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "store/store.h"

namespace chatd::store {

struct rocksdb_options {
  std::string path;                 // the database directory, created if missing
  bool sync_writes = false;         // fsync the WAL on every write
  std::size_t block_cache_mb = 64;  // one LRU block cache shared by every table
};

// Opens (or creates) the database. Throws std::runtime_error if it cannot,
// e.g. when another process holds the directory's lock.
std::unique_ptr<chat_store> open_rocksdb_store(const rocksdb_options& options);

}  // namespace chatd::store
