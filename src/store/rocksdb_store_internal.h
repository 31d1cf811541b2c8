// What the RocksDB store's files share: the store class itself, its lock
// stripes and its iteration helpers. Private to chatd_store_rocksdb: it
// includes RocksDB's headers, which rocksdb_store.h must not.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/conversation_cache.h"
#include "store/rocksdb_codec.h"
#include "store/rocksdb_store.h"

namespace chatd::store::rocksdb_backend {

inline error unavailable(const rocksdb::Status& s) { return make_error(errc::unavailable, "store: " + s.ToString()); }

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
  explicit rocksdb_chat_store(const rocksdb_options& o);

  ~rocksdb_chat_store() override { close(); }

  rocksdb_chat_store(const rocksdb_chat_store&) = delete;
  rocksdb_chat_store& operator=(const rocksdb_chat_store&) = delete;

  // --- participants ---

  status create_participant(const participant& p) override;

  result<participant> get_participant(id_t id) override { return load_participant(id, nullptr); }

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
  result<id_t> newest_message_id(id_t conversation_id) override;
  status add_member(id_t conversation_id, id_t participant_id) override;

  // --- inbox ---

  result<std::vector<inbox_entry>> list_inbox(id_t participant_id, std::size_t limit) override;
  status touch_conversation(id_t conversation_id, std::int64_t updated_at, id_t last_message_id) override;

  // --- messages ---

  status put_message(const message& m) override;
  status insert_message(const message& m) override;
  result<message> get_message(id_t message_id) override;
  result<message_page> list_messages(id_t conversation_id, id_t before, std::size_t limit) override;
  result<std::vector<message>> list_messages_after(id_t conversation_id, id_t after, std::size_t limit) override;
  result<std::size_t> count_messages_after(id_t conversation_id, id_t after, id_t exclude_sender,
                                           std::size_t cap) override;

  // --- client_msg_id dedup ---

  result<id_t> claim_client_msg_id(id_t conversation_id, id_t sender_id, const std::string& client_msg_id,
                                   id_t message_id) override;
  result<id_t> claim_and_insert(const message& m) override;
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
  // One mutex for the whole table: acquiring reads every row, and these
  // calls are rare (start-up, then one renewal every few seconds).

  result<std::uint32_t> acquire_node_id(const std::string& owner, std::int64_t ttl_ms) override;
  status renew_node_id(std::uint32_t node, const std::string& owner, std::int64_t ttl_ms) override;
  status release_node_id(std::uint32_t node, const std::string& owner) override;

 private:
  void close();

  rocksdb::ColumnFamilyHandle* cf(table t) const { return handles_[static_cast<std::size_t>(t)]; }

  void put(rocksdb::WriteBatch& b, table t, const std::string& k, const std::string& v);
  status write(rocksdb::WriteBatch& b);
  result<std::optional<std::string>> get(table t, const std::string& k, const rocksdb::Snapshot* snap = nullptr);
  status write_message_locked(const message& m);
  void add_message(rocksdb::WriteBatch& b, const message& m);

  using cache_entry = conversation_cache<conversation_row>::entry;

  result<cache_entry> cached(id_t conversation_id);
  result<std::vector<id_t>> load_members(id_t conversation_id);
  result<id_t> load_newest(id_t conversation_id);

  struct lease_row {
    std::string owner;
    std::int64_t expires_at = 0;  // ms, wall clock
  };
  static std::string lease_key(std::uint32_t node) { return key().u32(node); }
  static std::string encode_lease(const std::string& owner, std::int64_t expires_at) {
    return writer().str(owner).i64(expires_at).done();
  }
  static result<lease_row> decode_lease(std::string_view v);
  result<id_t> read_id_or_zero(table t, const std::string& k);
  result<participant> load_participant(id_t id, const rocksdb::Snapshot* snap);
  result<conversation_row> load_conversation(id_t id, const rocksdb::Snapshot* snap);

  static std::string display_key(const participant& p) {
    return key().u8(static_cast<std::uint8_t>(p.kind)).str(fold_display_name(p.display_name)).u64(p.id);
  }
  static std::string message_key(id_t conversation_id, std::uint32_t bucket, id_t id) {
    return key().u64(conversation_id).u32(bucket).desc(id);
  }
  static std::string dedup_key(id_t conversation_id, id_t sender_id, const std::string& client_msg_id) {
    return key().u64(conversation_id).u64(sender_id).str(client_msg_id);
  }

  status create_conversation_locked(rocksdb::WriteBatch& b, const conversation& c, const std::vector<id_t>& members);
  status add_member_locked(rocksdb::WriteBatch& b, const conversation_row& row, id_t pid);
  status set_inbox_locked(rocksdb::WriteBatch& b, id_t pid, id_t conversation_id, const activity& next);
  template <class F>
  status walk_after(id_t conversation_id, id_t after, F&& f);

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> all_handles_;
  std::array<rocksdb::ColumnFamilyHandle*, table_count> handles_{};
  rocksdb::WriteOptions write_options_;
  lock_stripes locks_;
  conversation_cache<conversation_row> cache_{1 << 16};
  std::mutex leases_mu_;
};

}  // namespace chatd::store::rocksdb_backend
