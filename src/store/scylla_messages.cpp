// The ScyllaDB store: messages in 10-day buckets, their id index, and the
// client_msg_id claims.
#include <algorithm>
#include <utility>
#include <vector>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

status scylla_chat_store::put_message(const message& m) {
  std::int32_t bucket = bucket_of(m.id);
  std::vector<pending> ps;
  ps.push_back(s_->execute(ins_message_, values(11)
                                             .id(m.conversation_id)
                                             .i32(bucket)
                                             .id(m.id)
                                             .id(m.sender_id)
                                             .i32(kind_int(m.sender_kind))
                                             .text(m.body)
                                             .text(m.client_msg_id)
                                             .i64(m.created_at)
                                             .i64(m.edited_at)
                                             .boolean(m.deleted)
                                             .i64(message_ts(m))));
  ps.push_back(s_->execute(ins_message_by_id_, values().id(m.id).id(m.conversation_id).i32(bucket)));
  ps.push_back(s_->execute(ins_bucket_, values().id(m.conversation_id).i32(bucket)));
  return wait_all(ps);
}

result<message> scylla_chat_store::get_message(id_t message_id) {
  auto where = s_->run(sel_message_by_id_, values().id(message_id));
  if (!where) return std::move(where).err();
  if (where->empty()) return make_error(errc::not_found, "no such message");
  auto r = s_->run(sel_message_,
                   values().id(where->id(0, 0)).i32(static_cast<std::int32_t>(where->i64(0, 1))).id(message_id));
  if (!r) return std::move(r).err();
  if (r->empty()) return make_error(errc::not_found, "no such message");
  return read_message(*r, 0);
}

result<message_page> scylla_chat_store::list_messages(id_t conversation_id, id_t before, std::size_t limit) {
  message_page page;
  const std::size_t want = limit == SIZE_MAX ? limit : limit + 1;
  std::int32_t top = before == 0 ? INT32_MAX : bucket_of(before);
  auto buckets = s_->run(sel_buckets_down_, values().id(conversation_id).i32(top));
  if (!buckets) return std::move(buckets).err();
  const std::int64_t upper = before == 0 ? INT64_MAX : static_cast<std::int64_t>(before);
  for (std::size_t b = 0; b < buckets->size() && page.messages.size() < want; ++b) {
    auto need = static_cast<std::int32_t>(std::min<std::size_t>(want - page.messages.size(), INT32_MAX));
    auto r =
        s_->run(sel_before_,
                values().id(conversation_id).i32(static_cast<std::int32_t>(buckets->i64(b, 0))).i64(upper).i32(need));
    if (!r) return std::move(r).err();
    for (std::size_t i = 0; i < r->size(); ++i) page.messages.push_back(read_message(*r, i));
  }
  if (page.messages.size() > limit) {
    page.has_more = true;
    page.messages.resize(limit);
  }
  return page;
}

result<std::vector<message>> scylla_chat_store::list_messages_after(id_t conversation_id, id_t after,
                                                                    std::size_t limit) {
  std::vector<message> out;
  if (limit == 0) return out;
  auto buckets = s_->run(sel_buckets_up_, values().id(conversation_id).i32(bucket_of(after)));
  if (!buckets) return std::move(buckets).err();
  for (std::size_t b = 0; b < buckets->size() && out.size() < limit; ++b) {
    auto need = static_cast<std::int32_t>(std::min<std::size_t>(limit - out.size(), INT32_MAX));
    auto r =
        s_->run(sel_after_,
                values().id(conversation_id).i32(static_cast<std::int32_t>(buckets->i64(b, 0))).id(after).i32(need));
    if (!r) return std::move(r).err();
    for (std::size_t i = 0; i < r->size(); ++i) out.push_back(read_message(*r, i));
  }
  return out;
}

result<std::size_t> scylla_chat_store::count_messages_after(id_t conversation_id, id_t after, id_t exclude_sender,
                                                            std::size_t cap) {
  std::size_t n = 0;
  if (cap == 0) return n;
  auto buckets = s_->run(sel_buckets_up_, values().id(conversation_id).i32(bucket_of(after)));
  if (!buckets) return std::move(buckets).err();
  for (std::size_t b = 0; b < buckets->size() && n < cap; ++b) {
    std::string state;
    for (;;) {
      auto page = s_->execute(sel_count_after_,
                              values().id(conversation_id).i32(static_cast<std::int32_t>(buckets->i64(b, 0))).id(after),
                              500, state)
                      .wait();
      if (!page) return std::move(page).err();
      for (std::size_t i = 0; i < page->size() && n < cap; ++i) {
        if (page->id(i, 0) != exclude_sender && !page->boolean(i, 1)) ++n;
      }
      auto next = page->paging_state();
      if (!next || n >= cap) break;
      state = std::move(*next);
    }
  }
  return n;
}

result<id_t> scylla_chat_store::claim_client_msg_id(id_t conversation_id, id_t sender_id,
                                                    const std::string& client_msg_id, id_t message_id) {
  // Most claims after the first (the main chat service re-claims what the
  // chat server claimed) find the key: a quorum read answers them without
  // a Paxos round. A value a read sees is committed, so this is safe.
  auto found = find_client_msg_id(conversation_id, sender_id, client_msg_id);
  if (!found) return std::move(found).err();
  if (*found) return **found;
  auto r = s_->run(claim_cmid_, values().id(conversation_id).id(sender_id).text(client_msg_id).id(message_id));
  if (!r) return std::move(r).err();
  if (applied(*r)) return message_id;
  auto owner = lwt_i64(*r, "message_id");
  if (!owner) return make_error(errc::internal, "client_msg_id claim answered without its owner");
  return static_cast<id_t>(*owner);
}

result<std::optional<id_t>> scylla_chat_store::find_client_msg_id(id_t conversation_id, id_t sender_id,
                                                                  const std::string& client_msg_id) {
  auto r = s_->run(sel_cmid_, values().id(conversation_id).id(sender_id).text(client_msg_id));
  if (!r) return std::move(r).err();
  if (r->empty() || r->is_null(0, 0)) return std::optional<id_t>{};
  return std::optional<id_t>{r->id(0, 0)};
}

}  // namespace chatd::store::scylla_backend
