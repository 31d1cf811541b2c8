// The chat store port: every table of the chat database (docs/storage.md).
// Implementations: RocksDB (embedded, src/store/rocksdb_store.*) and ScyllaDB.
// All calls are blocking and thread-safe; call them from worker threads.
// Writes are idempotent upserts keyed by ids, so a replayed queue record
// never duplicates or resurrects data.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace chatd::store {

using id_t = std::uint64_t;

enum class participant_kind : std::uint8_t { user = 0, shop = 1, admin = 2 };

struct participant {
  id_t id = 0;
  participant_kind kind = participant_kind::user;
  std::string username;
  std::string display_name;
  std::string description;
  std::string password_hash;  // encoded Argon2id hash
  bool banned = false;
  std::int64_t created_at = 0;
};

enum class conversation_kind : std::uint8_t { direct = 0, group = 1 };

struct conversation {
  id_t id = 0;
  conversation_kind kind = conversation_kind::group;
  std::string title;
  std::int64_t created_at = 0;
  // Who created it; 0 for conversations stored before chatd kept the creator.
  id_t creator_id = 0;
};

struct inbox_entry {
  id_t conversation_id = 0;
  std::int64_t updated_at = 0;  // last activity, ms
  id_t last_message_id = 0;     // 0: none yet
};

struct message {
  id_t id = 0;
  id_t conversation_id = 0;
  id_t sender_id = 0;
  participant_kind sender_kind = participant_kind::user;
  std::string body;
  std::string client_msg_id;
  std::int64_t created_at = 0;
  std::int64_t edited_at = 0;  // 0: never
  bool deleted = false;
};

struct message_page {
  std::vector<message> messages;
  bool has_more = false;
};

enum class presence_state : std::uint8_t { offline = 0, inactive = 1, active = 2 };

struct presence {
  id_t participant_id = 0;
  presence_state state = presence_state::offline;
  std::int64_t last_seen_at = 0;
};

struct notification {
  id_t id = 0;
  id_t recipient_id = 0;
  id_t conversation_id = 0;
  id_t message_id = 0;  // the newest message it names
  id_t sender_id = 0;
  participant_kind sender_kind = participant_kind::user;
  std::string preview;
  std::uint32_t count = 1;
  std::int64_t created_at = 0;
};

struct chat_server_row {
  std::string id;
  std::string url;
  std::string region;
  double lat = 0;
  double lon = 0;
  bool has_coordinates = false;
  double load = 0;
  std::int64_t expires_at = 0;  // ms; the row is gone after this
};

class chat_store {
 public:
  virtual ~chat_store() = default;

  // --- participants and credentials (usernames unique per kind) ---
  // errc::conflict when (kind, username) is taken; nothing is written then.
  virtual status create_participant(const participant& p) = 0;
  virtual result<participant> get_participant(id_t id) = 0;  // not_found
  virtual result<participant> find_participant(participant_kind kind, const std::string& username) = 0;
  // Username or display name starting with `prefix` (display names compared
  // case-insensitively), ordered by username, at most `limit`.
  virtual result<std::vector<participant>> search_participants(participant_kind kind, const std::string& prefix,
                                                               std::size_t limit) = 0;
  virtual status set_banned(id_t id, bool banned) = 0;  // not_found
  // Replaces the stored password hash (a rehash with stronger parameters).
  virtual status set_password_hash(id_t id, const std::string& hash) = 0;  // not_found

  // --- conversations and members ---
  // Creates the conversation with its members (the inbox gets an entry per
  // member, updated_at = created_at). Idempotent for the same id.
  virtual status create_conversation(const conversation& c, const std::vector<id_t>& members) = 0;
  // Direct conversations are unique per unordered pair: returns the existing
  // one if there is one, else creates `c` with the two members. The bool tells
  // whether it was created.
  virtual result<std::pair<conversation, bool>> create_direct(const conversation& c, id_t a, id_t b) = 0;
  virtual result<conversation> get_conversation(id_t id) = 0;  // not_found
  virtual result<std::vector<id_t>> list_members(id_t conversation_id) = 0;
  virtual result<bool> is_member(id_t conversation_id, id_t participant_id) = 0;
  // Adds a member (and its inbox entry at the conversation's last activity).
  virtual status add_member(id_t conversation_id, id_t participant_id) = 0;

  // --- inbox: a participant's conversations by last activity, newest first ---
  virtual result<std::vector<inbox_entry>> list_inbox(id_t participant_id, std::size_t limit) = 0;
  // Moves the conversation's activity forward for every member; older
  // timestamps than the stored one are ignored (replays do not go back).
  virtual status touch_conversation(id_t conversation_id, std::int64_t updated_at, id_t last_message_id) = 0;

  // --- messages: partition (conversation_id, bucket), newest first ---
  // Upsert by id (also used for edits and deletes).
  virtual status put_message(const message& m) = 0;
  // Stores `m` unless a message with its id is already stored, in which case
  // it changes nothing: an edit or delete stored meanwhile is never
  // overwritten by the original. For the first write of a new message by
  // whoever gets there first (the chat server that accepted it, or the main
  // chat service consuming it), racing with put_message of edits.
  virtual status insert_message(const message& m) = 0;
  virtual result<message> get_message(id_t message_id) = 0;  // not_found
  // Newest first, ids < before (before = 0: from the newest), at most limit.
  virtual result<message_page> list_messages(id_t conversation_id, id_t before, std::size_t limit) = 0;
  // The id of the newest stored message, 0 when there is none. Asked on every
  // send; a store that can answer it cheaper than a page read overrides it.
  virtual result<id_t> newest_message_id(id_t conversation_id) {
    auto page = list_messages(conversation_id, 0, 1);
    if (!page) return std::move(page).err();
    return page->messages.empty() ? id_t{0} : page->messages.front().id;
  }
  // Oldest first, ids > after, at most limit (recovery with ?since=).
  virtual result<std::vector<message>> list_messages_after(id_t conversation_id, id_t after, std::size_t limit) = 0;
  // Messages with id > after not sent by `exclude_sender` and not deleted, counted up to `cap`.
  virtual result<std::size_t> count_messages_after(id_t conversation_id, id_t after, id_t exclude_sender,
                                                   std::size_t cap) = 0;

  // --- client_msg_id dedup: (conversation, sender, client_msg_id) -> message id ---
  // Inserts if absent; returns the message id stored for the key (the given
  // one if it was absent, the earlier one otherwise).
  virtual result<id_t> claim_client_msg_id(id_t conversation_id, id_t sender_id, const std::string& client_msg_id,
                                           id_t message_id) = 0;
  virtual result<std::optional<id_t>> find_client_msg_id(id_t conversation_id, id_t sender_id,
                                                         const std::string& client_msg_id) = 0;
  // A claim is never released: a send whose queue write failed may still
  // have been written, and its retry must resolve to the same id.
  //
  // Claims the key of `m` (empty client_msg_id: no claim) for m.id and, when
  // the claim is new, inserts `m` (as insert_message). Returns the claimed
  // id: m.id, or the earlier message's when the key was taken, in which case
  // nothing is written. One write where the store can; the default is the
  // claim, then the insert (a failure between leaves the claim alone, which
  // a retry repairs by inserting under the claimed id).
  virtual result<id_t> claim_and_insert(const message& m) {
    if (!m.client_msg_id.empty()) {
      auto claimed = claim_client_msg_id(m.conversation_id, m.sender_id, m.client_msg_id, m.id);
      if (!claimed || *claimed != m.id) return claimed;
    }
    if (auto s = insert_message(m); !s) return std::move(s).err();
    return m.id;
  }

  // --- read state: last read message id per (participant, conversation) ---
  // Only moves forward; returns the stored value after the call.
  virtual result<id_t> mark_read(id_t participant_id, id_t conversation_id, id_t message_id) = 0;
  virtual result<id_t> get_read(id_t participant_id, id_t conversation_id) = 0;  // 0 when never read

  // --- presence (rows expire after ttl_ms; an expired row reads as offline) ---
  virtual status put_presence(const presence& p, std::int64_t ttl_ms) = 0;
  virtual result<presence> get_presence(id_t participant_id) = 0;  // offline, last_seen_at 0 when unknown

  // --- notifications per recipient, newest first ---
  virtual status put_notification(const notification& n) = 0;  // upsert by (recipient, id)
  virtual result<std::vector<notification>> list_notifications(id_t recipient_id, std::size_t limit) = 0;
  // Marks (recipient, message) as delivered; false if it already was, so a
  // webhook is never called successfully twice for the same pair.
  virtual result<bool> mark_delivered(id_t recipient_id, id_t message_id) = 0;
  virtual result<bool> is_delivered(id_t recipient_id, id_t message_id) = 0;

  // --- chat-server registry (rows with expiry, refreshed by heartbeats) ---
  virtual status put_chat_server(const chat_server_row& row) = 0;
  virtual result<std::vector<chat_server_row>> list_chat_servers(std::int64_t now_ms) = 0;  // unexpired only
  virtual status remove_chat_server(const std::string& id) = 0;

  // --- snowflake node-number leases (store/node_lease.h keeps one alive) ---
  // A node number in [1, id_max_node] that nobody holds (never leased,
  // released, or its lease expired): the lowest such number, recorded as
  // held by `owner` until now + ttl_ms. Atomic: concurrent callers never get
  // the same number. errc::unavailable when every number is held,
  // errc::bad_request for an empty owner or a ttl_ms below 1.
  virtual result<std::uint32_t> acquire_node_id(const std::string& owner, std::int64_t ttl_ms) = 0;
  // Extends the lease to now + ttl_ms if `owner` holds it and it has not
  // expired; errc::conflict otherwise (someone else holds it, or it expired):
  // the caller must then stop minting ids with that number.
  virtual status renew_node_id(std::uint32_t node, const std::string& owner, std::int64_t ttl_ms) = 0;
  // Frees the number if `owner` still holds it; does nothing otherwise.
  virtual status release_node_id(std::uint32_t node, const std::string& owner) = 0;
};

// Orders an inbox page newest activity first with a total order: by
// updated_at, then, within one millisecond, by the activity's snowflake id
// (the last message's, else the conversation's own), so that a conversation
// that got a message is never below an empty one created in the same
// millisecond. Both backends' list_inbox end with it.
void order_inbox(std::vector<inbox_entry>& entries);

// Messages are partitioned by a fixed time window of their id: the bucket of
// a snowflake id. Shared by every implementation so that keys agree.
std::uint32_t message_bucket(id_t message_id);
inline constexpr std::int64_t bucket_span_ms = 10LL * 24 * 3600 * 1000;  // 10 days

// Case folding for the display-name search index (ASCII, Latin-1, Latin
// Extended-A, Greek and Cyrillic capitals; other bytes unchanged). Shared so
// that every implementation folds display names and prefixes the same way.
std::string fold_display_name(std::string_view s);

std::string_view kind_name(participant_kind k);
std::optional<participant_kind> parse_kind(std::string_view s);
std::string_view presence_name(presence_state s);

}  // namespace chatd::store
