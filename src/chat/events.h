// What travels on the message queue between services. Two topics:
//   <prefix>messages  new messages and their updates, key = conversation id;
//                     durable: main-chat stores them, chat servers push them.
//   <prefix>events    read markers, typing, presence, bans; key = conversation
//                     or participant id; only chat servers consume it, from the
//                     latest offset (missing one is harmless).
// With routed delivery (ADR 009) the router copies both into
//   <prefix>deliver.<chat server id>, each record carrying the recipients
//                     that server holds connections of.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "store/store.h"

namespace chatd::chat {

enum class event_kind : std::uint8_t { message, message_updated, read, typing, presence, ban };

struct event {
  event_kind kind = event_kind::message;
  store::message message;             // message, message_updated
  std::uint64_t conversation_id = 0;  // read, typing
  std::uint64_t participant_id = 0;   // read, typing, presence, ban
  std::uint64_t message_id = 0;       // read
  store::presence presence;           // presence
  // Where it came from, so the originating connection gets its ack and not
  // the broadcast (its other devices still get it).
  std::string origin_server;
  std::uint64_t origin_connection = 0;
  std::int64_t sent_at_ms = 0;  // when the client's request arrived (send->deliver latency)
  // Routed delivery: the participants to push it to on the receiving chat
  // server (no membership read there). Empty: every member it holds.
  std::vector<std::uint64_t> recipients;
};

std::string encode_event(const event& e);
result<event> decode_event(std::string_view data);

// The key the event is produced with.
std::string event_key(const event& e);

}  // namespace chatd::chat
