// The ScyllaDB store: conversations, direct pairs and members.
#include <algorithm>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

status scylla_chat_store::create_conversation(const conversation& c, const std::vector<id_t>& members) {
  auto stored = load_conversation(c.id);
  activity act{c.created_at, 0};
  if (stored) {
    // A replayed create keeps the stored row and its activity.
    act = stored->act;
  } else if (stored.err().code != errc::not_found) {
    return std::move(stored).err();
  } else {
    std::vector<pending> ps;
    ps.push_back(s_->execute(
        ins_conversation_,
        values().id(c.id).i32(static_cast<std::int32_t>(c.kind)).text(c.title).i64(c.created_at).id(c.creator_id)));
    ps.push_back(s_->execute(upd_activity_, values().i64(activity_ts(c.created_at)).i64(c.created_at).id(0).id(c.id)));
    if (auto s = wait_all(ps); !s) return s;
  }
  std::set<id_t> unique(members.begin(), members.end());
  return join(c.id, {unique.begin(), unique.end()}, act);
}

result<std::pair<conversation, bool>> scylla_chat_store::create_direct(const conversation& c, id_t a, id_t b) {
  id_t low = std::min(a, b);
  id_t high = std::max(a, b);
  auto claim = s_->run(claim_pair_, values().id(low).id(high).id(c.id));
  if (!claim) return std::move(claim).err();
  if (applied(*claim)) {
    if (auto s = create_conversation(c, {a, b}); !s) return std::move(s).err();
    return std::pair{c, true};
  }
  auto owner = lwt_i64(*claim, "conversation_id");
  if (!owner) return make_error(errc::internal, "direct pair claim answered without its owner");
  id_t id = static_cast<id_t>(*owner);
  if (id == c.id) {  // our own earlier attempt: finish it
    if (auto s = create_conversation(c, {a, b}); !s) return std::move(s).err();
    return std::pair{c, true};
  }
  // The winner may still be writing its conversation: wait a little.
  for (int attempt = 0;; ++attempt) {
    auto conv = get_conversation(id);
    if (conv) return std::pair{std::move(conv).value(), false};
    if (conv.err().code != errc::not_found || attempt >= 100) return std::move(conv).err();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

result<conversation> scylla_chat_store::get_conversation(id_t id) {
  auto row = load_conversation(id);
  if (!row) return std::move(row).err();
  return std::move(row->conv);
}

result<std::vector<id_t>> scylla_chat_store::list_members(id_t conversation_id) {
  auto r = s_->run(sel_members_, values().id(conversation_id));
  if (!r) return std::move(r).err();
  std::vector<id_t> out;
  out.reserve(r->size());
  for (std::size_t i = 0; i < r->size(); ++i) out.push_back(r->id(i, 0));
  return out;
}

result<bool> scylla_chat_store::is_member(id_t conversation_id, id_t participant_id) {
  auto r = s_->run(sel_member_, values().id(conversation_id).id(participant_id));
  if (!r) return std::move(r).err();
  return !r->empty();
}

status scylla_chat_store::add_member(id_t conversation_id, id_t participant_id) {
  auto row = load_conversation(conversation_id);
  if (!row) return std::move(row).err();
  if (auto s = join(conversation_id, {participant_id}, row->act); !s) return s;
  // A touch that listed the members before this one joined did not move
  // its entry: catch up with the activity as it is now.
  auto now = load_conversation(conversation_id);
  if (!now) return std::move(now).err();
  if (now->act.updated_at > row->act.updated_at || now->act.last_message_id > row->act.last_message_id) {
    std::vector<pending> ps;
    move_inbox(ps, participant_id, conversation_id, row->act.updated_at, now->act);
    return wait_all(ps);
  }
  return {};
}

// Members rows plus an inbox entry at `act` for each participant. Blind
// upserts: an entry that has already moved forward is not brought back,
// because its old row was deleted with a newer timestamp.
status scylla_chat_store::join(id_t conversation_id, const std::vector<id_t>& pids, const activity& act) {
  std::vector<pending> ps;
  for (id_t pid : pids) {
    ps.push_back(s_->execute(ins_member_, values().id(conversation_id).id(pid)));
    ps.push_back(s_->execute(ins_member_of_, values().id(pid).id(conversation_id)));
    ps.push_back(s_->execute(ins_inbox_, values()
                                             .id(pid)
                                             .i64(act.updated_at)
                                             .id(conversation_id)
                                             .id(act.last_message_id)
                                             .i64(activity_ts(act.updated_at))));
  }
  return wait_all(ps);
}

}  // namespace chatd::store::scylla_backend
