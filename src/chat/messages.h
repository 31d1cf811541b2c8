// Sending, editing and deleting messages: validation, access, dedup of
// client_msg_id, id assignment, and the durable hand-off to the queue. Used
// by the chat server (WebSocket) and the gateway (HTTP) alike.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "chat/conversations.h"
#include "chat/publisher.h"
#include "common/error.h"
#include "store/store.h"

namespace chatd {
class id_generator;
}  // namespace chatd

namespace chatd::chat {

inline constexpr std::size_t max_body_chars = 4000;
inline constexpr std::size_t max_body_bytes = 16 * 1024;
inline constexpr std::size_t max_client_msg_id_bytes = 128;

struct origin {
  std::string server;
  std::uint64_t connection = 0;
  std::int64_t received_at_ms = 0;
};

struct send_result {
  store::message message;
  bool duplicate = false;  // a repeated client_msg_id: the original message
};

class message_service {
 public:
  message_service(store::chat_store& db, id_generator& ids, conversation_service& conversations, publisher& pub);

  // Body: 1..4000 code points (empty: bad_request, longer: too_large), at most
  // 16 KiB. Blocks until the queue has the message durably.
  result<send_result> send(const participant& caller, std::uint64_t conversation_id, std::string_view client_msg_id,
                           std::string_view body, const origin& from);
  // The same, without waiting: the message gets its id and its place in the
  // queue before this returns (so sends of one caller stay in order), and
  // `done` runs once it is stored and durable in the queue, or failed, on
  // the queue's completion thread or the caller's, possibly before this
  // returns. `done` must not block.
  //
  // Read-your-writes (docs/adr/008-read-your-writes.md, 011): the accepting
  // process stores the message itself, with its client_msg_id claim, before
  // queueing it, so edit, delete, history and since= see it at once after
  // the ack, even if the main chat service is down or far behind.
  using send_callback = std::function<void(result<send_result>)>;
  void send_async(const participant& caller, std::uint64_t conversation_id, std::string_view client_msg_id,
                  std::string_view body, const origin& from, send_callback done);
  // By the sender only.
  result<store::message> edit(const participant& caller, std::uint64_t message_id, std::string_view body,
                              const origin& from);
  // By the sender or an admin: the message becomes deleted with an empty body.
  result<store::message> remove(const participant& caller, std::uint64_t message_id, const origin& from);
  // The same two without holding a thread while the queue confirms. The
  // change is stored first (read-your-writes, as for sends: ADR 011), then
  // queued; `done` runs once the queue has it, or failed, on the queue's
  // completion thread or the caller's, and must not block. A change the
  // queue did not confirm stays stored: sending the edit or delete again
  // queues it again (a repeated delete re-queues the deletion, which
  // changes nothing downstream).
  using change_callback = std::function<void(result<store::message>)>;
  void edit_async(const participant& caller, std::uint64_t message_id, std::string_view body, const origin& from,
                  change_callback done);
  void remove_async(const participant& caller, std::uint64_t message_id, const origin& from, change_callback done);

  // Read marker (stored now) and its broadcast.
  result<std::uint64_t> mark_read(const participant& caller, std::uint64_t conversation_id, std::uint64_t message_id,
                                  const origin& from);
  status typing(const participant& caller, std::uint64_t conversation_id, const origin& from);

  static status validate_body(std::string_view body);

  // Stores an edit or delete unless what is stored is newer: a delete is
  // final, and an older edit never replaces a newer one. Both the accepting
  // process (before its ack) and the main chat service (consuming the
  // record) store changes through this, in any order.
  static status store_change(store::chat_store& db, const store::message& changed);

 private:
  // Stores `changed` (unless `stored` says it is already) and queues it.
  void publish_change(store::message changed, const origin& from, bool stored, change_callback done);
  void publish_accepted(store::message m, const origin& from, bool duplicate, send_callback done);
  result<store::message> load_for_change(const participant& caller, std::uint64_t message_id);

  store::chat_store& db_;
  id_generator& ids_;
  conversation_service& conversations_;
  publisher& pub_;
  // Id assignment and enqueue happen under the conversation's stripe so that
  // id order agrees with queue order within a conversation.
  std::array<std::mutex, 64> stripes_;
};

}  // namespace chatd::chat
