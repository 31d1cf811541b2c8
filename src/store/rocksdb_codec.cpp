// The RocksDB store's value encodings (rocksdb_codec.h).
#include "store/rocksdb_codec.h"

namespace chatd::store::rocksdb_backend {

// The smallest key greater than every key starting with `prefix`; empty
// when there is none (all 0xff), meaning "no upper bound".
std::string prefix_successor(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

error corrupt(table t) {
  return make_error(errc::internal,
                    std::string("store: undecodable value in ") + table_names[static_cast<std::size_t>(t)]);
}

std::string encode(const participant& p) {
  return writer()
      .u64(p.id)
      .u8(static_cast<std::uint8_t>(p.kind))
      .str(p.username)
      .str(p.display_name)
      .str(p.description)
      .str(p.password_hash)
      .boolean(p.banned)
      .i64(p.created_at)
      .done();
}
result<participant> decode_participant(std::string_view v) {
  reader r(v);
  participant p;
  p.id = r.u64();
  p.kind = static_cast<participant_kind>(r.u8());
  p.username = r.str();
  p.display_name = r.str();
  p.description = r.str();
  p.password_hash = r.str();
  p.banned = r.boolean();
  p.created_at = r.i64();
  if (!r.good()) return corrupt(table::participants);
  return p;
}

std::string encode(const conversation_row& c) {
  return writer()
      .u64(c.conv.id)
      .u8(static_cast<std::uint8_t>(c.conv.kind))
      .str(c.conv.title)
      .i64(c.conv.created_at)
      .i64(c.updated_at)
      .u64(c.last_message_id)
      .u64(c.conv.creator_id)
      .done();
}
result<conversation_row> decode_conversation(std::string_view v) {
  reader r(v);
  conversation_row c;
  c.conv.id = r.u64();
  c.conv.kind = static_cast<conversation_kind>(r.u8());
  c.conv.title = r.str();
  c.conv.created_at = r.i64();
  c.updated_at = r.i64();
  c.last_message_id = r.u64();
  // Rows written before the creator was kept end here: creator unknown (0).
  if (!r.at_end()) c.conv.creator_id = r.u64();
  if (!r.good()) return corrupt(table::conversations);
  return c;
}

std::string encode(const message& m) {
  return writer()
      .u64(m.id)
      .u64(m.conversation_id)
      .u64(m.sender_id)
      .u8(static_cast<std::uint8_t>(m.sender_kind))
      .str(m.body)
      .str(m.client_msg_id)
      .i64(m.created_at)
      .i64(m.edited_at)
      .boolean(m.deleted)
      .done();
}
result<message> decode_message(std::string_view v) {
  reader r(v);
  message m;
  m.id = r.u64();
  m.conversation_id = r.u64();
  m.sender_id = r.u64();
  m.sender_kind = static_cast<participant_kind>(r.u8());
  m.body = r.str();
  m.client_msg_id = r.str();
  m.created_at = r.i64();
  m.edited_at = r.i64();
  m.deleted = r.boolean();
  if (!r.good()) return corrupt(table::messages);
  return m;
}

std::string encode(const notification& n) {
  return writer()
      .u64(n.id)
      .u64(n.recipient_id)
      .u64(n.conversation_id)
      .u64(n.message_id)
      .u64(n.sender_id)
      .u8(static_cast<std::uint8_t>(n.sender_kind))
      .str(n.preview)
      .u32(n.count)
      .i64(n.created_at)
      .done();
}
result<notification> decode_notification(std::string_view v) {
  reader r(v);
  notification n;
  n.id = r.u64();
  n.recipient_id = r.u64();
  n.conversation_id = r.u64();
  n.message_id = r.u64();
  n.sender_id = r.u64();
  n.sender_kind = static_cast<participant_kind>(r.u8());
  n.preview = r.str();
  n.count = r.u32();
  n.created_at = r.i64();
  if (!r.good()) return corrupt(table::notifications);
  return n;
}

std::string encode(const chat_server_row& s) {
  return writer()
      .str(s.id)
      .str(s.url)
      .str(s.region)
      .f64(s.lat)
      .f64(s.lon)
      .boolean(s.has_coordinates)
      .f64(s.load)
      .i64(s.expires_at)
      .done();
}
result<chat_server_row> decode_chat_server(std::string_view v) {
  reader r(v);
  chat_server_row s;
  s.id = r.str();
  s.url = r.str();
  s.region = r.str();
  s.lat = r.f64();
  s.lon = r.f64();
  s.has_coordinates = r.boolean();
  s.load = r.f64();
  s.expires_at = r.i64();
  if (!r.good()) return corrupt(table::chat_servers);
  return s;
}

std::string encode_id(id_t id) { return writer().u64(id).done(); }
result<id_t> decode_id(std::string_view v, table t) {
  reader r(v);
  id_t id = r.u64();
  if (!r.good()) return corrupt(t);
  return id;
}

std::string encode(const activity& a) { return writer().i64(a.updated_at).u64(a.last_message_id).done(); }
result<activity> decode_activity(std::string_view v) {
  reader r(v);
  activity a;
  a.updated_at = r.i64();
  a.last_message_id = r.u64();
  if (!r.good()) return corrupt(table::inbox_index);
  return a;
}

result<message_location> decode_location(std::string_view v) {
  reader r(v);
  message_location l;
  l.conversation_id = r.u64();
  l.bucket = r.u32();
  if (!r.good()) return corrupt(table::message_by_id);
  return l;
}

result<presence_row> decode_presence(std::string_view v) {
  reader r(v);
  presence_row p;
  p.state = static_cast<presence_state>(r.u8());
  p.last_seen_at = r.i64();
  p.expires_at = r.i64();
  if (!r.good()) return corrupt(table::presence);
  return p;
}

}  // namespace chatd::store::rocksdb_backend
