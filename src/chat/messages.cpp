#include "chat/messages.h"

#include <future>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"

namespace chatd::chat {

message_service::message_service(store::chat_store& db, id_generator& ids, conversation_service& conversations,
                                 publisher& pub)
    : db_(db), ids_(ids), conversations_(conversations), pub_(pub) {}

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

}  // namespace

namespace {

// Runs an asynchronous operation and waits for its answer: the blocking form
// for callers on a worker thread (tests, tools).
template <class T, class Start>
result<T> wait_for(Start&& start) {
  std::promise<result<T>> done;
  auto fut = done.get_future();
  start([&done](result<T> r) { done.set_value(std::move(r)); });
  return fut.get();
}

}  // namespace

result<send_result> message_service::send(const participant& caller, std::uint64_t conversation_id,
                                          std::string_view client_msg_id, std::string_view body, const origin& from) {
  return wait_for<send_result>(
      [&](send_callback done) { send_async(caller, conversation_id, client_msg_id, body, from, std::move(done)); });
}

void message_service::send_async(const participant& caller, std::uint64_t conversation_id,
                                 std::string_view client_msg_id, std::string_view body, const origin& from,
                                 send_callback done) {
  // Validation before dedup: an invalid body is refused even for a known client_msg_id.
  if (auto s = validate_body(body); !s) return done(std::move(s).err());
  if (client_msg_id.size() > max_client_msg_id_bytes || !valid_utf8(client_msg_id)) {
    return done(make_error(errc::bad_request, "client_msg_id must be at most 128 bytes of UTF-8"));
  }
  auto conv = conversations_.check_participation(caller, conversation_id);
  if (!conv) return done(std::move(conv).err());

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
    auto id = *newest == 0 ? ids_.try_next() : ids_.try_next_after(*newest);
    if (!id) return done(std::move(id).err());
    m.id = *id;
    m.created_at = now_ms();
    // Stored before it is queued, with its claim (ADR 011): the ack then
    // needs nothing after the queue's confirmation, and the next send of the
    // conversation sees this one as the newest.
    auto claimed = db_.claim_and_insert(m);
    if (!claimed) return done(std::move(claimed).err());
    if (*claimed == m.id) {
      // Under the stripe lock: ids of one conversation enter the queue in
      // the order they were assigned.
      return publish_accepted(std::move(m), from, false, std::move(done));
    }
    existing = *claimed;
  }
  // A retry of a send the conversation has (the same client_msg_id): the
  // answer carries the original, as the contract says.
  auto original = db_.get_message(existing);
  if (!original) {
    if (original.err().code != errc::not_found) return done(std::move(original).err());
    // Claimed by an attempt that died before storing (a store whose claim
    // and insert are two writes): store this one under the claimed id.
    m.id = existing;
    m.created_at = id_timestamp_ms(existing);
    if (auto s = db_.insert_message(m); !s) return done(std::move(s).err());
    original = db_.get_message(existing);
    if (!original) return done(std::move(original).err());
  }
  // The first attempt may have been answered `unavailable` without reaching
  // the queue: hand it over again. Everything downstream is idempotent by
  // id, and clients drop a message id they already have.
  publish_accepted(std::move(original.value()), from, true, std::move(done));
}

void message_service::publish_accepted(store::message m, const origin& from, bool duplicate, send_callback done) {
  auto e = message_event(event_kind::message, m, from);
  // The completion runs on the queue's thread and must not block: it only
  // hands the answer to the caller, whose `done` does not block either.
  pub_.publish_durable(e, [m = std::move(m), duplicate, done = std::move(done)](status s) mutable {
    if (!s) {
      // The claim and the stored message stay: a failure may still have
      // reached the queue (Kafka times a record out when the broker went
      // away after writing it), so a retry with the same client_msg_id
      // resolves to this message and hands it over again.
      return done(make_error(errc::unavailable,
                             "the message queue did not confirm the message (send it again with the same "
                             "client_msg_id): " +
                                 s.err().message));
    }
    done(send_result{std::move(m), duplicate});
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
  return wait_for<store::message>(
      [&](change_callback done) { edit_async(caller, message_id, body, from, std::move(done)); });
}

result<store::message> message_service::remove(const participant& caller, std::uint64_t message_id,
                                               const origin& from) {
  return wait_for<store::message>(
      [&](change_callback done) { remove_async(caller, message_id, from, std::move(done)); });
}

void message_service::edit_async(const participant& caller, std::uint64_t message_id, std::string_view body,
                                 const origin& from, change_callback done) {
  if (auto s = validate_body(body); !s) return done(std::move(s).err());
  auto m = load_for_change(caller, message_id);
  if (!m) return done(std::move(m).err());
  if (m->sender_id != caller.id) return done(make_error(errc::forbidden, "only the sender can edit a message"));
  if (m->deleted) return done(make_error(errc::not_found, "message was deleted"));
  m->body = std::string(body);
  m->edited_at = now_ms();
  publish_change(std::move(m.value()), from, false, std::move(done));
}

void message_service::remove_async(const participant& caller, std::uint64_t message_id, const origin& from,
                                   change_callback done) {
  auto m = load_for_change(caller, message_id);
  if (!m) return done(std::move(m).err());
  if (m->sender_id != caller.id && caller.kind != store::participant_kind::admin) {
    return done(make_error(errc::forbidden, "only the sender or an admin can delete a message"));
  }
  if (m->deleted) {
    // Deleting twice changes nothing; the deletion is queued again, since
    // the first attempt may have been stored but never confirmed by the queue.
    return publish_change(std::move(m.value()), from, true, std::move(done));
  }
  m->body.clear();
  m->deleted = true;
  m->edited_at = now_ms();
  publish_change(std::move(m.value()), from, false, std::move(done));
}

void message_service::publish_change(store::message changed, const origin& from, bool stored, change_callback done) {
  if (!stored) {
    if (auto s = store_change(db_, changed); !s) {
      return done(make_error(errc::unavailable, "the change was not stored: " + s.err().message));
    }
  }
  auto e = message_event(event_kind::message_updated, changed, from);
  // The completion runs on the queue's thread: it only hands the answer over.
  pub_.publish_durable(e, [m = std::move(changed), done = std::move(done)](status s) mutable {
    if (!s) {
      return done(make_error(errc::unavailable,
                             "the message queue did not confirm the change (send it again): " + s.err().message));
    }
    done(std::move(m));
  });
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
  auto conv = conversations_.check_participation(caller, conversation_id);
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
