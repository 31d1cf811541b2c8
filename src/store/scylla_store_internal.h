// What the ScyllaDB store's files share: the store class with its prepared
// statements, and the helpers every table uses. Private to
// chatd_store_scylla.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "store/scylla/cql.h"
#include "store/scylla_store.h"

namespace chatd::store::scylla_backend {

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
inline std::int64_t activity_ts(std::int64_t updated_at_ms) { return updated_at_ms * 1000; }
inline std::int64_t read_ts(id_t message_id) { return id_timestamp_ms(message_id) * 1000; }
inline std::int64_t message_ts(const message& m) {
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
inline std::int32_t lease_ttl_s(std::int64_t ttl_ms) {
  return static_cast<std::int32_t>(std::min<std::int64_t>((ttl_ms + 999) / 1000 + 1, 630720000));
}

inline std::int32_t bucket_of(id_t id) { return static_cast<std::int32_t>(message_bucket(id)); }

std::string replace_all(std::string s, std::string_view from, std::string_view to);

// Waits for every request; the first error wins, but all are waited for so
// none outlives the call.
status wait_all(std::vector<pending>& ps);

// The [applied] column of a conditional statement's answer.
bool applied(const rows& r);

// A column of the existing row in a conditional statement's answer.
std::optional<std::int64_t> lwt_i64(const rows& r, const char* name);

// Applies every statement of schema/*.cql, for the keyspace and replication
// of `o`. Throws std::runtime_error when one is refused (scylla_schema.cpp).
void apply_schema(cql::session& s, const scylla_options& o);

class scylla_chat_store final : public chat_store {
 public:
  scylla_chat_store(std::unique_ptr<cql::session> s, const scylla_options& o)
      : s_(std::move(s)), ks_(o.keyspace), drop_on_close_(o.drop_keyspace_on_close) {}

  ~scylla_chat_store() override {
    if (drop_on_close_) (void)s_->query("DROP KEYSPACE IF EXISTS " + ks_).wait();
  }

  scylla_chat_store(const scylla_chat_store&) = delete;
  scylla_chat_store& operator=(const scylla_chat_store&) = delete;

  void prepare_all();

  // --- participants ---

  status create_participant(const participant& p) override;
  result<participant> get_participant(id_t id) override;
  result<participant> find_participant(participant_kind kind, const std::string& username) override;
  result<std::vector<participant>> search_participants(participant_kind kind, const std::string& prefix,
                                                       std::size_t limit) override;
  status set_banned(id_t id, bool banned) override;
  status set_password_hash(id_t id, const std::string& hash) override;

  // --- conversations and members ---

  status create_conversation(const conversation& c, const std::vector<id_t>& members) override;
  result<std::pair<conversation, bool>> create_direct(const conversation& c, id_t a, id_t b) override;
  result<conversation> get_conversation(id_t id) override;
  result<std::vector<id_t>> list_members(id_t conversation_id) override;
  result<bool> is_member(id_t conversation_id, id_t participant_id) override;
  status add_member(id_t conversation_id, id_t participant_id) override;

  // --- inbox ---

  result<std::vector<inbox_entry>> list_inbox(id_t participant_id, std::size_t limit) override;
  status touch_conversation(id_t conversation_id, std::int64_t updated_at, id_t last_message_id) override;

  // --- messages ---

  // No read and no LWT: every message write is USING TIMESTAMP message_ts,
  // and an original (edited_at 0, not deleted) always has a smaller one than
  // any edit or delete of it, so last-write-wins keeps the edit or delete
  // whichever order the writes arrive in, and a second insert rewrites the
  // same cells at the same timestamp. The plain timestamped put is therefore
  // already "insert unless stored". (An LWT would cost four round trips per
  // message and must not be mixed with the plain writes of edits.)
  status insert_message(const message& m) override { return put_message(m); }

  status put_message(const message& m) override;
  result<message> get_message(id_t message_id) override;
  result<message_page> list_messages(id_t conversation_id, id_t before, std::size_t limit) override;
  result<std::vector<message>> list_messages_after(id_t conversation_id, id_t after, std::size_t limit) override;
  result<std::size_t> count_messages_after(id_t conversation_id, id_t after, id_t exclude_sender,
                                           std::size_t cap) override;

  // --- client_msg_id dedup ---

  result<id_t> claim_client_msg_id(id_t conversation_id, id_t sender_id, const std::string& client_msg_id,
                                   id_t message_id) override;
  result<std::optional<id_t>> find_client_msg_id(id_t conversation_id, id_t sender_id,
                                                 const std::string& client_msg_id) override;

  // --- read state ---

  result<id_t> mark_read(id_t participant_id, id_t conversation_id, id_t message_id) override;
  result<id_t> get_read(id_t participant_id, id_t conversation_id) override;

  // --- presence ---

  status put_presence(const presence& p, std::int64_t ttl_ms) override;
  result<presence> get_presence(id_t participant_id) override;

  // --- notifications ---

  status put_notification(const notification& n) override;
  result<std::vector<notification>> list_notifications(id_t recipient_id, std::size_t limit) override;
  result<bool> mark_delivered(id_t recipient_id, id_t message_id) override;
  result<bool> is_delivered(id_t recipient_id, id_t message_id) override;

  // --- chat-server registry ---

  status put_chat_server(const chat_server_row& row) override;
  result<std::vector<chat_server_row>> list_chat_servers(std::int64_t now) override;
  status remove_chat_server(const std::string& id) override;

  // --- snowflake node-number leases ---
  // Lightweight transactions only (the table never sees a plain write): they
  // run once at start and every few seconds per process, so Paxos is cheap
  // here, and it is what makes two concurrent acquirers pick different numbers.

  result<std::uint32_t> acquire_node_id(const std::string& owner, std::int64_t ttl_ms) override;
  status renew_node_id(std::uint32_t node, const std::string& owner, std::int64_t ttl_ms) override;
  status release_node_id(std::uint32_t node, const std::string& owner) override;

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

  static participant read_participant(const rows& r, std::size_t i);
  static message read_message(const rows& r, std::size_t i);
  result<std::vector<participant>> load_participants(const std::vector<id_t>& ids);
  result<conversation_row> load_conversation(id_t id);
  status join(id_t conversation_id, const std::vector<id_t>& pids, const activity& act);
  void move_inbox(std::vector<pending>& ps, id_t pid, id_t conversation_id, std::int64_t old_updated_at,
                  const activity& next);

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

}  // namespace chatd::store::scylla_backend
