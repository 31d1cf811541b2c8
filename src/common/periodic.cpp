#include "common/periodic.h"

namespace chatd {

periodic::periodic(std::chrono::milliseconds period, std::function<void()> fn) : period_(period), fn_(std::move(fn)) {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, period_, [this] { return stop_; });
      if (stop_) break;
      lock.unlock();
      fn_();
      lock.lock();
    }
  });
}

periodic::~periodic() { stop(); }

void periodic::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace chatd
