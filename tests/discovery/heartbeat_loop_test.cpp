#include "discovery/heartbeat_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "discovery/memory_registry.h"

namespace chatd::discovery {
namespace {

using namespace std::chrono_literals;

server_info cs(std::string id, double load = 0) {
  return server_info{id, "ws://" + id + ":9000/v1/ws", "local", std::nullopt, std::nullopt, load};
}

// Polls `pred` every 5 ms for up to `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 2000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

TEST(MemoryRegistryClock, ExpiresExactlyTtlAfterTheLastHeartbeat) {
  std::atomic<std::int64_t> now{1000};
  memory_registry reg([&] { return now.load(); });
  ASSERT_TRUE(reg.heartbeat(cs("a"), 100ms));
  now = 1099;
  EXPECT_EQ(reg.healthy()->size(), 1u);
  ASSERT_TRUE(reg.heartbeat(cs("a", 0.5), 100ms));  // refresh at 1099: now lives until 1199
  now = 1198;
  ASSERT_EQ(reg.healthy()->size(), 1u);
  EXPECT_EQ(reg.healthy()->front().load, 0.5);
  now = 1199;
  EXPECT_TRUE(reg.healthy()->empty());
  // A late heartbeat brings it back.
  ASSERT_TRUE(reg.heartbeat(cs("a"), 100ms));
  EXPECT_EQ(reg.healthy()->size(), 1u);
}

// Counts calls and can be told to fail.
class counting_registry final : public registry {
 public:
  status heartbeat(const server_info& s, std::chrono::milliseconds ttl) override {
    ++beats;
    if (fail) return make_error(errc::unavailable, "registry down");
    return inner.heartbeat(s, ttl);
  }
  status remove(const std::string& id) override {
    ++removes;
    return inner.remove(id);
  }
  result<std::vector<server_info>> healthy() override { return inner.healthy(); }

  memory_registry inner;
  std::atomic<int> beats{0};
  std::atomic<int> removes{0};
  std::atomic<bool> fail{false};
};

TEST(HeartbeatLoop, RegistersAtStartAndRemovesAtStop) {
  counting_registry reg;
  heartbeat_loop loop(
      reg, [] { return cs("cs-1"); }, 10s, 30s);
  EXPECT_TRUE(loop.start());
  // Registered synchronously by start().
  ASSERT_EQ(reg.healthy()->size(), 1u);
  EXPECT_EQ(reg.beats.load(), 1);
  auto t0 = std::chrono::steady_clock::now();
  loop.stop();
  // The 10 s wait is interrupted, not sat out.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_TRUE(reg.healthy()->empty());
  EXPECT_EQ(reg.removes.load(), 1);
  loop.stop();  // idempotent
  EXPECT_EQ(reg.removes.load(), 1);
}

TEST(HeartbeatLoop, BeatsEveryIntervalWithCurrentInfo) {
  counting_registry reg;
  std::atomic<int> calls{0};
  heartbeat_loop loop(
      reg, [&] { return cs("cs-1", (++calls % 10) / 10.0); }, 20ms, 1s);
  (void)loop.start();
  EXPECT_TRUE(eventually([&] { return reg.beats.load() >= 5; }));
  EXPECT_GE(loop.heartbeats_sent(), 5u);
  EXPECT_EQ(loop.heartbeats_failed(), 0u);
  EXPECT_GE(calls.load(), 5);
  loop.stop();
}

TEST(HeartbeatLoop, FailuresAreRetriedAtTheNextTick) {
  counting_registry reg;
  reg.fail = true;
  heartbeat_loop loop(
      reg, [] { return cs("cs-1"); }, 10ms, 1s);
  EXPECT_FALSE(loop.start());
  EXPECT_TRUE(eventually([&] { return loop.heartbeats_failed() >= 5; }));
  EXPECT_TRUE(reg.healthy()->empty());
  reg.fail = false;
  EXPECT_TRUE(eventually([&] { return reg.healthy()->size() == 1; }));
  loop.stop();
  EXPECT_TRUE(reg.healthy()->empty());
}

TEST(HeartbeatLoop, DestructorStops) {
  counting_registry reg;
  {
    heartbeat_loop loop(
        reg, [] { return cs("cs-1"); }, 10s, 30s);
    (void)loop.start();
    EXPECT_EQ(reg.healthy()->size(), 1u);
  }
  EXPECT_TRUE(reg.healthy()->empty());
}

TEST(HeartbeatLoop, NeverStartedDoesNotRemove) {
  counting_registry reg;
  {
    heartbeat_loop loop(
        reg, [] { return cs("cs-1"); }, 10ms, 1s);
  }
  EXPECT_EQ(reg.removes.load(), 0);
  EXPECT_EQ(reg.beats.load(), 0);
}

TEST(HeartbeatLoop, ServerDisappearsAfterTtlWhenTheProcessDies) {
  // What the contract's "gone within 10 s" relies on: without heartbeats
  // (a crashed server never calls stop()) the entry expires by itself.
  memory_registry reg;
  ASSERT_TRUE(reg.heartbeat(cs("crashed"), 100ms));
  EXPECT_TRUE(eventually([&] { return reg.healthy()->empty(); }));
}

}  // namespace
}  // namespace chatd::discovery
