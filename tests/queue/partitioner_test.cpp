#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "queue/queue.h"

namespace chatd::queue {
namespace {

// From Kafka's UtilsTest.testMurmur2 (Java ints).
TEST(queue_partitioner, murmur2_matches_kafka_utils_test) {
  EXPECT_EQ(murmur2("21"), -973932308);
  EXPECT_EQ(murmur2("foobar"), -790332482);
  EXPECT_EQ(murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(murmur2("abc"), 479470107);
}

// From librdkafka's src/rdmurmur2.c unit test (java_murmur2_results), which
// covers every tail length and the empty key.
TEST(queue_partitioner, murmur2_matches_librdkafka_java_results) {
  const std::string unaligned = "PreAmbleWillBeRemoved,ThePrePartThatIs";
  const struct {
    std::string key;
    std::uint32_t hash;
  } cases[] = {
      {"kafka", 0xd067cf64},
      {"giberish123456789", 0x8f552b0c},
      {"1234", 0x9fc97b14},
      {"234", 0xe7c009ca},
      {"34", 0x873930da},
      {"4", 0x5a4b5ca1},
      {unaligned, 0x78424f1c},
      {unaligned.substr(1), 0x4a62b377},
      {unaligned.substr(2), 0xe0e4e09e},
      {unaligned.substr(3), 0x62b8b43f},
      {"", 0x106e08d9},
  };
  for (const auto& c : cases) EXPECT_EQ(static_cast<std::uint32_t>(murmur2(c.key)), c.hash) << "'" << c.key << "'";
}

TEST(queue_partitioner, partition_is_the_positive_hash_modulo_partitions) {
  // murmur2("21") is negative: toPositive clears the sign bit, it does not
  // negate (Java's Utils.toPositive).
  const std::uint32_t positive = static_cast<std::uint32_t>(-973932308) & 0x7fffffffu;
  EXPECT_EQ(partition_for_key("21", 12), static_cast<std::int32_t>(positive % 12));
  EXPECT_EQ(partition_for_key("21", 1), 0);
  for (int i = 0; i < 1000; ++i) {
    const auto p = partition_for_key(std::to_string(i), 7);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, 7);
  }
}

TEST(queue_partitioner, topic_names_follow_kafka) {
  EXPECT_TRUE(valid_topic_name("chatd.messages"));
  EXPECT_TRUE(valid_topic_name("a-b_c.D9"));
  EXPECT_TRUE(valid_topic_name(std::string(249, 'x')));
  EXPECT_FALSE(valid_topic_name(std::string(250, 'x')));
  EXPECT_FALSE(valid_topic_name(""));
  EXPECT_FALSE(valid_topic_name("."));
  EXPECT_FALSE(valid_topic_name(".."));
  EXPECT_FALSE(valid_topic_name("a b"));
  EXPECT_FALSE(valid_topic_name("a/b"));
  EXPECT_FALSE(valid_topic_name(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace chatd::queue
