// Runs the registry conformance suite against every backend:
//   memory  memory_registry
//   store   store_registry over a real RocksDB chat store in a fresh directory
//   http    http_registry talking to a real discovery service (memory_registry
//           behind service::add_internal_routes) on a real HTTP server
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "discovery/memory_registry.h"
#include "discovery/store_registry.h"
#include "http_fixture.h"
#include "registry_conformance.h"
#include "store/rocksdb_store.h"

namespace chatd::discovery::testing {
namespace {

class memory_env final : public registry_env {
 public:
  registry& get() override { return reg_; }

 private:
  memory_registry reg_;
};

// A fresh directory under the system temp dir, removed at the end.
class temp_dir {
 public:
  temp_dir() {
    static std::atomic<int> n{0};
    path_ = std::filesystem::temp_directory_path() /
            ("chatd-discovery-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

class store_env final : public registry_env {
 public:
  store_env() {
    store::rocksdb_options o;
    o.path = dir_.str();
    db_ = store::open_rocksdb_store(o);
    reg_ = std::make_unique<store_registry>(*db_);
  }
  registry& get() override { return *reg_; }

 private:
  temp_dir dir_;  // declared first: removed after the store is closed
  std::unique_ptr<store::chat_store> db_;
  std::unique_ptr<store_registry> reg_;
};

}  // namespace

INSTANTIATE_TEST_SUITE_P(
    Backends, RegistryConformance,
    ::testing::Values(registry_backend{"memory", [] { return std::unique_ptr<registry_env>(new memory_env); }},
                      registry_backend{"store", [] { return std::unique_ptr<registry_env>(new store_env); }},
                      registry_backend{"http", [] { return std::unique_ptr<registry_env>(new http_env); }}),
    [](const ::testing::TestParamInfo<registry_backend>& info) { return info.param.name; });

}  // namespace chatd::discovery::testing
