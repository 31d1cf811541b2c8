#include "store/node_lease.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <utility>

namespace chatd::store {
namespace {

// The lease whose thread this is, if any: stop() from on_lost must not join.
thread_local const node_lease* current_lease = nullptr;

}  // namespace

std::string make_lease_owner(std::string_view tag) {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  std::random_device rd;
  std::uint64_t nonce = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(nonce));
  std::string owner =
      std::string(host[0] != '\0' ? host.data() : "unknown-host") + ":" + std::to_string(::getpid()) + ":" + hex;
  if (!tag.empty()) {
    owner += ':';
    owner += tag;
  }
  return owner;
}

node_lease::node_lease(chat_store& db, std::string owner, std::chrono::milliseconds ttl, std::function<void()> on_lost)
    : db_(db), owner_(std::move(owner)), ttl_(ttl), on_lost_(std::move(on_lost)) {
  if (owner_.empty()) throw std::invalid_argument("node_lease: empty owner");
  if (ttl_ < std::chrono::milliseconds(3)) throw std::invalid_argument("node_lease: ttl below 3 ms");
}

node_lease::~node_lease() { stop(); }

void node_lease::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) throw std::logic_error("node_lease::start called twice");
    started_ = true;
  }
  auto sent = clock::now();
  auto got = db_.acquire_node_id(owner_, ttl_.count());
  if (!got) {
    throw std::runtime_error("cannot lease a snowflake node number from the chat database: " + got.err().message);
  }
  {
    std::lock_guard lock(mu_);
    renewed_at_ = sent;
    deadline_ = sent + ttl_ - margin();
    node_.store(*got, std::memory_order_release);
  }
  renewer_ = std::thread([this] { renew_loop(); });
  watcher_ = std::thread([this] { watch_loop(); });
}

void node_lease::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  // From on_lost (one of our own threads): the lease is lost, nothing to
  // release, and a thread cannot join itself; the owner's later stop() (or
  // the destructor) joins both.
  if (current_lease == this) return;
  if (renewer_.joinable()) renewer_.join();
  if (watcher_.joinable()) watcher_.join();
  std::uint32_t node = node_.load(std::memory_order_acquire);
  {
    std::lock_guard lock(mu_);
    if (released_ || node == 0 || lost()) return;
    released_ = true;
  }
  // No renewal is in flight any more: releasing cannot race with one.
  if (auto s = db_.release_node_id(node, owner_); !s) {
    spdlog::warn("node lease: releasing snowflake node {} failed ({}); it expires by itself in {} ms", node,
                 s.err().message, ttl_.count());
  }
}

void node_lease::renew_loop() {
  current_lease = this;
  const auto node = node_.load(std::memory_order_acquire);
  const auto retry = std::max<std::chrono::milliseconds>(ttl_ / 10, std::chrono::milliseconds(1));
  std::unique_lock lock(mu_);
  auto next = renewed_at_ + ttl_ / 3;
  for (;;) {
    cv_.wait_until(lock, next, [&] { return stopping_ || lost(); });
    if (stopping_ || lost()) return;
    lock.unlock();
    auto sent = clock::now();
    auto s = db_.renew_node_id(node, owner_, ttl_.count());
    if (!s && s.err().code == errc::conflict) {
      declare_lost("renewal refused: " + s.err().message);
      return;
    }
    lock.lock();
    if (s) {
      renewed_at_ = sent;
      deadline_ = std::max(deadline_, sent + ttl_ - margin());
      next = sent + ttl_ / 3;
      cv_.notify_all();  // the watcher waits for the new deadline
    } else {
      // Unavailable (or anything else): keep trying until the deadline; the
      // watcher declares the lease lost then, even if this call hangs.
      spdlog::warn("node lease: renewing snowflake node {} failed: {}", node, s.err().message);
      next = clock::now() + retry;
    }
  }
}

void node_lease::watch_loop() {
  current_lease = this;
  std::unique_lock lock(mu_);
  while (!stopping_ && !lost()) {
    auto deadline = deadline_;
    if (clock::now() >= deadline) {
      lock.unlock();
      declare_lost("no renewal succeeded before the lease expired");
      return;
    }
    cv_.wait_until(lock, deadline);
  }
}

void node_lease::declare_lost(const std::string& why) {
  if (lost_.exchange(true, std::memory_order_acq_rel)) return;
  {
    std::lock_guard lock(mu_);  // so that a thread between its check and its wait sees it
  }
  cv_.notify_all();
  spdlog::error("node lease: lost snowflake node {} ({}): no more ids may be minted with it",
                node_.load(std::memory_order_acquire), why);
  if (on_lost_) on_lost_();
}

}  // namespace chatd::store
