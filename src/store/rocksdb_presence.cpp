// The RocksDB store: presence rows, which carry their own expiry.
#include <utility>

#include "common/ids.h"
#include "store/rocksdb_store_internal.h"

namespace chatd::store::rocksdb_backend {

status rocksdb_chat_store::put_presence(const presence& p, std::int64_t ttl_ms) {
  // The expiry is kept in the row and checked on read: an expired row still
  // knows when the participant was last seen.
  std::int64_t expires_at = ttl_ms > 0 ? now_ms() + ttl_ms : 0;
  rocksdb::WriteBatch b;
  put(b, table::presence, id_key(p.participant_id),
      writer().u8(static_cast<std::uint8_t>(p.state)).i64(p.last_seen_at).i64(expires_at).done());
  return write(b);
}

result<presence> rocksdb_chat_store::get_presence(id_t participant_id) {
  presence out;
  out.participant_id = participant_id;
  auto v = get(table::presence, id_key(participant_id));
  if (!v) return std::move(v).err();
  if (!*v) return out;
  auto row = decode_presence(**v);
  if (!row) return std::move(row).err();
  out.last_seen_at = row->last_seen_at;
  bool expired = row->expires_at != 0 && row->expires_at <= now_ms();
  out.state = expired ? presence_state::offline : row->state;
  return out;
}

}  // namespace chatd::store::rocksdb_backend
