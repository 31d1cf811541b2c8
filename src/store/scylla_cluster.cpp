// The ScyllaDB store: the chat-server registry and snowflake node-number
// leases (LWTs, rows with a TTL).
#include <algorithm>
#include <climits>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

status scylla_chat_store::put_chat_server(const chat_server_row& row) {
  // The row outlives expires_at by up to a second (TTLs are whole seconds);
  // list_chat_servers filters on expires_at.
  std::int64_t left_ms = row.expires_at - now_ms();
  auto ttl_s = static_cast<std::int32_t>(std::clamp<std::int64_t>((left_ms + 999) / 1000, 1, 630720000));
  auto r = s_->run(ins_server_, values()
                                    .text(row.id)
                                    .text(row.url)
                                    .text(row.region)
                                    .dbl(row.lat)
                                    .dbl(row.lon)
                                    .boolean(row.has_coordinates)
                                    .dbl(row.load)
                                    .i64(row.expires_at)
                                    .i32(ttl_s));
  if (!r) return std::move(r).err();
  return {};
}

result<std::vector<chat_server_row>> scylla_chat_store::list_chat_servers(std::int64_t now) {
  std::vector<chat_server_row> out;
  std::string state;
  for (;;) {
    auto page = s_->execute(sel_servers_, values(0), 1000, state).wait();
    if (!page) return std::move(page).err();
    for (std::size_t i = 0; i < page->size(); ++i) {
      chat_server_row s;
      s.id = page->text(i, 0);
      s.url = page->text(i, 1);
      s.region = page->text(i, 2);
      s.lat = page->dbl(i, 3);
      s.lon = page->dbl(i, 4);
      s.has_coordinates = page->boolean(i, 5);
      s.load = page->dbl(i, 6);
      s.expires_at = page->i64(i, 7);
      if (s.expires_at > now) out.push_back(std::move(s));
    }
    auto next = page->paging_state();
    if (!next) break;
    state = std::move(*next);
  }
  return out;
}

status scylla_chat_store::remove_chat_server(const std::string& id) {
  auto r = s_->run(del_server_, values().text(id));
  if (!r) return std::move(r).err();
  return {};
}

result<std::uint32_t> scylla_chat_store::acquire_node_id(const std::string& owner, std::int64_t ttl_ms) {
  if (owner.empty() || ttl_ms < 1) return make_error(errc::bad_request, "node lease: empty owner or ttl below 1 ms");
  // Every row, held or expired-but-not-yet-removed (the table is tiny).
  std::map<std::uint32_t, std::int64_t> rows;  // node -> expires_at
  std::string state;
  for (;;) {
    auto page = s_->execute(sel_leases_, values(0), 1000, state).wait();
    if (!page) return std::move(page).err();
    for (std::size_t i = 0; i < page->size(); ++i) {
      rows[static_cast<std::uint32_t>(page->i64(i, 0))] = page->is_null(i, 1) ? 0 : page->i64(i, 1);
    }
    auto next = page->paging_state();
    if (!next) break;
    state = std::move(*next);
  }
  const auto ttl_s = lease_ttl_s(ttl_ms);
  for (std::uint32_t node = 1; node <= id_max_node; ++node) {
    std::int64_t now = now_ms();
    auto row = rows.find(node);
    if (row != rows.end() && row->second > now) continue;  // held
    auto n = static_cast<std::int32_t>(node);
    auto r = row == rows.end()
                 ? s_->run(claim_lease_, values().i32(n).text(owner).i64(now + ttl_ms).i32(ttl_s))
                 : s_->run(take_over_lease_, values().i32(ttl_s).text(owner).i64(now + ttl_ms).i32(n).i64(row->second));
    if (!r) return std::move(r).err();
    if (applied(*r)) return node;
    // Someone else was faster (or renewed): try the next number.
  }
  return make_error(errc::unavailable, "node lease: every node number 1.." + std::to_string(id_max_node) + " is held");
}

status scylla_chat_store::renew_node_id(std::uint32_t node, const std::string& owner, std::int64_t ttl_ms) {
  if (owner.empty() || ttl_ms < 1) return make_error(errc::bad_request, "node lease: empty owner or ttl below 1 ms");
  std::int64_t now = now_ms();
  auto r = s_->run(renew_lease_, values()
                                     .i32(lease_ttl_s(ttl_ms))
                                     .text(owner)
                                     .i64(now + ttl_ms)
                                     .i32(static_cast<std::int32_t>(node))
                                     .text(owner)
                                     .i64(now));
  if (!r) return std::move(r).err();
  if (!applied(*r)) {
    return make_error(errc::conflict, "node " + std::to_string(node) + " is no longer leased to " + owner);
  }
  return {};
}

status scylla_chat_store::release_node_id(std::uint32_t node, const std::string& owner) {
  auto r = s_->run(release_lease_, values().i32(static_cast<std::int32_t>(node)).text(owner));
  if (!r) return std::move(r).err();
  return {};
}

}  // namespace chatd::store::scylla_backend
