// The chat store on ScyllaDB / Cassandra. How each operation keeps the
// port's semantics without a lock manager (docs/storage.md has the long
// form):
// - Plain upserts keyed by ids for everything idempotent.
// - Lightweight transactions only where the port promises a single winner:
//   usernames, direct pairs, client_msg_ids, webhook deliveries and snowflake
//   node-number leases.
// - "Only moves forward" values (read state, a conversation's activity and
//   the inbox rows that mirror it, message edits) are written USING TIMESTAMP
//   derived from the value itself, so the cluster's last-write-wins keeps the
//   newest whatever order writes and replays arrive in. On equal timestamps
//   CQL keeps the larger cell value, which is the port's tie rule.
// - A moved inbox entry is a delete of the old clustering row plus an insert
//   of the new one, in one single-partition batch so that readers never
//   find it missing; concurrent moves can leave an older duplicate, which
//   list_inbox skips (newest first, first occurrence wins) and removes.
//
// This file opens the store and holds the helpers every table uses; the
// schema (scylla_schema.cpp), the statements (scylla_statements.cpp), the
// row mapping (scylla_rows.cpp) and each group of tables
// (scylla_participants.cpp, scylla_conversations.cpp, ...) have files of
// their own.
#include "store/scylla_store.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// Waits for every request; the first error wins, but all are waited for so
// none outlives the call.
status wait_all(std::vector<pending>& ps) {
  status first;
  for (auto& p : ps) {
    auto r = p.wait();
    if (!r && first) first = std::move(r).err();
  }
  ps.clear();
  return first;
}

// The [applied] column of a conditional statement's answer.
bool applied(const rows& r) {
  auto col = r.column("[applied]");
  return !r.empty() && col >= 0 && r.boolean(0, static_cast<std::size_t>(col));
}

// A column of the existing row in a conditional statement's answer.
std::optional<std::int64_t> lwt_i64(const rows& r, const char* name) {
  auto col = r.column(name);
  if (r.empty() || col < 0 || r.is_null(0, static_cast<std::size_t>(col))) return std::nullopt;
  return r.i64(0, static_cast<std::size_t>(col));
}

}  // namespace chatd::store::scylla_backend

namespace chatd::store {

namespace {

bool valid_keyspace(const std::string& k) {
  if (k.empty() || k.size() > 48) return false;
  return std::all_of(k.begin(), k.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

}  // namespace

std::unique_ptr<chat_store> open_scylla_store(const scylla_options& o) {
  if (!valid_keyspace(o.keyspace)) {
    throw std::runtime_error("storage.keyspace '" + o.keyspace + "' is not a CQL name ([A-Za-z0-9_]{1,48})");
  }
  auto level = cql::parse_consistency(o.consistency);
  if (!level) throw std::runtime_error("storage.consistency '" + o.consistency + "' is not a consistency level");
  if (o.replication_factor == 0) throw std::runtime_error("storage.replication_factor must be at least 1");

  cql::session_options so;
  so.contact_points = o.hosts;
  so.local_dc = o.local_dc;
  so.level = *level;
  so.request_timeout_ms = o.request_timeout_ms;
  so.connect_timeout_ms = o.connect_timeout_ms;
  auto session = cql::session::connect(so);
  if (!session) {
    throw std::runtime_error("cannot connect to the CQL cluster at " + o.hosts + ": " + session.err().message);
  }
  auto s = std::move(session).value();

  if (o.create_schema) scylla_backend::apply_schema(*s, o);
  auto store = std::make_unique<scylla_backend::scylla_chat_store>(std::move(s), o);
  store->prepare_all();
  return store;
}

}  // namespace chatd::store
