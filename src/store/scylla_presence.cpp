// The ScyllaDB store: presence rows, which expire with a TTL.
#include <algorithm>
#include <utility>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

status scylla_chat_store::put_presence(const presence& p, std::int64_t ttl_ms) {
  std::int64_t expires_at = ttl_ms > 0 ? now_ms() + ttl_ms : 0;
  // Whole seconds, rounded up: the row lives at least as long as asked;
  // expires_at decides to the millisecond.
  auto ttl_s = static_cast<std::int32_t>(ttl_ms > 0 ? std::min<std::int64_t>((ttl_ms + 999) / 1000, 630720000) : 0);
  cql::batch b(false);  // one partition: one mutation
  b.add(upd_presence_seen_, values().i64(p.last_seen_at).id(p.participant_id));
  b.add(upd_presence_state_,
        values().i32(ttl_s).i32(static_cast<std::int32_t>(p.state)).i64(expires_at).id(p.participant_id));
  auto r = s_->execute(std::move(b), true).wait();
  if (!r) return std::move(r).err();
  return {};
}

result<presence> scylla_chat_store::get_presence(id_t participant_id) {
  presence out;
  out.participant_id = participant_id;
  auto r = s_->run(sel_presence_, values().id(participant_id));
  if (!r) return std::move(r).err();
  if (r->empty()) return out;
  out.last_seen_at = r->i64(0, 1);
  std::int64_t expires_at = r->i64(0, 2);
  bool expired = r->is_null(0, 0) || (expires_at != 0 && expires_at <= now_ms());
  if (!expired) {
    auto s = r->i64(0, 0);
    out.state = s >= 0 && s <= 2 ? static_cast<presence_state>(s) : presence_state::offline;
  }
  return out;
}

}  // namespace chatd::store::scylla_backend
