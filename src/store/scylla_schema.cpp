// The ScyllaDB store's schema: the statements of schema/*.cql (compiled in),
// applied at open when scylla_options::create_schema is set.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

namespace {

#include "scylla_schema.inc"  // generated from schema/*.cql: schema_files[]

// Splits a schema file into statements: `--` comment lines dropped, a
// statement ends with a `;` at the end of a line.
std::vector<std::string> split_statements(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    pos = end + 1;
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line.compare(first, 2, "--") == 0) continue;
    auto last = line.find_last_not_of(" \t\r");
    bool ends = line[last] == ';';
    if (ends) line.erase(last);
    cur += line;
    cur += '\n';
    if (ends) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (cur.find_first_not_of(" \t\r\n") != std::string::npos) out.push_back(std::move(cur));
  return out;
}

// Whether `column` of `keyspace.table` exists. Unquoted CQL names are stored
// lower-cased in system_schema, so the lookup lower-cases them too.
result<bool> column_exists(cql::session& s, std::string keyspace, std::string table, std::string column) {
  for (auto* name : {&keyspace, &table, &column}) {
    std::transform(name->begin(), name->end(), name->begin(), [](unsigned char ch) { return std::tolower(ch); });
  }
  auto r = s.query("SELECT column_name FROM system_schema.columns WHERE keyspace_name = '" + keyspace +
                   "' AND table_name = '" + table + "' AND column_name = '" + column + "'")
               .wait();
  if (!r) return std::move(r).err();
  return !r->empty();
}

// Runs one schema statement. `ALTER TABLE ks.t ADD c type` runs only when
// the column is missing: that is how a keyspace created by an older chatd
// gets a new column, and ScyllaDB has no ADD IF NOT EXISTS (Cassandra has it
// only since 4.1). Two processes starting together may both try to add it;
// the loser's error is fine once the column is there.
status apply_schema_statement(cql::session& s, const std::string& cql) {
  std::istringstream words(cql);
  std::string alter, table_kw, qualified, add, column;
  words >> alter >> table_kw >> qualified >> add >> column;
  auto upper = [](std::string w) {
    std::transform(w.begin(), w.end(), w.begin(), [](unsigned char ch) { return std::toupper(ch); });
    return w;
  };
  auto dot = qualified.find('.');
  bool add_column = upper(alter) == "ALTER" && upper(table_kw) == "TABLE" && upper(add) == "ADD" &&
                    dot != std::string::npos && !column.empty();
  if (!add_column) {
    auto r = s.query(cql).wait();
    if (!r) return std::move(r).err();
    return {};
  }
  std::string keyspace = qualified.substr(0, dot);
  std::string table = qualified.substr(dot + 1);
  auto exists = column_exists(s, keyspace, table, column);
  if (!exists) return std::move(exists).err();
  if (*exists) return {};
  auto r = s.query(cql).wait();
  if (r) return {};
  auto now = column_exists(s, keyspace, table, column);
  if (now && *now) return {};
  return std::move(r).err();
}

// apply_schema_statement, tried again after a timeout or an unreachable
// cluster (errc::unavailable): a schema change that timed out may still be
// applied, and every statement is safe to repeat (CREATE ... IF NOT EXISTS;
// ADD only for a missing column).
status apply_schema_statement_retrying(cql::session& s, const std::string& cql) {
  constexpr int attempts = 4;
  auto backoff = std::chrono::seconds(1);
  for (int attempt = 1;; ++attempt) {
    auto r = apply_schema_statement(s, cql);
    if (r || r.err().code != errc::unavailable || attempt == attempts) return r;
    spdlog::warn("scylla store: schema statement failed ({}), retrying in {} s", r.err().message, backoff.count());
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

std::string replication_of(const scylla_options& o) {
  std::string rf = std::to_string(o.replication_factor);
  if (o.local_dc.empty()) return "{'class': 'SimpleStrategy', 'replication_factor': " + rf + "}";
  std::string dc = replace_all(o.local_dc, "'", "''");
  return "{'class': 'NetworkTopologyStrategy', '" + dc + "': " + rf + "}";
}

}  // namespace

// Applies every statement of schema/*.cql, for the keyspace and replication
// of `o`. Throws std::runtime_error when one is refused.
void apply_schema(cql::session& s, const scylla_options& o) {
  std::string replication = replication_of(o);
  for (const char* file : schema_files) {
    for (auto& stmt : split_statements(file)) {
      std::string cql = replace_all(replace_all(stmt, "${keyspace}", o.keyspace), "${replication}", replication);
      auto r = apply_schema_statement_retrying(s, cql);
      if (!r) throw std::runtime_error("applying the schema failed: " + r.err().message + "\n" + cql);
    }
  }
}

}  // namespace chatd::store::scylla_backend
