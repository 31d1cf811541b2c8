// A snowflake node number leased from the chat database and kept alive, so
// that separate processes never mint colliding ids without anyone assigning
// numbers by hand (config node.id = 0).
//
//   store::node_lease lease(db, store::make_lease_owner("chat-server"), node_lease::default_ttl, on_lost);
//   lease.start();                   // throws std::runtime_error if no number can be leased
//   id_generator ids(lease.node());
//   ...
//   lease.stop();                    // releases the number (also done by the destructor)
//
// start() acquires a number (chat_store::acquire_node_id) and renews it every
// ttl/3 on its own thread. The lease is lost when a renewal answers conflict
// (someone else holds the number now) or when renewals keep failing until
// the lease would have expired; then `on_lost` is called once, from the
// lease's thread, and nothing is renewed any more. The caller must stop
// minting at once (id_generator::disable) and should shut down.
//
// Safety margin: the lease counts as lost `ttl/10` before the expiry it last
// wrote (measured from before that renewal was sent, on the steady clock),
// which covers the time to disable the generator and clock differences
// between hosts smaller than that margin.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "store/store.h"

namespace chatd::store {

// "<hostname>:<pid>:<random hex>[:<tag>]": unique per process start, and
// readable in the node_leases table.
std::string make_lease_owner(std::string_view tag = {});

class node_lease {
 public:
  // Long enough to ride out a restart of the CQL server (tens of seconds)
  // without every process stopping; a crashed process's number stays taken
  // that long, out of 1023.
  static constexpr std::chrono::milliseconds default_ttl{60'000};

  // `db` must outlive the lease. ttl is at least 3 ms (renewals every ttl/3);
  // on_lost may be empty. on_lost must not destroy the node_lease (it may
  // call stop()).
  node_lease(chat_store& db, std::string owner, std::chrono::milliseconds ttl, std::function<void()> on_lost);
  node_lease(chat_store& db, std::string owner, std::function<void()> on_lost = {})
      : node_lease(db, std::move(owner), default_ttl, std::move(on_lost)) {}
  ~node_lease();  // stop()

  node_lease(const node_lease&) = delete;
  node_lease& operator=(const node_lease&) = delete;

  // Acquires a number and starts renewing it. Throws std::runtime_error when
  // no number can be leased (all held, the database unreachable) and
  // std::logic_error when called twice.
  void start();
  // Stops renewing and releases the number if the lease still holds it.
  // Safe to call twice, and from on_lost (which only stops the renewals; the
  // owner's own stop() or the destructor then joins the threads). Call it
  // from one thread at a time.
  void stop();

  // The leased number (1..1023); 0 before start().
  std::uint32_t node() const { return node_.load(std::memory_order_acquire); }
  const std::string& owner() const { return owner_; }
  std::chrono::milliseconds ttl() const { return ttl_; }
  // True once the lease was lost (on_lost was or is being called).
  bool lost() const { return lost_.load(std::memory_order_acquire); }

 private:
  using clock = std::chrono::steady_clock;

  // The lease counts as lost this long before the expiry it last wrote.
  std::chrono::milliseconds margin() const { return ttl_ / 10; }
  void renew_loop();
  void watch_loop();
  void declare_lost(const std::string& why);

  chat_store& db_;
  const std::string owner_;
  const std::chrono::milliseconds ttl_;
  std::function<void()> on_lost_;

  std::atomic<std::uint32_t> node_{0};
  std::atomic<bool> lost_{false};

  std::mutex mu_;  // guards what follows
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  bool released_ = false;
  clock::time_point renewed_at_;  // when the last successful acquire or renewal was sent
  clock::time_point deadline_;    // the lease counts as lost from here on
  std::thread renewer_;           // renews every ttl/3, retries sooner after a failure
  std::thread watcher_;           // fires on_lost at the deadline, even while a renewal hangs
};

}  // namespace chatd::store
