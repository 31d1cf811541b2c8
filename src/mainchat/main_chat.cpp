#include "mainchat/main_chat.h"

#include <algorithm>
#include <map>
#include <utility>

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

// What a batch leaves to do once every message of it is stored.
struct main_chat::pending {
  std::map<std::uint64_t, std::pair<std::int64_t, std::uint64_t>> touches;  // conversation -> (at, message id)
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> reads;   // (sender, conversation) -> message id
  std::vector<std::pair<const store::message*, std::vector<std::uint64_t>>> notify;  // message, its recipients
};

status main_chat::apply(const chat::event& e) { return apply_batch({e}); }

status main_chat::apply_batch(const std::vector<chat::event>& events) {
  pending p;
  for (const auto& e : events) {
    status s;
    if (e.kind == chat::event_kind::message) {
      s = store_message(e, p);
    } else if (e.kind == chat::event_kind::message_updated) {
      s = update_message(e);
    }  // ephemeral kinds are not ours
    if (!s) return s;
  }
  return finish(p);
}

status main_chat::store_message(const chat::event& e, pending& p) {
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
  auto& touch = p.touches[m.conversation_id];
  if (std::pair{m.created_at, m.id} > touch) touch = {m.created_at, m.id};
  // The sender has read their own message; it never counts as unread for them.
  auto& read = p.reads[{m.sender_id, m.conversation_id}];
  read = std::max(read, m.id);

  auto members = db_.list_members(m.conversation_id);
  if (!members) return std::move(members).err();
  std::vector<std::uint64_t> recipients;
  recipients.reserve(members->size());
  for (auto pid : *members) {
    if (pid != m.sender_id) recipients.push_back(pid);
  }
  if (!recipients.empty()) p.notify.emplace_back(&m, std::move(recipients));
  return {};
}

status main_chat::finish(pending& p) {
  for (const auto& [conv, at] : p.touches) {
    if (auto s = db_.touch_conversation(conv, at.first, at.second); !s) return s;
  }
  for (const auto& [key, mid] : p.reads) {
    if (auto r = db_.mark_read(key.first, key.second, mid); !r) return std::move(r).err();
  }
  if (p.notify.empty()) return {};
  // One question for every recipient of the batch (one round trip to the
  // presence role).
  std::vector<std::uint64_t> who;
  for (const auto& [m, recipients] : p.notify) who.insert(who.end(), recipients.begin(), recipients.end());
  std::sort(who.begin(), who.end());
  who.erase(std::unique(who.begin(), who.end()), who.end());
  auto states = presence_.get_many(who);
  auto active = [&](std::uint64_t pid) {
    if (!states) return false;
    auto at = std::lower_bound(who.begin(), who.end(), pid) - who.begin();
    return (*states)[static_cast<std::size_t>(at)].state == store::presence_state::active;
  };
  for (const auto& [m, recipients] : p.notify) {
    for (auto pid : recipients) {
      if (active(pid)) continue;
      // Notification is idempotent per (recipient, message), so a redelivered
      // record asks again harmlessly; asking again is what makes it reliable.
      notify_requests_.inc();
      if (auto s = notifier_.notify(notification::notify_request{pid, *m}); !s) {
        spdlog::warn("main-chat: notify {} about {} failed: {}", pid, m->id, s.err().message);
        return s;
      }
    }
  }
  return {};
}

status main_chat::update_message(const chat::event& e) { return chat::message_service::store_change(db_, e.message); }

}  // namespace chatd::mainchat
