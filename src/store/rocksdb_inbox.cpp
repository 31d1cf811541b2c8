// The RocksDB store: each participant's inbox (conversations by latest
// activity) and read state.
#include <utility>
#include <vector>

#include "store/rocksdb_store_internal.h"

namespace chatd::store::rocksdb_backend {

result<std::vector<inbox_entry>> rocksdb_chat_store::list_inbox(id_t participant_id, std::size_t limit) {
  std::vector<inbox_entry> out;
  if (limit == 0) return out;
  std::string lo = id_key(participant_id);
  range_iter it(db_.get(), cf(table::inbox), lo, prefix_successor(lo), nullptr);
  for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
    auto k = it.key();
    inbox_entry e;
    e.updated_at = static_cast<std::int64_t>(~get_be64(k.data() + 8) ^ (1ULL << 63));
    e.conversation_id = ~get_be64(k.data() + 16);
    auto last = decode_id(it.value(), table::inbox);
    if (!last) return std::move(last).err();
    e.last_message_id = *last;
    out.push_back(e);
  }
  if (!it->status().ok()) return unavailable(it->status());
  order_inbox(out);
  return out;
}

status rocksdb_chat_store::touch_conversation(id_t conversation_id, std::int64_t updated_at, id_t last_message_id) {
  std::string cid = id_key(conversation_id);
  auto g = locks_.lock({{table::conversations, cid}});
  // The cache is exact under the conversation's lock (ADR 010).
  auto e = cached(conversation_id);
  if (!e) {
    // Activity for a conversation that does not exist touches no inbox.
    if (e.err().code == errc::not_found) return {};
    return std::move(e).err();
  }
  auto* row = &e->row;
  activity next{updated_at, last_message_id};
  if (next.tie() <= activity{row->updated_at, row->last_message_id}.tie()) return {};
  row->updated_at = updated_at;
  row->last_message_id = last_message_id;
  rocksdb::WriteBatch b;
  put(b, table::conversations, cid, encode(*row));

  for (id_t pid : *e->members) {
    if (auto s = set_inbox_locked(b, pid, conversation_id, next); !s) return s;
  }
  auto s = write(b);
  if (s) {
    cache_.update_row(conversation_id, [&](conversation_row& r) {
      r.updated_at = updated_at;
      r.last_message_id = last_message_id;
    });
  } else {
    cache_.drop(conversation_id);
  }
  return s;
}

// Moves one inbox entry forward; caller holds the conversation's lock,
// which covers every inbox entry of that conversation.
status rocksdb_chat_store::set_inbox_locked(rocksdb::WriteBatch& b, id_t pid, id_t conversation_id,
                                            const activity& next) {
  std::string ik = pair_key(pid, conversation_id);
  auto old = get(table::inbox_index, ik);
  if (!old) return std::move(old).err();
  if (*old) {
    auto a = decode_activity(**old);
    if (!a) return std::move(a).err();
    if (next.tie() <= a->tie()) return {};
    b.Delete(cf(table::inbox), key().u64(pid).desc_i64(a->updated_at).u64(~conversation_id).done());
  }
  put(b, table::inbox, key().u64(pid).desc_i64(next.updated_at).u64(~conversation_id), encode_id(next.last_message_id));
  put(b, table::inbox_index, ik, encode(next));
  return {};
}

result<id_t> rocksdb_chat_store::mark_read(id_t participant_id, id_t conversation_id, id_t message_id) {
  std::string k = pair_key(participant_id, conversation_id);
  auto g = locks_.lock({{table::read_state, k}});
  auto current = read_id_or_zero(table::read_state, k);
  if (!current) return current;
  if (message_id <= *current) return current;
  rocksdb::WriteBatch b;
  put(b, table::read_state, k, encode_id(message_id));
  if (auto s = write(b); !s) return std::move(s).err();
  return message_id;
}

result<id_t> rocksdb_chat_store::get_read(id_t participant_id, id_t conversation_id) {
  return read_id_or_zero(table::read_state, pair_key(participant_id, conversation_id));
}

}  // namespace chatd::store::rocksdb_backend
