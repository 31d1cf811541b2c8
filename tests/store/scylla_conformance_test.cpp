// Runs the store conformance suite against a real CQL server (Apache
// Cassandra from scripts/cassandra.sh, or ScyllaDB): contact points from
// CHATD_TEST_CQL_HOSTS (default 127.0.0.1:9042). Each test gets a fresh
// keyspace, dropped when its store closes. No server: every test fails with
// the connection error (CI starts the server; nothing is skipped).
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "store/scylla_store.h"
#include "store_conformance.h"

namespace chatd::store::testing {
namespace {

std::string cql_hosts() {
  const char* h = std::getenv("CHATD_TEST_CQL_HOSTS");
  return h != nullptr && *h != '\0' ? h : "127.0.0.1:9042";
}

std::unique_ptr<chat_store> make_scylla_store() {
  static std::atomic<int> n{0};
  scylla_options o;
  o.hosts = cql_hosts();
  o.keyspace = "conf_" + std::to_string(::getpid()) + "_" + std::to_string(n.fetch_add(1));
  // QUORUM on a single node is the same as ONE, but keeps the statements
  // honest about what production runs (LOCAL_QUORUM needs a DC name).
  o.consistency = "local_quorum";
  o.drop_keyspace_on_close = true;
  try {
    return open_scylla_store(o);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "cannot open the ScyllaDB store at " << o.hosts
                  << " (start one with scripts/cassandra.sh start): " << e.what();
    return nullptr;
  }
}

INSTANTIATE_TEST_SUITE_P(Scylla, StoreConformance, ::testing::Values(store_backend{"scylla", make_scylla_store}),
                         store_backend_name);

}  // namespace
}  // namespace chatd::store::testing
