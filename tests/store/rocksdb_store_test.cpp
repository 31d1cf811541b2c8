// What only the RocksDB store has: a directory that outlives the process,
// its lock, its handling of bytes it did not write, and threads hammering it.
#include "store/rocksdb_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "rocksdb_test_util.h"

namespace chatd::store::testing {
namespace {

constexpr std::int64_t t0 = 1720000000000;  // 2024-07-03
constexpr std::int64_t day_ms = 24 * 3600 * 1000;

template <class T>
T must(result<T> r) {
  if (!r.ok()) throw std::runtime_error("store call failed: " + r.err().message);
  return std::move(r).value();
}
void must(status s) {
  if (!s.ok()) throw std::runtime_error("store call failed: " + s.err().message);
}

std::unique_ptr<chat_store> open_at(const std::string& path, bool sync = false) {
  rocksdb_options o;
  o.path = path;
  o.sync_writes = sync;
  o.block_cache_mb = 8;
  return open_rocksdb_store(o);
}

message make_message(id_t id, id_t conv, id_t sender) {
  message m;
  m.id = id;
  m.conversation_id = conv;
  m.sender_id = sender;
  m.body = "body " + std::to_string(id);
  m.client_msg_id = "c" + std::to_string(id);
  m.created_at = id_timestamp_ms(id);
  return m;
}

TEST(rocksdb_store, ReopeningFindsEverythingAgain) {
  temp_dir dir;
  std::string path = (dir.path() / "db").string();
  std::vector<id_t> ids;
  {
    auto db = open_at(path, /*sync=*/true);
    participant p;
    p.id = 1;
    p.username = "alice";
    p.display_name = "Alice";
    p.password_hash = "hash";
    must(db->create_participant(p));
    must(db->set_banned(1, true));
    conversation c;
    c.id = 10;
    c.title = "t";
    c.created_at = t0;
    must(db->create_conversation(c, {1, 2}));
    for (int k = 0; k < 30; ++k) {
      id_t id = id_floor_for_ms(t0 + k * day_ms);
      ids.push_back(id);
      must(db->put_message(make_message(id, 10, 1 + k % 2)));
    }
    must(db->touch_conversation(10, id_timestamp_ms(ids.back()), ids.back()));
    (void)must(db->claim_client_msg_id(10, 1, "abc", ids[3]));
    (void)must(db->mark_read(2, 10, ids[20]));
    must(db->put_presence(presence{1, presence_state::inactive, t0}, 3600000));
    notification n;
    n.id = 99;
    n.recipient_id = 2;
    n.message_id = ids.back();
    must(db->put_notification(n));
    (void)must(db->mark_delivered(2, ids.back()));
    chat_server_row row;
    row.id = "cs-1";
    row.expires_at = now_ms() + 3600000;
    must(db->put_chat_server(row));
  }
  auto db = open_at(path);
  auto p = must(db->find_participant(participant_kind::user, "alice"));
  EXPECT_EQ(p.id, 1u);
  EXPECT_TRUE(p.banned);
  EXPECT_EQ(must(db->search_participants(participant_kind::user, "ali", 5)).size(), 1u);
  EXPECT_EQ(must(db->get_conversation(10)).title, "t");
  EXPECT_EQ(must(db->list_members(10)), (std::vector<id_t>{1, 2}));
  auto inbox = must(db->list_inbox(2, 10));
  ASSERT_EQ(inbox.size(), 1u);
  EXPECT_EQ(inbox[0].last_message_id, ids.back());

  auto page = must(db->list_messages(10, 0, 100));
  ASSERT_EQ(page.messages.size(), 30u);
  EXPECT_EQ(page.messages.front().id, ids.back());
  EXPECT_EQ(page.messages.back().id, ids.front());
  EXPECT_EQ(must(db->get_message(ids[7])).body, "body " + std::to_string(ids[7]));
  EXPECT_EQ(must(db->find_client_msg_id(10, 1, "abc")), std::optional<id_t>(ids[3]));
  EXPECT_EQ(must(db->get_read(2, 10)), ids[20]);
  EXPECT_EQ(must(db->get_presence(1)).state, presence_state::inactive);
  EXPECT_EQ(must(db->list_notifications(2, 10)).size(), 1u);
  EXPECT_TRUE(must(db->is_delivered(2, ids.back())));
  EXPECT_EQ(must(db->list_chat_servers(now_ms())).size(), 1u);
  // The add_member path needs the conversation's activity, which is stored too.
  must(db->add_member(10, 3));
  EXPECT_EQ(must(db->list_inbox(3, 10))[0].last_message_id, ids.back());
}

TEST(rocksdb_store, SecondOpenOfTheSameDirectoryThrows) {
  temp_dir dir;
  std::string path = (dir.path() / "db").string();
  auto first = open_at(path);
  EXPECT_THROW(open_at(path), std::runtime_error);
  first.reset();
  EXPECT_NO_THROW(open_at(path));  // the lock went with the first store
}

TEST(rocksdb_store, UnopenablePathThrows) {
  temp_dir dir;
  std::string file = (dir.path() / "a-file").string();
  { std::ofstream(file) << "x"; }
  EXPECT_THROW(open_at(file + "/db"), std::runtime_error);
}

TEST(rocksdb_store, OpensADirectoryWithColumnFamiliesItDoesNotKnow) {
  temp_dir dir;
  std::string path = (dir.path() / "db").string();
  open_at(path).reset();
  {
    // A newer version added a table.
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, cfs, &handles, &raw).ok());
    rocksdb::ColumnFamilyHandle* extra = nullptr;
    ASSERT_TRUE(raw->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "from_the_future", &extra).ok());
    handles.push_back(extra);
    for (auto* h : handles) ASSERT_TRUE(raw->DestroyColumnFamilyHandle(h).ok());
    delete raw;
  }
  auto db = open_at(path);
  participant p;
  p.id = 1;
  p.username = "bob";
  EXPECT_TRUE(db->create_participant(p).ok());
  EXPECT_EQ(must(db->find_participant(participant_kind::user, "bob")).id, 1u);
}

TEST(rocksdb_store, UndecodableValueIsInternalNotACrash) {
  temp_dir dir;
  std::string path = (dir.path() / "db").string();
  open_at(path).reset();
  {
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, cfs, &handles, &raw).ok());
    auto at = std::find(names.begin(), names.end(), "participants") - names.begin();
    ASSERT_LT(static_cast<std::size_t>(at), names.size());
    std::string key(8, '\0');
    key[7] = 5;                           // participant 5
    std::string value("\x02garbage", 8);  // a version this build does not know
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), handles[at], key, value).ok());
    key[7] = 6;
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), handles[at], key, std::string("\x01\x00", 2)).ok());  // truncated
    for (auto* h : handles) ASSERT_TRUE(raw->DestroyColumnFamilyHandle(h).ok());
    delete raw;
  }
  auto db = open_at(path);
  for (id_t id : {5, 6}) {
    auto p = db->get_participant(id);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.err().code, errc::internal);
  }
}

// A conversation row in the layout written before the creator was kept
// (version 1: id, kind, title, created_at, updated_at, last_message_id) still
// reads, with creator 0, and stays usable; a row written now keeps it.
TEST(rocksdb_store, ConversationWrittenBeforeTheCreatorReadsWithCreatorZero) {
  temp_dir dir;
  std::string path = (dir.path() / "db").string();
  open_at(path).reset();
  auto u64 = [](std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  };
  {
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, cfs, &handles, &raw).ok());
    auto at = std::find(names.begin(), names.end(), "conversations") - names.begin();
    ASSERT_LT(static_cast<std::size_t>(at), names.size());
    std::string key;
    u64(key, 900);
    std::string value(1, '\x01');  // value version 1
    u64(value, 900);
    value.push_back(1);                             // group
    value.append(std::string("\0\0\0\x03old", 7));  // title "old"
    u64(value, static_cast<std::uint64_t>(t0));     // created_at
    u64(value, static_cast<std::uint64_t>(t0));     // updated_at
    u64(value, 0);                                  // last_message_id
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), handles[at], key, value).ok());
    for (auto* h : handles) ASSERT_TRUE(raw->DestroyColumnFamilyHandle(h).ok());
    delete raw;
  }
  auto db = open_at(path);
  auto old = must(db->get_conversation(900));
  EXPECT_EQ(old.title, "old");
  EXPECT_EQ(old.created_at, t0);
  EXPECT_EQ(old.kind, conversation_kind::group);
  EXPECT_EQ(old.creator_id, 0u);
  must(db->add_member(900, 5));
  EXPECT_TRUE(must(db->is_member(900, 5)));
  EXPECT_EQ(must(db->get_conversation(900)).creator_id, 0u);

  conversation fresh;
  fresh.id = 901;
  fresh.title = "new";
  fresh.created_at = t0;
  fresh.creator_id = 5;
  must(db->create_conversation(fresh, {5}));
  db.reset();
  db = open_at(path);
  EXPECT_EQ(must(db->get_conversation(901)).creator_id, 5u);
  EXPECT_EQ(must(db->get_conversation(900)).creator_id, 0u);
}

// 8 writers x 2000 messages, each into its own conversation and every fourth
// into a shared one, while readers page the shared conversation. Nothing may
// be lost and every page must be in order.
TEST(rocksdb_store, ConcurrentWritersAndReadersLoseNothing) {
  temp_dir dir;
  auto db = open_at((dir.path() / "db").string());
  constexpr int writers = 8;
  constexpr int per_writer = 2000;
  constexpr id_t shared = 999;
  conversation sc;
  sc.id = shared;
  sc.created_at = t0;
  std::vector<id_t> everyone;
  for (int w = 0; w < writers; ++w) everyone.push_back(w + 1);
  must(db->create_conversation(sc, everyone));

  std::atomic<bool> writing{true};
  std::atomic<int> failures{0}, bad_pages{0}, pages_read{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      id_generator gen(static_cast<std::uint32_t>(w));
      for (int k = 0; k < per_writer; ++k) {
        std::int64_t at = t0 + static_cast<std::int64_t>(k) * 20 * 60 * 1000;  // ~28 days: 3-4 buckets
        id_t id = gen.next_at(at);
        id_t conv = k % 4 == 0 ? shared : 1000 + w;
        auto m = make_message(id, conv, w + 1);
        if (!db->claim_client_msg_id(conv, w + 1, m.client_msg_id, id).ok() || !db->put_message(m).ok() ||
            !db->touch_conversation(conv, m.created_at, id).ok() || !db->mark_read(w + 1, conv, id).ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      while (writing.load()) {
        auto page = db->list_messages(shared, 0, 50);
        if (!page) {
          failures.fetch_add(1);
          continue;
        }
        for (std::size_t i = 1; i < page->messages.size(); ++i) {
          if (page->messages[i - 1].id <= page->messages[i].id) bad_pages.fetch_add(1);
        }
        pages_read.fetch_add(1);
      }
    });
  }
  for (int w = 0; w < writers; ++w) threads[w].join();
  writing.store(false);
  for (std::size_t i = writers; i < threads.size(); ++i) threads[i].join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(bad_pages.load(), 0);
  EXPECT_GT(pages_read.load(), 0);

  for (int w = 0; w < writers; ++w) {
    auto own = must(db->list_messages_after(1000 + w, 0, 100000));
    EXPECT_EQ(own.size(), static_cast<std::size_t>(per_writer - per_writer / 4));
    for (std::size_t i = 1; i < own.size(); ++i) ASSERT_LT(own[i - 1].id, own[i].id);
  }
  // Page the shared conversation from the newest to the oldest.
  std::set<id_t> seen;
  id_t before = 0;
  id_t previous = ~0ULL;
  for (;;) {
    auto page = must(db->list_messages(shared, before, 50));
    for (const auto& m : page.messages) {
      ASSERT_LT(m.id, previous);
      previous = m.id;
      seen.insert(m.id);
    }
    if (!page.has_more) break;
    before = page.messages.back().id;
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(writers * per_writer / 4));
  EXPECT_EQ(must(db->count_messages_after(shared, 0, 0, 1000000)), seen.size());
  EXPECT_EQ(must(db->count_messages_after(shared, 0, 1, 1000000)), seen.size() - per_writer / 4);

  // Every member's inbox ended at the newest message of the shared conversation.
  id_t newest = *seen.rbegin();
  for (id_t p : everyone) {
    auto inbox = must(db->list_inbox(p, 100));
    ASSERT_EQ(inbox.size(), 1u);  // the writers' own conversations have no members
    EXPECT_EQ(inbox[0].last_message_id, newest);
    EXPECT_EQ(inbox[0].updated_at, id_timestamp_ms(newest));
  }
}

}  // namespace
}  // namespace chatd::store::testing
