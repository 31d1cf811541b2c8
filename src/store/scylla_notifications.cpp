// The ScyllaDB store: notifications and their delivery claims.
#include <utility>
#include <vector>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

status scylla_chat_store::put_notification(const notification& n) {
  auto r = s_->run(ins_notification_, values()
                                          .id(n.recipient_id)
                                          .id(n.id)
                                          .id(n.conversation_id)
                                          .id(n.message_id)
                                          .id(n.sender_id)
                                          .i32(kind_int(n.sender_kind))
                                          .text(n.preview)
                                          .i32(static_cast<std::int32_t>(n.count))
                                          .i64(n.created_at));
  if (!r) return std::move(r).err();
  return {};
}

result<std::vector<notification>> scylla_chat_store::list_notifications(id_t recipient_id, std::size_t limit) {
  std::vector<notification> out;
  if (limit == 0) return out;
  auto r = s_->run(sel_notifications_,
                   values().id(recipient_id).i32(static_cast<std::int32_t>(std::min<std::size_t>(limit, INT32_MAX))));
  if (!r) return std::move(r).err();
  for (std::size_t i = 0; i < r->size(); ++i) {
    notification n;
    n.recipient_id = r->id(i, 0);
    n.id = r->id(i, 1);
    n.conversation_id = r->id(i, 2);
    n.message_id = r->id(i, 3);
    n.sender_id = r->id(i, 4);
    n.sender_kind = kind_of(r->i64(i, 5));
    n.preview = r->text(i, 6);
    n.count = static_cast<std::uint32_t>(r->i64(i, 7));
    n.created_at = r->i64(i, 8);
    out.push_back(std::move(n));
  }
  return out;
}

result<bool> scylla_chat_store::mark_delivered(id_t recipient_id, id_t message_id) {
  auto r = s_->run(claim_delivered_, values().id(recipient_id).id(message_id));
  if (!r) return std::move(r).err();
  return applied(*r);
}

result<bool> scylla_chat_store::is_delivered(id_t recipient_id, id_t message_id) {
  auto r = s_->run(sel_delivered_, values().id(recipient_id).id(message_id));
  if (!r) return std::move(r).err();
  return !r->empty();
}

}  // namespace chatd::store::scylla_backend
