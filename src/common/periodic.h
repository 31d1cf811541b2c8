// Runs a function every `period` on a thread of its own until stopped; the
// first run is one period after construction. stop() wakes the thread at once
// (no waiting out the period) and joins it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace chatd {

class periodic {
 public:
  periodic(std::chrono::milliseconds period, std::function<void()> fn);
  ~periodic();
  periodic(const periodic&) = delete;
  periodic& operator=(const periodic&) = delete;
  void stop();  // idempotent; must not be called from fn

 private:
  std::chrono::milliseconds period_;
  std::function<void()> fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace chatd
