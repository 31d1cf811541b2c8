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
#include "store/scylla_store.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "store/scylla/cql.h"

namespace chatd::store {
namespace {

#include "scylla_schema.inc"  // generated from schema/*.cql: schema_files[]

using cql::pending;
using cql::prepared;
using cql::rows;
using cql::values;

// search_participants reads at most this many display-name index entries,
// like the RocksDB store.
constexpr std::int32_t display_name_scan_cap = 10000;
// The largest code point: `prefix + max_code_point` bounds every string that
// starts with `prefix` in CQL's byte order (text compares as UTF-8 bytes).
constexpr std::string_view max_code_point = "\xF4\x8F\xBF\xBF";

// Cell timestamps (microseconds) derived from a value's own time, so that
// last-write-wins means newest-wins.
std::int64_t activity_ts(std::int64_t updated_at_ms) { return updated_at_ms * 1000; }
std::int64_t read_ts(id_t message_id) { return id_timestamp_ms(message_id) * 1000; }
std::int64_t message_ts(const message& m) {
  // An original (edited_at 0) is written at its creation time. An edit
  // outranks it by at least 1 us even when edited_at is not later than
  // created_at (the editing server's clock may be behind the one that minted
  // the id), and a delete outranks the edit it follows within the same
  // millisecond by one more: a replayed or late original never wins.
  return std::max(m.created_at, m.edited_at) * 1000 + (m.edited_at != 0 ? 1 : 0) + (m.deleted ? 1 : 0);
}

// Cassandra and ScyllaDB expire a cell at floor(write time in s) + ttl, so a
// row written USING TTL n can be gone after n - 1 s: one extra second keeps
// a lease row alive at least until its expires_at.
std::int32_t lease_ttl_s(std::int64_t ttl_ms) {
  return static_cast<std::int32_t>(std::min<std::int64_t>((ttl_ms + 999) / 1000 + 1, 630720000));
}

std::int32_t bucket_of(id_t id) { return static_cast<std::int32_t>(message_bucket(id)); }

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

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

class scylla_chat_store final : public chat_store {
 public:
  scylla_chat_store(std::unique_ptr<cql::session> s, const scylla_options& o)
      : s_(std::move(s)), ks_(o.keyspace), drop_on_close_(o.drop_keyspace_on_close) {}

  ~scylla_chat_store() override {
    if (drop_on_close_) (void)s_->query("DROP KEYSPACE IF EXISTS " + ks_).wait();
  }

  scylla_chat_store(const scylla_chat_store&) = delete;
  scylla_chat_store& operator=(const scylla_chat_store&) = delete;

  void prepare_all() {
    // idempotent = true lets the driver retry after a timeout; conditional
    // statements are never retried blindly (a retry could see its own write
    // and report a conflict).
    auto p = [&](prepared& slot, const std::string& cql, bool idempotent = true) {
      auto r = s_->prepare(replace_all(cql, "${ks}", ks_), idempotent);
      if (!r) throw std::runtime_error("scylla store: " + r.err().message);
      slot = std::move(r).value();
    };
    const std::string participant_cols =
        "id, kind, username, display_name, description, password_hash, banned, created_at";
    p(ins_participant_, "INSERT INTO ${ks}.participants (" + participant_cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    p(sel_participant_, "SELECT " + participant_cols + " FROM ${ks}.participants WHERE id = ?");
    p(claim_username_, "INSERT INTO ${ks}.participant_by_username (kind, username, id) VALUES (?, ?, ?) IF NOT EXISTS",
      false);
    p(sel_username_, "SELECT id FROM ${ks}.participant_by_username WHERE kind = ? AND username = ?");
    p(ins_username_index_, "INSERT INTO ${ks}.participant_usernames (kind, username, id) VALUES (?, ?, ?)");
    p(ins_display_index_, "INSERT INTO ${ks}.participant_by_display_name (kind, folded_name, id) VALUES (?, ?, ?)");
    p(search_usernames_,
      "SELECT username, id FROM ${ks}.participant_usernames WHERE kind = ? AND username >= ? AND username <= ? "
      "LIMIT ?");
    p(search_display_,
      "SELECT folded_name, id FROM ${ks}.participant_by_display_name WHERE kind = ? AND folded_name >= ? AND "
      "folded_name <= ? LIMIT ?");
    p(upd_banned_, "UPDATE ${ks}.participants SET banned = ? WHERE id = ?");
    p(upd_password_, "UPDATE ${ks}.participants SET password_hash = ? WHERE id = ?");

    p(ins_conversation_,
      "INSERT INTO ${ks}.conversations (id, kind, title, created_at, creator_id) VALUES (?, ?, ?, ?, ?)");
    p(upd_activity_,
      "UPDATE ${ks}.conversations USING TIMESTAMP ? SET updated_at = ?, last_message_id = ? WHERE id = ?");
    p(sel_conversation_,
      "SELECT kind, title, created_at, updated_at, last_message_id, creator_id FROM ${ks}.conversations WHERE id = ?");
    p(ins_member_, "INSERT INTO ${ks}.members (conversation_id, participant_id) VALUES (?, ?)");
    p(ins_member_of_, "INSERT INTO ${ks}.member_of (participant_id, conversation_id) VALUES (?, ?)");
    p(sel_members_, "SELECT participant_id FROM ${ks}.members WHERE conversation_id = ?");
    p(sel_member_, "SELECT participant_id FROM ${ks}.members WHERE conversation_id = ? AND participant_id = ?");
    p(claim_pair_, "INSERT INTO ${ks}.direct_pairs (low, high, conversation_id) VALUES (?, ?, ?) IF NOT EXISTS", false);
    p(ins_inbox_,
      "INSERT INTO ${ks}.inbox (participant_id, updated_at, conversation_id, last_message_id) VALUES (?, ?, ?, ?) "
      "USING TIMESTAMP ?");
    p(del_inbox_,
      "DELETE FROM ${ks}.inbox USING TIMESTAMP ? WHERE participant_id = ? AND updated_at = ? AND conversation_id = ?");
    p(sel_inbox_, "SELECT updated_at, conversation_id, last_message_id FROM ${ks}.inbox WHERE participant_id = ?");

    const std::string message_cols =
        "conversation_id, bucket, message_id, sender_id, sender_kind, body, client_msg_id, created_at, edited_at, "
        "deleted";
    p(ins_message_,
      "INSERT INTO ${ks}.messages (" + message_cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?");
    p(ins_message_by_id_, "INSERT INTO ${ks}.message_by_id (message_id, conversation_id, bucket) VALUES (?, ?, ?)");
    p(ins_bucket_, "INSERT INTO ${ks}.message_buckets (conversation_id, bucket) VALUES (?, ?)");
    p(sel_message_by_id_, "SELECT conversation_id, bucket FROM ${ks}.message_by_id WHERE message_id = ?");
    p(sel_message_,
      "SELECT " + message_cols + " FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND message_id = ?");
    p(sel_buckets_down_, "SELECT bucket FROM ${ks}.message_buckets WHERE conversation_id = ? AND bucket <= ?");
    p(sel_buckets_up_,
      "SELECT bucket FROM ${ks}.message_buckets WHERE conversation_id = ? AND bucket >= ? ORDER BY bucket ASC");
    p(sel_before_, "SELECT " + message_cols +
                       " FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND message_id < ? LIMIT ?");
    p(sel_after_, "SELECT " + message_cols +
                      " FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND message_id > ? "
                      "ORDER BY message_id ASC LIMIT ?");
    p(sel_count_after_,
      "SELECT sender_id, deleted FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND message_id > ?");

    p(claim_cmid_,
      "INSERT INTO ${ks}.client_msg_ids (conversation_id, sender_id, client_msg_id, message_id) VALUES (?, ?, ?, ?) "
      "IF NOT EXISTS",
      false);
    p(sel_cmid_,
      "SELECT message_id FROM ${ks}.client_msg_ids WHERE conversation_id = ? AND sender_id = ? AND client_msg_id = ?");

    p(upd_read_,
      "UPDATE ${ks}.read_state USING TIMESTAMP ? SET message_id = ? WHERE participant_id = ? AND conversation_id = ?");
    p(sel_read_, "SELECT message_id FROM ${ks}.read_state WHERE participant_id = ? AND conversation_id = ?");

    p(upd_presence_seen_, "UPDATE ${ks}.presence SET last_seen_at = ? WHERE participant_id = ?");
    p(upd_presence_state_, "UPDATE ${ks}.presence USING TTL ? SET state = ?, expires_at = ? WHERE participant_id = ?");
    p(sel_presence_, "SELECT state, last_seen_at, expires_at FROM ${ks}.presence WHERE participant_id = ?");

    const std::string notification_cols =
        "recipient_id, notification_id, conversation_id, message_id, sender_id, sender_kind, preview, count, "
        "created_at";
    p(ins_notification_,
      "INSERT INTO ${ks}.notifications (" + notification_cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    p(sel_notifications_, "SELECT " + notification_cols + " FROM ${ks}.notifications WHERE recipient_id = ? LIMIT ?");
    p(claim_delivered_,
      "INSERT INTO ${ks}.notification_delivered (recipient_id, message_id, delivered) VALUES (?, ?, true) "
      "IF NOT EXISTS",
      false);
    p(sel_delivered_, "SELECT delivered FROM ${ks}.notification_delivered WHERE recipient_id = ? AND message_id = ?");

    const std::string server_cols = "id, url, region, lat, lon, has_coordinates, load, expires_at";
    p(ins_server_, "INSERT INTO ${ks}.chat_servers (" + server_cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?");
    p(sel_servers_, "SELECT " + server_cols + " FROM ${ks}.chat_servers");
    p(del_server_, "DELETE FROM ${ks}.chat_servers WHERE id = ?");

    p(sel_leases_, "SELECT node, expires_at FROM ${ks}.node_leases");
    p(claim_lease_,
      "INSERT INTO ${ks}.node_leases (node, owner, expires_at) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?", false);
    p(take_over_lease_,
      "UPDATE ${ks}.node_leases USING TTL ? SET owner = ?, expires_at = ? WHERE node = ? IF expires_at = ?", false);
    // owner is rewritten too: TTLs are per cell, and both must outlive the renewal.
    p(renew_lease_,
      "UPDATE ${ks}.node_leases USING TTL ? SET owner = ?, expires_at = ? WHERE node = ? IF owner = ? AND expires_at > "
      "?",
      false);
    p(release_lease_, "DELETE FROM ${ks}.node_leases WHERE node = ? IF owner = ?", false);
  }

  // --- participants ---

  status create_participant(const participant& p) override {
    auto existing = s_->run(sel_participant_, values().id(p.id));
    if (!existing) return std::move(existing).err();
    if (!existing->empty()) return make_error(errc::conflict, "participant " + std::to_string(p.id) + " exists");

    auto claim = s_->run(claim_username_, values().i32(kind_int(p.kind)).text(p.username).id(p.id));
    if (!claim) return std::move(claim).err();
    if (!applied(*claim)) {
      // Our own earlier attempt that died before writing the rows owns the
      // name: finish it. Anyone else's is a conflict.
      auto owner = lwt_i64(*claim, "id");
      if (!owner || static_cast<id_t>(*owner) != p.id) {
        return make_error(errc::conflict, "username '" + p.username + "' is taken");
      }
    }
    std::vector<pending> ps;
    ps.push_back(s_->execute(ins_participant_, values()
                                                   .id(p.id)
                                                   .i32(kind_int(p.kind))
                                                   .text(p.username)
                                                   .text(p.display_name)
                                                   .text(p.description)
                                                   .text(p.password_hash)
                                                   .boolean(p.banned)
                                                   .i64(p.created_at)));
    ps.push_back(s_->execute(ins_username_index_, values().i32(kind_int(p.kind)).text(p.username).id(p.id)));
    ps.push_back(s_->execute(ins_display_index_,
                             values().i32(kind_int(p.kind)).text(fold_display_name(p.display_name)).id(p.id)));
    return wait_all(ps);
  }

  result<participant> get_participant(id_t id) override {
    auto r = s_->run(sel_participant_, values().id(id));
    if (!r) return std::move(r).err();
    if (r->empty() || r->is_null(0, 2)) return make_error(errc::not_found, "no such participant");
    return read_participant(*r, 0);
  }

  result<participant> find_participant(participant_kind kind, const std::string& username) override {
    auto r = s_->run(sel_username_, values().i32(kind_int(kind)).text(username));
    if (!r) return std::move(r).err();
    if (r->empty()) return make_error(errc::not_found, "no such participant");
    return get_participant(r->id(0, 0));
  }

  result<std::vector<participant>> search_participants(participant_kind kind, const std::string& prefix,
                                                       std::size_t limit) override {
    std::vector<participant> out;
    if (limit == 0) return out;
    std::string hi = prefix + std::string(max_code_point);
    std::map<std::string, participant> found;  // by username: the order of the answer
    auto offer = [&](participant p) {
      if (found.size() >= limit && p.username >= found.rbegin()->first) return;
      found.emplace(p.username, std::move(p));
      if (found.size() > limit) found.erase(std::prev(found.end()));
    };

    // Username index, in username order: the first `limit` are candidates.
    auto names =
        s_->run(search_usernames_, values()
                                       .i32(kind_int(kind))
                                       .text(prefix)
                                       .text(hi)
                                       .i32(static_cast<std::int32_t>(std::min<std::size_t>(limit, INT32_MAX))));
    if (!names) return std::move(names).err();
    std::vector<id_t> ids;
    for (std::size_t i = 0; i < names->size(); ++i) {
      if (names->view(i, 0).starts_with(prefix)) ids.push_back(names->id(i, 1));
    }

    // Display-name index on the folded name, paged, at most the scan cap.
    std::string folded = fold_display_name(prefix);
    std::string fhi = folded + std::string(max_code_point);
    std::string page_state;
    std::int32_t scanned = 0;
    std::vector<id_t> by_display;
    for (;;) {
      auto page =
          s_->execute(search_display_, values().i32(kind_int(kind)).text(folded).text(fhi).i32(display_name_scan_cap),
                      1000, page_state)
              .wait();
      if (!page) return std::move(page).err();
      for (std::size_t i = 0; i < page->size(); ++i, ++scanned) by_display.push_back(page->id(i, 1));
      auto next = page->paging_state();
      if (!next || scanned >= display_name_scan_cap) break;
      page_state = std::move(*next);
    }

    auto loaded = load_participants(ids);
    if (!loaded) return std::move(loaded).err();
    for (auto& p : *loaded) offer(std::move(p));
    auto loaded_display = load_participants(by_display);
    if (!loaded_display) return std::move(loaded_display).err();
    for (auto& p : *loaded_display) {
      if (p.kind != kind || !fold_display_name(p.display_name).starts_with(folded)) continue;
      if (found.count(p.username) != 0) continue;
      offer(std::move(p));
    }
    out.reserve(found.size());
    for (auto& [name, p] : found) out.push_back(std::move(p));
    return out;
  }

  status set_banned(id_t id, bool banned) override {
    auto p = get_participant(id);
    if (!p) return std::move(p).err();
    if (p->banned == banned) return {};
    auto r = s_->run(upd_banned_, values().boolean(banned).id(id));
    if (!r) return std::move(r).err();
    return {};
  }

  status set_password_hash(id_t id, const std::string& hash) override {
    // An UPDATE of a missing row would create one: check first.
    auto p = get_participant(id);
    if (!p) return std::move(p).err();
    auto r = s_->run(upd_password_, values().text(hash).id(id));
    if (!r) return std::move(r).err();
    return {};
  }

  // --- conversations and members ---

  status create_conversation(const conversation& c, const std::vector<id_t>& members) override {
    auto stored = load_conversation(c.id);
    activity act{c.created_at, 0};
    if (stored) {
      // A replayed create keeps the stored row and its activity.
      act = stored->act;
    } else if (stored.err().code != errc::not_found) {
      return std::move(stored).err();
    } else {
      std::vector<pending> ps;
      ps.push_back(s_->execute(
          ins_conversation_,
          values().id(c.id).i32(static_cast<std::int32_t>(c.kind)).text(c.title).i64(c.created_at).id(c.creator_id)));
      ps.push_back(
          s_->execute(upd_activity_, values().i64(activity_ts(c.created_at)).i64(c.created_at).id(0).id(c.id)));
      if (auto s = wait_all(ps); !s) return s;
    }
    std::set<id_t> unique(members.begin(), members.end());
    return join(c.id, {unique.begin(), unique.end()}, act);
  }

  result<std::pair<conversation, bool>> create_direct(const conversation& c, id_t a, id_t b) override {
    id_t low = std::min(a, b);
    id_t high = std::max(a, b);
    auto claim = s_->run(claim_pair_, values().id(low).id(high).id(c.id));
    if (!claim) return std::move(claim).err();
    if (applied(*claim)) {
      if (auto s = create_conversation(c, {a, b}); !s) return std::move(s).err();
      return std::pair{c, true};
    }
    auto owner = lwt_i64(*claim, "conversation_id");
    if (!owner) return make_error(errc::internal, "direct pair claim answered without its owner");
    id_t id = static_cast<id_t>(*owner);
    if (id == c.id) {  // our own earlier attempt: finish it
      if (auto s = create_conversation(c, {a, b}); !s) return std::move(s).err();
      return std::pair{c, true};
    }
    // The winner may still be writing its conversation: wait a little.
    for (int attempt = 0;; ++attempt) {
      auto conv = get_conversation(id);
      if (conv) return std::pair{std::move(conv).value(), false};
      if (conv.err().code != errc::not_found || attempt >= 100) return std::move(conv).err();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  result<conversation> get_conversation(id_t id) override {
    auto row = load_conversation(id);
    if (!row) return std::move(row).err();
    return std::move(row->conv);
  }

  result<std::vector<id_t>> list_members(id_t conversation_id) override {
    auto r = s_->run(sel_members_, values().id(conversation_id));
    if (!r) return std::move(r).err();
    std::vector<id_t> out;
    out.reserve(r->size());
    for (std::size_t i = 0; i < r->size(); ++i) out.push_back(r->id(i, 0));
    return out;
  }

  result<bool> is_member(id_t conversation_id, id_t participant_id) override {
    auto r = s_->run(sel_member_, values().id(conversation_id).id(participant_id));
    if (!r) return std::move(r).err();
    return !r->empty();
  }

  status add_member(id_t conversation_id, id_t participant_id) override {
    auto row = load_conversation(conversation_id);
    if (!row) return std::move(row).err();
    if (auto s = join(conversation_id, {participant_id}, row->act); !s) return s;
    // A touch that listed the members before this one joined did not move
    // its entry: catch up with the activity as it is now.
    auto now = load_conversation(conversation_id);
    if (!now) return std::move(now).err();
    if (now->act.updated_at > row->act.updated_at || now->act.last_message_id > row->act.last_message_id) {
      std::vector<pending> ps;
      move_inbox(ps, participant_id, conversation_id, row->act.updated_at, now->act);
      return wait_all(ps);
    }
    return {};
  }

  // --- inbox ---

  result<std::vector<inbox_entry>> list_inbox(id_t participant_id, std::size_t limit) override {
    std::vector<inbox_entry> out;
    if (limit == 0) return out;
    std::map<id_t, std::int64_t> seen;  // conversation -> its newest updated_at
    std::vector<pending> cleanup;
    std::string state;
    const auto page_size = static_cast<std::int32_t>(std::min<std::size_t>(limit + 8, 1000));
    for (;;) {
      auto page = s_->execute(sel_inbox_, values().id(participant_id), page_size, state).wait();
      if (!page) return std::move(page).err();
      for (std::size_t i = 0; i < page->size() && out.size() < limit; ++i) {
        inbox_entry e;
        e.updated_at = page->i64(i, 0);
        e.conversation_id = page->id(i, 1);
        e.last_message_id = page->id(i, 2);
        if (auto it = seen.find(e.conversation_id); it != seen.end()) {
          // An older duplicate left by concurrent moves: remove it, with the
          // newer entry's timestamp so it can only delete older data.
          cleanup.push_back(s_->execute(
              del_inbox_,
              values().i64(activity_ts(it->second)).id(participant_id).i64(e.updated_at).id(e.conversation_id)));
          continue;
        }
        seen.emplace(e.conversation_id, e.updated_at);
        out.push_back(e);
      }
      auto next = page->paging_state();
      if (!next || out.size() >= limit) break;
      state = std::move(*next);
    }
    (void)wait_all(cleanup);  // best effort: a later read removes what is left
    order_inbox(out);
    return out;
  }

  status touch_conversation(id_t conversation_id, std::int64_t updated_at, id_t last_message_id) override {
    auto row = load_conversation(conversation_id);
    if (!row) {
      if (row.err().code == errc::not_found) return {};
      return std::move(row).err();
    }
    activity next{updated_at, last_message_id};
    if (!(row->act < next)) return {};
    auto members = list_members(conversation_id);
    if (!members) return std::move(members).err();
    std::vector<pending> ps;
    for (id_t pid : *members) move_inbox(ps, pid, conversation_id, row->act.updated_at, next);
    if (auto s = wait_all(ps); !s) return s;
    // Last, so that a failure above is retried in full by the caller's replay.
    auto r = s_->run(upd_activity_,
                     values().i64(activity_ts(updated_at)).i64(updated_at).id(last_message_id).id(conversation_id));
    if (!r) return std::move(r).err();
    return {};
  }

  // --- messages ---

  // No read and no LWT: every message write is USING TIMESTAMP message_ts,
  // and an original (edited_at 0, not deleted) always has a smaller one than
  // any edit or delete of it, so last-write-wins keeps the edit or delete
  // whichever order the writes arrive in, and a second insert rewrites the
  // same cells at the same timestamp. The plain timestamped put is therefore
  // already "insert unless stored". (An LWT would cost four round trips per
  // message and must not be mixed with the plain writes of edits.)
  status insert_message(const message& m) override { return put_message(m); }

  status put_message(const message& m) override {
    std::int32_t bucket = bucket_of(m.id);
    std::vector<pending> ps;
    ps.push_back(s_->execute(ins_message_, values(11)
                                               .id(m.conversation_id)
                                               .i32(bucket)
                                               .id(m.id)
                                               .id(m.sender_id)
                                               .i32(kind_int(m.sender_kind))
                                               .text(m.body)
                                               .text(m.client_msg_id)
                                               .i64(m.created_at)
                                               .i64(m.edited_at)
                                               .boolean(m.deleted)
                                               .i64(message_ts(m))));
    ps.push_back(s_->execute(ins_message_by_id_, values().id(m.id).id(m.conversation_id).i32(bucket)));
    ps.push_back(s_->execute(ins_bucket_, values().id(m.conversation_id).i32(bucket)));
    return wait_all(ps);
  }

  result<message> get_message(id_t message_id) override {
    auto where = s_->run(sel_message_by_id_, values().id(message_id));
    if (!where) return std::move(where).err();
    if (where->empty()) return make_error(errc::not_found, "no such message");
    auto r = s_->run(sel_message_,
                     values().id(where->id(0, 0)).i32(static_cast<std::int32_t>(where->i64(0, 1))).id(message_id));
    if (!r) return std::move(r).err();
    if (r->empty()) return make_error(errc::not_found, "no such message");
    return read_message(*r, 0);
  }

  result<message_page> list_messages(id_t conversation_id, id_t before, std::size_t limit) override {
    message_page page;
    const std::size_t want = limit == SIZE_MAX ? limit : limit + 1;
    std::int32_t top = before == 0 ? INT32_MAX : bucket_of(before);
    auto buckets = s_->run(sel_buckets_down_, values().id(conversation_id).i32(top));
    if (!buckets) return std::move(buckets).err();
    const std::int64_t upper = before == 0 ? INT64_MAX : static_cast<std::int64_t>(before);
    for (std::size_t b = 0; b < buckets->size() && page.messages.size() < want; ++b) {
      auto need = static_cast<std::int32_t>(std::min<std::size_t>(want - page.messages.size(), INT32_MAX));
      auto r =
          s_->run(sel_before_,
                  values().id(conversation_id).i32(static_cast<std::int32_t>(buckets->i64(b, 0))).i64(upper).i32(need));
      if (!r) return std::move(r).err();
      for (std::size_t i = 0; i < r->size(); ++i) page.messages.push_back(read_message(*r, i));
    }
    if (page.messages.size() > limit) {
      page.has_more = true;
      page.messages.resize(limit);
    }
    return page;
  }

  result<std::vector<message>> list_messages_after(id_t conversation_id, id_t after, std::size_t limit) override {
    std::vector<message> out;
    if (limit == 0) return out;
    auto buckets = s_->run(sel_buckets_up_, values().id(conversation_id).i32(bucket_of(after)));
    if (!buckets) return std::move(buckets).err();
    for (std::size_t b = 0; b < buckets->size() && out.size() < limit; ++b) {
      auto need = static_cast<std::int32_t>(std::min<std::size_t>(limit - out.size(), INT32_MAX));
      auto r =
          s_->run(sel_after_,
                  values().id(conversation_id).i32(static_cast<std::int32_t>(buckets->i64(b, 0))).id(after).i32(need));
      if (!r) return std::move(r).err();
      for (std::size_t i = 0; i < r->size(); ++i) out.push_back(read_message(*r, i));
    }
    return out;
  }

  result<std::size_t> count_messages_after(id_t conversation_id, id_t after, id_t exclude_sender,
                                           std::size_t cap) override {
    std::size_t n = 0;
    if (cap == 0) return n;
    auto buckets = s_->run(sel_buckets_up_, values().id(conversation_id).i32(bucket_of(after)));
    if (!buckets) return std::move(buckets).err();
    for (std::size_t b = 0; b < buckets->size() && n < cap; ++b) {
      std::string state;
      for (;;) {
        auto page =
            s_->execute(sel_count_after_,
                        values().id(conversation_id).i32(static_cast<std::int32_t>(buckets->i64(b, 0))).id(after), 500,
                        state)
                .wait();
        if (!page) return std::move(page).err();
        for (std::size_t i = 0; i < page->size() && n < cap; ++i) {
          if (page->id(i, 0) != exclude_sender && !page->boolean(i, 1)) ++n;
        }
        auto next = page->paging_state();
        if (!next || n >= cap) break;
        state = std::move(*next);
      }
    }
    return n;
  }

  // --- client_msg_id dedup ---

  result<id_t> claim_client_msg_id(id_t conversation_id, id_t sender_id, const std::string& client_msg_id,
                                   id_t message_id) override {
    // Most claims after the first (the main chat service re-claims what the
    // chat server claimed) find the key: a quorum read answers them without
    // a Paxos round. A value a read sees is committed, so this is safe.
    auto found = find_client_msg_id(conversation_id, sender_id, client_msg_id);
    if (!found) return std::move(found).err();
    if (*found) return **found;
    auto r = s_->run(claim_cmid_, values().id(conversation_id).id(sender_id).text(client_msg_id).id(message_id));
    if (!r) return std::move(r).err();
    if (applied(*r)) return message_id;
    auto owner = lwt_i64(*r, "message_id");
    if (!owner) return make_error(errc::internal, "client_msg_id claim answered without its owner");
    return static_cast<id_t>(*owner);
  }

  result<std::optional<id_t>> find_client_msg_id(id_t conversation_id, id_t sender_id,
                                                 const std::string& client_msg_id) override {
    auto r = s_->run(sel_cmid_, values().id(conversation_id).id(sender_id).text(client_msg_id));
    if (!r) return std::move(r).err();
    if (r->empty() || r->is_null(0, 0)) return std::optional<id_t>{};
    return std::optional<id_t>{r->id(0, 0)};
  }

  // --- read state ---

  result<id_t> mark_read(id_t participant_id, id_t conversation_id, id_t message_id) override {
    auto w =
        s_->run(upd_read_, values().i64(read_ts(message_id)).id(message_id).id(participant_id).id(conversation_id));
    if (!w) return std::move(w).err();
    return get_read(participant_id, conversation_id);
  }

  result<id_t> get_read(id_t participant_id, id_t conversation_id) override {
    auto r = s_->run(sel_read_, values().id(participant_id).id(conversation_id));
    if (!r) return std::move(r).err();
    if (r->empty()) return id_t{0};
    return r->id(0, 0);
  }

  // --- presence ---

  status put_presence(const presence& p, std::int64_t ttl_ms) override {
    std::int64_t expires_at = ttl_ms > 0 ? now_ms() + ttl_ms : 0;
    // Whole seconds, rounded up: the row lives at least as long as asked;
    // expires_at decides to the millisecond.
    auto ttl_s = static_cast<std::int32_t>(ttl_ms > 0 ? std::min<std::int64_t>((ttl_ms + 999) / 1000, 630720000) : 0);
    cql::batch b(false);  // one partition: one mutation
    b.add(upd_presence_seen_, values().i64(p.last_seen_at).id(p.participant_id));
    b.add(upd_presence_state_,
          values().i32(ttl_s).i32(static_cast<std::int32_t>(p.state)).i64(expires_at).id(p.participant_id));
    auto r = s_->execute(std::move(b), true).wait();
    if (!r) return std::move(r).err();
    return {};
  }

  result<presence> get_presence(id_t participant_id) override {
    presence out;
    out.participant_id = participant_id;
    auto r = s_->run(sel_presence_, values().id(participant_id));
    if (!r) return std::move(r).err();
    if (r->empty()) return out;
    out.last_seen_at = r->i64(0, 1);
    std::int64_t expires_at = r->i64(0, 2);
    bool expired = r->is_null(0, 0) || (expires_at != 0 && expires_at <= now_ms());
    if (!expired) {
      auto s = r->i64(0, 0);
      out.state = s >= 0 && s <= 2 ? static_cast<presence_state>(s) : presence_state::offline;
    }
    return out;
  }

  // --- notifications ---

  status put_notification(const notification& n) override {
    auto r = s_->run(ins_notification_, values()
                                            .id(n.recipient_id)
                                            .id(n.id)
                                            .id(n.conversation_id)
                                            .id(n.message_id)
                                            .id(n.sender_id)
                                            .i32(kind_int(n.sender_kind))
                                            .text(n.preview)
                                            .i32(static_cast<std::int32_t>(n.count))
                                            .i64(n.created_at));
    if (!r) return std::move(r).err();
    return {};
  }

  result<std::vector<notification>> list_notifications(id_t recipient_id, std::size_t limit) override {
    std::vector<notification> out;
    if (limit == 0) return out;
    auto r = s_->run(sel_notifications_,
                     values().id(recipient_id).i32(static_cast<std::int32_t>(std::min<std::size_t>(limit, INT32_MAX))));
    if (!r) return std::move(r).err();
    for (std::size_t i = 0; i < r->size(); ++i) {
      notification n;
      n.recipient_id = r->id(i, 0);
      n.id = r->id(i, 1);
      n.conversation_id = r->id(i, 2);
      n.message_id = r->id(i, 3);
      n.sender_id = r->id(i, 4);
      n.sender_kind = kind_of(r->i64(i, 5));
      n.preview = r->text(i, 6);
      n.count = static_cast<std::uint32_t>(r->i64(i, 7));
      n.created_at = r->i64(i, 8);
      out.push_back(std::move(n));
    }
    return out;
  }

  result<bool> mark_delivered(id_t recipient_id, id_t message_id) override {
    auto r = s_->run(claim_delivered_, values().id(recipient_id).id(message_id));
    if (!r) return std::move(r).err();
    return applied(*r);
  }

  result<bool> is_delivered(id_t recipient_id, id_t message_id) override {
    auto r = s_->run(sel_delivered_, values().id(recipient_id).id(message_id));
    if (!r) return std::move(r).err();
    return !r->empty();
  }

  // --- chat-server registry ---

  status put_chat_server(const chat_server_row& row) override {
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

  result<std::vector<chat_server_row>> list_chat_servers(std::int64_t now) override {
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

  status remove_chat_server(const std::string& id) override {
    auto r = s_->run(del_server_, values().text(id));
    if (!r) return std::move(r).err();
    return {};
  }

  // --- snowflake node-number leases ---
  // Lightweight transactions only (the table never sees a plain write): they
  // run once at start and every few seconds per process, so Paxos is cheap
  // here, and it is what makes two concurrent acquirers pick different numbers.

  result<std::uint32_t> acquire_node_id(const std::string& owner, std::int64_t ttl_ms) override {
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
      auto r = row == rows.end() ? s_->run(claim_lease_, values().i32(n).text(owner).i64(now + ttl_ms).i32(ttl_s))
                                 : s_->run(take_over_lease_,
                                           values().i32(ttl_s).text(owner).i64(now + ttl_ms).i32(n).i64(row->second));
      if (!r) return std::move(r).err();
      if (applied(*r)) return node;
      // Someone else was faster (or renewed): try the next number.
    }
    return make_error(errc::unavailable,
                      "node lease: every node number 1.." + std::to_string(id_max_node) + " is held");
  }

  status renew_node_id(std::uint32_t node, const std::string& owner, std::int64_t ttl_ms) override {
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

  status release_node_id(std::uint32_t node, const std::string& owner) override {
    auto r = s_->run(release_lease_, values().i32(static_cast<std::int32_t>(node)).text(owner));
    if (!r) return std::move(r).err();
    return {};
  }

 private:
  struct activity {
    std::int64_t updated_at = 0;
    id_t last_message_id = 0;
    bool operator<(const activity& o) const {
      return updated_at != o.updated_at ? updated_at < o.updated_at : last_message_id < o.last_message_id;
    }
  };
  struct conversation_row {
    conversation conv;
    activity act;
  };

  static std::int32_t kind_int(participant_kind k) { return static_cast<std::int32_t>(k); }
  static participant_kind kind_of(std::int64_t v) {
    return v >= 0 && v <= 2 ? static_cast<participant_kind>(v) : participant_kind::user;
  }

  static participant read_participant(const rows& r, std::size_t i) {
    participant p;
    p.id = r.id(i, 0);
    p.kind = kind_of(r.i64(i, 1));
    p.username = r.text(i, 2);
    p.display_name = r.text(i, 3);
    p.description = r.text(i, 4);
    p.password_hash = r.text(i, 5);
    p.banned = r.boolean(i, 6);
    p.created_at = r.i64(i, 7);
    return p;
  }

  static message read_message(const rows& r, std::size_t i) {
    message m;
    m.conversation_id = r.id(i, 0);
    m.id = r.id(i, 2);
    m.sender_id = r.id(i, 3);
    m.sender_kind = kind_of(r.i64(i, 4));
    m.body = r.text(i, 5);
    m.client_msg_id = r.text(i, 6);
    m.created_at = r.i64(i, 7);
    m.edited_at = r.i64(i, 8);
    m.deleted = r.boolean(i, 9);
    return m;
  }

  // Loads participants by id concurrently, skipping ids without a row.
  result<std::vector<participant>> load_participants(const std::vector<id_t>& ids) {
    std::vector<participant> out;
    std::vector<pending> ps;
    ps.reserve(ids.size());
    for (id_t id : ids) ps.push_back(s_->execute(sel_participant_, values().id(id)));
    std::optional<error> failed;
    for (auto& p : ps) {
      auto r = p.wait();
      if (!r) {
        if (!failed) failed = std::move(r).err();
        continue;
      }
      if (!r->empty() && !r->is_null(0, 2)) out.push_back(read_participant(*r, 0));
    }
    if (failed) return std::move(*failed);
    return out;
  }

  result<conversation_row> load_conversation(id_t id) {
    auto r = s_->run(sel_conversation_, values().id(id));
    if (!r) return std::move(r).err();
    // A row with activity but no kind was never created (only touched).
    if (r->empty() || r->is_null(0, 0)) return make_error(errc::not_found, "no such conversation");
    conversation_row row;
    row.conv.id = id;
    row.conv.kind = r->i64(0, 0) == 0 ? conversation_kind::direct : conversation_kind::group;
    row.conv.title = r->text(0, 1);
    row.conv.created_at = r->i64(0, 2);
    row.act.updated_at = r->is_null(0, 3) ? row.conv.created_at : r->i64(0, 3);
    row.act.last_message_id = r->id(0, 4);
    row.conv.creator_id = r->id(0, 5);  // null in rows written before the column: 0, unknown
    return row;
  }

  // Members rows plus an inbox entry at `act` for each participant. Blind
  // upserts: an entry that has already moved forward is not brought back,
  // because its old row was deleted with a newer timestamp.
  status join(id_t conversation_id, const std::vector<id_t>& pids, const activity& act) {
    std::vector<pending> ps;
    for (id_t pid : pids) {
      ps.push_back(s_->execute(ins_member_, values().id(conversation_id).id(pid)));
      ps.push_back(s_->execute(ins_member_of_, values().id(pid).id(conversation_id)));
      ps.push_back(s_->execute(ins_inbox_, values()
                                               .id(pid)
                                               .i64(act.updated_at)
                                               .id(conversation_id)
                                               .id(act.last_message_id)
                                               .i64(activity_ts(act.updated_at))));
    }
    return wait_all(ps);
  }

  // Moves one inbox entry from `old_updated_at` to `next`.
  void move_inbox(std::vector<pending>& ps, id_t pid, id_t conversation_id, std::int64_t old_updated_at,
                  const activity& next) {
    auto ts = activity_ts(next.updated_at);
    // One batch of one partition (the participant's inbox) is one mutation:
    // a reader sees the entry at its old place or at its new one, never
    // gone in between (two statements in flight could apply the delete
    // first). Both carry their timestamp, so a replay is harmless.
    cql::batch b(false);
    b.add(ins_inbox_, values().id(pid).i64(next.updated_at).id(conversation_id).id(next.last_message_id).i64(ts));
    // Same updated_at: the same row, already overwritten by the insert.
    if (old_updated_at < next.updated_at) {
      b.add(del_inbox_, values().i64(ts).id(pid).i64(old_updated_at).id(conversation_id));
    }
    ps.push_back(s_->execute(std::move(b), true));
  }

  std::unique_ptr<cql::session> s_;
  std::string ks_;
  bool drop_on_close_ = false;

  prepared ins_participant_, sel_participant_, claim_username_, sel_username_, ins_username_index_, ins_display_index_,
      search_usernames_, search_display_, upd_banned_, upd_password_;
  prepared ins_conversation_, upd_activity_, sel_conversation_, ins_member_, ins_member_of_, sel_members_, sel_member_,
      claim_pair_, ins_inbox_, del_inbox_, sel_inbox_;
  prepared ins_message_, ins_message_by_id_, ins_bucket_, sel_message_by_id_, sel_message_, sel_buckets_down_,
      sel_buckets_up_, sel_before_, sel_after_, sel_count_after_;
  prepared claim_cmid_, sel_cmid_, upd_read_, sel_read_;
  prepared upd_presence_seen_, upd_presence_state_, sel_presence_;
  prepared ins_notification_, sel_notifications_, claim_delivered_, sel_delivered_;
  prepared ins_server_, sel_servers_, del_server_;
  prepared sel_leases_, claim_lease_, take_over_lease_, renew_lease_, release_lease_;
};

bool valid_keyspace(const std::string& k) {
  if (k.empty() || k.size() > 48) return false;
  return std::all_of(k.begin(), k.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string replication_of(const scylla_options& o) {
  std::string rf = std::to_string(o.replication_factor);
  if (o.local_dc.empty()) return "{'class': 'SimpleStrategy', 'replication_factor': " + rf + "}";
  std::string dc = replace_all(o.local_dc, "'", "''");
  return "{'class': 'NetworkTopologyStrategy', '" + dc + "': " + rf + "}";
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

  if (o.create_schema) {
    std::string replication = replication_of(o);
    for (const char* file : schema_files) {
      for (auto& stmt : split_statements(file)) {
        std::string cql = replace_all(replace_all(stmt, "${keyspace}", o.keyspace), "${replication}", replication);
        auto r = apply_schema_statement(*s, cql);
        if (!r) throw std::runtime_error("applying the schema failed: " + r.err().message + "\n" + cql);
      }
    }
  }
  auto store = std::make_unique<scylla_chat_store>(std::move(s), o);
  store->prepare_all();
  return store;
}

}  // namespace chatd::store
