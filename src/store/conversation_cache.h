// A write-through cache of recently used conversations for a store that is
// the only writer of its data (the embedded RocksDB store: one process owns
// the database). Every write of a conversation's row, members or messages
// passes through that store, which updates or drops the entry as it writes,
// so an entry is never stale; it takes the store reads off the path of every
// send (access check, newest id) and every delivery (members).
//
// A reader that missed loads from the database without holding the cache,
// then inserts only if no write touched the same shard meanwhile (the
// shard's generation): a load can never overwrite a newer write.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace chatd::store {

template <class Row>
class conversation_cache {
 public:
  using id_t = std::uint64_t;
  struct entry {
    Row row;
    std::shared_ptr<const std::vector<id_t>> members;  // sorted
    id_t newest = 0;                                   // newest message id; 0 when none
  };

  explicit conversation_cache(std::size_t capacity) : per_shard_(std::max<std::size_t>(capacity / shard_count, 1)) {}

  std::optional<entry> find(id_t conv) {
    auto& s = shard_of(conv);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(conv);
    if (it == s.map.end()) return std::nullopt;
    return it->second;
  }

  // Taken before loading an entry from the database; pass it to insert.
  std::uint64_t generation(id_t conv) {
    auto& s = shard_of(conv);
    std::lock_guard lock(s.mu);
    return s.gen;
  }

  void insert(id_t conv, entry e, std::uint64_t loaded_at) {
    auto& s = shard_of(conv);
    std::lock_guard lock(s.mu);
    if (s.gen != loaded_at) return;  // a write raced with the load
    if (s.map.size() >= per_shard_ && !s.map.contains(conv)) {
      // Crude but bounded: a full shard starts over.
      s.map.clear();
      ++s.gen;
    }
    s.map.insert_or_assign(conv, std::move(e));
  }

  // After a write the entry cannot follow (members changed).
  void drop(id_t conv) {
    auto& s = shard_of(conv);
    std::lock_guard lock(s.mu);
    s.map.erase(conv);
    ++s.gen;
  }

  // After writing the row: updates a cached entry; an absent one stays absent
  // (and a concurrent load of it is refused).
  template <class F>
  void update_row(id_t conv, F&& f) {
    auto& s = shard_of(conv);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(conv);
    if (it == s.map.end()) {
      ++s.gen;
      return;
    }
    f(it->second.row);
  }

  // After writing message `id` of the conversation.
  void saw_message(id_t conv, id_t id) {
    auto& s = shard_of(conv);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(conv);
    if (it == s.map.end()) {
      ++s.gen;
      return;
    }
    if (id > it->second.newest) it->second.newest = id;
  }

 private:
  static constexpr std::size_t shard_count = 64;
  struct shard {
    std::mutex mu;
    std::unordered_map<id_t, entry> map;
    std::uint64_t gen = 0;
  };
  shard& shard_of(id_t conv) { return shards_[(conv ^ (conv >> 17)) % shard_count]; }

  std::size_t per_shard_;
  std::array<shard, shard_count> shards_;
};

}  // namespace chatd::store
