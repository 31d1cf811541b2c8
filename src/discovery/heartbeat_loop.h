// Keeps one chat server registered: heartbeats every `interval` from its own
// thread (the registry calls may block on the network or the database) and
// signs off with remove() on stop(). A failed heartbeat is logged (rate-
// limited) and simply tried again at the next tick; the ttl should span
// several intervals so one lost heartbeat does not drop the server.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "discovery/registry.h"

namespace chatd::discovery {

class heartbeat_loop {
 public:
  // `info` is called before every heartbeat (so load is current), from the
  // loop's thread. `reg` must outlive the loop.
  heartbeat_loop(registry& reg, std::function<server_info()> info, std::chrono::milliseconds interval,
                 std::chrono::milliseconds ttl);
  ~heartbeat_loop();  // stop()
  heartbeat_loop(const heartbeat_loop&) = delete;
  heartbeat_loop& operator=(const heartbeat_loop&) = delete;

  // Call start() and stop() from one thread (the owner's).
  // Sends the first heartbeat on the calling thread, so that a server is
  // normally discoverable once start() returns, then starts the thread. A
  // failed first heartbeat is logged and retried like any other; the status
  // is returned for callers that care.
  status start();
  // Wakes the thread at once, joins it, then removes the server from the
  // registry. Idempotent.
  void stop();

  std::uint64_t heartbeats_sent() const { return sent_.load(); }
  std::uint64_t heartbeats_failed() const { return failed_.load(); }

 private:
  status beat();
  void run();

  registry& reg_;
  std::function<server_info()> info_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds ttl_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;
  std::string last_id_;  // guarded by mu_: what stop() removes

  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> failed_{0};
  // Failure logging: the first failure, then at most one line per log_every_.
  std::chrono::steady_clock::time_point last_warn_{};
  std::uint64_t suppressed_ = 0;
  bool failing_ = false;
};

}  // namespace chatd::discovery
