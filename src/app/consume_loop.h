// A consumer group member on its own thread: poll, hand each record to the
// handler, commit after the handler succeeded. A failing record is retried in
// place with backoff (the partition waits) so nothing after it is committed
// before it is done: at-least-once, in order.
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

  // Joins the group; throws std::runtime_error when the queue refuses.
  void start();
  void stop();

 private:
  consume_loop(queue::queue& q, std::string group, std::vector<std::string> topics, queue::start_position start,
               std::string name);
  void run();
  // Runs the handler until it succeeds, gives up on the record (bad_request)
  // or the loop stops; false when stopping left it undone.
  bool run_until_done(const std::function<status()>& attempt, const std::function<std::string()>& what);

  queue::queue& q_;
  std::string group_;
  std::vector<std::string> topics_;
  queue::start_position start_;
  handler handler_;
  batch_handler batch_handler_;
  std::string name_;
  std::unique_ptr<queue::consumer> consumer_;
  std::atomic<bool> stopping_{false};
  std::chrono::milliseconds linger_{0};
  std::size_t linger_records_ = 0;
  std::thread thread_;
};

}  // namespace chatd::app
