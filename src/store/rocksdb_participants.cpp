// The RocksDB store: participants, their username and display-name indexes.
#include <string>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "store/rocksdb_store_internal.h"

namespace chatd::store::rocksdb_backend {

status rocksdb_chat_store::create_participant(const participant& p) {
  std::string uname = key().u8(static_cast<std::uint8_t>(p.kind)).str(p.username);
  std::string pid = id_key(p.id);
  auto g = locks_.lock({{table::participants, pid}, {table::participant_by_username, uname}});
  auto taken = get(table::participant_by_username, uname);
  if (!taken) return std::move(taken).err();
  if (*taken) return make_error(errc::conflict, "username '" + p.username + "' is taken");
  auto same_id = get(table::participants, pid);
  if (!same_id) return std::move(same_id).err();
  if (*same_id) return make_error(errc::conflict, "participant " + format_id(p.id) + " exists");

  rocksdb::WriteBatch b;
  put(b, table::participants, pid, encode(p));
  put(b, table::participant_by_username, uname, encode_id(p.id));
  put(b, table::participant_by_display_name, display_key(p), {});
  return write(b);
}

result<participant> rocksdb_chat_store::find_participant(participant_kind kind, const std::string& username) {
  auto v = get(table::participant_by_username, key().u8(static_cast<std::uint8_t>(kind)).str(username));
  if (!v) return std::move(v).err();
  if (!*v) return make_error(errc::not_found, "no such participant");
  auto id = decode_id(**v, table::participant_by_username);
  if (!id) return std::move(id).err();
  return load_participant(*id, nullptr);
}

result<std::vector<participant>> rocksdb_chat_store::search_participants(participant_kind kind,
                                                                         const std::string& prefix, std::size_t limit) {
  std::vector<participant> out;
  if (limit == 0) return out;
  snapshot snap(db_.get());
  std::map<std::string, participant> found;  // by username: the order of the answer
  // Keeps `found` at the `limit` smallest usernames.
  auto offer = [&](participant p) {
    if (found.size() >= limit && p.username >= found.rbegin()->first) return;
    found.emplace(p.username, std::move(p));
    if (found.size() > limit) found.erase(std::prev(found.end()));
  };

  std::string kind_byte(1, static_cast<char>(kind));
  {
    // The username index is in username order: the first `limit` are the answer's candidates.
    std::string lo = kind_byte + prefix;
    range_iter it(db_.get(), cf(table::participant_by_username), lo, prefix_successor(lo), snap.get());
    std::size_t n = 0;
    for (it->SeekToFirst(); it->Valid() && n < limit; it->Next(), ++n) {
      auto id = decode_id(it.value(), table::participant_by_username);
      if (!id) return std::move(id).err();
      auto p = load_participant(*id, snap.get());
      if (!p) {
        if (p.err().code == errc::not_found) continue;
        return std::move(p).err();
      }
      offer(std::move(p.value()));
    }
    if (!it->status().ok()) return unavailable(it->status());
  }
  {
    std::string folded = fold_display_name(prefix);
    std::string lo = kind_byte + folded;
    range_iter it(db_.get(), cf(table::participant_by_display_name), lo, prefix_successor(lo), snap.get());
    std::size_t n = 0;
    for (it->SeekToFirst(); it->Valid() && n < display_name_scan_cap; it->Next(), ++n) {
      auto k = it.key();
      if (k.size() < 1 + 8) continue;
      id_t id = get_be64(k.data() + k.size() - 8);
      auto p = load_participant(id, snap.get());
      if (!p) {
        if (p.err().code == errc::not_found) continue;
        return std::move(p).err();
      }
      // The id's bytes follow the name in the key, so a shorter name can
      // match the prefix by accident: check the name itself.
      if (p->kind != kind || !fold_display_name(p->display_name).starts_with(folded)) continue;
      if (auto existing = found.find(p->username); existing != found.end()) continue;
      offer(std::move(p.value()));
    }
    if (!it->status().ok()) return unavailable(it->status());
  }
  out.reserve(found.size());
  for (auto& [name, p] : found) out.push_back(std::move(p));
  return out;
}

status rocksdb_chat_store::set_banned(id_t id, bool banned) {
  std::string pid = id_key(id);
  auto g = locks_.lock({{table::participants, pid}});
  auto p = load_participant(id, nullptr);
  if (!p) return std::move(p).err();
  if (p->banned == banned) return {};
  p->banned = banned;
  rocksdb::WriteBatch b;
  put(b, table::participants, pid, encode(*p));
  return write(b);
}

status rocksdb_chat_store::set_password_hash(id_t id, const std::string& hash) {
  std::string pid = id_key(id);
  auto g = locks_.lock({{table::participants, pid}});
  auto p = load_participant(id, nullptr);
  if (!p) return std::move(p).err();
  p->password_hash = hash;
  rocksdb::WriteBatch b;
  put(b, table::participants, pid, encode(*p));
  return write(b);
}

result<participant> rocksdb_chat_store::load_participant(id_t id, const rocksdb::Snapshot* snap) {
  auto v = get(table::participants, id_key(id), snap);
  if (!v) return std::move(v).err();
  if (!*v) return make_error(errc::not_found, "no such participant");
  return decode_participant(**v);
}

}  // namespace chatd::store::rocksdb_backend
