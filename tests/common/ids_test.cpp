#include "common/ids.h"

#include <gtest/gtest.h>

#include <set>
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
