// The consumer-group loop against the real embedded log: what a handler
// finished is committed, what it did not finish is not, on every partition.
#include "app/consume_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
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

// What a sink was given.
struct given_up {
  std::int64_t offset;
  errc code;
  int attempts;
};

class dead_letter_test : public consume_loop_test {
 protected:
  void SetUp() override {
    consume_loop_test::SetUp();
    ASSERT_TRUE(log_->ensure_topic("single", 1));
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(producer_->produce("single", "k", "v" + std::to_string(i)));
  }

  void watch(consume_loop& loop) {
    loop.on_give_up(
        [this](const queue::record& r, const error& why, int attempts) -> status {
          std::lock_guard lock(mu_);
          sunk_.push_back({r.offset, why.code, attempts});
          return {};
        },
        fast_);
  }

  std::int64_t lag_of_single() {
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
      auto l = log_->lag("g", "single");
      if (l && *l == 0) return 0;
      std::this_thread::sleep_for(5ms);
    }
    return *log_->lag("g", "single");
  }

  std::vector<given_up> sunk() {
    std::lock_guard lock(mu_);
    return sunk_;
  }

  // Runs the ten records of "single" through a loop whose handler fails on
  // offset `poison` with `fail` and succeeds elsewhere; expects the poison
  // record tried up to the cap (3), then given up as internal, and the other
  // nine processed.
  void expect_given_up_after_the_cap(std::int64_t poison, const std::function<status()>& fail) {
    std::atomic<int> tries{0};
    std::atomic<int> done{0};
    consume_loop loop(
        *log_, "g", {"single"}, queue::start_position::earliest,
        [&](const queue::record& r) -> status {
          if (r.offset != poison) {
            ++done;
            return {};
          }
          ++tries;
          return fail();
        },
        "test-loop");
    watch(loop);
    loop.start();
    EXPECT_EQ(lag_of_single(), 0);
    loop.stop();
    EXPECT_EQ(tries.load(), 3);
    EXPECT_EQ(done.load(), 9);
    auto s = sunk();
    ASSERT_EQ(s.size(), 1u);
    EXPECT_EQ(s[0].offset, poison);
    EXPECT_EQ(s[0].code, errc::internal);
    EXPECT_EQ(s[0].attempts, 3);
  }

  consume_loop::failure_policy fast_{3, 1ms, 4ms};
  std::mutex mu_;
  std::vector<given_up> sunk_;
};

// The case: a record that can never succeed must not stall its
// partition; it goes to the sink and everything after it is processed.
TEST_F(dead_letter_test, a_record_that_can_never_succeed_is_given_up_and_the_partition_flows_on) {
  std::atomic<int> done{0};
  std::atomic<int> tries_of_poison{0};
  consume_loop loop(
      *log_, "g", {"single"}, queue::start_position::earliest,
      [&](const queue::record& r) -> status {
        if (r.offset == 3) {
          ++tries_of_poison;
          return make_error(errc::bad_request, "never");
        }
        ++done;
        return {};
      },
      "test-loop");
  watch(loop);
  loop.start();
  EXPECT_EQ(lag_of_single(), 0);
  loop.stop();
  EXPECT_EQ(done.load(), 9);
  EXPECT_EQ(tries_of_poison.load(), 1) << "an error that is the record's own is not retried";
  auto s = sunk();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].offset, 3);
  EXPECT_EQ(s[0].code, errc::bad_request);
  EXPECT_EQ(s[0].attempts, 1);
}

TEST_F(dead_letter_test, an_unexplained_error_is_retried_up_to_the_cap_then_given_up) {
  expect_given_up_after_the_cap(2, [] { return make_error(errc::internal, "a bug"); });
}

// A handler that throws (a bug one record triggers) is an unexplained
// failure as well: retried up to the cap, then given up, and the process
// and the partition go on. Unguarded, the exception ends the process.
TEST_F(dead_letter_test, a_handler_that_throws_is_retried_then_given_up_without_ending_the_process) {
  expect_given_up_after_the_cap(4, []() -> status { throw std::out_of_range("a bug"); });
}

// A dependency that is down is not the record's fault: well past the cap,
// the record is still retried, and processed once the dependency is back.
TEST_F(dead_letter_test, a_dependency_that_is_down_is_waited_for_not_given_up) {
  std::atomic<int> tries{0};
  std::atomic<int> done{0};
  consume_loop loop(
      *log_, "g", {"single"}, queue::start_position::earliest,
      [&](const queue::record& r) -> status {
        if (r.offset == 1 && ++tries <= 10) return make_error(errc::unavailable, "database down");
        ++done;
        return {};
      },
      "test-loop");
  watch(loop);
  loop.start();
  EXPECT_EQ(lag_of_single(), 0);
  loop.stop();
  EXPECT_EQ(tries.load(), 11);
  EXPECT_EQ(done.load(), 10);
  EXPECT_TRUE(sunk().empty());
}

// A batch that fails for one record's sake is run record by record: only
// that record is given up, every other one is processed.
TEST_F(dead_letter_test, a_batch_gives_up_only_its_poison_record) {
  std::mutex seen_mu;
  std::set<std::int64_t> processed;
  consume_loop loop(
      *log_, "g", {"single"}, queue::start_position::earliest,
      [&](const std::vector<queue::record>& batch) -> status {
        for (const auto& r : batch) {
          if (r.offset == 4) return make_error(errc::bad_request, "undecodable");
        }
        std::lock_guard lock(seen_mu);
        for (const auto& r : batch) processed.insert(r.offset);
        return {};
      },
      "test-loop");
  watch(loop);
  loop.start();
  EXPECT_EQ(lag_of_single(), 0);
  loop.stop();
  std::set<std::int64_t> want{0, 1, 2, 3, 5, 6, 7, 8, 9};
  EXPECT_EQ(processed, want);
  auto s = sunk();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].offset, 4);
}

// The record is committed only after the sink has it: a sink that fails
// (the dead-letter topic unreachable) holds the partition.
TEST_F(dead_letter_test, nothing_is_committed_past_a_record_whose_dead_letter_was_not_stored) {
  std::mutex m;
  std::condition_variable cv;
  int sink_calls = 0;
  consume_loop loop(
      *log_, "g", {"single"}, queue::start_position::earliest,
      [&](const queue::record& r) -> status {
        return r.offset == 6 ? make_error(errc::bad_request, "never") : status{};
      },
      "test-loop");
  loop.on_give_up(
      [&](const queue::record&, const error&, int) -> status {
        std::lock_guard lock(m);
        ++sink_calls;
        cv.notify_all();
        return make_error(errc::unavailable, "queue down");
      },
      fast_);
  loop.start();
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return sink_calls >= 2; }));
  }
  loop.stop();
  auto lag = log_->lag("g", "single");
  ASSERT_TRUE(lag);
  EXPECT_EQ(*lag, 4);  // offsets 6..9
}

}  // namespace
}  // namespace chatd::app
