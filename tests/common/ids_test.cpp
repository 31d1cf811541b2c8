#include "common/ids.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace chatd {
namespace {

TEST(ids, strictly_increasing_within_one_millisecond) {
  id_generator gen(7);
  std::uint64_t prev = 0;
  for (int i = 0; i < 10000; ++i) {
    auto id = gen.next_at(id_epoch_ms + 1000);
    EXPECT_GT(id, prev);
    prev = id;
  }
}

TEST(ids, clock_stepping_back_keeps_order) {
  id_generator gen(1);
  auto a = gen.next_at(id_epoch_ms + 50'000);
  auto b = gen.next_at(id_epoch_ms + 10'000);  // clock jumped back 40 s
  auto c = gen.next_at(id_epoch_ms + 50'001);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(ids, encodes_time_and_node) {
  id_generator gen(id_max_node);
  auto id = gen.next_at(id_epoch_ms + 123456);
  EXPECT_EQ(id_timestamp_ms(id), id_epoch_ms + 123456);
  EXPECT_EQ((id >> id_sequence_bits) & id_max_node, id_max_node);
  EXPECT_THROW(id_generator(id_max_node + 1), std::invalid_argument);
}

TEST(ids, unique_across_threads) {
  id_generator gen(3);
  std::vector<std::vector<std::uint64_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) got[t].push_back(gen.next());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::uint64_t> all;
  for (auto& v : got) {
    for (std::size_t i = 1; i < v.size(); ++i) EXPECT_LT(v[i - 1], v[i]);
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), 80000u);
}

TEST(ids, disabled_generator_mints_no_more) {
  id_generator gen(5);
  auto a = gen.next();
  EXPECT_FALSE(gen.disabled());
  gen.disable();
  EXPECT_TRUE(gen.disabled());
  EXPECT_THROW(gen.next(), std::runtime_error);
  EXPECT_THROW(gen.next_at(id_timestamp_ms(a) + 1000), std::runtime_error);
  try {
    gen.next();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "node id lease lost");
  }
  gen.disable();  // twice is fine
  EXPECT_THROW(gen.next(), std::runtime_error);
  // What request paths use: an error a client can act on, no exception.
  auto r = gen.try_next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
  ASSERT_FALSE(gen.try_next_after(a));
  EXPECT_EQ(gen.try_next_after(a).err().code, errc::unavailable);
}

TEST(ids, disable_while_minting_stops_every_thread) {
  id_generator gen(6);
  std::atomic<int> minted_after{0};
  std::atomic<bool> disabled{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        bool was_disabled = disabled.load();
        try {
          (void)gen.next();
        } catch (const std::runtime_error&) {
          return;
        }
        if (was_disabled) minted_after.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 1000; ++i) (void)gen.next();  // the threads are minting meanwhile
  gen.disable();
  disabled.store(true);
  for (auto& th : threads) th.join();  // every thread ends: each got the exception
  EXPECT_EQ(minted_after.load(), 0);
}

TEST(ids, next_after_stays_above_a_floor_from_a_faster_clock) {
  id_generator ahead(1, 5'000);
  id_generator behind(2, -5'000);
  auto floor = ahead.next();
  auto id = behind.next_after(floor);
  EXPECT_GT(id, floor);
  EXPECT_EQ(id_timestamp_ms(id), id_timestamp_ms(floor) + 1);
  EXPECT_GT(behind.next(), id);  // and its own ids go on from there
  // A floor in the past changes nothing.
  id_generator now(3);
  auto old_floor = behind.next_at(now_ms() - 60'000);
  auto plain = now.next_after(old_floor);
  EXPECT_GE(id_timestamp_ms(plain), now_ms() - 1'000);
}

TEST(ids, parse_and_format) {
  EXPECT_EQ(parse_id("18446744073709551615"), 18446744073709551615ull);
  EXPECT_FALSE(parse_id("18446744073709551616"));
  EXPECT_FALSE(parse_id(""));
  EXPECT_FALSE(parse_id("0"));
  EXPECT_FALSE(parse_id("-1"));
  EXPECT_FALSE(parse_id("12a"));
  EXPECT_FALSE(parse_id(" 12"));
  EXPECT_FALSE(parse_id("123456789012345678901"));
  EXPECT_EQ(format_id(42), "42");
  EXPECT_EQ(parse_id(format_id(1234567890123ull)), 1234567890123ull);
}

}  // namespace
}  // namespace chatd
