// The chat server: the WebSocket channel of the contract. It authenticates
// the upgrade, sends `ready` with history from the chat store, answers client
// frames, and pushes events consumed from the queue to its own connections.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net/http.h"

namespace chatd {
class metrics_registry;
struct participant_limits;
class worker_pool;
namespace store {
class chat_store;
}
namespace participants {
class service;
}
namespace chat {
class conversation_service;
class message_service;
struct event;
}  // namespace chat
namespace presence {
class presence_port;
}
}  // namespace chatd

namespace chatd::chatserver {

struct deps {
  store::chat_store& db;
  participants::service& participants;
  chat::conversation_service& conversations;
  chat::message_service& messages;
  presence::presence_port& presence;
  participant_limits& limits;
  metrics_registry& metrics;
  worker_pool& workers;
};

struct options {
  std::string server_id = "cs-1";
  std::size_t ready_conversations = 100;  // conversations in `ready`, most recent first
  std::size_t ready_messages = 20;        // newest messages per conversation in `ready`
  std::size_t recovery_limit = 5000;      // at most this many messages replayed for ?since=
  std::size_t max_connections = 10000;
  std::size_t bad_frames_per_minute = 20;  // the next one closes with 1008
  std::size_t max_sends_in_flight = 2048;  // in the whole process; more are answered `unavailable` at once
  std::int64_t max_send_wait_ms = 1000;    // a send that waited longer to be handled is answered `unavailable`
};

class chat_server {
 public:
  chat_server(deps d, options o);
  ~chat_server();

  // The route handler for GET /v1/ws (runs on a worker thread).
  net::ws_upgrade_result upgrade(net::http_request& req);
  // An event consumed from the queue; called from the consumer thread.
  void on_event(const chat::event& e);
  // Closes every connection of the participant (bans).
  void close_participant(std::uint64_t participant_id, std::uint16_t code, const std::string& reason);
  std::size_t connections() const;
  // Closes (4001 "token expired") every connection whose token expired at
  // or before now_s and was not refreshed; returns how many.
  std::size_t close_expired(std::int64_t now_s);
  // Closes every connection with 1001; new upgrades are refused.
  void stop();

  struct impl;  // shared with the connections, which may outlive a call

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace chatd::chatserver
