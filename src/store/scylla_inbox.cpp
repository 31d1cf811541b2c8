// The ScyllaDB store: each participant's inbox (conversations by latest
// activity) and read state.
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

result<std::vector<inbox_entry>> scylla_chat_store::list_inbox(id_t participant_id, std::size_t limit) {
  std::vector<inbox_entry> out;
  if (limit == 0) return out;
  std::map<id_t, std::int64_t> seen;  // conversation -> its newest updated_at
  std::vector<pending> cleanup;
  std::string state;
  const auto page_size = static_cast<std::int32_t>(std::min<std::size_t>(limit + 8, 1000));
  for (;;) {
    auto page = s_->execute(sel_inbox_, values().id(participant_id), page_size, state).wait();
    if (!page) return std::move(page).err();
    for (std::size_t i = 0; i < page->size() && out.size() < limit; ++i) {
      inbox_entry e;
      e.updated_at = page->i64(i, 0);
      e.conversation_id = page->id(i, 1);
      e.last_message_id = page->id(i, 2);
      if (auto it = seen.find(e.conversation_id); it != seen.end()) {
        // An older duplicate left by concurrent moves: remove it, with the
        // newer entry's timestamp so it can only delete older data.
        cleanup.push_back(s_->execute(
            del_inbox_,
            values().i64(activity_ts(it->second)).id(participant_id).i64(e.updated_at).id(e.conversation_id)));
        continue;
      }
      seen.emplace(e.conversation_id, e.updated_at);
      out.push_back(e);
    }
    auto next = page->paging_state();
    if (!next || out.size() >= limit) break;
    state = std::move(*next);
  }
  (void)wait_all(cleanup);  // best effort: a later read removes what is left
  order_inbox(out);
  return out;
}

status scylla_chat_store::touch_conversation(id_t conversation_id, std::int64_t updated_at, id_t last_message_id) {
  auto row = load_conversation(conversation_id);
  if (!row) {
    if (row.err().code == errc::not_found) return {};
    return std::move(row).err();
  }
  activity next{updated_at, last_message_id};
  if (!(row->act < next)) return {};
  auto members = list_members(conversation_id);
  if (!members) return std::move(members).err();
  std::vector<pending> ps;
  for (id_t pid : *members) move_inbox(ps, pid, conversation_id, row->act.updated_at, next);
  if (auto s = wait_all(ps); !s) return s;
  // Last, so that a failure above is retried in full by the caller's replay.
  auto r = s_->run(upd_activity_,
                   values().i64(activity_ts(updated_at)).i64(updated_at).id(last_message_id).id(conversation_id));
  if (!r) return std::move(r).err();
  return {};
}

// Moves one inbox entry from `old_updated_at` to `next`.
void scylla_chat_store::move_inbox(std::vector<pending>& ps, id_t pid, id_t conversation_id,
                                   std::int64_t old_updated_at, const activity& next) {
  auto ts = activity_ts(next.updated_at);
  // One batch of one partition (the participant's inbox) is one mutation:
  // a reader sees the entry at its old place or at its new one, never
  // gone in between (two statements in flight could apply the delete
  // first). Both carry their timestamp, so a replay is harmless.
  cql::batch b(false);
  b.add(ins_inbox_, values().id(pid).i64(next.updated_at).id(conversation_id).id(next.last_message_id).i64(ts));
  // Same updated_at: the same row, already overwritten by the insert.
  if (old_updated_at < next.updated_at) {
    b.add(del_inbox_, values().i64(ts).id(pid).i64(old_updated_at).id(conversation_id));
  }
  ps.push_back(s_->execute(std::move(b), true));
}

result<id_t> scylla_chat_store::mark_read(id_t participant_id, id_t conversation_id, id_t message_id) {
  auto w = s_->run(upd_read_, values().i64(read_ts(message_id)).id(message_id).id(participant_id).id(conversation_id));
  if (!w) return std::move(w).err();
  return get_read(participant_id, conversation_id);
}

result<id_t> scylla_chat_store::get_read(id_t participant_id, id_t conversation_id) {
  auto r = s_->run(sel_read_, values().id(participant_id).id(conversation_id));
  if (!r) return std::move(r).err();
  if (r->empty()) return id_t{0};
  return r->id(0, 0);
}

}  // namespace chatd::store::scylla_backend
