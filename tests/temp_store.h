// A real RocksDB chat store in a fresh temporary directory, for tests of the
// services above the store port.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
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

  // A participant stored with a fresh id; `name` is its username and
  // display name.
  store::participant add_participant(std::uint64_t id, store::participant_kind kind, const std::string& name) {
    store::participant p;
    p.id = id;
    p.kind = kind;
    p.username = name;
    p.display_name = name;
    p.created_at =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    if (!db_->create_participant(p)) throw std::runtime_error("temp_store: cannot create participant " + name);
    return p;
  }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<store::chat_store> db_;
};

}  // namespace chatd::testing
