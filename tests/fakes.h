// Fakes of the ports, in one place, for unit tests of the logic above them.
// Each port also has a conformance suite that runs against its real engines;
// a fake stands in only where a test is about the caller.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "chat/publisher.h"
#include "common/error.h"
#include "presence/presence.h"
#include "store/store.h"

namespace chatd::testing {

// The message queue as the services see it: records what is published and
// confirms durable records at once, fails them at once (`fail`), or keeps
// their confirmations until release() (`hold`), as a slow broker would.
class recording_publisher : public chat::publisher {
 public:
  void publish_durable(const chat::event& e, std::function<void(status)> done) override {
    std::unique_lock lock(mu);
    durable.push_back(e);
    if (hold) {
      held.push_back(std::move(done));
      return;
    }
    const bool failing = fail;
    lock.unlock();
    if (failing) {
      done(make_error(errc::unavailable, "queue down"));
    } else {
      done({});
    }
  }
  void publish_ephemeral(const chat::event& e) override {
    std::lock_guard lock(mu);
    ephemeral.push_back(e);
  }
  // Confirms what is held, outside the lock, and stops holding.
  void release() {
    std::vector<std::function<void(status)>> now;
    {
      std::lock_guard lock(mu);
      now.swap(held);
      hold = false;
    }
    for (auto& done : now) done({});
  }
  std::size_t held_count() {
    std::lock_guard lock(mu);
    return held.size();
  }

  std::mutex mu;
  std::vector<chat::event> durable, ephemeral;
  std::vector<std::function<void(status)>> held;
  bool fail = false;
  bool hold = false;
};

// Presence that answers one state for everybody and ignores updates.
class fixed_presence : public presence::presence_port {
 public:
  explicit fixed_presence(store::presence_state s = store::presence_state::offline) : state(s) {}
  void connection_state(const std::string&, std::uint64_t, std::uint64_t, store::presence_state) override {}
  void connection_closed(const std::string&, std::uint64_t, std::uint64_t) override {}
  void refresh(const std::string&) override {}
  result<store::presence> get(std::uint64_t participant_id) override {
    store::presence p;
    p.participant_id = participant_id;
    p.state = state;
    return p;
  }
  store::presence_state state;
};

}  // namespace chatd::testing
