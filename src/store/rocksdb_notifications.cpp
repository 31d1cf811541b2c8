// The RocksDB store: notifications and their delivery markers.
#include <utility>
#include <vector>

#include "store/rocksdb_store_internal.h"

namespace chatd::store::rocksdb_backend {

status rocksdb_chat_store::put_notification(const notification& n) {
  rocksdb::WriteBatch b;
  put(b, table::notifications, key().u64(n.recipient_id).desc(n.id), encode(n));
  return write(b);
}

result<std::vector<notification>> rocksdb_chat_store::list_notifications(id_t recipient_id, std::size_t limit) {
  std::vector<notification> out;
  if (limit == 0) return out;
  std::string lo = id_key(recipient_id);
  range_iter it(db_.get(), cf(table::notifications), lo, prefix_successor(lo), nullptr);
  for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
    auto n = decode_notification(it.value());
    if (!n) return std::move(n).err();
    out.push_back(std::move(n.value()));
  }
  if (!it->status().ok()) return unavailable(it->status());
  return out;
}

result<bool> rocksdb_chat_store::mark_delivered(id_t recipient_id, id_t message_id) {
  std::string k = pair_key(recipient_id, message_id);
  auto g = locks_.lock({{table::notification_delivered, k}});
  auto v = get(table::notification_delivered, k);
  if (!v) return std::move(v).err();
  if (*v) return false;
  rocksdb::WriteBatch b;
  put(b, table::notification_delivered, k, {});
  if (auto s = write(b); !s) return std::move(s).err();
  return true;
}

result<bool> rocksdb_chat_store::is_delivered(id_t recipient_id, id_t message_id) {
  auto v = get(table::notification_delivered, pair_key(recipient_id, message_id));
  if (!v) return std::move(v).err();
  return v->has_value();
}

}  // namespace chatd::store::rocksdb_backend
