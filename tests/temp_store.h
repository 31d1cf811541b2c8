// A real RocksDB chat store in a fresh temporary directory, for tests of the
// services above the store port.
#pragma once

#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "store/rocksdb_store.h"

namespace chatd::testing {

class temp_store {
 public:
  temp_store() {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("chatd-test-" + std::to_string(rd()) + std::to_string(rd()));
    store::rocksdb_options o;
    o.path = dir_.string();
    db_ = store::open_rocksdb_store(o);
  }
  ~temp_store() {
    db_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  store::chat_store& operator*() { return *db_; }
  store::chat_store* operator->() { return db_.get(); }
  store::chat_store& get() { return *db_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<store::chat_store> db_;
};

}  // namespace chatd::testing
