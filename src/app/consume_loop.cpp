#include "app/consume_loop.h"

#include <pthread.h>

#include <chrono>
#include <map>
#include <stdexcept>

#include "common/backoff.h"
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
      if (!run_batch(*batch)) break;
    } else {
      for (const auto& r : *batch) {
        if (!run_record(r, [&] { return handler_(r); })) {
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

namespace {

// A dependency that is down: waiting is right, and giving up would move
// every record of the outage aside.
bool transient(errc c) { return c == errc::unavailable || c == errc::rate_limited; }
// The record's own fault: no retry can help.
bool hopeless(errc c) {
  return c == errc::bad_request || c == errc::not_found || c == errc::forbidden || c == errc::unauthorized ||
         c == errc::too_large;
}

// A handler that throws has a bug that one record triggers: it counts as an
// unexplained failure (retried, then dead-lettered, ADR 013) instead of
// ending the process with every other partition.
template <class F>
status guarded(F&& attempt) {
  try {
    return attempt();
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string("the handler threw: ") + e.what());
  } catch (...) {
    return make_error(errc::internal, "the handler threw");
  }
}

}  // namespace

bool consume_loop::should_give_up(errc code, int& unexplained) const {
  return !transient(code) && (hopeless(code) || ++unexplained >= policy_.max_attempts);
}

namespace {

std::string describe(const queue::record& r) {
  return r.topic + "/" + std::to_string(r.partition) + "@" + std::to_string(r.offset);
}

}  // namespace

bool consume_loop::run_batch(const std::vector<queue::record>& batch) {
  int failures = 0;
  int unexplained = 0;
  for (;;) {
    auto s = guarded([&] { return batch_handler_(batch); });
    if (s) return true;
    if (stopping_) return false;
    ++failures;
    if (should_give_up(s.err().code, unexplained)) {
      spdlog::warn("{}: a batch of {} failed ({}); trying its records one by one", name_, batch.size(),
                   s.err().message);
      for (const auto& r : batch) {
        std::vector<queue::record> one{r};
        if (!run_record(r, [&] { return batch_handler_(one); })) return false;
      }
      return true;
    }
    spdlog::warn("{}: a batch of {} failed, retrying: {}", name_, batch.size(), s.err().message);
    back_off(failures);
  }
}

bool consume_loop::run_record(const queue::record& r, const std::function<status()>& attempt) {
  int failures = 0;
  int unexplained = 0;
  for (;;) {
    auto s = guarded(attempt);
    if (s) return true;
    if (stopping_) return false;
    ++failures;
    if (should_give_up(s.err().code, unexplained)) {
      return give_up(r, s.err(), failures);
    }
    spdlog::warn("{}: record {} failed, retrying: {}", name_, describe(r), s.err().message);
    back_off(failures);
  }
}

bool consume_loop::give_up(const queue::record& r, const error& why, int attempts) {
  if (!sink_) {
    spdlog::error("{}: skipping record {}: {}", name_, describe(r), why.message);
    return true;
  }
  // The record is committed only once the dead letter is durable: a crash
  // in between leaves it to be processed (and given up) again.
  for (int failures = 1;; ++failures) {
    auto s = sink_(r, why, attempts);
    if (s) return true;
    if (stopping_) return false;
    spdlog::warn("{}: cannot store the dead letter of {}, retrying: {}", name_, describe(r), s.err().message);
    back_off(failures);
  }
}

void consume_loop::back_off(int failures) {
  const auto wait = backoff_delay(policy_.first_backoff, policy_.max_backoff, static_cast<std::uint32_t>(failures));
  // In slices, so that stop() is not held up by a long backoff.
  const auto until = std::chrono::steady_clock::now() + wait;
  while (!stopping_ && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
  }
}

}  // namespace chatd::app
