// node_lease on a real RocksDB store, with failures injected into the
// renewals (the conformance suite covers the lease on every backend).
#include "store/node_lease.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/ids.h"
#include "latch.h"
#include "rocksdb_test_util.h"

namespace chatd::store::testing {
namespace {

using namespace std::chrono_literals;

// A RocksDB store whose renewals can be made to fail with `unavailable`, as
// when the database cannot be reached.
class flaky_store final : public forwarding_store {
 public:
  flaky_store() : forwarding_store(&inner_) {}

  status renew_node_id(std::uint32_t node, const std::string& owner, std::int64_t ttl_ms) override {
    renewals_.fetch_add(1);
    if (down_.load()) return make_error(errc::unavailable, "store: injected outage");
    return forwarding_store::renew_node_id(node, owner, ttl_ms);
  }

  void set_down(bool down) { down_.store(down); }
  int renewals() const { return renewals_.load(); }
  chat_store& inner() { return inner_; }

 private:
  temp_rocksdb_store inner_;
  std::atomic<bool> down_{false};
  std::atomic<int> renewals_{0};
};

using chatd::testing::latch;

TEST(node_lease, renewals_failing_until_expiry_lose_the_lease) {
  flaky_store db;
  latch lost;
  node_lease lease(db, make_lease_owner("flaky"), 600ms, [&] { lost.set(); });
  lease.start();
  // A renewal went through before the outage: the deadline moved past the
  // first ttl.
  while (db.renewals() < 1) std::this_thread::sleep_for(10ms);
  db.set_down(true);
  auto outage_at = std::chrono::steady_clock::now();
  int before = db.renewals();
  ASSERT_TRUE(lost.wait_for(10000ms)) << "on_lost was not called";
  auto after = std::chrono::steady_clock::now() - outage_at;
  EXPECT_TRUE(lease.lost());
  // It kept retrying through the outage, and gave up about one ttl after
  // it (the deadline is 9/10 ttl after the last successful renewal was sent).
  EXPECT_GT(db.renewals(), before + 1);
  EXPECT_LT(after, 600ms + 500ms);  // slack for a loaded machine
  lease.stop();
  EXPECT_EQ(lost.count(), 1);
}

TEST(node_lease, a_short_outage_keeps_the_lease) {
  flaky_store db;
  latch lost;
  node_lease lease(db, make_lease_owner(), 900ms, [&] { lost.set(); });
  lease.start();
  auto n = lease.node();
  db.set_down(true);
  int before = db.renewals();
  while (db.renewals() < before + 2) std::this_thread::sleep_for(10ms);  // two failed attempts
  db.set_down(false);
  int recovered = db.renewals();
  while (db.renewals() < recovered + 2) std::this_thread::sleep_for(10ms);  // then two good ones
  EXPECT_FALSE(lease.lost());
  EXPECT_TRUE(db.inner().renew_node_id(n, lease.owner(), 60000).ok());  // still ours
  lease.stop();
  EXPECT_EQ(lost.count(), 0);
}

TEST(node_lease, start_throws_when_every_number_is_held) {
  temp_rocksdb_store db;
  for (std::uint32_t n = 1; n <= id_max_node; ++n) ASSERT_TRUE(db.acquire_node_id("holder", 60000).ok());
  node_lease lease(db, make_lease_owner(), 3000ms, {});
  try {
    lease.start();
    FAIL() << "start() succeeded without a free number";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("node number"), std::string::npos) << e.what();
  }
  EXPECT_EQ(lease.node(), 0u);
  lease.stop();  // nothing to release, nothing to join
}

TEST(node_lease, on_lost_may_stop_the_lease) {
  temp_rocksdb_store db;
  latch lost;
  node_lease* self = nullptr;
  node_lease lease(db, make_lease_owner(), 300ms, [&] {
    self->stop();  // from the lease's own thread: must not deadlock
    lost.set();
  });
  self = &lease;
  lease.start();
  auto n = lease.node();
  ASSERT_TRUE(db.release_node_id(n, lease.owner()).ok());
  ASSERT_TRUE(db.acquire_node_id("thief", 60000).ok());
  ASSERT_TRUE(lost.wait_for(10000ms));
  lease.stop();  // joins both threads
  EXPECT_TRUE(lease.lost());
}

TEST(node_lease, a_disabled_generator_is_what_on_lost_leaves_behind) {
  temp_rocksdb_store db;
  std::unique_ptr<id_generator> ids;
  latch lost;
  node_lease lease(db, make_lease_owner(), 300ms, [&] {
    ids->disable();
    lost.set();
  });
  lease.start();
  ids = std::make_unique<id_generator>(lease.node());
  EXPECT_NE(ids->next(), 0u);
  ASSERT_TRUE(db.release_node_id(lease.node(), lease.owner()).ok());
  ASSERT_TRUE(db.acquire_node_id("thief", 60000).ok());
  ASSERT_TRUE(lost.wait_for(10000ms));
  EXPECT_THROW(ids->next(), std::runtime_error);
  lease.stop();
}

TEST(node_lease, destructor_releases) {
  temp_rocksdb_store db;
  std::uint32_t n = 0;
  {
    node_lease lease(db, make_lease_owner(), 3000ms, {});
    lease.start();
    n = lease.node();
  }
  auto again = db.acquire_node_id("after", 60000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, n);
}

TEST(node_lease, bad_arguments_throw) {
  temp_rocksdb_store db;
  EXPECT_THROW(node_lease(db, "", 3000ms, {}), std::invalid_argument);
  EXPECT_THROW(node_lease(db, "owner", 2ms, {}), std::invalid_argument);
  node_lease lease(db, "owner");
  EXPECT_EQ(lease.ttl(), node_lease::default_ttl);
  EXPECT_EQ(lease.ttl(), 60000ms);
}

TEST(node_lease, owners_are_unique_per_call) {
  auto a = make_lease_owner("chat-server");
  auto b = make_lease_owner("chat-server");
  EXPECT_NE(a, b);
  EXPECT_NE(a.find(":" + std::to_string(::getpid()) + ":"), std::string::npos) << a;
  EXPECT_TRUE(a.ends_with(":chat-server")) << a;
}

}  // namespace
}  // namespace chatd::store::testing
