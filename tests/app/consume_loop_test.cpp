// The consumer-group loop against the real embedded log: what a handler
// finished is committed, what it did not finish is not, on every partition.
#include "app/consume_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "queue/embedded_log.h"
#include "queue/temp_dir.h"

namespace chatd::app {
namespace {

using namespace std::chrono_literals;

constexpr std::int32_t partitions = 6;

class consume_loop_test : public ::testing::Test {
 protected:
  void SetUp() override {
    queue::embedded_log_options o;
    o.path = dir_.path();
    o.partitions = partitions;
    log_ = queue::open_embedded_log(o);
    ASSERT_TRUE(log_->ensure_topic("events", partitions));
    producer_ = log_->make_producer();
  }

  // `n` records with keys spread over every partition; their partitions.
  std::map<std::int32_t, int> produce(int n) {
    std::map<std::int32_t, int> per_partition;
    for (int i = 0; i < n; ++i) {
      auto p = producer_->produce("events", "key-" + std::to_string(i), "value-" + std::to_string(i));
      EXPECT_TRUE(p);
      if (p) ++per_partition[p->partition];
    }
    return per_partition;
  }

  // Waits (bounded) until the group's lag is `want`; the lag it saw last.
  std::int64_t lag_becomes(std::int64_t want) {
    std::int64_t seen = -1;
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
      auto l = log_->lag("g", "events");
      if (l) seen = *l;
      if (seen == want) break;
      std::this_thread::sleep_for(5ms);
    }
    return seen;
  }

  queue::testing::temp_dir dir_;
  std::unique_ptr<queue::embedded_log> log_;
  std::unique_ptr<queue::producer> producer_;
};

TEST_F(consume_loop_test, every_record_a_handler_finished_is_committed_on_every_partition) {
  auto per_partition = produce(120);
  ASSERT_EQ(per_partition.size(), static_cast<std::size_t>(partitions));  // the batch spans them all
  std::atomic<int> handled{0};
  consume_loop loop(
      *log_, "g", {"events"}, queue::start_position::earliest,
      [&](const queue::record&) -> status {
        ++handled;
        return {};
      },
      "test-loop");
  loop.start();
  EXPECT_EQ(lag_becomes(0), 0);
  loop.stop();
  EXPECT_EQ(handled.load(), 120);
}

TEST_F(consume_loop_test, a_batch_handler_commits_the_whole_batch) {
  produce(60);
  std::atomic<int> handled{0};
  consume_loop loop(
      *log_, "g", {"events"}, queue::start_position::earliest,
      [&](const std::vector<queue::record>& batch) -> status {
        handled += static_cast<int>(batch.size());
        return {};
      },
      "test-loop");
  loop.start();
  EXPECT_EQ(lag_becomes(0), 0);
  loop.stop();
  EXPECT_EQ(handled.load(), 60);
}

// Stopped while one record keeps failing: its partition is committed up to
// the record before it, the records after it in the same batch (on any
// partition) are not committed, and the records before it are.
TEST_F(consume_loop_test, a_record_left_unfinished_at_stop_holds_back_what_follows_it) {
  // One partition only, so the order within the batch is the offset order.
  ASSERT_TRUE(log_->ensure_topic("single", 1));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(producer_->produce("single", "k", "v" + std::to_string(i)));
  std::mutex mu;
  std::condition_variable cv;
  int attempts_on_fifth = 0;
  consume_loop loop(
      *log_, "g", {"single"}, queue::start_position::earliest,
      [&](const queue::record& r) -> status {
        if (r.offset != 5) return {};
        std::lock_guard lock(mu);
        ++attempts_on_fifth;
        cv.notify_all();
        return make_error(errc::unavailable, "not now");
      },
      "test-loop");
  loop.start();
  {
    std::unique_lock lock(mu);
    // Retried in place: a second attempt means nothing after it was taken.
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return attempts_on_fifth >= 2; }));
  }
  loop.stop();
  auto lag = log_->lag("g", "single");
  ASSERT_TRUE(lag);
  EXPECT_EQ(*lag, 5);  // offsets 5..9
}

}  // namespace
}  // namespace chatd::app
