#include "notification/notification_json.h"

#include <limits>

#include "common/ids.h"
#include "participants/views.h"

namespace chatd::notification {

json::object notification_json(const store::notification& n, store::chat_store& store) {
  json::object o;
  o["id"] = format_id(n.id);
  o["recipient_id"] = format_id(n.recipient_id);
  o["conversation_id"] = format_id(n.conversation_id);
  o["message_id"] = format_id(n.message_id);
  if (auto p = store.get_participant(n.sender_id); p.ok()) {
    o["sender"] = participants::public_view(*p);
  } else {
    // A deleted or not yet replicated participant must not block the
    // notification: the contract's shape with what the notification knows.
    json::object s;
    s["id"] = format_id(n.sender_id);
    s["kind"] = store::kind_name(n.sender_kind);
    s["display_name"] = "";
    o["sender"] = std::move(s);
  }
  o["preview"] = n.preview;
  o["count"] = n.count;
  o["created_at"] = n.created_at;
  return o;
}

json::object message_wire(const store::message& m) {
  json::object o;
  o["id"] = format_id(m.id);
  o["conversation_id"] = format_id(m.conversation_id);
  json::object s;
  s["id"] = format_id(m.sender_id);
  s["kind"] = store::kind_name(m.sender_kind);
  o["sender"] = std::move(s);
  o["body"] = m.body;
  o["client_msg_id"] = m.client_msg_id;
  o["created_at"] = m.created_at;
  if (m.edited_at != 0) {
    o["edited_at"] = m.edited_at;
  } else {
    o["edited_at"] = nullptr;
  }
  o["deleted"] = m.deleted;
  return o;
}

result<store::message> parse_message_wire(const json::object& o) {
  constexpr auto max_i64 = std::numeric_limits<std::int64_t>::max();
  store::message m;
  json_fields f(o);
  auto id = f.id("id", true);
  auto conv = f.id("conversation_id", true);
  auto body = f.str("body", true);
  auto cmid = f.str("client_msg_id", false);
  auto created = f.integer("created_at", true, 0, max_i64);
  auto edited = f.integer("edited_at", false, 0, max_i64);
  f.ignore("sender");
  f.ignore("deleted");
  if (auto st = f.finish(); !st) return std::move(st).err();

  // The nested sender object and the boolean are read by hand: json_fields
  // has no accessors for them.
  auto sender_it = o.find("sender");
  if (sender_it == o.end() || !sender_it->value().is_object()) {
    return make_error(errc::bad_request, "field 'sender' must be an object");
  }
  json_fields sf(sender_it->value().get_object());
  auto sender_id = sf.id("id", true);
  auto kind_s = sf.str("kind", true);
  if (auto st = sf.finish(); !st) return make_error(errc::bad_request, "sender: " + st.err().message);
  auto kind = store::parse_kind(*kind_s);
  if (!kind) return make_error(errc::bad_request, "sender: unknown kind");

  bool deleted = false;
  if (auto d = o.find("deleted"); d != o.end() && !d->value().is_null()) {
    if (!d->value().is_bool()) return make_error(errc::bad_request, "field 'deleted' must be a boolean");
    deleted = d->value().get_bool();
  }

  m.id = *id;
  m.conversation_id = *conv;
  m.sender_id = *sender_id;
  m.sender_kind = *kind;
  m.body = std::string(*body);
  if (cmid) m.client_msg_id = std::string(*cmid);
  m.created_at = *created;
  m.edited_at = edited.value_or(0);
  m.deleted = deleted;
  return m;
}

}  // namespace chatd::notification
