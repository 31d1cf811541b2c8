#include "discovery/store_registry.h"

#include <algorithm>

#include "common/ids.h"
#include "store/store.h"

namespace chatd::discovery {

store_registry::store_registry(store::chat_store& db, clock_fn now) : db_(db), clock_(std::move(now)) {}

std::int64_t store_registry::now() const { return clock_ ? clock_() : now_ms(); }

status store_registry::heartbeat(const server_info& s, std::chrono::milliseconds ttl) {
  if (auto v = validate_heartbeat(s, ttl); !v) return v;
  store::chat_server_row row;
  row.id = s.id;
  row.url = s.url;
  row.region = s.region;
  row.has_coordinates = s.lat.has_value() && s.lon.has_value();
  if (row.has_coordinates) {
    row.lat = *s.lat;
    row.lon = *s.lon;
  }
  row.load = s.load;
  row.expires_at = now() + ttl.count();
  return db_.put_chat_server(row);
}

status store_registry::remove(const std::string& id) {
  auto s = db_.remove_chat_server(id);
  // The port makes removal idempotent; a backend that reports the missing
  // row is not wrong, just more talkative.
  if (!s && s.err().code == errc::not_found) return {};
  return s;
}

result<std::vector<server_info>> store_registry::healthy() {
  std::int64_t t = now();
  auto rows = db_.list_chat_servers(t);
  if (!rows) return std::move(rows).err();
  std::vector<server_info> out;
  out.reserve(rows->size());
  for (auto& r : *rows) {
    // The store promises unexpired rows only; checking again costs nothing and
    // keeps the port's promise even if a backend's TTL is coarser than ours.
    if (r.expires_at <= t) continue;
    server_info s;
    s.id = std::move(r.id);
    s.url = std::move(r.url);
    s.region = std::move(r.region);
    if (r.has_coordinates) {
      s.lat = r.lat;
      s.lon = r.lon;
    }
    s.load = r.load;
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const server_info& a, const server_info& b) { return a.id < b.id; });
  return out;
}

}  // namespace chatd::discovery
