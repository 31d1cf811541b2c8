#include "app/consume_loop.h"

#include <pthread.h>

#include <chrono>
#include <map>
#include <stdexcept>

#include "common/log.h"

namespace chatd::app {

consume_loop::consume_loop(queue::queue& q, std::string group, std::vector<std::string> topics,
                           queue::start_position start, std::string name)
    : q_(q), group_(std::move(group)), topics_(std::move(topics)), start_(start), name_(std::move(name)) {}

consume_loop::consume_loop(queue::queue& q, std::string group, std::vector<std::string> topics,
                           queue::start_position start, handler h, std::string name)
    : consume_loop(q, std::move(group), std::move(topics), start, std::move(name)) {
  handler_ = std::move(h);
}

consume_loop::consume_loop(queue::queue& q, std::string group, std::vector<std::string> topics,
                           queue::start_position start, batch_handler h, std::string name)
    : consume_loop(q, std::move(group), std::move(topics), start, std::move(name)) {
  batch_handler_ = std::move(h);
}

consume_loop::~consume_loop() { stop(); }

void consume_loop::start() {
  auto c = q_.subscribe(group_, topics_, start_);
  if (!c) throw std::runtime_error("cannot join consumer group " + group_ + ": " + c.err().message);
  consumer_ = std::move(c.value());
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), name_.substr(0, 15).c_str());
}

void consume_loop::stop() {
  stopping_ = true;
  if (consumer_) consumer_->wakeup();
  if (thread_.joinable()) thread_.join();
  if (consumer_) consumer_->close();
}

void consume_loop::run() {
  using namespace std::chrono_literals;
  while (!stopping_) {
    auto batch = consumer_->poll(200ms, 500);
    if (!batch) {
      if (stopping_) break;
      spdlog::warn("{}: poll failed: {}", name_, batch.err().message);
      std::this_thread::sleep_for(200ms);
      continue;
    }
    if (batch->empty()) continue;
    // Committed once per batch: a crash redelivers at most one batch, which
    // the handlers absorb (they are idempotent).
    std::map<std::pair<std::string, std::int32_t>, const queue::record*> done;
    bool all_done = true;
    if (batch_handler_) {
      const auto& all = *batch;
      auto what = [&] { return "a batch of " + std::to_string(all.size()); };
      if (!run_until_done([&] { return batch_handler_(all); }, what)) break;
    } else {
      for (const auto& r : *batch) {
        auto what = [&] {
          return "record " + r.topic + "/" + std::to_string(r.partition) + "@" + std::to_string(r.offset);
        };
        if (!run_until_done([&] { return handler_(r); }, what)) {
          all_done = false;
          break;
        }
        done[{r.topic, r.partition}] = &r;
      }
    }
    if (all_done) {
      // Every partition of the batch in one write (one WAL append on the
      // embedded log, one request to Kafka) rather than one per partition.
      if (auto s = consumer_->commit_polled(); !s) spdlog::warn("{}: commit failed: {}", name_, s.err().message);
    } else {
      for (const auto& [tp, r] : done) {
        if (auto s = consumer_->commit(*r); !s && s.err().code != errc::conflict) {
          spdlog::warn("{}: commit failed: {}", name_, s.err().message);
        }
      }
    }
    if (linger_.count() > 0 && batch->size() < linger_records_ && !stopping_) std::this_thread::sleep_for(linger_);
  }
}

bool consume_loop::run_until_done(const std::function<status()>& attempt, const std::function<std::string()>& what) {
  using namespace std::chrono_literals;
  auto backoff = 50ms;
  for (;;) {
    auto s = attempt();
    if (s) return true;
    if (s.err().code == errc::bad_request) {
      // What can never be processed (undecodable) is skipped, not retried
      // forever.
      spdlog::error("{}: skipping {}: {}", name_, what(), s.err().message);
      return true;
    }
    if (stopping_) return false;
    spdlog::warn("{}: {} failed, retrying: {}", name_, what(), s.err().message);
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

}  // namespace chatd::app
