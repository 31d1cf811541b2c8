// The RocksDB store: messages in 10-day buckets, their id index, and the
// client_msg_id deduplication.
#include <utility>
#include <vector>

#include "store/rocksdb_store_internal.h"

namespace chatd::store::rocksdb_backend {

// Both writes of a message take the stripe of its id, so insert_message's
// check and write cannot straddle an edit.
status rocksdb_chat_store::put_message(const message& m) {
  std::string mid = id_key(m.id);
  auto g = locks_.lock({{table::message_by_id, mid}});
  return write_message_locked(m);
}

status rocksdb_chat_store::insert_message(const message& m) {
  std::string mid = id_key(m.id);
  auto g = locks_.lock({{table::message_by_id, mid}});
  // message_by_id is written in the same batch as the message row.
  auto stored = get(table::message_by_id, mid);
  if (!stored) return std::move(stored).err();
  if (*stored) return {};
  return write_message_locked(m);
}

result<message> rocksdb_chat_store::get_message(id_t message_id) {
  auto loc = get(table::message_by_id, id_key(message_id));
  if (!loc) return std::move(loc).err();
  if (!*loc) return make_error(errc::not_found, "no such message");
  auto l = decode_location(**loc);
  if (!l) return std::move(l).err();
  auto v = get(table::messages, message_key(l->conversation_id, l->bucket, message_id));
  if (!v) return std::move(v).err();
  if (!*v) return make_error(errc::not_found, "no such message");
  return decode_message(**v);
}

result<message_page> rocksdb_chat_store::list_messages(id_t conversation_id, id_t before, std::size_t limit) {
  message_page page;
  snapshot snap(db_.get());
  // One more than asked tells whether an older message exists.
  const std::size_t want = limit == SIZE_MAX ? limit : limit + 1;
  std::string conv = id_key(conversation_id);
  range_iter buckets(db_.get(), cf(table::message_buckets), conv, prefix_successor(conv), snap.get());
  std::uint32_t first_bucket = before == 0 ? 0 : message_bucket(before);
  if (before == 0) {
    buckets->SeekToLast();
  } else {
    buckets->SeekForPrev(key().u64(conversation_id).u32(first_bucket).done());
  }
  for (; buckets->Valid() && page.messages.size() < want; buckets->Prev()) {
    std::uint32_t bucket = get_be32(buckets.key().data() + 8);
    std::string part = key().u64(conversation_id).u32(bucket);
    range_iter it(db_.get(), cf(table::messages), part, prefix_successor(part), snap.get());
    if (before != 0 && bucket == first_bucket) {
      it->Seek(message_key(conversation_id, bucket, before - 1));  // ids <= before - 1
    } else {
      it->SeekToFirst();
    }
    for (; it->Valid() && page.messages.size() < want; it->Next()) {
      auto m = decode_message(it.value());
      if (!m) return std::move(m).err();
      page.messages.push_back(std::move(m.value()));
    }
    if (!it->status().ok()) return unavailable(it->status());
  }
  if (!buckets->status().ok()) return unavailable(buckets->status());
  if (page.messages.size() > limit) {
    page.messages.resize(limit);
    page.has_more = true;
  }
  return page;
}

result<std::vector<message>> rocksdb_chat_store::list_messages_after(id_t conversation_id, id_t after,
                                                                     std::size_t limit) {
  std::vector<message> out;
  if (limit == 0) return out;
  auto s = walk_after(conversation_id, after, [&](message&& m) {
    out.push_back(std::move(m));
    return out.size() < limit;
  });
  if (!s) return std::move(s).err();
  return out;
}

result<std::size_t> rocksdb_chat_store::count_messages_after(id_t conversation_id, id_t after, id_t exclude_sender,
                                                             std::size_t cap) {
  std::size_t n = 0;
  if (cap == 0) return n;
  auto s = walk_after(conversation_id, after, [&](message&& m) {
    if (!m.deleted && m.sender_id != exclude_sender) ++n;
    return n < cap;
  });
  if (!s) return std::move(s).err();
  return n;
}

result<id_t> rocksdb_chat_store::claim_client_msg_id(id_t conversation_id, id_t sender_id,
                                                     const std::string& client_msg_id, id_t message_id) {
  std::string k = dedup_key(conversation_id, sender_id, client_msg_id);
  auto g = locks_.lock({{table::client_msg_ids, k}});
  auto v = get(table::client_msg_ids, k);
  if (!v) return std::move(v).err();
  if (*v) return decode_id(**v, table::client_msg_ids);
  rocksdb::WriteBatch b;
  put(b, table::client_msg_ids, k, encode_id(message_id));
  if (auto s = write(b); !s) return std::move(s).err();
  return message_id;
}

// The claim and the message rows in one batch: a claimed key always has
// its message stored.
result<id_t> rocksdb_chat_store::claim_and_insert(const message& m) {
  if (m.client_msg_id.empty()) {
    if (auto s = insert_message(m); !s) return std::move(s).err();
    return m.id;
  }
  std::string k = dedup_key(m.conversation_id, m.sender_id, m.client_msg_id);
  std::string mid = id_key(m.id);
  auto g = locks_.lock({{table::client_msg_ids, k}, {table::message_by_id, mid}});
  auto v = get(table::client_msg_ids, k);
  if (!v) return std::move(v).err();
  if (*v) return decode_id(**v, table::client_msg_ids);
  auto stored = get(table::message_by_id, mid);
  if (!stored) return std::move(stored).err();
  rocksdb::WriteBatch b;
  put(b, table::client_msg_ids, k, encode_id(m.id));
  if (!*stored) add_message(b, m);
  if (auto s = write(b); !s) return std::move(s).err();
  cache_.saw_message(m.conversation_id, m.id);
  return m.id;
}

result<std::optional<id_t>> rocksdb_chat_store::find_client_msg_id(id_t conversation_id, id_t sender_id,
                                                                   const std::string& client_msg_id) {
  auto v = get(table::client_msg_ids, dedup_key(conversation_id, sender_id, client_msg_id));
  if (!v) return std::move(v).err();
  if (!*v) return std::optional<id_t>{};
  auto id = decode_id(**v, table::client_msg_ids);
  if (!id) return std::move(id).err();
  return std::optional<id_t>{*id};
}

// Caller holds the stripe of the message id.
status rocksdb_chat_store::write_message_locked(const message& m) {
  rocksdb::WriteBatch b;
  add_message(b, m);
  auto s = write(b);
  if (s) cache_.saw_message(m.conversation_id, m.id);
  return s;
}

// The rows of a message: itself, its id index and its bucket.
void rocksdb_chat_store::add_message(rocksdb::WriteBatch& b, const message& m) {
  std::uint32_t bucket = message_bucket(m.id);
  put(b, table::messages, message_key(m.conversation_id, bucket, m.id), encode(m));
  put(b, table::message_by_id, id_key(m.id), writer().u64(m.conversation_id).u32(bucket).done());
  put(b, table::message_buckets, key().u64(m.conversation_id).u32(bucket), {});
}

// Calls `f` with each message of the conversation with id > after, oldest
// first, until it returns false. Buckets are walked upward.
template <class F>
status rocksdb_chat_store::walk_after(id_t conversation_id, id_t after, F&& f) {
  snapshot snap(db_.get());
  std::string conv = id_key(conversation_id);
  range_iter buckets(db_.get(), cf(table::message_buckets), conv, prefix_successor(conv), snap.get());
  std::uint32_t first_bucket = message_bucket(after);
  if (after == 0) {
    buckets->SeekToFirst();
  } else {
    buckets->Seek(key().u64(conversation_id).u32(first_bucket).done());
  }
  for (; buckets->Valid(); buckets->Next()) {
    std::uint32_t bucket = get_be32(buckets.key().data() + 8);
    std::string part = key().u64(conversation_id).u32(bucket);
    range_iter it(db_.get(), cf(table::messages), part, prefix_successor(part), snap.get());
    // Ids descend within a partition, so oldest first is backwards.
    if (after != 0 && bucket == first_bucket) {
      std::string from = message_key(conversation_id, bucket, after);
      it->SeekForPrev(from);
      if (it->Valid() && it.key() == from) it->Prev();
    } else {
      it->SeekToLast();
    }
    for (; it->Valid(); it->Prev()) {
      auto m = decode_message(it.value());
      if (!m) return std::move(m).err();
      if (!f(std::move(m.value()))) return {};
    }
    if (!it->status().ok()) return unavailable(it->status());
  }
  if (!buckets->status().ok()) return unavailable(buckets->status());
  return {};
}

}  // namespace chatd::store::rocksdb_backend
