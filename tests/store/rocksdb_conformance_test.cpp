// Runs the store conformance suite against the RocksDB store, each test in a
// fresh temporary directory.
#include "rocksdb_test_util.h"
#include "store_conformance.h"

namespace chatd::store::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(RocksDB, StoreConformance,
                         ::testing::Values(store_backend{
                             "rocksdb", [] { return std::unique_ptr<chat_store>(new temp_rocksdb_store()); }}),
                         store_backend_name);

}  // namespace
}  // namespace chatd::store::testing
