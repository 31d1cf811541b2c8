// io_pool: N io_contexts, each run by one thread, idling on work guards until stop().
#include <pthread.h>

#include <exception>
#include <string>

#include "common/log.h"
#include "net/server_internal.h"

namespace chatd::net {

io_pool::impl::impl(std::size_t n) {
  if (n == 0) n = 1;
  for (std::size_t i = 0; i < n; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
}

io_pool::io_pool(std::size_t threads) : impl_(std::make_unique<impl>(threads)) {}

io_pool::~io_pool() { stop(); }

void io_pool::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  impl_->running = true;
  for (std::size_t i = 0; i < impl_->contexts.size(); ++i) {
    auto& ctx = *impl_->contexts[i];
    impl_->guards.push_back(asio::make_work_guard(ctx));
    impl_->threads.emplace_back([&ctx] {
      // A handler that throws must not take the whole network thread down.
      for (;;) {
        try {
          ctx.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("net: io thread caught: {}", e.what());
        }
      }
    });
    auto name = "io-" + std::to_string(i);
    pthread_setname_np(impl_->threads.back().native_handle(), name.c_str());
  }
}

void io_pool::stop() {
  std::lock_guard lock(impl_->mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->running = false;
  impl_->guards.clear();
  for (auto& ctx : impl_->contexts) ctx->stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
}

std::size_t io_pool::size() const { return impl_->contexts.size(); }

}  // namespace chatd::net
