#include "chat/events.h"

#include "common/ids.h"
#include "common/json.h"

namespace chatd::chat {

namespace {

const char* kind_str(event_kind k) {
  switch (k) {
    case event_kind::message:
      return "message";
    case event_kind::message_updated:
      return "message_updated";
    case event_kind::read:
      return "read";
    case event_kind::typing:
      return "typing";
    case event_kind::presence:
      return "presence";
    case event_kind::ban:
      return "ban";
  }
  return "message";
}

std::uint64_t get_id(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  if (!v || !v->is_string()) return 0;
  return parse_id(std::string_view(v->get_string().data(), v->get_string().size())).value_or(0);
}
std::int64_t get_int(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_int64() ? v->get_int64() : 0;
}
std::string get_str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

}  // namespace

std::string encode_event(const event& e) {
  json::object o;
  o["k"] = kind_str(e.kind);
  if (e.kind == event_kind::message || e.kind == event_kind::message_updated) {
    const auto& m = e.message;
    json::object mo;
    mo["id"] = format_id(m.id);
    mo["c"] = format_id(m.conversation_id);
    mo["s"] = format_id(m.sender_id);
    mo["sk"] = static_cast<int>(m.sender_kind);
    mo["b"] = m.body;
    mo["cm"] = m.client_msg_id;
    mo["at"] = m.created_at;
    mo["ed"] = m.edited_at;
    mo["del"] = m.deleted;
    o["m"] = std::move(mo);
  }
  if (e.conversation_id) o["c"] = format_id(e.conversation_id);
  if (e.participant_id) o["p"] = format_id(e.participant_id);
  if (e.message_id) o["mid"] = format_id(e.message_id);
  if (e.kind == event_kind::presence) {
    o["ps"] = static_cast<int>(e.presence.state);
    o["seen"] = e.presence.last_seen_at;
  }
  if (!e.origin_server.empty()) o["os"] = e.origin_server;
  if (e.origin_connection) o["oc"] = format_id(e.origin_connection);
  if (e.sent_at_ms) o["t"] = e.sent_at_ms;
  if (!e.recipients.empty()) {
    json::array r;
    r.reserve(e.recipients.size());
    for (auto id : e.recipients) r.push_back(json::value(format_id(id)));
    o["r"] = std::move(r);
  }
  return json::serialize(o);
}

result<event> decode_event(std::string_view data) {
  std::error_code ec;
  auto v = json::parse(data, ec);
  if (ec || !v.is_object()) return make_error(errc::bad_request, "undecodable queue record");
  const auto& o = v.get_object();
  event e;
  auto k = get_str(o, "k");
  if (k == "message") {
    e.kind = event_kind::message;
  } else if (k == "message_updated") {
    e.kind = event_kind::message_updated;
  } else if (k == "read") {
    e.kind = event_kind::read;
  } else if (k == "typing") {
    e.kind = event_kind::typing;
  } else if (k == "presence") {
    e.kind = event_kind::presence;
  } else if (k == "ban") {
    e.kind = event_kind::ban;
  } else {
    return make_error(errc::bad_request, "unknown queue record kind '" + k + "'");
  }
  if (auto* m = o.if_contains("m"); m && m->is_object()) {
    const auto& mo = m->get_object();
    e.message.id = get_id(mo, "id");
    e.message.conversation_id = get_id(mo, "c");
    e.message.sender_id = get_id(mo, "s");
    auto sk = get_int(mo, "sk");
    e.message.sender_kind = static_cast<store::participant_kind>(sk >= 0 && sk <= 2 ? sk : 0);
    e.message.body = get_str(mo, "b");
    e.message.client_msg_id = get_str(mo, "cm");
    e.message.created_at = get_int(mo, "at");
    e.message.edited_at = get_int(mo, "ed");
    auto* del = mo.if_contains("del");
    e.message.deleted = del && del->is_bool() && del->get_bool();
    if (!e.message.id || !e.message.conversation_id) return make_error(errc::bad_request, "message record without ids");
  } else if (e.kind == event_kind::message || e.kind == event_kind::message_updated) {
    return make_error(errc::bad_request, "message record without a message");
  }
  e.conversation_id = get_id(o, "c");
  e.participant_id = get_id(o, "p");
  e.message_id = get_id(o, "mid");
  if (e.kind == event_kind::presence) {
    auto ps = get_int(o, "ps");
    e.presence.participant_id = e.participant_id;
    e.presence.state = static_cast<store::presence_state>(ps >= 0 && ps <= 2 ? ps : 0);
    e.presence.last_seen_at = get_int(o, "seen");
  }
  e.origin_server = get_str(o, "os");
  e.origin_connection = get_id(o, "oc");
  e.sent_at_ms = get_int(o, "t");
  if (auto* r = o.if_contains("r")) {
    if (!r->is_array()) return make_error(errc::bad_request, "recipients must be an array");
    e.recipients.reserve(r->get_array().size());
    for (const auto& v : r->get_array()) {
      auto id = v.is_string() ? parse_id(std::string_view(v.get_string())) : std::nullopt;
      if (!id) return make_error(errc::bad_request, "recipients must hold ids");
      e.recipients.push_back(*id);
    }
  }
  return e;
}

std::string event_key(const event& e) {
  switch (e.kind) {
    case event_kind::message:
    case event_kind::message_updated:
      return format_id(e.message.conversation_id);
    case event_kind::read:
    case event_kind::typing:
      return format_id(e.conversation_id);
    case event_kind::presence:
    case event_kind::ban:
      return format_id(e.participant_id);
  }
  return {};
}

}  // namespace chatd::chat
