#include "mainchat/main_chat.h"

#include "chat/events.h"
#include "chat/messages.h"
#include "common/log.h"
#include "common/metrics.h"
#include "notification/notifier.h"
#include "presence/presence.h"
#include "store/store.h"

namespace chatd::mainchat {

main_chat::main_chat(store::chat_store& db, presence::presence_port& presence, notification::notifier& notifier,
                     metrics_registry& metrics)
    : db_(db),
      presence_(presence),
      notifier_(notifier),
      stored_(metrics.counter("chatd_messages_stored_total", "Messages the main chat service made sure are stored")),
      duplicates_(metrics.counter("chatd_messages_duplicate_total", "Redelivered or duplicate messages skipped")),
      notify_requests_(
          metrics.counter("chatd_notify_requests_total", "Recipients handed to the notification service")) {}

status main_chat::apply(const chat::event& e) {
  switch (e.kind) {
    case chat::event_kind::message:
      return store_message(e);
    case chat::event_kind::message_updated:
      return update_message(e);
    default:
      return {};  // ephemeral kinds are not ours
  }
}

status main_chat::store_message(const chat::event& e) {
  const auto& m = e.message;
  if (!m.client_msg_id.empty()) {
    // The chat server claimed the key before producing; a record whose id is
    // not the claimed one is a duplicate that must not be stored.
    auto claimed = db_.claim_client_msg_id(m.conversation_id, m.sender_id, m.client_msg_id, m.id);
    if (!claimed) return std::move(claimed).err();
    if (*claimed != m.id) {
      duplicates_.inc();
      return {};
    }
  }
  // Usually stored already by the process that accepted it (before its ack);
  // insert_message never overwrites an edit or delete made since.
  if (auto s = db_.insert_message(m); !s) return s;
  stored_.inc();
  if (auto s = db_.touch_conversation(m.conversation_id, m.created_at, m.id); !s) return s;
  // The sender has read their own message; it never counts as unread for them.
  if (auto r = db_.mark_read(m.sender_id, m.conversation_id, m.id); !r) return std::move(r).err();

  auto members = db_.list_members(m.conversation_id);
  if (!members) return std::move(members).err();
  std::vector<std::uint64_t> recipients;
  recipients.reserve(members->size());
  for (auto pid : *members) {
    if (pid != m.sender_id) recipients.push_back(pid);
  }
  if (recipients.empty()) return {};
  // One question for all recipients (one round trip to the presence role).
  auto states = presence_.get_many(recipients);
  for (std::size_t i = 0; i < recipients.size(); ++i) {
    const auto pid = recipients[i];
    if (states && (*states)[i].state == store::presence_state::active) continue;
    // Notification is idempotent per (recipient, message), so a redelivered
    // record asks again harmlessly; asking again is what makes it reliable.
    notify_requests_.inc();
    if (auto s = notifier_.notify(notification::notify_request{pid, m}); !s) {
      spdlog::warn("main-chat: notify {} about {} failed: {}", pid, m.id, s.err().message);
      return s;
    }
  }
  return {};
}

status main_chat::update_message(const chat::event& e) { return chat::message_service::store_change(db_, e.message); }

}  // namespace chatd::mainchat
