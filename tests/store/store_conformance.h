// The conformance suite of the chat database port. It knows only
// store/store.h; each backend runs it by instantiating the fixture with a
// factory, e.g. in its own test executable:
//
//   INSTANTIATE_TEST_SUITE_P(RocksDB, StoreConformance,
//       ::testing::Values(store_backend{"rocksdb", [] { return make_my_store(); }}),
//       store_backend_name);
//
// Passing it is what "the backends behave the same" means.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "store/store.h"

namespace chatd::store::testing {

// Produces a fresh, empty store for each test; the store owns whatever it
// needs (a temporary directory, a keyspace) and releases it when destroyed.
using store_factory = std::function<std::unique_ptr<chat_store>()>;

struct store_backend {
  std::string name;
  store_factory make;
};

inline std::ostream& operator<<(std::ostream& os, const store_backend& b) { return os << b.name; }

// For INSTANTIATE_TEST_SUITE_P: names the tests after the backend.
inline std::string store_backend_name(const ::testing::TestParamInfo<store_backend>& info) { return info.param.name; }

class StoreConformance : public ::testing::TestWithParam<store_backend> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override { store_.reset(); }
  chat_store& db() { return *store_; }

 private:
  std::unique_ptr<chat_store> store_;
};

}  // namespace chatd::store::testing
