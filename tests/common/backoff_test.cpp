#include "common/backoff.h"

#include <gtest/gtest.h>

namespace chatd {
namespace {

using std::chrono::milliseconds;

TEST(backoff, doubles_per_failure_up_to_the_cap) {
  EXPECT_EQ(backoff_delay(milliseconds(50), milliseconds(5000), 1), milliseconds(50));
  EXPECT_EQ(backoff_delay(milliseconds(50), milliseconds(5000), 2), milliseconds(100));
  EXPECT_EQ(backoff_delay(milliseconds(50), milliseconds(5000), 4), milliseconds(400));
  EXPECT_EQ(backoff_delay(milliseconds(50), milliseconds(5000), 8), milliseconds(5000));
  EXPECT_EQ(backoff_delay(milliseconds(50), milliseconds(300), 4), milliseconds(300));
}

TEST(backoff, a_huge_failure_count_stays_at_the_cap) {
  EXPECT_EQ(backoff_delay(milliseconds(1), milliseconds(60000), 4'000'000'000U), milliseconds(60000));
  EXPECT_EQ(backoff_delay(milliseconds(0), milliseconds(100), 50), milliseconds(0));
}

}  // namespace
}  // namespace chatd
