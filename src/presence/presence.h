// Presence: who has the chat page open. Each WebSocket connection reports
// active/inactive; a participant is active if any connection is active,
// inactive if connected but none is, offline when none is left. Chat servers
// hold a lease: a server that stops refreshing (crashed) loses its
// connections after presence.timeout_ms.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/error.h"
#include "store/store.h"

namespace chatd::presence {

using store::presence_state;

// How often a chat server renews its lease with a snapshot of its
// connections (and how often the service sweeps expired leases).
inline std::int64_t snapshot_period_ms(std::int64_t timeout_ms) { return timeout_ms / 3 > 50 ? timeout_ms / 3 : 50; }

// The route table (ADR 009): which chat servers hold a connection of each
// participant asked about, in the order asked. complete=false while the
// presence service may not know every connection yet (it started less than
// a snapshot period ago): routing must then fall back to every server.
struct routes {
  std::vector<std::vector<std::string>> servers;
  bool complete = false;
};

// The port chat servers and the main chat service use; in-process in
// `chatd all`, a client of the presence role otherwise.
class presence_port {
 public:
  virtual ~presence_port() = default;
  virtual void connection_state(const std::string& server_id, std::uint64_t connection_id, std::uint64_t participant_id,
                                presence_state state) = 0;  // opened or changed
  virtual void connection_closed(const std::string& server_id, std::uint64_t connection_id,
                                 std::uint64_t participant_id) = 0;
  // The server's connections are still there (its lease).
  virtual void refresh(const std::string& server_id) = 0;
  virtual result<store::presence> get(std::uint64_t participant_id) = 0;
  // The same for several participants, in the order asked (one round trip
  // across processes; main-chat asks for every recipient of a message).
  virtual result<std::vector<store::presence>> get_many(const std::vector<std::uint64_t>& participant_ids) {
    std::vector<store::presence> out;
    out.reserve(participant_ids.size());
    for (auto id : participant_ids) {
      auto p = get(id);
      if (!p) return std::move(p).err();
      out.push_back(*p);
    }
    return out;
  }
  // The route table's answer; unavailable where there is none.
  virtual result<routes> routes_of(const std::vector<std::uint64_t>& participant_ids) {
    (void)participant_ids;
    return make_error(errc::unavailable, "no route table here");
  }
  // Runs `done` once every connection_state/connection_closed made before
  // this call has reached the presence service (or failed to): a chat server
  // sends `ready` only after its route is known, so nothing routed after the
  // history was read can miss the new connection. May run on another thread,
  // or before returning.
  virtual void after_reported(std::function<void()> done) { done(); }
};

// One open connection of a chat server, as the server reports it.
struct connection_report {
  std::uint64_t connection_id = 0;
  std::uint64_t participant_id = 0;
  presence_state state = presence_state::active;
};

// Called with the new aggregate whenever a participant's state changes.
using change_listener = std::function<void(const store::presence&)>;

class service : public presence_port {
 public:
  service(store::chat_store& db, const presence_config& cfg, change_listener on_change);
  ~service() override;

  void start();  // the lease sweeper
  void stop();

  void connection_state(const std::string& server_id, std::uint64_t connection_id, std::uint64_t participant_id,
                        presence_state state) override;
  void connection_closed(const std::string& server_id, std::uint64_t connection_id,
                         std::uint64_t participant_id) override;
  void refresh(const std::string& server_id) override;
  result<store::presence> get(std::uint64_t participant_id) override;
  result<routes> routes_of(const std::vector<std::uint64_t>& participant_ids) override;
  // routes_of at a given time (tests): complete once a snapshot period plus
  // a margin has passed since start().
  result<routes> routes_at(const std::vector<std::uint64_t>& participant_ids, std::int64_t now_ms);

  // Every connection the server holds now: renews its lease, and connections
  // of that server missing from the list are closed (a report lost in
  // transit, or a presence service restarted, is repaired by the next sync).
  void sync(const std::string& server_id, const std::vector<connection_report>& open, std::int64_t now_ms);
  // How many connections of how many chat servers are counted.
  std::size_t connection_count() const;

  // Clock-explicit forms of refresh() and the sweeper's pass, for tests.
  void refresh_at(const std::string& server_id, std::int64_t now_ms);
  // One sweep now (tests); returns how many connections expired.
  std::size_t sweep(std::int64_t now_ms);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace chatd::presence
