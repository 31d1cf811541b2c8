// A count another thread raises, waited for with a limit: how a test waits
// for a callback without sleeping a fixed time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace chatd::testing {

class latch {
 public:
  void set() {
    {
      std::lock_guard lock(mu_);
      ++count_;
    }
    cv_.notify_all();
  }
  bool wait_for(std::chrono::milliseconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return count_ > 0; });
  }
  int count() {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

}  // namespace chatd::testing
