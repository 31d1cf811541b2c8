// The distributed chat database: ScyllaDB (or any CQL server, e.g. Apache
// Cassandra) through ScyllaDB's Rust driver behind a C ABI
// (docs/adr/006-scylla-driver.md). Same tables and keys as the RocksDB store
// (docs/adr/003-store-key-design.md); schema in schema/*.cql, applied at open.
// The driver's headers and types stay out of this file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "store/store.h"

namespace chatd::store {

struct scylla_options {
  std::string hosts = "127.0.0.1:9042";  // contact points, "host[:port],..."
  std::string keyspace = "chatd";        // [A-Za-z0-9_]{1,48}
  std::string consistency = "local_quorum";
  std::string local_dc;  // empty: SimpleStrategy, no DC preference
  std::uint32_t replication_factor = 1;
  std::uint32_t request_timeout_ms = 5000;
  std::uint32_t connect_timeout_ms = 5000;
  bool create_schema = true;            // CREATE ... IF NOT EXISTS at open
  bool drop_keyspace_on_close = false;  // for tests: a throwaway keyspace
};

// Connects, applies the schema and prepares every statement. Throws
// std::runtime_error when it cannot (no contact point answers, bad keyspace
// name or consistency, schema refused).
std::unique_ptr<chat_store> open_scylla_store(const scylla_options& options);

}  // namespace chatd::store
