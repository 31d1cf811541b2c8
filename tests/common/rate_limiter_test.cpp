#include "common/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace chatd {
namespace {

TEST(RateLimiter, BurstThenRefusalThenRefill) {
  rate_limiter rl(2.0, 5);  // 2 per second, 5 at once
  std::int64_t t = 1000;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.allow("k", t)) << i;
  EXPECT_FALSE(rl.allow("k", t));
  EXPECT_FALSE(rl.allow("k", t + 499));  // 0.998 of a token
  EXPECT_TRUE(rl.allow("k", t + 500));   // one token after 500 ms
  EXPECT_FALSE(rl.allow("k", t + 500));
  // Refused calls do not cost tokens: 1 s later exactly 2 more.
  EXPECT_TRUE(rl.allow("k", t + 1500));
  EXPECT_TRUE(rl.allow("k", t + 1500));
  EXPECT_FALSE(rl.allow("k", t + 1500));
  // A long pause refills to the burst and no further.
  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += rl.allow("k", t + 3'600'000) ? 1 : 0;
  EXPECT_EQ(allowed, 5);
}

TEST(RateLimiter, ClockGoingBackRefillsNothing) {
  rate_limiter rl(1.0, 1);
  EXPECT_TRUE(rl.allow("k", 10'000));
  EXPECT_FALSE(rl.allow("k", 5'000));
  EXPECT_FALSE(rl.allow("k", 10'999));
  EXPECT_TRUE(rl.allow("k", 11'000));
}

TEST(RateLimiter, IndependentKeys) {
  rate_limiter rl(1.0, 2);
  EXPECT_TRUE(rl.allow("alice", 0));
  EXPECT_TRUE(rl.allow("alice", 0));
  EXPECT_FALSE(rl.allow("alice", 0));
  EXPECT_TRUE(rl.allow("bob", 0));
  EXPECT_TRUE(rl.allow("bob", 0));
  EXPECT_FALSE(rl.allow("bob", 0));
  EXPECT_TRUE(rl.allow("alice2", 0));
  EXPECT_EQ(rl.size(), 3u);
}

TEST(RateLimiter, Disabled) {
  rate_limiter rl(0, 0);
  EXPECT_FALSE(rl.enabled());
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(rl.allow("k", 0));
  EXPECT_TRUE(rl.allow("k"));
  EXPECT_EQ(rl.size(), 0u);  // nothing remembered
  EXPECT_FALSE(rate_limiter::per_minute(0).enabled());
}

TEST(RateLimiter, PerMinute) {
  auto rl = rate_limiter::per_minute(60);
  EXPECT_TRUE(rl.enabled());
  EXPECT_DOUBLE_EQ(rl.tokens_per_second(), 1.0);
  EXPECT_DOUBLE_EQ(rl.burst(), 60);
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(rl.allow("10.0.0.1", 0)) << i;
  EXPECT_FALSE(rl.allow("10.0.0.1", 0));
  EXPECT_TRUE(rl.allow("10.0.0.1", 1000));

  // 1 per minute: floating-point refill must still yield a token at 60 s.
  auto slow = rate_limiter::per_minute(1);
  EXPECT_TRUE(slow.allow("ip", 0));
  EXPECT_FALSE(slow.allow("ip", 59'999));
  EXPECT_TRUE(slow.allow("ip", 60'000));
  EXPECT_FALSE(slow.allow("ip", 60'000));
}

TEST(RateLimiter, SmallBurstRaisedToOne) {
  rate_limiter rl(1.0, 0.2);
  EXPECT_DOUBLE_EQ(rl.burst(), 1);
  EXPECT_TRUE(rl.allow("k", 0));
  EXPECT_FALSE(rl.allow("k", 0));
}

TEST(RateLimiter, InvalidArgumentsThrow) {
  EXPECT_THROW(rate_limiter(-1, 5), std::invalid_argument);
  EXPECT_THROW(rate_limiter(1, -5), std::invalid_argument);
  EXPECT_THROW(rate_limiter(std::nan(""), 5), std::invalid_argument);
  EXPECT_THROW(rate_limiter(1, std::numeric_limits<double>::infinity()), std::invalid_argument);
}

TEST(RateLimiter, MemoryBoundedUnderManyKeys) {
  constexpr std::size_t max_keys = 20000;  // 16 shards
  rate_limiter rl(0.001, 3, max_keys);     // slow refill: buckets stay non-full
  std::size_t peak = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    // Two calls each, so no bucket is full and eviction falls back to LRU.
    std::string key = "ip-" + std::to_string(i);
    ASSERT_TRUE(rl.allow(key, i / 1000));
    ASSERT_TRUE(rl.allow(key, i / 1000));
    if (i % 4096 == 0) peak = std::max(peak, rl.size());
  }
  peak = std::max(peak, rl.size());
  EXPECT_LE(peak, max_keys);
  EXPECT_GT(rl.size(), max_keys / 2);  // and it still remembers a useful amount
}

// Below 2048 keys the limiter has a single shard, so eviction order is exact.
TEST(RateLimiter, EvictionDropsFullBucketsFirst) {
  rate_limiter rl(0.001, 2, 100);  // one token per 1000 s; 100 keys
  for (int i = 0; i < 10; ++i) {   // hot: burst spent at t=0
    std::string k = "hot" + std::to_string(i);
    ASSERT_TRUE(rl.allow(k, 0));
    ASSERT_TRUE(rl.allow(k, 0));
    ASSERT_FALSE(rl.allow(k, 0));
  }
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(rl.allow("cold" + std::to_string(i), 1));  // 1 of 2 used
  // 1000 s later the cold buckets are full again, the hot ones hold 1 token.
  // The hot keys are the least recently used, yet the full ones go first.
  const std::int64_t later = 1'000'001;
  for (int i = 0; i < 70; ++i) ASSERT_TRUE(rl.allow("new" + std::to_string(i), later));
  EXPECT_EQ(rl.size(), 80u);  // 10 hot + 70 new: every cold key was dropped
  for (int i = 0; i < 10; ++i) {
    std::string k = "hot" + std::to_string(i);
    EXPECT_TRUE(rl.allow(k, later)) << k;
    EXPECT_FALSE(rl.allow(k, later)) << k << " was forgotten and got a fresh burst";
  }
}

TEST(RateLimiter, EvictionFallsBackToLeastRecentlyUsed) {
  rate_limiter rl(0.001, 2, 100);  // capacity 100; an eviction pass frees 12
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(rl.allow("k" + std::to_string(i), 0));  // none full
  ASSERT_TRUE(rl.allow("k0", 0));    // k0 is now the most recently used (and empty)
  ASSERT_TRUE(rl.allow("k100", 0));  // full shard: k1..k12 are the LRU victims
  EXPECT_EQ(rl.size(), 89u);
  EXPECT_FALSE(rl.allow("k0", 0));  // remembered, empty
  EXPECT_TRUE(rl.allow("k13", 0));  // remembered, had 1 token
  EXPECT_FALSE(rl.allow("k13", 0));
  EXPECT_TRUE(rl.allow("k12", 0));  // forgotten: a fresh burst of 2
  EXPECT_TRUE(rl.allow("k12", 0));
  EXPECT_FALSE(rl.allow("k12", 0));
}

TEST(RateLimiter, ThreadSafetyManyShardsAndKeys) {
  rate_limiter rl(1.0, 3, 20000);  // 16 shards of 1250
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&rl, t] {
      for (int i = 0; i < 100000; ++i) (void)rl.allow("key" + std::to_string(i * 4 + t), i / 100);
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_LE(rl.size(), 20000u);
  EXPECT_GT(rl.size(), 10000u);
}

TEST(RateLimiter, ThreadSafetyOneKey) {
  constexpr double rate = 1000, burst = 50;
  rate_limiter rl(rate, burst);
  std::atomic<long> allowed{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      long mine = 0;
      for (int i = 0; i < 200000; ++i) mine += rl.allow("shared") ? 1 : 0;
      allowed += mine;
    });
  }
  for (auto& t : ts) t.join();
  double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The limiter's clock is read inside allow(), after `start`, at ms
  // resolution: allow one extra millisecond of refill for the truncation.
  double bound = burst + rate * (elapsed_s + 0.001);
  EXPECT_LE(static_cast<double>(allowed.load()), bound) << "elapsed " << elapsed_s << " s";
  EXPECT_GE(allowed.load(), static_cast<long>(burst));
}

TEST(RateLimiter, ThreadSafetyManyKeys) {
  rate_limiter rl(1.0, 3, 1000);
  std::vector<std::thread> ts;
  std::atomic<long> allowed{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50000; ++i) {
        if (rl.allow("key" + std::to_string((i * 7 + t) % 3000), 0)) ++allowed;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_LE(rl.size(), 1000u);
  EXPECT_GT(allowed.load(), 0);
}

}  // namespace
}  // namespace chatd
