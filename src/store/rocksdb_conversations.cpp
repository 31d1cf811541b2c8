// The RocksDB store: conversations, direct pairs and members, and the
// write-through cache of conversation rows (conversation_cache.h).
#include <set>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "store/rocksdb_store_internal.h"

namespace chatd::store::rocksdb_backend {

status rocksdb_chat_store::create_conversation(const conversation& c, const std::vector<id_t>& members) {
  std::string cid = id_key(c.id);
  auto g = locks_.lock({{table::conversations, cid}});
  rocksdb::WriteBatch b;
  if (auto s = create_conversation_locked(b, c, members); !s) return s;
  auto s = write(b);
  cache_.drop(c.id);
  return s;
}

result<std::pair<conversation, bool>> rocksdb_chat_store::create_direct(const conversation& c, id_t a, id_t b) {
  std::string pair = pair_key(std::min(a, b), std::max(a, b));
  std::string cid = id_key(c.id);
  auto g = locks_.lock({{table::direct_pairs, pair}, {table::conversations, cid}});
  auto existing = get(table::direct_pairs, pair);
  if (!existing) return std::move(existing).err();
  if (*existing) {
    auto id = decode_id(**existing, table::direct_pairs);
    if (!id) return std::move(id).err();
    auto row = load_conversation(*id, nullptr);
    if (!row) return std::move(row).err();
    return std::pair{std::move(row->conv), false};
  }
  rocksdb::WriteBatch batch;
  put(batch, table::direct_pairs, pair, encode_id(c.id));
  if (auto s = create_conversation_locked(batch, c, {a, b}); !s) return std::move(s).err();
  auto s = write(batch);
  cache_.drop(c.id);
  if (!s) return std::move(s).err();
  return std::pair{c, true};
}

result<conversation> rocksdb_chat_store::get_conversation(id_t id) {
  auto e = cached(id);
  if (!e) return std::move(e).err();
  return std::move(e->row.conv);
}

result<std::vector<id_t>> rocksdb_chat_store::list_members(id_t conversation_id) {
  auto e = cached(conversation_id);
  if (!e) {
    // Members of a conversation that does not exist: none, as before.
    if (e.err().code == errc::not_found) return load_members(conversation_id);
    return std::move(e).err();
  }
  return *e->members;
}

result<bool> rocksdb_chat_store::is_member(id_t conversation_id, id_t participant_id) {
  auto e = cached(conversation_id);
  if (!e) {
    if (e.err().code == errc::not_found) return false;
    return std::move(e).err();
  }
  return std::binary_search(e->members->begin(), e->members->end(), participant_id);
}

result<id_t> rocksdb_chat_store::newest_message_id(id_t conversation_id) {
  auto e = cached(conversation_id);
  if (!e) {
    if (e.err().code == errc::not_found) return load_newest(conversation_id);
    return std::move(e).err();
  }
  return e->newest;
}

status rocksdb_chat_store::add_member(id_t conversation_id, id_t participant_id) {
  std::string cid = id_key(conversation_id);
  auto g = locks_.lock({{table::conversations, cid}});
  auto row = load_conversation(conversation_id, nullptr);
  if (!row) return std::move(row).err();
  rocksdb::WriteBatch b;
  if (auto s = add_member_locked(b, *row, participant_id); !s) return s;
  auto s = write(b);
  cache_.drop(conversation_id);
  return s;
}

// The conversation's row, members and newest message id, from the cache or
// loaded into it; not_found for a conversation that does not exist.
result<rocksdb_chat_store::cache_entry> rocksdb_chat_store::cached(id_t conversation_id) {
  if (auto hit = cache_.find(conversation_id)) return std::move(*hit);
  auto gen = cache_.generation(conversation_id);
  auto row = load_conversation(conversation_id, nullptr);
  if (!row) return std::move(row).err();
  auto members = load_members(conversation_id);
  if (!members) return std::move(members).err();
  auto newest = load_newest(conversation_id);
  if (!newest) return std::move(newest).err();
  std::sort(members->begin(), members->end());
  cache_entry e{std::move(row.value()), std::make_shared<const std::vector<id_t>>(std::move(members.value())), *newest};
  cache_.insert(conversation_id, e, gen);
  return e;
}

result<std::vector<id_t>> rocksdb_chat_store::load_members(id_t conversation_id) {
  std::vector<id_t> out;
  std::string lo = id_key(conversation_id);
  range_iter it(db_.get(), cf(table::members), lo, prefix_successor(lo), nullptr);
  for (it->SeekToFirst(); it->Valid(); it->Next()) out.push_back(get_be64(it.key().data() + 8));
  if (!it->status().ok()) return unavailable(it->status());
  return out;
}

result<id_t> rocksdb_chat_store::load_newest(id_t conversation_id) {
  auto page = list_messages(conversation_id, 0, 1);
  if (!page) return std::move(page).err();
  return page->messages.empty() ? id_t{0} : page->messages.front().id;
}

result<conversation_row> rocksdb_chat_store::load_conversation(id_t id, const rocksdb::Snapshot* snap) {
  auto v = get(table::conversations, id_key(id), snap);
  if (!v) return std::move(v).err();
  if (!*v) return make_error(errc::not_found, "no such conversation");
  return decode_conversation(**v);
}

// Caller holds the conversation's lock.
status rocksdb_chat_store::create_conversation_locked(rocksdb::WriteBatch& b, const conversation& c,
                                                      const std::vector<id_t>& members) {
  auto row = load_conversation(c.id, nullptr);
  if (!row) {
    if (row.err().code != errc::not_found) return std::move(row).err();
    // A replayed create keeps the stored row (and its activity).
    conversation_row fresh;
    fresh.conv = c;
    fresh.updated_at = c.created_at;
    row = std::move(fresh);
    put(b, table::conversations, id_key(c.id), encode(*row));
  }
  std::set<id_t> unique(members.begin(), members.end());
  for (id_t pid : unique) {
    if (auto s = add_member_locked(b, *row, pid); !s) return s;
  }
  return {};
}

// Caller holds the conversation's lock. A member who is one already keeps
// their inbox entry as it is.
status rocksdb_chat_store::add_member_locked(rocksdb::WriteBatch& b, const conversation_row& row, id_t pid) {
  std::string mk = pair_key(row.conv.id, pid);
  auto existing = get(table::members, mk);
  if (!existing) return std::move(existing).err();
  if (*existing) return {};
  put(b, table::members, mk, {});
  put(b, table::member_of, pair_key(pid, row.conv.id), {});
  return set_inbox_locked(b, pid, row.conv.id, activity{row.updated_at, row.last_message_id});
}

}  // namespace chatd::store::rocksdb_backend
