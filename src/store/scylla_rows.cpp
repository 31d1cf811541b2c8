// The ScyllaDB store's row mapping: CQL result rows to the port's types.
#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

participant scylla_chat_store::read_participant(const rows& r, std::size_t i) {
  participant p;
  p.id = r.id(i, 0);
  p.kind = kind_of(r.i64(i, 1));
  p.username = r.text(i, 2);
  p.display_name = r.text(i, 3);
  p.description = r.text(i, 4);
  p.password_hash = r.text(i, 5);
  p.banned = r.boolean(i, 6);
  p.created_at = r.i64(i, 7);
  return p;
}

message scylla_chat_store::read_message(const rows& r, std::size_t i) {
  message m;
  m.conversation_id = r.id(i, 0);
  m.id = r.id(i, 2);
  m.sender_id = r.id(i, 3);
  m.sender_kind = kind_of(r.i64(i, 4));
  m.body = r.text(i, 5);
  m.client_msg_id = r.text(i, 6);
  m.created_at = r.i64(i, 7);
  m.edited_at = r.i64(i, 8);
  m.deleted = r.boolean(i, 9);
  return m;
}

result<scylla_chat_store::conversation_row> scylla_chat_store::load_conversation(id_t id) {
  auto r = s_->run(sel_conversation_, values().id(id));
  if (!r) return std::move(r).err();
  // A row with activity but no kind was never created (only touched).
  if (r->empty() || r->is_null(0, 0)) return make_error(errc::not_found, "no such conversation");
  conversation_row row;
  row.conv.id = id;
  row.conv.kind = r->i64(0, 0) == 0 ? conversation_kind::direct : conversation_kind::group;
  row.conv.title = r->text(0, 1);
  row.conv.created_at = r->i64(0, 2);
  row.act.updated_at = r->is_null(0, 3) ? row.conv.created_at : r->i64(0, 3);
  row.act.last_message_id = r->id(0, 4);
  row.conv.creator_id = r->id(0, 5);  // null in rows written before the column: 0, unknown
  return row;
}

}  // namespace chatd::store::scylla_backend
