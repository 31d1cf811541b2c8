#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace chatd {
namespace {

TEST(worker_pool, runs_everything_before_stop_returns) {
  std::atomic<int> n{0};
  {
    worker_pool pool(3);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(pool.post([&] { n++; }));
    pool.stop();
    EXPECT_FALSE(pool.post([&] { n++; }));
  }
  EXPECT_EQ(n.load(), 1000);
}

TEST(serial_queue, keeps_order_and_never_overlaps) {
  worker_pool pool(4);
  auto q = serial_queue::create(pool);
  std::vector<int> seen;
  std::atomic<int> running{0};
  std::atomic<bool> overlap{false};
  for (int i = 0; i < 5000; ++i) {
    q->post([&, i] {
      if (running.fetch_add(1) != 0) overlap = true;
      seen.push_back(i);
      running.fetch_sub(1);
    });
  }
  pool.stop();
  EXPECT_FALSE(overlap.load());
  ASSERT_EQ(seen.size(), 5000u);
  for (int i = 0; i < 5000; ++i) EXPECT_EQ(seen[i], i);
}

}  // namespace
}  // namespace chatd
