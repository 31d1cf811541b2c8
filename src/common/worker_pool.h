// Threads for blocking work (RocksDB, password hashing, produce-and-wait), so
// that network threads never block. A serial_queue runs its tasks one at a
// time, in order, on the pool: the per-connection ordering of a strand without
// tying up a thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace chatd {

class worker_pool {
 public:
  explicit worker_pool(std::size_t threads, std::string name = "worker");
  ~worker_pool();
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // Queues a task. Once stop() has drained the queue, post returns false.
  bool post(std::function<void()> task);
  // Runs what is queued, then joins the threads.
  void stop();
  std::size_t size() const { return threads_.size(); }
  std::size_t queued() const;

 private:
  void run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
  std::size_t live_ = 0;
};

class serial_queue : public std::enable_shared_from_this<serial_queue> {
 public:
  static std::shared_ptr<serial_queue> create(worker_pool& pool) {
    return std::shared_ptr<serial_queue>(new serial_queue(pool));
  }
  // Tasks run in post order, never two at once.
  void post(std::function<void()> task);
  std::size_t pending() const;

 private:
  explicit serial_queue(worker_pool& pool) : pool_(pool) {}
  void drain();

  worker_pool& pool_;
  mutable std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
  bool running_ = false;
};

}  // namespace chatd
