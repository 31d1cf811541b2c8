#include "common/worker_pool.h"

#include <pthread.h>

#include <exception>
#include <utility>

#include "common/log.h"

namespace chatd {

namespace {

// A task that throws has a bug; it must not end the process (std::terminate)
// and take every other connection with it, nor leave a serial_queue marked
// running forever. Callers that owe someone an answer catch for themselves
// (the HTTP worker answers 500, the WebSocket session closes with 1011); this
// is the floor under everything else.
void run_guarded(const std::function<void()>& task) noexcept {
  try {
    task();
  } catch (const std::exception& e) {
    spdlog::error("worker task threw: {}", e.what());
  } catch (...) {
    spdlog::error("worker task threw a non-standard exception");
  }
}

}  // namespace

worker_pool::worker_pool(std::size_t threads, std::string name) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  live_ = threads;
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { run(); });
    auto thread_name = name.substr(0, 12) + "-" + std::to_string(i);
    pthread_setname_np(threads_.back().native_handle(), thread_name.c_str());
  }
}

worker_pool::~worker_pool() { stop(); }

bool worker_pool::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    // Accepted while any thread still runs, so that work queued by running
    // tasks (serial_queue batches) during stop() is not lost.
    if (live_ == 0) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

std::size_t worker_pool::queued() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

void worker_pool::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void worker_pool::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) {  // stopping and drained
        --live_;
        return;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    run_guarded(task);
  }
}

void serial_queue::post(std::function<void()> task) {
  bool start = false;
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
    if (!running_) {
      running_ = true;
      start = true;
    }
  }
  if (start) {
    auto self = shared_from_this();
    if (!pool_.post([self] { self->drain(); })) {
      std::lock_guard lock(mu_);
      tasks_.clear();
      running_ = false;
    }
  }
}

std::size_t serial_queue::pending() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

void serial_queue::drain() {
  // Runs a bounded batch, then yields the worker so one busy connection cannot
  // starve the others.
  for (int i = 0; i < 64; ++i) {
    std::function<void()> task;
    {
      std::lock_guard lock(mu_);
      if (tasks_.empty()) {
        running_ = false;
        return;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    run_guarded(task);
  }
  auto self = shared_from_this();
  if (!pool_.post([self] { self->drain(); })) {
    std::lock_guard lock(mu_);
    tasks_.clear();
    running_ = false;
  }
}

}  // namespace chatd
