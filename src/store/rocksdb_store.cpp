// The embedded chat database. Every table is a column family whose keys are
// the ScyllaDB primary key (partition key, then clustering key) encoded so
// that byte order is sort order: fixed-width big-endian integers, newest-first
// clustering as the bitwise complement, a string only as the last component.
// docs/adr/003-store-key-design.md explains the layout and the locking.
#include "store/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "store/conversation_cache.h"

namespace chatd::store {
namespace {

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

void append_u32(std::string& s, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>(v >> shift));
}
void append_u64(std::string& s, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) s.push_back(static_cast<char>(v >> shift));
}
std::uint32_t read_u32(std::string_view s, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
std::uint64_t read_u64(std::string_view s, std::size_t at) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// Signed values sort correctly as unsigned once the sign bit is flipped.
std::uint64_t order_i64(std::int64_t v) { return static_cast<std::uint64_t>(v) ^ (1ULL << 63); }

class key {
 public:
  key& u8(std::uint8_t v) {
    s_.push_back(static_cast<char>(v));
    return *this;
  }
  key& u32(std::uint32_t v) {
    append_u32(s_, v);
    return *this;
  }
  key& u64(std::uint64_t v) {
    append_u64(s_, v);
    return *this;
  }
  key& desc(std::uint64_t v) {
    append_u64(s_, ~v);
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

std::string id_key(std::uint64_t id) { return key().u64(id); }
std::string pair_key(std::uint64_t a, std::uint64_t b) { return key().u64(a).u64(b); }

// The smallest key greater than every key starting with `prefix`; empty
// when there is none (all 0xff), meaning "no upper bound".
std::string prefix_successor(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

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
    append_u32(out_, v);
    return *this;
  }
  writer& u64(std::uint64_t v) {
    append_u64(out_, v);
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
    auto v = read_u32(in_, pos_);
    pos_ += 4;
    return v;
  }
  std::uint64_t u64() {
    if (!need(8)) return 0;
    auto v = read_u64(in_, pos_);
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

error corrupt(table t) {
  return make_error(errc::internal,
                    std::string("store: undecodable value in ") + table_names[static_cast<std::size_t>(t)]);
}

std::string encode(const participant& p) {
  return writer()
      .u64(p.id)
      .u8(static_cast<std::uint8_t>(p.kind))
      .str(p.username)
      .str(p.display_name)
      .str(p.description)
      .str(p.password_hash)
      .boolean(p.banned)
      .i64(p.created_at)
      .done();
}
result<participant> decode_participant(std::string_view v) {
  reader r(v);
  participant p;
  p.id = r.u64();
  p.kind = static_cast<participant_kind>(r.u8());
  p.username = r.str();
  p.display_name = r.str();
  p.description = r.str();
  p.password_hash = r.str();
  p.banned = r.boolean();
  p.created_at = r.i64();
  if (!r.good()) return corrupt(table::participants);
  return p;
}

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
std::string encode(const conversation_row& c) {
  return writer()
      .u64(c.conv.id)
      .u8(static_cast<std::uint8_t>(c.conv.kind))
      .str(c.conv.title)
      .i64(c.conv.created_at)
      .i64(c.updated_at)
      .u64(c.last_message_id)
      .u64(c.conv.creator_id)
      .done();
}
result<conversation_row> decode_conversation(std::string_view v) {
  reader r(v);
  conversation_row c;
  c.conv.id = r.u64();
  c.conv.kind = static_cast<conversation_kind>(r.u8());
  c.conv.title = r.str();
  c.conv.created_at = r.i64();
  c.updated_at = r.i64();
  c.last_message_id = r.u64();
  // Rows written before the creator was kept end here: creator unknown (0).
  if (!r.at_end()) c.conv.creator_id = r.u64();
  if (!r.good()) return corrupt(table::conversations);
  return c;
}

std::string encode(const message& m) {
  return writer()
      .u64(m.id)
      .u64(m.conversation_id)
      .u64(m.sender_id)
      .u8(static_cast<std::uint8_t>(m.sender_kind))
      .str(m.body)
      .str(m.client_msg_id)
      .i64(m.created_at)
      .i64(m.edited_at)
      .boolean(m.deleted)
      .done();
}
result<message> decode_message(std::string_view v) {
  reader r(v);
  message m;
  m.id = r.u64();
  m.conversation_id = r.u64();
  m.sender_id = r.u64();
  m.sender_kind = static_cast<participant_kind>(r.u8());
  m.body = r.str();
  m.client_msg_id = r.str();
  m.created_at = r.i64();
  m.edited_at = r.i64();
  m.deleted = r.boolean();
  if (!r.good()) return corrupt(table::messages);
  return m;
}

std::string encode(const notification& n) {
  return writer()
      .u64(n.id)
      .u64(n.recipient_id)
      .u64(n.conversation_id)
      .u64(n.message_id)
      .u64(n.sender_id)
      .u8(static_cast<std::uint8_t>(n.sender_kind))
      .str(n.preview)
      .u32(n.count)
      .i64(n.created_at)
      .done();
}
result<notification> decode_notification(std::string_view v) {
  reader r(v);
  notification n;
  n.id = r.u64();
  n.recipient_id = r.u64();
  n.conversation_id = r.u64();
  n.message_id = r.u64();
  n.sender_id = r.u64();
  n.sender_kind = static_cast<participant_kind>(r.u8());
  n.preview = r.str();
  n.count = r.u32();
  n.created_at = r.i64();
  if (!r.good()) return corrupt(table::notifications);
  return n;
}

std::string encode(const chat_server_row& s) {
  return writer()
      .str(s.id)
      .str(s.url)
      .str(s.region)
      .f64(s.lat)
      .f64(s.lon)
      .boolean(s.has_coordinates)
      .f64(s.load)
      .i64(s.expires_at)
      .done();
}
result<chat_server_row> decode_chat_server(std::string_view v) {
  reader r(v);
  chat_server_row s;
  s.id = r.str();
  s.url = r.str();
  s.region = r.str();
  s.lat = r.f64();
  s.lon = r.f64();
  s.has_coordinates = r.boolean();
  s.load = r.f64();
  s.expires_at = r.i64();
  if (!r.good()) return corrupt(table::chat_servers);
  return s;
}

std::string encode_id(id_t id) { return writer().u64(id).done(); }
result<id_t> decode_id(std::string_view v, table t) {
  reader r(v);
  id_t id = r.u64();
  if (!r.good()) return corrupt(t);
  return id;
}

struct activity {
  std::int64_t updated_at = 0;
  id_t last_message_id = 0;
  auto tie() const { return std::tie(updated_at, last_message_id); }
};
std::string encode(const activity& a) { return writer().i64(a.updated_at).u64(a.last_message_id).done(); }
result<activity> decode_activity(std::string_view v) {
  reader r(v);
  activity a;
  a.updated_at = r.i64();
  a.last_message_id = r.u64();
  if (!r.good()) return corrupt(table::inbox_index);
  return a;
}

struct message_location {
  id_t conversation_id = 0;
  std::uint32_t bucket = 0;
};
result<message_location> decode_location(std::string_view v) {
  reader r(v);
  message_location l;
  l.conversation_id = r.u64();
  l.bucket = r.u32();
  if (!r.good()) return corrupt(table::message_by_id);
  return l;
}

struct presence_row {
  presence_state state = presence_state::offline;
  std::int64_t last_seen_at = 0;
  std::int64_t expires_at = 0;  // 0: never
};
result<presence_row> decode_presence(std::string_view v) {
  reader r(v);
  presence_row p;
  p.state = static_cast<presence_state>(r.u8());
  p.last_seen_at = r.i64();
  p.expires_at = r.i64();
  if (!r.good()) return corrupt(table::presence);
  return p;
}

error unavailable(const rocksdb::Status& s) { return make_error(errc::unavailable, "store: " + s.ToString()); }

// ----------------------------------------------------------------- locks ---

// Serializes the read-then-write operations per logical key. The database
// directory is locked by RocksDB to this process, so in-process mutexes are
// all the isolation these operations need (see the ADR for why not
// TransactionDB). Keys hash onto a fixed set of stripes; an operation takes
// all its stripes at once in index order, so two operations never deadlock.
class lock_stripes {
 public:
  static constexpr std::size_t stripe_count = 1024;

  class guard {
   public:
    guard(lock_stripes& owner, std::vector<std::size_t> idx) : owner_(owner), idx_(std::move(idx)) {
      for (auto i : idx_) owner_.mu_[i].lock();
    }
    ~guard() {
      for (auto it = idx_.rbegin(); it != idx_.rend(); ++it) owner_.mu_[*it].unlock();
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;

   private:
    lock_stripes& owner_;
    std::vector<std::size_t> idx_;
  };

  // Each key is named by its table and its encoded key.
  guard lock(std::initializer_list<std::pair<table, std::string_view>> keys) {
    std::vector<std::size_t> idx;
    idx.reserve(keys.size());
    for (const auto& [t, k] : keys) {
      std::size_t h = std::hash<std::string_view>{}(k) ^ (static_cast<std::size_t>(t) * 0x9e3779b97f4a7c15ULL);
      idx.push_back(h % stripe_count);
    }
    std::sort(idx.begin(), idx.end());
    idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
    return guard(*this, std::move(idx));
  }

 private:
  std::array<std::mutex, stripe_count> mu_;
};

// ----------------------------------------------------------------- store ---

// A consistent view for multi-step reads (pages across buckets).
class snapshot {
 public:
  explicit snapshot(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~snapshot() { db_->ReleaseSnapshot(snap_); }
  snapshot(const snapshot&) = delete;
  snapshot& operator=(const snapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

// An iterator confined to [lower, upper); the bounds must outlive it, hence
// one object that owns both and is never moved.
class range_iter {
 public:
  range_iter(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string lower, std::string upper,
             const rocksdb::Snapshot* snap)
      : lower_(std::move(lower)), upper_(std::move(upper)), lower_slice_(lower_), upper_slice_(upper_) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    ro.iterate_lower_bound = &lower_slice_;
    if (!upper_.empty()) ro.iterate_upper_bound = &upper_slice_;
    it_.reset(db->NewIterator(ro, cf));
  }
  range_iter(const range_iter&) = delete;
  range_iter& operator=(const range_iter&) = delete;

  rocksdb::Iterator* operator->() { return it_.get(); }
  std::string_view key() const { return std::string_view(it_->key().data(), it_->key().size()); }
  std::string_view value() const { return std::string_view(it_->value().data(), it_->value().size()); }

 private:
  std::string lower_, upper_;
  rocksdb::Slice lower_slice_, upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

class rocksdb_chat_store final : public chat_store {
 public:
  explicit rocksdb_chat_store(const rocksdb_options& o) {
    write_options_.sync = o.sync_writes;

    rocksdb::DBOptions dbo;
    dbo.create_if_missing = true;
    dbo.create_missing_column_families = true;
    dbo.max_background_jobs = 2;
    dbo.keep_log_file_num = 3;
    // Caps the memtables of all the tables together.
    dbo.db_write_buffer_size = 128ULL << 20;

    auto cache = rocksdb::NewLRUCache(std::max<std::size_t>(o.block_cache_mb, 1) << 20);
    rocksdb::BlockBasedTableOptions bbt;
    bbt.block_cache = cache;
    bbt.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    bbt.cache_index_and_filter_blocks = true;
    bbt.pin_l0_filter_and_index_blocks_in_cache = true;
    bbt.format_version = 5;
    auto table_factory = std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(bbt));

    auto supported = rocksdb::GetSupportedCompressions();
    bool lz4 = std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();

    auto cf_options = [&](std::string_view name) {
      rocksdb::ColumnFamilyOptions cfo;
      cfo.table_factory = table_factory;
      cfo.write_buffer_size = (name == "messages" ? 32ULL : 8ULL) << 20;
      if (lz4) cfo.compression = rocksdb::kLZ4Compression;
      cfo.level_compaction_dynamic_level_bytes = true;
      return cfo;
    };

    // Open every family the directory has, ours and any a newer version
    // added, because RocksDB refuses to open a database with some left out.
    // Ours that are missing are created afterwards in one call, which is
    // several times faster than create_missing_column_families (one OPTIONS
    // file instead of one per family).
    std::vector<std::string> existing;
    if (!rocksdb::DB::ListColumnFamilies(dbo, o.path, &existing).ok() || existing.empty()) {
      existing = {rocksdb::kDefaultColumnFamilyName};  // a new database
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (auto& n : existing) descriptors.emplace_back(n, cf_options(n));
    std::vector<rocksdb::ColumnFamilyDescriptor> missing;
    for (auto* n : table_names) {
      if (std::find(existing.begin(), existing.end(), n) == existing.end()) missing.emplace_back(n, cf_options(n));
    }

    rocksdb::DB* raw = nullptr;
    auto s = rocksdb::DB::Open(dbo, o.path, descriptors, &all_handles_, &raw);
    if (!s.ok()) throw std::runtime_error("cannot open the RocksDB store at '" + o.path + "': " + s.ToString());
    db_.reset(raw);
    if (!missing.empty()) {
      std::vector<rocksdb::ColumnFamilyHandle*> created;
      s = db_->CreateColumnFamilies(missing, &created);
      all_handles_.insert(all_handles_.end(), created.begin(), created.end());
      if (!s.ok()) {
        close();
        throw std::runtime_error("cannot create the tables of the RocksDB store at '" + o.path + "': " + s.ToString());
      }
    }
    for (auto* h : all_handles_) {
      auto at = std::find(table_names.begin(), table_names.end(), h->GetName());
      if (at != table_names.end()) handles_[at - table_names.begin()] = h;
    }
  }

  ~rocksdb_chat_store() override { close(); }

  rocksdb_chat_store(const rocksdb_chat_store&) = delete;
  rocksdb_chat_store& operator=(const rocksdb_chat_store&) = delete;

  // --- participants ---

  status create_participant(const participant& p) override {
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

  result<participant> get_participant(id_t id) override { return load_participant(id, nullptr); }

  result<participant> find_participant(participant_kind kind, const std::string& username) override {
    auto v = get(table::participant_by_username, key().u8(static_cast<std::uint8_t>(kind)).str(username));
    if (!v) return std::move(v).err();
    if (!*v) return make_error(errc::not_found, "no such participant");
    auto id = decode_id(**v, table::participant_by_username);
    if (!id) return std::move(id).err();
    return load_participant(*id, nullptr);
  }

  result<std::vector<participant>> search_participants(participant_kind kind, const std::string& prefix,
                                                       std::size_t limit) override {
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
        id_t id = read_u64(k, k.size() - 8);
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

  status set_banned(id_t id, bool banned) override {
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

  status set_password_hash(id_t id, const std::string& hash) override {
    std::string pid = id_key(id);
    auto g = locks_.lock({{table::participants, pid}});
    auto p = load_participant(id, nullptr);
    if (!p) return std::move(p).err();
    p->password_hash = hash;
    rocksdb::WriteBatch b;
    put(b, table::participants, pid, encode(*p));
    return write(b);
  }

  // --- conversations and members ---

  status create_conversation(const conversation& c, const std::vector<id_t>& members) override {
    std::string cid = id_key(c.id);
    auto g = locks_.lock({{table::conversations, cid}});
    rocksdb::WriteBatch b;
    if (auto s = create_conversation_locked(b, c, members); !s) return s;
    auto s = write(b);
    cache_.drop(c.id);
    return s;
  }

  result<std::pair<conversation, bool>> create_direct(const conversation& c, id_t a, id_t b) override {
    std::string pair = pair_key(std::min(a, b), std::max(a, b));
    std::string cid = id_key(c.id);
    auto g = locks_.lock({{table::direct_pairs, pair}, {table::conversations, cid}});
    auto existing = get(table::direct_pairs, pair);
    if (!existing) return std::move(existing).err();
    if (*existing) {
      auto id = decode_id(**existing, table::direct_pairs);
      if (!id) return std::move(id).err();
      auto row = load_conversation(*id, nullptr);
      if (!row) return std::move(row).err();
      return std::pair{std::move(row->conv), false};
    }
    rocksdb::WriteBatch batch;
    put(batch, table::direct_pairs, pair, encode_id(c.id));
    if (auto s = create_conversation_locked(batch, c, {a, b}); !s) return std::move(s).err();
    auto s = write(batch);
    cache_.drop(c.id);
    if (!s) return std::move(s).err();
    return std::pair{c, true};
  }

  result<conversation> get_conversation(id_t id) override {
    auto e = cached(id);
    if (!e) return std::move(e).err();
    return std::move(e->row.conv);
  }

  result<std::vector<id_t>> list_members(id_t conversation_id) override {
    auto e = cached(conversation_id);
    if (!e) {
      // Members of a conversation that does not exist: none, as before.
      if (e.err().code == errc::not_found) return load_members(conversation_id);
      return std::move(e).err();
    }
    return *e->members;
  }

  result<bool> is_member(id_t conversation_id, id_t participant_id) override {
    auto e = cached(conversation_id);
    if (!e) {
      if (e.err().code == errc::not_found) return false;
      return std::move(e).err();
    }
    return std::binary_search(e->members->begin(), e->members->end(), participant_id);
  }

  result<id_t> newest_message_id(id_t conversation_id) override {
    auto e = cached(conversation_id);
    if (!e) {
      if (e.err().code == errc::not_found) return load_newest(conversation_id);
      return std::move(e).err();
    }
    return e->newest;
  }

  status add_member(id_t conversation_id, id_t participant_id) override {
    std::string cid = id_key(conversation_id);
    auto g = locks_.lock({{table::conversations, cid}});
    auto row = load_conversation(conversation_id, nullptr);
    if (!row) return std::move(row).err();
    rocksdb::WriteBatch b;
    if (auto s = add_member_locked(b, *row, participant_id); !s) return s;
    auto s = write(b);
    cache_.drop(conversation_id);
    return s;
  }

  // --- inbox ---

  result<std::vector<inbox_entry>> list_inbox(id_t participant_id, std::size_t limit) override {
    std::vector<inbox_entry> out;
    if (limit == 0) return out;
    std::string lo = id_key(participant_id);
    range_iter it(db_.get(), cf(table::inbox), lo, prefix_successor(lo), nullptr);
    for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
      auto k = it.key();
      inbox_entry e;
      e.updated_at = static_cast<std::int64_t>(~read_u64(k, 8) ^ (1ULL << 63));
      e.conversation_id = ~read_u64(k, 16);
      auto last = decode_id(it.value(), table::inbox);
      if (!last) return std::move(last).err();
      e.last_message_id = *last;
      out.push_back(e);
    }
    if (!it->status().ok()) return unavailable(it->status());
    order_inbox(out);
    return out;
  }

  status touch_conversation(id_t conversation_id, std::int64_t updated_at, id_t last_message_id) override {
    std::string cid = id_key(conversation_id);
    auto g = locks_.lock({{table::conversations, cid}});
    // The cache is exact under the conversation's lock (ADR 010).
    auto e = cached(conversation_id);
    if (!e) {
      // Activity for a conversation that does not exist touches no inbox.
      if (e.err().code == errc::not_found) return {};
      return std::move(e).err();
    }
    auto* row = &e->row;
    activity next{updated_at, last_message_id};
    if (next.tie() <= activity{row->updated_at, row->last_message_id}.tie()) return {};
    row->updated_at = updated_at;
    row->last_message_id = last_message_id;
    rocksdb::WriteBatch b;
    put(b, table::conversations, cid, encode(*row));

    for (id_t pid : *e->members) {
      if (auto s = set_inbox_locked(b, pid, conversation_id, next); !s) return s;
    }
    auto s = write(b);
    if (s) {
      cache_.update_row(conversation_id, [&](conversation_row& r) {
        r.updated_at = updated_at;
        r.last_message_id = last_message_id;
      });
    } else {
      cache_.drop(conversation_id);
    }
    return s;
  }

  // --- messages ---

  // Both writes of a message take the stripe of its id, so insert_message's
  // check and write cannot straddle an edit.
  status put_message(const message& m) override {
    std::string mid = id_key(m.id);
    auto g = locks_.lock({{table::message_by_id, mid}});
    return write_message_locked(m);
  }

  status insert_message(const message& m) override {
    std::string mid = id_key(m.id);
    auto g = locks_.lock({{table::message_by_id, mid}});
    // message_by_id is written in the same batch as the message row.
    auto stored = get(table::message_by_id, mid);
    if (!stored) return std::move(stored).err();
    if (*stored) return {};
    return write_message_locked(m);
  }

  result<message> get_message(id_t message_id) override {
    auto loc = get(table::message_by_id, id_key(message_id));
    if (!loc) return std::move(loc).err();
    if (!*loc) return make_error(errc::not_found, "no such message");
    auto l = decode_location(**loc);
    if (!l) return std::move(l).err();
    auto v = get(table::messages, message_key(l->conversation_id, l->bucket, message_id));
    if (!v) return std::move(v).err();
    if (!*v) return make_error(errc::not_found, "no such message");
    return decode_message(**v);
  }

  result<message_page> list_messages(id_t conversation_id, id_t before, std::size_t limit) override {
    message_page page;
    snapshot snap(db_.get());
    // One more than asked tells whether an older message exists.
    const std::size_t want = limit == SIZE_MAX ? limit : limit + 1;
    std::string conv = id_key(conversation_id);
    range_iter buckets(db_.get(), cf(table::message_buckets), conv, prefix_successor(conv), snap.get());
    std::uint32_t first_bucket = before == 0 ? 0 : message_bucket(before);
    if (before == 0) {
      buckets->SeekToLast();
    } else {
      buckets->SeekForPrev(key().u64(conversation_id).u32(first_bucket).done());
    }
    for (; buckets->Valid() && page.messages.size() < want; buckets->Prev()) {
      std::uint32_t bucket = read_u32(buckets.key(), 8);
      std::string part = key().u64(conversation_id).u32(bucket);
      range_iter it(db_.get(), cf(table::messages), part, prefix_successor(part), snap.get());
      if (before != 0 && bucket == first_bucket) {
        it->Seek(message_key(conversation_id, bucket, before - 1));  // ids <= before - 1
      } else {
        it->SeekToFirst();
      }
      for (; it->Valid() && page.messages.size() < want; it->Next()) {
        auto m = decode_message(it.value());
        if (!m) return std::move(m).err();
        page.messages.push_back(std::move(m.value()));
      }
      if (!it->status().ok()) return unavailable(it->status());
    }
    if (!buckets->status().ok()) return unavailable(buckets->status());
    if (page.messages.size() > limit) {
      page.messages.resize(limit);
      page.has_more = true;
    }
    return page;
  }

  result<std::vector<message>> list_messages_after(id_t conversation_id, id_t after, std::size_t limit) override {
    std::vector<message> out;
    if (limit == 0) return out;
    auto s = walk_after(conversation_id, after, [&](message&& m) {
      out.push_back(std::move(m));
      return out.size() < limit;
    });
    if (!s) return std::move(s).err();
    return out;
  }

  result<std::size_t> count_messages_after(id_t conversation_id, id_t after, id_t exclude_sender,
                                           std::size_t cap) override {
    std::size_t n = 0;
    if (cap == 0) return n;
    auto s = walk_after(conversation_id, after, [&](message&& m) {
      if (!m.deleted && m.sender_id != exclude_sender) ++n;
      return n < cap;
    });
    if (!s) return std::move(s).err();
    return n;
  }

  // --- client_msg_id dedup ---

  result<id_t> claim_client_msg_id(id_t conversation_id, id_t sender_id, const std::string& client_msg_id,
                                   id_t message_id) override {
    std::string k = dedup_key(conversation_id, sender_id, client_msg_id);
    auto g = locks_.lock({{table::client_msg_ids, k}});
    auto v = get(table::client_msg_ids, k);
    if (!v) return std::move(v).err();
    if (*v) return decode_id(**v, table::client_msg_ids);
    rocksdb::WriteBatch b;
    put(b, table::client_msg_ids, k, encode_id(message_id));
    if (auto s = write(b); !s) return std::move(s).err();
    return message_id;
  }

  // The claim and the message rows in one batch: a claimed key always has
  // its message stored.
  result<id_t> claim_and_insert(const message& m) override {
    if (m.client_msg_id.empty()) {
      if (auto s = insert_message(m); !s) return std::move(s).err();
      return m.id;
    }
    std::string k = dedup_key(m.conversation_id, m.sender_id, m.client_msg_id);
    std::string mid = id_key(m.id);
    auto g = locks_.lock({{table::client_msg_ids, k}, {table::message_by_id, mid}});
    auto v = get(table::client_msg_ids, k);
    if (!v) return std::move(v).err();
    if (*v) return decode_id(**v, table::client_msg_ids);
    auto stored = get(table::message_by_id, mid);
    if (!stored) return std::move(stored).err();
    rocksdb::WriteBatch b;
    put(b, table::client_msg_ids, k, encode_id(m.id));
    if (!*stored) add_message(b, m);
    if (auto s = write(b); !s) return std::move(s).err();
    cache_.saw_message(m.conversation_id, m.id);
    return m.id;
  }

  result<std::optional<id_t>> find_client_msg_id(id_t conversation_id, id_t sender_id,
                                                 const std::string& client_msg_id) override {
    auto v = get(table::client_msg_ids, dedup_key(conversation_id, sender_id, client_msg_id));
    if (!v) return std::move(v).err();
    if (!*v) return std::optional<id_t>{};
    auto id = decode_id(**v, table::client_msg_ids);
    if (!id) return std::move(id).err();
    return std::optional<id_t>{*id};
  }

  // --- read state ---

  result<id_t> mark_read(id_t participant_id, id_t conversation_id, id_t message_id) override {
    std::string k = pair_key(participant_id, conversation_id);
    auto g = locks_.lock({{table::read_state, k}});
    auto current = read_id_or_zero(table::read_state, k);
    if (!current) return current;
    if (message_id <= *current) return current;
    rocksdb::WriteBatch b;
    put(b, table::read_state, k, encode_id(message_id));
    if (auto s = write(b); !s) return std::move(s).err();
    return message_id;
  }

  result<id_t> get_read(id_t participant_id, id_t conversation_id) override {
    return read_id_or_zero(table::read_state, pair_key(participant_id, conversation_id));
  }

  // --- presence ---

  status put_presence(const presence& p, std::int64_t ttl_ms) override {
    // The expiry is kept in the row and checked on read: an expired row still
    // knows when the participant was last seen.
    std::int64_t expires_at = ttl_ms > 0 ? now_ms() + ttl_ms : 0;
    rocksdb::WriteBatch b;
    put(b, table::presence, id_key(p.participant_id),
        writer().u8(static_cast<std::uint8_t>(p.state)).i64(p.last_seen_at).i64(expires_at).done());
    return write(b);
  }

  result<presence> get_presence(id_t participant_id) override {
    presence out;
    out.participant_id = participant_id;
    auto v = get(table::presence, id_key(participant_id));
    if (!v) return std::move(v).err();
    if (!*v) return out;
    auto row = decode_presence(**v);
    if (!row) return std::move(row).err();
    out.last_seen_at = row->last_seen_at;
    bool expired = row->expires_at != 0 && row->expires_at <= now_ms();
    out.state = expired ? presence_state::offline : row->state;
    return out;
  }

  // --- notifications ---

  status put_notification(const notification& n) override {
    rocksdb::WriteBatch b;
    put(b, table::notifications, key().u64(n.recipient_id).desc(n.id), encode(n));
    return write(b);
  }

  result<std::vector<notification>> list_notifications(id_t recipient_id, std::size_t limit) override {
    std::vector<notification> out;
    if (limit == 0) return out;
    std::string lo = id_key(recipient_id);
    range_iter it(db_.get(), cf(table::notifications), lo, prefix_successor(lo), nullptr);
    for (it->SeekToFirst(); it->Valid() && out.size() < limit; it->Next()) {
      auto n = decode_notification(it.value());
      if (!n) return std::move(n).err();
      out.push_back(std::move(n.value()));
    }
    if (!it->status().ok()) return unavailable(it->status());
    return out;
  }

  result<bool> mark_delivered(id_t recipient_id, id_t message_id) override {
    std::string k = pair_key(recipient_id, message_id);
    auto g = locks_.lock({{table::notification_delivered, k}});
    auto v = get(table::notification_delivered, k);
    if (!v) return std::move(v).err();
    if (*v) return false;
    rocksdb::WriteBatch b;
    put(b, table::notification_delivered, k, {});
    if (auto s = write(b); !s) return std::move(s).err();
    return true;
  }

  result<bool> is_delivered(id_t recipient_id, id_t message_id) override {
    auto v = get(table::notification_delivered, pair_key(recipient_id, message_id));
    if (!v) return std::move(v).err();
    return v->has_value();
  }

  // --- chat-server registry ---

  status put_chat_server(const chat_server_row& row) override {
    rocksdb::WriteBatch b;
    put(b, table::chat_servers, row.id, encode(row));
    return write(b);
  }

  result<std::vector<chat_server_row>> list_chat_servers(std::int64_t now) override {
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

  status remove_chat_server(const std::string& id) override {
    rocksdb::WriteBatch b;
    b.Delete(cf(table::chat_servers), id);
    return write(b);
  }

  // --- snowflake node-number leases ---
  // One mutex for the whole table: acquiring reads every row, and these
  // calls are rare (start-up, then one renewal every few seconds).

  result<std::uint32_t> acquire_node_id(const std::string& owner, std::int64_t ttl_ms) override {
    if (owner.empty() || ttl_ms < 1) return make_error(errc::bad_request, "node lease: empty owner or ttl below 1 ms");
    std::lock_guard lock(leases_mu_);
    std::int64_t now = now_ms();
    std::vector<bool> held(id_max_node + 1, false);
    range_iter it(db_.get(), cf(table::node_leases), {}, {}, nullptr);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it.key().size() != 4) continue;
      auto row = decode_lease(it.value());
      if (!row) return std::move(row).err();
      std::uint32_t node = read_u32(it.key(), 0);
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
    return make_error(errc::unavailable,
                      "node lease: every node number 1.." + std::to_string(id_max_node) + " is held");
  }

  status renew_node_id(std::uint32_t node, const std::string& owner, std::int64_t ttl_ms) override {
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

  status release_node_id(std::uint32_t node, const std::string& owner) override {
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

 private:
  void close() {
    for (auto* h : all_handles_) (void)db_->DestroyColumnFamilyHandle(h);
    all_handles_.clear();
    // Close reports background errors, and there is no one to report them to
    // here; the WAL already has every acknowledged write.
    (void)db_->Close();
    db_.reset();
  }

  rocksdb::ColumnFamilyHandle* cf(table t) const { return handles_[static_cast<std::size_t>(t)]; }

  void put(rocksdb::WriteBatch& b, table t, const std::string& k, const std::string& v) {
    // WriteBatch copies into its buffer; its Status is only non-OK past 4 GiB.
    (void)b.Put(cf(t), k, v);
  }

  status write(rocksdb::WriteBatch& b) {
    auto s = db_->Write(write_options_, &b);
    if (!s.ok()) return unavailable(s);
    return {};
  }

  // The value, or nullopt when the key is absent.
  result<std::optional<std::string>> get(table t, const std::string& k, const rocksdb::Snapshot* snap = nullptr) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    std::string v;
    auto s = db_->Get(ro, cf(t), k, &v);
    if (s.IsNotFound()) return std::optional<std::string>{};
    if (!s.ok()) return unavailable(s);
    return std::optional<std::string>{std::move(v)};
  }

  // Caller holds the stripe of the message id.
  status write_message_locked(const message& m) {
    rocksdb::WriteBatch b;
    add_message(b, m);
    auto s = write(b);
    if (s) cache_.saw_message(m.conversation_id, m.id);
    return s;
  }

  // The rows of a message: itself, its id index and its bucket.
  void add_message(rocksdb::WriteBatch& b, const message& m) {
    std::uint32_t bucket = message_bucket(m.id);
    put(b, table::messages, message_key(m.conversation_id, bucket, m.id), encode(m));
    put(b, table::message_by_id, id_key(m.id), writer().u64(m.conversation_id).u32(bucket).done());
    put(b, table::message_buckets, key().u64(m.conversation_id).u32(bucket), {});
  }

  using cache_entry = conversation_cache<conversation_row>::entry;

  // The conversation's row, members and newest message id, from the cache or
  // loaded into it; not_found for a conversation that does not exist.
  result<cache_entry> cached(id_t conversation_id) {
    if (auto hit = cache_.find(conversation_id)) return std::move(*hit);
    auto gen = cache_.generation(conversation_id);
    auto row = load_conversation(conversation_id, nullptr);
    if (!row) return std::move(row).err();
    auto members = load_members(conversation_id);
    if (!members) return std::move(members).err();
    auto newest = load_newest(conversation_id);
    if (!newest) return std::move(newest).err();
    std::sort(members->begin(), members->end());
    cache_entry e{std::move(row.value()), std::make_shared<const std::vector<id_t>>(std::move(members.value())),
                  *newest};
    cache_.insert(conversation_id, e, gen);
    return e;
  }

  result<std::vector<id_t>> load_members(id_t conversation_id) {
    std::vector<id_t> out;
    std::string lo = id_key(conversation_id);
    range_iter it(db_.get(), cf(table::members), lo, prefix_successor(lo), nullptr);
    for (it->SeekToFirst(); it->Valid(); it->Next()) out.push_back(read_u64(it.key(), 8));
    if (!it->status().ok()) return unavailable(it->status());
    return out;
  }

  result<id_t> load_newest(id_t conversation_id) {
    auto page = list_messages(conversation_id, 0, 1);
    if (!page) return std::move(page).err();
    return page->messages.empty() ? id_t{0} : page->messages.front().id;
  }

  struct lease_row {
    std::string owner;
    std::int64_t expires_at = 0;  // ms, wall clock
  };
  static std::string lease_key(std::uint32_t node) { return key().u32(node); }
  static std::string encode_lease(const std::string& owner, std::int64_t expires_at) {
    return writer().str(owner).i64(expires_at).done();
  }
  static result<lease_row> decode_lease(std::string_view v) {
    reader r(v);
    lease_row row;
    row.owner = r.str();
    row.expires_at = r.i64();
    if (!r.good()) return corrupt(table::node_leases);
    return row;
  }

  result<id_t> read_id_or_zero(table t, const std::string& k) {
    auto v = get(t, k);
    if (!v) return std::move(v).err();
    if (!*v) return id_t{0};
    return decode_id(**v, t);
  }

  result<participant> load_participant(id_t id, const rocksdb::Snapshot* snap) {
    auto v = get(table::participants, id_key(id), snap);
    if (!v) return std::move(v).err();
    if (!*v) return make_error(errc::not_found, "no such participant");
    return decode_participant(**v);
  }

  result<conversation_row> load_conversation(id_t id, const rocksdb::Snapshot* snap) {
    auto v = get(table::conversations, id_key(id), snap);
    if (!v) return std::move(v).err();
    if (!*v) return make_error(errc::not_found, "no such conversation");
    return decode_conversation(**v);
  }

  static std::string display_key(const participant& p) {
    return key().u8(static_cast<std::uint8_t>(p.kind)).str(fold_display_name(p.display_name)).u64(p.id);
  }
  static std::string message_key(id_t conversation_id, std::uint32_t bucket, id_t id) {
    return key().u64(conversation_id).u32(bucket).desc(id);
  }
  static std::string dedup_key(id_t conversation_id, id_t sender_id, const std::string& client_msg_id) {
    return key().u64(conversation_id).u64(sender_id).str(client_msg_id);
  }

  // Caller holds the conversation's lock.
  status create_conversation_locked(rocksdb::WriteBatch& b, const conversation& c, const std::vector<id_t>& members) {
    auto row = load_conversation(c.id, nullptr);
    if (!row) {
      if (row.err().code != errc::not_found) return std::move(row).err();
      // A replayed create keeps the stored row (and its activity).
      conversation_row fresh;
      fresh.conv = c;
      fresh.updated_at = c.created_at;
      row = std::move(fresh);
      put(b, table::conversations, id_key(c.id), encode(*row));
    }
    std::set<id_t> unique(members.begin(), members.end());
    for (id_t pid : unique) {
      if (auto s = add_member_locked(b, *row, pid); !s) return s;
    }
    return {};
  }

  // Caller holds the conversation's lock. A member who is one already keeps
  // their inbox entry as it is.
  status add_member_locked(rocksdb::WriteBatch& b, const conversation_row& row, id_t pid) {
    std::string mk = pair_key(row.conv.id, pid);
    auto existing = get(table::members, mk);
    if (!existing) return std::move(existing).err();
    if (*existing) return {};
    put(b, table::members, mk, {});
    put(b, table::member_of, pair_key(pid, row.conv.id), {});
    return set_inbox_locked(b, pid, row.conv.id, activity{row.updated_at, row.last_message_id});
  }

  // Moves one inbox entry forward; caller holds the conversation's lock,
  // which covers every inbox entry of that conversation.
  status set_inbox_locked(rocksdb::WriteBatch& b, id_t pid, id_t conversation_id, const activity& next) {
    std::string ik = pair_key(pid, conversation_id);
    auto old = get(table::inbox_index, ik);
    if (!old) return std::move(old).err();
    if (*old) {
      auto a = decode_activity(**old);
      if (!a) return std::move(a).err();
      if (next.tie() <= a->tie()) return {};
      b.Delete(cf(table::inbox), key().u64(pid).desc_i64(a->updated_at).u64(~conversation_id).done());
    }
    put(b, table::inbox, key().u64(pid).desc_i64(next.updated_at).u64(~conversation_id),
        encode_id(next.last_message_id));
    put(b, table::inbox_index, ik, encode(next));
    return {};
  }

  // Calls `f` with each message of the conversation with id > after, oldest
  // first, until it returns false. Buckets are walked upward.
  template <class F>
  status walk_after(id_t conversation_id, id_t after, F&& f) {
    snapshot snap(db_.get());
    std::string conv = id_key(conversation_id);
    range_iter buckets(db_.get(), cf(table::message_buckets), conv, prefix_successor(conv), snap.get());
    std::uint32_t first_bucket = message_bucket(after);
    if (after == 0) {
      buckets->SeekToFirst();
    } else {
      buckets->Seek(key().u64(conversation_id).u32(first_bucket).done());
    }
    for (; buckets->Valid(); buckets->Next()) {
      std::uint32_t bucket = read_u32(buckets.key(), 8);
      std::string part = key().u64(conversation_id).u32(bucket);
      range_iter it(db_.get(), cf(table::messages), part, prefix_successor(part), snap.get());
      // Ids descend within a partition, so oldest first is backwards.
      if (after != 0 && bucket == first_bucket) {
        std::string from = message_key(conversation_id, bucket, after);
        it->SeekForPrev(from);
        if (it->Valid() && it.key() == from) it->Prev();
      } else {
        it->SeekToLast();
      }
      for (; it->Valid(); it->Prev()) {
        auto m = decode_message(it.value());
        if (!m) return std::move(m).err();
        if (!f(std::move(m.value()))) return {};
      }
      if (!it->status().ok()) return unavailable(it->status());
    }
    if (!buckets->status().ok()) return unavailable(buckets->status());
    return {};
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> all_handles_;
  std::array<rocksdb::ColumnFamilyHandle*, table_count> handles_{};
  rocksdb::WriteOptions write_options_;
  lock_stripes locks_;
  conversation_cache<conversation_row> cache_{1 << 16};
  std::mutex leases_mu_;
};

}  // namespace

std::unique_ptr<chat_store> open_rocksdb_store(const rocksdb_options& options) {
  return std::make_unique<rocksdb_chat_store>(options);
}

}  // namespace chatd::store
