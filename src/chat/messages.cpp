#include "chat/messages.h"

#include <chrono>
#include <condition_variable>
#include <future>
#include <thread>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/worker_pool.h"

namespace chatd::chat {

message_service::message_service(store::chat_store& db, id_generator& ids, conversation_service& conversations,
                                 publisher& pub, std::size_t store_threads)
    : db_(db),
      ids_(ids),
      conversations_(conversations),
      pub_(pub),
      store_pool_(std::make_shared<worker_pool>(std::max<std::size_t>(1, store_threads), "msg-store")) {}

void message_service::drain() { store_pool_->stop(); }

status message_service::validate_body(std::string_view body) {
  if (!valid_utf8(body)) return make_error(errc::bad_request, "body is not valid UTF-8");
  if (body.empty()) return make_error(errc::bad_request, "body must not be empty");
  if (body.size() > max_body_bytes || utf8_length(body) > max_body_chars) {
    return make_error(errc::too_large, "body is longer than 4000 characters");
  }
  return {};
}

namespace {

// The queue record of a new or changed message, stamped with where it came
// from (so the origin connection gets an ack instead of a copy).
event message_event(event_kind kind, const store::message& m, const origin& from) {
  event e;
  e.kind = kind;
  e.message = m;
  e.origin_server = from.server;
  e.origin_connection = from.connection;
  e.sent_at_ms = from.received_at_ms;
  return e;
}

// The ack promises that the message can be read, edited and deleted: store
// it before acking. The queue has it durably already, so the main chat
// service would store it too; storing here only makes it visible sooner.
void store_accepted(store::chat_store& db, store::message m, bool duplicate,
                    const message_service::send_callback& done) {
  auto s = db.insert_message(m);
  if (!s && s.err().code == errc::unavailable) s = db.insert_message(m);
  if (!s) {
    // Queued but not readable yet: no ack. A retry with the same
    // client_msg_id answers with the original once it is stored.
    spdlog::warn("message {} is queued but could not be stored yet: {}", m.id, s.err().message);
    return done(make_error(errc::unavailable, "the message was queued but not stored yet: " + s.err().message));
  }
  done(send_result{std::move(m), duplicate});
}

}  // namespace

status message_service::publish_and_wait(const event& e) {
  std::promise<status> done;
  auto fut = done.get_future();
  pub_.publish_durable(e, [&done](status s) { done.set_value(std::move(s)); });
  return fut.get();
}

result<send_result> message_service::send(const participant& caller, std::uint64_t conversation_id,
                                          std::string_view client_msg_id, std::string_view body, const origin& from) {
  std::promise<result<send_result>> done;
  auto fut = done.get_future();
  send_async(caller, conversation_id, client_msg_id, body, from,
             [&done](result<send_result> r) { done.set_value(std::move(r)); });
  return fut.get();
}

void message_service::send_async(const participant& caller, std::uint64_t conversation_id,
                                 std::string_view client_msg_id, std::string_view body, const origin& from,
                                 send_callback done) {
  // Validation before dedup: an invalid body is refused even for a known client_msg_id.
  if (auto s = validate_body(body); !s) return done(std::move(s).err());
  if (client_msg_id.size() > max_client_msg_id_bytes || !valid_utf8(client_msg_id)) {
    return done(make_error(errc::bad_request, "client_msg_id must be at most 128 bytes of UTF-8"));
  }
  auto conv = conversations_.check_access(caller, conversation_id);
  if (!conv) return done(std::move(conv).err());
  if (caller.kind == store::participant_kind::admin) {
    // Admins read any conversation but write only where they are members.
    auto member = db_.is_member(conversation_id, caller.id);
    if (!member) return done(std::move(member).err());
    if (!*member) return done(make_error(errc::forbidden, "join the conversation before writing to it"));
  }

  store::message m;
  m.conversation_id = conversation_id;
  m.sender_id = caller.id;
  m.sender_kind = caller.kind;
  m.body = std::string(body);
  m.client_msg_id = std::string(client_msg_id);

  std::uint64_t existing = 0;
  {
    std::lock_guard lock(stripes_[conversation_id % stripes_.size()]);
    // Above the newest stored message, which was acked (ADR 008) by any
    // process, whatever its clock: a reply is never older than what it
    // answers, and since= and the notification service's redelivery checks
    // can rely on ids growing within a conversation.
    auto newest = db_.newest_message_id(conversation_id);
    if (!newest) return done(std::move(newest).err());
    m.id = *newest == 0 ? ids_.next() : ids_.next_after(*newest);
    m.created_at = now_ms();
    if (!m.client_msg_id.empty()) {
      auto claimed = db_.claim_client_msg_id(conversation_id, caller.id, m.client_msg_id, m.id);
      if (!claimed) return done(std::move(claimed).err());
      if (*claimed != m.id) existing = *claimed;
    }
    if (!existing) {
      // Under the stripe lock: ids of one conversation enter the queue in
      // the order they were assigned. The completion captures the store, not
      // this service, because the queue may complete it while shutting down.
      pub_.publish_durable(message_event(event_kind::message, m, from), [&db = db_, pool = store_pool_, m,
                                                                         done = std::move(done)](status s) mutable {
        if (!s) {
          // The claim stays: a failure may still have reached the queue
          // (Kafka times a record out when the broker went away after
          // writing it), so a retry with the same client_msg_id must resolve
          // to this id, never mint a second message.
          return done(make_error(errc::unavailable,
                                 "the message queue did not confirm the message (send it again with the same "
                                 "client_msg_id): " +
                                     s.err().message));
        }
        // Off the queue's completion thread, which must not wait for the store.
        auto store_and_ack = [&db, m = std::move(m), done = std::move(done)]() mutable {
          store_accepted(db, std::move(m), false, done);
        };
        if (!pool->post(store_and_ack)) store_and_ack();
      });
      return;
    }
  }
  // The first attempt is usually still on its way through the queue to the
  // main chat service: wait a little for it, so the answer carries the
  // original message as the contract says.
  auto original = db_.get_message(existing);
  for (int i = 0; i < 50 && !original && original.err().code == errc::not_found; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    original = db_.get_message(existing);
  }
  if (original) return done(send_result{std::move(original.value()), true});
  if (original.err().code != errc::not_found) return done(std::move(original).err());
  // Claimed earlier but not stored (yet): the first attempt may have died
  // between its claim and the queue, so hand the message over again under
  // the original id. Storing is idempotent by id; clients drop duplicates.
  m.id = existing;
  m.created_at = id_timestamp_ms(existing);
  pub_.publish_durable(message_event(event_kind::message, m, from),
                       [&db = db_, pool = store_pool_, m, done = std::move(done)](status s) mutable {
                         if (!s) return done(std::move(s).err());
                         auto store_and_ack = [&db, m = std::move(m), done = std::move(done)]() mutable {
                           store_accepted(db, std::move(m), true, done);
                         };
                         if (!pool->post(store_and_ack)) store_and_ack();
                       });
}

result<store::message> message_service::load_for_change(const participant& caller, std::uint64_t message_id) {
  auto m = db_.get_message(message_id);
  if (!m) {
    if (m.err().code == errc::not_found) return make_error(errc::not_found, "message not found");
    return std::move(m).err();
  }
  // Membership before ownership: outsiders learn nothing.
  auto conv = conversations_.check_access(caller, m->conversation_id);
  if (!conv) return make_error(errc::not_found, "message not found");
  return m;
}

result<store::message> message_service::edit(const participant& caller, std::uint64_t message_id, std::string_view body,
                                             const origin& from) {
  if (auto s = validate_body(body); !s) return std::move(s).err();
  auto m = load_for_change(caller, message_id);
  if (!m) return m;
  if (m->sender_id != caller.id) return make_error(errc::forbidden, "only the sender can edit a message");
  if (m->deleted) return make_error(errc::not_found, "message was deleted");
  m->body = std::string(body);
  m->edited_at = now_ms();
  if (auto s = publish_and_wait(message_event(event_kind::message_updated, *m, from)); !s) {
    return make_error(errc::unavailable, s.err().message);
  }
  // Read-your-writes, as for sends (ADR 008).
  if (auto s = store_change(db_, *m); !s)
    return make_error(errc::unavailable, "changed but not stored yet: " + s.err().message);
  return m;
}

result<store::message> message_service::remove(const participant& caller, std::uint64_t message_id,
                                               const origin& from) {
  auto m = load_for_change(caller, message_id);
  if (!m) return m;
  if (m->sender_id != caller.id && caller.kind != store::participant_kind::admin) {
    return make_error(errc::forbidden, "only the sender or an admin can delete a message");
  }
  if (m->deleted) return m;  // deleting twice changes nothing
  m->body.clear();
  m->deleted = true;
  m->edited_at = now_ms();
  if (auto s = publish_and_wait(message_event(event_kind::message_updated, *m, from)); !s) {
    return make_error(errc::unavailable, s.err().message);
  }
  // Read-your-writes, as for sends (ADR 008).
  if (auto s = store_change(db_, *m); !s)
    return make_error(errc::unavailable, "changed but not stored yet: " + s.err().message);
  return m;
}

status message_service::store_change(store::chat_store& db, const store::message& changed) {
  auto current = db.get_message(changed.id);
  if (!current) {
    if (current.err().code != errc::not_found) return std::move(current).err();
    return db.put_message(changed);
  }
  if (current->deleted) return {};
  if (!changed.deleted && current->edited_at > changed.edited_at) return {};
  auto next = *current;
  next.body = changed.deleted ? std::string() : changed.body;
  next.deleted = changed.deleted;
  next.edited_at = changed.edited_at;
  return db.put_message(next);
}

result<std::uint64_t> message_service::mark_read(const participant& caller, std::uint64_t conversation_id,
                                                 std::uint64_t message_id, const origin& from) {
  auto r = conversations_.mark_read(caller, conversation_id, message_id);
  if (!r) return r;
  event e;
  e.kind = event_kind::read;
  e.conversation_id = conversation_id;
  e.participant_id = caller.id;
  e.message_id = *r;
  e.origin_server = from.server;
  e.origin_connection = from.connection;
  pub_.publish_ephemeral(e);
  return r;
}

status message_service::typing(const participant& caller, std::uint64_t conversation_id, const origin& from) {
  auto conv = conversations_.check_access(caller, conversation_id);
  if (!conv) return std::move(conv).err();
  event e;
  e.kind = event_kind::typing;
  e.conversation_id = conversation_id;
  e.participant_id = caller.id;
  e.origin_server = from.server;
  e.origin_connection = from.connection;
  pub_.publish_ephemeral(e);
  return {};
}

}  // namespace chatd::chat
