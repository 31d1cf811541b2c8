// The RocksDB store's encodings (docs/adr/003-store-key-design.md): its
// tables, one column family each; keys laid out so that byte order is sort
// order; the versioned value of each kind of row. Private to
// chatd_store_rocksdb, and free of RocksDB headers.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "common/big_endian.h"
#include "store/store.h"

namespace chatd::store::rocksdb_backend {

// ---------------------------------------------------------------- tables ---

enum class table : std::size_t {
  participants,                 // id -> participant
  participant_by_username,      // (kind, username) -> id
  participant_by_display_name,  // (kind, folded display name, id) -> marker
  conversations,                // id -> conversation + last activity
  members,                      // (conversation, participant) -> marker
  member_of,                    // (participant, conversation) -> marker
  direct_pairs,                 // (min id, max id) -> conversation id
  inbox,                        // (participant, ~updated_at, ~conversation) -> last message id
  inbox_index,                  // (participant, conversation) -> (updated_at, last message id)
  messages,                     // (conversation, bucket, ~message id) -> message
  message_buckets,              // (conversation, bucket) -> marker
  message_by_id,                // id -> (conversation, bucket)
  client_msg_ids,               // (conversation, sender, client_msg_id) -> message id
  read_state,                   // (participant, conversation) -> message id
  presence,                     // participant -> (state, last_seen_at, expires_at)
  notifications,                // (recipient, ~id) -> notification
  notification_delivered,       // (recipient, message) -> marker
  chat_servers,                 // id -> chat_server_row
  node_leases,                  // node number -> (owner, expires_at)
  table_end                     // not a table: the number of tables
};

constexpr std::size_t table_count = static_cast<std::size_t>(table::table_end);

constexpr std::array<const char*, table_count> table_names = {
    "participants",
    "participant_by_username",
    "participant_by_display_name",
    "conversations",
    "members",
    "member_of",
    "direct_pairs",
    "inbox",
    "inbox_index",
    "messages",
    "message_buckets",
    "message_by_id",
    "client_msg_ids",
    "read_state",
    "presence",
    "notifications",
    "notification_delivered",
    "chat_servers",
    "node_leases",
};

// search_participants reads at most this many display-name index entries, so
// a one-letter prefix over a million shops stays a bounded query.
constexpr std::size_t display_name_scan_cap = 10000;

// ------------------------------------------------------------------ keys ---

// Signed values sort correctly as unsigned once the sign bit is flipped.
inline std::uint64_t order_i64(std::int64_t v) { return static_cast<std::uint64_t>(v) ^ (1ULL << 63); }

class key {
 public:
  key& u8(std::uint8_t v) {
    s_.push_back(static_cast<char>(v));
    return *this;
  }
  key& u32(std::uint32_t v) {
    put_be32(s_, v);
    return *this;
  }
  key& u64(std::uint64_t v) {
    put_be64(s_, v);
    return *this;
  }
  key& desc(std::uint64_t v) {
    put_be64(s_, ~v);
    return *this;
  }  // newest first
  key& desc_i64(std::int64_t v) { return desc(order_i64(v)); }
  key& str(std::string_view v) {
    s_.append(v);
    return *this;
  }  // last component only
  // Builders are temporaries used in one expression, so taking the bytes is safe.
  std::string done() { return std::move(s_); }
  operator std::string() { return std::move(s_); }  // NOLINT(google-explicit-constructor)

 private:
  std::string s_;
};

inline std::string id_key(std::uint64_t id) { return key().u64(id); }
inline std::string pair_key(std::uint64_t a, std::uint64_t b) { return key().u64(a).u64(b); }

// The smallest key greater than every key starting with `prefix`; empty
// when there is none (all 0xff), meaning "no upper bound".
std::string prefix_successor(std::string prefix);

// ---------------------------------------------------------------- values ---

// Every value starts with this byte; a reader refuses versions it does not
// know rather than misreading a newer layout.
constexpr std::uint8_t value_version = 1;

class writer {
 public:
  writer() { out_.push_back(static_cast<char>(value_version)); }
  writer& u8(std::uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  writer& u32(std::uint32_t v) {
    put_be32(out_, v);
    return *this;
  }
  writer& u64(std::uint64_t v) {
    put_be64(out_, v);
    return *this;
  }
  writer& i64(std::int64_t v) { return u64(static_cast<std::uint64_t>(v)); }
  writer& f64(double v) { return u64(std::bit_cast<std::uint64_t>(v)); }
  writer& boolean(bool v) { return u8(v ? 1 : 0); }
  writer& str(std::string_view v) {
    u32(static_cast<std::uint32_t>(v.size()));
    out_.append(v);
    return *this;
  }
  std::string done() { return std::move(out_); }

 private:
  std::string out_;
};

class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {
    if (in_.empty() || static_cast<std::uint8_t>(in_[0]) != value_version) ok_ = false;
    pos_ = 1;
  }
  std::uint8_t u8() { return need(1) ? static_cast<std::uint8_t>(in_[pos_++]) : 0; }
  std::uint32_t u32() {
    if (!need(4)) return 0;
    auto v = get_be32(in_.data() + pos_);
    pos_ += 4;
    return v;
  }
  std::uint64_t u64() {
    if (!need(8)) return 0;
    auto v = get_be64(in_.data() + pos_);
    pos_ += 8;
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  double f64() { return std::bit_cast<double>(u64()); }
  bool boolean() { return u8() != 0; }
  std::string str() {
    std::uint32_t n = u32();
    if (!need(n)) return {};
    std::string v(in_.substr(pos_, n));
    pos_ += n;
    return v;
  }
  // True if every field was there and nothing is left over.
  bool good() const { return ok_ && pos_ == in_.size(); }
  // For a field appended to a layout later: absent in values written before.
  bool at_end() const { return pos_ >= in_.size(); }

 private:
  bool need(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

error corrupt(table t);

std::string encode(const participant& p);
result<participant> decode_participant(std::string_view v);

// A conversation with the activity that add_member gives a new member's inbox
// entry (the CQL table has the same two extra columns). The creator is the
// last field, appended after the rest: rows written before it decode with
// creator 0 (a chatd from before it refuses rows that have it, so going back
// to one is not supported once it wrote conversations).
struct conversation_row {
  conversation conv;
  std::int64_t updated_at = 0;
  id_t last_message_id = 0;
};
std::string encode(const conversation_row& c);
result<conversation_row> decode_conversation(std::string_view v);

std::string encode(const message& m);
result<message> decode_message(std::string_view v);

std::string encode(const notification& n);
result<notification> decode_notification(std::string_view v);

std::string encode(const chat_server_row& s);
result<chat_server_row> decode_chat_server(std::string_view v);

std::string encode_id(id_t id);
result<id_t> decode_id(std::string_view v, table t);

struct activity {
  std::int64_t updated_at = 0;
  id_t last_message_id = 0;
  auto tie() const { return std::tie(updated_at, last_message_id); }
};
std::string encode(const activity& a);
result<activity> decode_activity(std::string_view v);

struct message_location {
  id_t conversation_id = 0;
  std::uint32_t bucket = 0;
};
result<message_location> decode_location(std::string_view v);

struct presence_row {
  presence_state state = presence_state::offline;
  std::int64_t last_seen_at = 0;
  std::int64_t expires_at = 0;  // 0: never
};
result<presence_row> decode_presence(std::string_view v);

}  // namespace chatd::store::rocksdb_backend
