// The RocksDB store: the chat-server registry and snowflake node-number
// leases.
#include <string>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "store/rocksdb_store_internal.h"

namespace chatd::store::rocksdb_backend {

status rocksdb_chat_store::put_chat_server(const chat_server_row& row) {
  rocksdb::WriteBatch b;
  put(b, table::chat_servers, row.id, encode(row));
  return write(b);
}

result<std::vector<chat_server_row>> rocksdb_chat_store::list_chat_servers(std::int64_t now) {
  std::vector<chat_server_row> out;
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(table::chat_servers)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto row = decode_chat_server(std::string_view(it->value().data(), it->value().size()));
    if (!row) return std::move(row).err();
    // Expired rows stay until the server is removed or heartbeats again;
    // deleting them here would race with that heartbeat.
    if (row->expires_at > now) out.push_back(std::move(row.value()));
  }
  if (!it->status().ok()) return unavailable(it->status());
  return out;
}

status rocksdb_chat_store::remove_chat_server(const std::string& id) {
  rocksdb::WriteBatch b;
  b.Delete(cf(table::chat_servers), id);
  return write(b);
}

result<std::uint32_t> rocksdb_chat_store::acquire_node_id(const std::string& owner, std::int64_t ttl_ms) {
  if (owner.empty() || ttl_ms < 1) return make_error(errc::bad_request, "node lease: empty owner or ttl below 1 ms");
  std::lock_guard lock(leases_mu_);
  std::int64_t now = now_ms();
  std::vector<bool> held(id_max_node + 1, false);
  range_iter it(db_.get(), cf(table::node_leases), {}, {}, nullptr);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it.key().size() != 4) continue;
    auto row = decode_lease(it.value());
    if (!row) return std::move(row).err();
    std::uint32_t node = get_be32(it.key().data());
    if (node <= id_max_node && row->expires_at > now) held[node] = true;
  }
  if (!it->status().ok()) return unavailable(it->status());
  for (std::uint32_t node = 1; node <= id_max_node; ++node) {
    if (held[node]) continue;
    rocksdb::WriteBatch b;
    put(b, table::node_leases, lease_key(node), encode_lease(owner, now + ttl_ms));
    if (auto s = write(b); !s) return std::move(s).err();
    return node;
  }
  return make_error(errc::unavailable, "node lease: every node number 1.." + std::to_string(id_max_node) + " is held");
}

status rocksdb_chat_store::renew_node_id(std::uint32_t node, const std::string& owner, std::int64_t ttl_ms) {
  if (owner.empty() || ttl_ms < 1) return make_error(errc::bad_request, "node lease: empty owner or ttl below 1 ms");
  std::lock_guard lock(leases_mu_);
  std::int64_t now = now_ms();
  auto v = get(table::node_leases, lease_key(node));
  if (!v) return std::move(v).err();
  if (!*v) return make_error(errc::conflict, "node " + std::to_string(node) + " is not leased");
  auto row = decode_lease(**v);
  if (!row) return std::move(row).err();
  if (row->owner != owner)
    return make_error(errc::conflict, "node " + std::to_string(node) + " is held by another owner");
  if (row->expires_at <= now)
    return make_error(errc::conflict, "the lease of node " + std::to_string(node) + " expired");
  rocksdb::WriteBatch b;
  put(b, table::node_leases, lease_key(node), encode_lease(owner, now + ttl_ms));
  return write(b);
}

status rocksdb_chat_store::release_node_id(std::uint32_t node, const std::string& owner) {
  std::lock_guard lock(leases_mu_);
  auto v = get(table::node_leases, lease_key(node));
  if (!v) return std::move(v).err();
  if (!*v) return {};
  auto row = decode_lease(**v);
  if (!row) return std::move(row).err();
  if (row->owner != owner) return {};
  rocksdb::WriteBatch b;
  b.Delete(cf(table::node_leases), lease_key(node));
  return write(b);
}

result<rocksdb_chat_store::lease_row> rocksdb_chat_store::decode_lease(std::string_view v) {
  reader r(v);
  lease_row row;
  row.owner = r.str();
  row.expires_at = r.i64();
  if (!r.good()) return corrupt(table::node_leases);
  return row;
}

}  // namespace chatd::store::rocksdb_backend
