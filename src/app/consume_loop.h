// A consumer group member on its own thread: poll, hand each record to the
// handler, commit after the handler succeeded. A failing record is retried in
// place with backoff (the partition waits) so nothing after it is committed
// before it is done: at-least-once, in order. A record that can never be
// processed goes to the dead-letter sink instead of stalling its partition
// (ADR 013): at once for an error that is the record's own (bad_request,
// not_found, forbidden, unauthorized, too_large), after a few attempts for
// one nobody can explain (internal, conflict); a dependency that is down
// (unavailable, rate_limited) is waited for, however long.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "queue/queue.h"

namespace chatd::app {

class consume_loop {
 public:
  using handler = std::function<status(const queue::record&)>;
  // Takes a whole polled batch; a failure retries the whole batch.
  using batch_handler = std::function<status(const std::vector<queue::record>&)>;

  consume_loop(queue::queue& q, std::string group, std::vector<std::string> topics, queue::start_position start,
               handler h, std::string name);
  consume_loop(queue::queue& q, std::string group, std::vector<std::string> topics, queue::start_position start,
               batch_handler h, std::string name);
  ~consume_loop();

  // After a batch of fewer than `records`, waits `wait` before polling
  // again, so that a consumer off the latency path (the main chat service)
  // wakes once per several records instead of once per record. Before start().
  void linger(std::chrono::milliseconds wait, std::size_t records) {
    linger_ = wait;
    linger_records_ = records;
  }

  // What to do with a record that can never be processed; without a sink it
  // is logged and skipped. Before start().
  struct failure_policy {
    // Attempts of a record alone before an unexplained error gives up.
    int max_attempts = 5;
    std::chrono::milliseconds first_backoff{50};
    std::chrono::milliseconds max_backoff{5000};
  };
  using dead_letter_sink = std::function<status(const queue::record&, const error&, int attempts)>;
  void on_give_up(dead_letter_sink sink, failure_policy policy) {
    sink_ = std::move(sink);
    policy_ = policy;
  }

  // Joins the group; throws std::runtime_error when the queue refuses.
  void start();
  void stop();

 private:
  consume_loop(queue::queue& q, std::string group, std::vector<std::string> topics, queue::start_position start,
               std::string name);
  void run();
  // Runs the batch handler until it succeeds; when it fails for a reason
  // other than a dependency being down, runs each record alone to find the
  // one(s) to give up on. False when stopping left the batch undone.
  bool run_batch(const std::vector<queue::record>& batch);
  // Runs one record until it succeeds or is given up; false when stopping
  // left it undone.
  bool run_record(const queue::record& r, const std::function<status()>& attempt);
  bool give_up(const queue::record& r, const error& why, int attempts);
  // Whether a failure with `code` ends the retries: at once for the
  // record's own fault, after max_attempts unexplained ones (counted in
  // `unexplained`), never while a dependency is down.
  bool should_give_up(errc code, int& unexplained) const;
  // Sleeps the backoff for `failures` consecutive failures (>= 1), waking
  // early when the loop stops.
  void back_off(int failures);

  queue::queue& q_;
  std::string group_;
  std::vector<std::string> topics_;
  queue::start_position start_;
  handler handler_;
  batch_handler batch_handler_;
  std::string name_;
  std::unique_ptr<queue::consumer> consumer_;
  dead_letter_sink sink_;
  failure_policy policy_;
  std::atomic<bool> stopping_{false};
  std::chrono::milliseconds linger_{0};
  std::size_t linger_records_ = 0;
  std::thread thread_;
};

}  // namespace chatd::app
