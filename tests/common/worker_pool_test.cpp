#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
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

// A task that throws is logged; the threads, the tasks after it and the
// process go on (without the guard the exception would call std::terminate).
TEST(worker_pool, a_task_that_throws_does_not_stop_the_others) {
  std::atomic<int> n{0};
  worker_pool pool(1);
  ASSERT_TRUE(pool.post([] { throw std::runtime_error("a bug"); }));
  ASSERT_TRUE(pool.post([] { throw 42; }));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(pool.post([&] { n++; }));
  pool.stop();
  EXPECT_EQ(n.load(), 10);
}

// A serial_queue keeps running after a task that throws: it is not left
// marked busy with its later tasks never run.
TEST(serial_queue, goes_on_after_a_task_that_throws) {
  worker_pool pool(2);
  auto q = serial_queue::create(pool);
  std::vector<int> seen;
  q->post([&] { seen.push_back(1); });
  q->post([] { throw std::runtime_error("a bug"); });
  q->post([&] { seen.push_back(3); });
  pool.stop();
  EXPECT_EQ(seen, (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace chatd
