#include "store_conformance.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "latch.h"
#include "store/node_lease.h"

namespace chatd::store::testing {
namespace {

using namespace std::chrono_literals;

// A fixed, realistic time (2024-07-03) so that buckets are predictable.
constexpr std::int64_t t0 = 1720000000000;
constexpr std::int64_t day_ms = 24 * 3600 * 1000;

template <class R>
::testing::AssertionResult is_ok(const R& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << code_name(r.err().code) << ": " << r.err().message;
}

template <class R>
::testing::AssertionResult fails_with(const R& r, errc code) {
  if (r.ok()) return ::testing::AssertionFailure() << "succeeded, expected " << code_name(code);
  if (r.err().code == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "failed with " << code_name(r.err().code) << " (" << r.err().message
                                       << "), expected " << code_name(code);
}

// The value of a result that must have succeeded; the exception makes the
// test fail with the store's error.
template <class T>
T must(result<T> r) {
  if (!r.ok()) {
    throw std::runtime_error("store call failed: " + std::string(code_name(r.err().code)) + ": " + r.err().message);
  }
  return std::move(r).value();
}

id_t id_at(std::int64_t ms, std::uint64_t seq = 0) { return id_floor_for_ms(ms) + seq; }

participant make_participant(id_t id, participant_kind kind, std::string username, std::string display_name) {
  participant p;
  p.id = id;
  p.kind = kind;
  p.username = std::move(username);
  p.display_name = std::move(display_name);
  p.description = "about " + p.username;
  p.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
  p.created_at = t0;
  return p;
}

conversation make_conversation(id_t id, conversation_kind kind = conversation_kind::group, std::int64_t at = t0) {
  conversation c;
  c.id = id;
  c.kind = kind;
  c.title = kind == conversation_kind::group ? "group " + std::to_string(id) : "";
  c.created_at = at;
  return c;
}

message make_message(id_t id, id_t conversation_id, id_t sender_id, std::string body = "") {
  message m;
  m.id = id;
  m.conversation_id = conversation_id;
  m.sender_id = sender_id;
  m.sender_kind = participant_kind::user;
  m.body = body.empty() ? "message " + std::to_string(id) : std::move(body);
  m.client_msg_id = "c-" + std::to_string(id);
  m.created_at = id_timestamp_ms(id);
  return m;
}

std::vector<id_t> ids_of(const std::vector<message>& v) {
  std::vector<id_t> out;
  for (const auto& m : v) out.push_back(m.id);
  return out;
}

std::vector<std::string> usernames(const std::vector<participant>& v) {
  std::vector<std::string> out;
  for (const auto& p : v) out.push_back(p.username);
  return out;
}

std::vector<id_t> sorted(std::vector<id_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<id_t> inbox_ids(const std::vector<inbox_entry>& v) {
  std::vector<id_t> out;
  for (const auto& e : v) out.push_back(e.conversation_id);
  return out;
}

// Runs `f(i)` on `n` threads released together, to make races likely.
template <class F>
void race(int n, F f) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      f(i);
    });
  }
  while (ready.load() < n) std::this_thread::yield();
  go.store(true);
  for (auto& t : threads) t.join();
}

// ============================================================ participants ===

TEST_P(StoreConformance, CreatedParticipantReadsBackWithEveryField) {
  auto p = make_participant(101, participant_kind::shop, "corner.shop", "Corner Shop — Ünïcode");
  p.created_at = t0 + 5;
  ASSERT_TRUE(is_ok(db().create_participant(p)));

  auto got = must(db().get_participant(101));
  EXPECT_EQ(got.id, 101u);
  EXPECT_EQ(got.kind, participant_kind::shop);
  EXPECT_EQ(got.username, "corner.shop");
  EXPECT_EQ(got.display_name, "Corner Shop — Ünïcode");
  EXPECT_EQ(got.description, p.description);
  EXPECT_EQ(got.password_hash, p.password_hash);
  EXPECT_FALSE(got.banned);
  EXPECT_EQ(got.created_at, t0 + 5);
}

TEST_P(StoreConformance, UnknownParticipantIsNotFound) {
  EXPECT_TRUE(fails_with(db().get_participant(999), errc::not_found));
  EXPECT_TRUE(fails_with(db().find_participant(participant_kind::user, "nobody"), errc::not_found));
}

TEST_P(StoreConformance, FindParticipantUsesKindAndUsername) {
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(1, participant_kind::user, "alice", "Alice"))));
  EXPECT_EQ(must(db().find_participant(participant_kind::user, "alice")).id, 1u);
  EXPECT_TRUE(fails_with(db().find_participant(participant_kind::shop, "alice"), errc::not_found));
  EXPECT_TRUE(fails_with(db().find_participant(participant_kind::user, "alic"), errc::not_found));
  EXPECT_TRUE(fails_with(db().find_participant(participant_kind::user, "alice2"), errc::not_found));
}

TEST_P(StoreConformance, TakenUsernameIsConflictPerKindAndWritesNothing) {
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(1, participant_kind::user, "alice", "Alice"))));
  EXPECT_TRUE(fails_with(db().create_participant(make_participant(2, participant_kind::user, "alice", "Other")),
                         errc::conflict));
  EXPECT_TRUE(fails_with(db().get_participant(2), errc::not_found));
  EXPECT_EQ(must(db().search_participants(participant_kind::user, "oth", 10)).size(), 0u);

  // The same username as another kind is a different participant.
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(3, participant_kind::shop, "alice", "Alice's"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(4, participant_kind::admin, "alice", "Admin"))));
  EXPECT_EQ(must(db().find_participant(participant_kind::user, "alice")).id, 1u);
  EXPECT_EQ(must(db().find_participant(participant_kind::shop, "alice")).id, 3u);
  EXPECT_EQ(must(db().find_participant(participant_kind::admin, "alice")).id, 4u);
}

TEST_P(StoreConformance, ConcurrentRegistrationsOfOneUsernameHaveOneWinner) {
  std::atomic<int> created{0}, conflicts{0};
  race(8, [&](int i) {
    auto s = db().create_participant(make_participant(200 + i, participant_kind::user, "racer", "Racer"));
    if (s) {
      created.fetch_add(1);
    } else if (s.err().code == errc::conflict) {
      conflicts.fetch_add(1);
    }
  });
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(conflicts.load(), 7);
  auto winner = must(db().find_participant(participant_kind::user, "racer"));
  EXPECT_GE(winner.id, 200u);
  EXPECT_LT(winner.id, 208u);
}

TEST_P(StoreConformance, SearchMatchesUsernamePrefixInUsernameOrder) {
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(1, participant_kind::user, "annabel", "Zed"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(2, participant_kind::user, "ann", "Yves"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(3, participant_kind::user, "anna", "Xavier"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(4, participant_kind::user, "bob", "Will"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(5, participant_kind::shop, "annex", "Annex"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(6, participant_kind::user, "an", "Vic"))));

  auto found = must(db().search_participants(participant_kind::user, "ann", 10));
  EXPECT_EQ(usernames(found), (std::vector<std::string>{"ann", "anna", "annabel"}));
  EXPECT_EQ(found[1].id, 3u);
  EXPECT_EQ(found[1].display_name, "Xavier");

  EXPECT_EQ(usernames(must(db().search_participants(participant_kind::shop, "ann", 10))),
            (std::vector<std::string>{"annex"}));
  EXPECT_TRUE(must(db().search_participants(participant_kind::admin, "ann", 10)).empty());
  EXPECT_TRUE(must(db().search_participants(participant_kind::user, "carl", 10)).empty());
}

TEST_P(StoreConformance, SearchMatchesDisplayNamePrefixCaseInsensitively) {
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(1, participant_kind::shop, "s_one", "Green Grocer"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(2, participant_kind::shop, "s_two", "greenhouse"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(3, participant_kind::shop, "s_three", "Grey Goods"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(4, participant_kind::shop, "s_four", "Émile's Café"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(5, participant_kind::user, "u_green", "Green"))));

  EXPECT_EQ(usernames(must(db().search_participants(participant_kind::shop, "green", 10))),
            (std::vector<std::string>{"s_one", "s_two"}));
  EXPECT_EQ(usernames(must(db().search_participants(participant_kind::shop, "GREEN", 10))),
            (std::vector<std::string>{"s_one", "s_two"}));
  EXPECT_EQ(usernames(must(db().search_participants(participant_kind::shop, "gre", 10))),
            (std::vector<std::string>{"s_one", "s_three", "s_two"}));
  EXPECT_EQ(usernames(must(db().search_participants(participant_kind::shop, "émi", 10))),
            (std::vector<std::string>{"s_four"}));
  EXPECT_EQ(usernames(must(db().search_participants(participant_kind::shop, "ÉMILE", 10))),
            (std::vector<std::string>{"s_four"}));
  // A prefix longer than the display name does not match it.
  EXPECT_TRUE(must(db().search_participants(participant_kind::shop, "green grocery", 10)).empty());
}

TEST_P(StoreConformance, SearchDedupesAndKeepsTheSmallestUsernamesUnderTheLimit) {
  // "shop_a" matches by username and by display name: listed once.
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(1, participant_kind::shop, "shop_a", "Shop A"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(2, participant_kind::shop, "shop_b", "Bee"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(3, participant_kind::shop, "aaa", "Shopping Mall"))));
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(4, participant_kind::shop, "zzz", "shopfront"))));

  EXPECT_EQ(usernames(must(db().search_participants(participant_kind::shop, "shop", 10))),
            (std::vector<std::string>{"aaa", "shop_a", "shop_b", "zzz"}));
  EXPECT_EQ(usernames(must(db().search_participants(participant_kind::shop, "shop", 2))),
            (std::vector<std::string>{"aaa", "shop_a"}));
  EXPECT_EQ(usernames(must(db().search_participants(participant_kind::shop, "shop", 1))),
            (std::vector<std::string>{"aaa"}));
  EXPECT_TRUE(must(db().search_participants(participant_kind::shop, "shop", 0)).empty());
}

TEST_P(StoreConformance, BanFlagIsStoredAndReversible) {
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(7, participant_kind::user, "mallory", "Mallory"))));
  ASSERT_TRUE(is_ok(db().set_banned(7, true)));
  EXPECT_TRUE(must(db().get_participant(7)).banned);
  EXPECT_TRUE(must(db().find_participant(participant_kind::user, "mallory")).banned);
  ASSERT_TRUE(is_ok(db().set_banned(7, true)));  // idempotent
  EXPECT_TRUE(must(db().get_participant(7)).banned);
  ASSERT_TRUE(is_ok(db().set_banned(7, false)));
  auto p = must(db().get_participant(7));
  EXPECT_FALSE(p.banned);
  EXPECT_EQ(p.username, "mallory");  // the rest of the row survives
  EXPECT_EQ(p.display_name, "Mallory");
  EXPECT_TRUE(fails_with(db().set_banned(8, true), errc::not_found));
}

TEST_P(StoreConformance, PasswordHashIsReplacedAndTheRestKept) {
  ASSERT_TRUE(is_ok(db().create_participant(make_participant(9, participant_kind::shop, "rehash", "Re Hash"))));
  ASSERT_TRUE(is_ok(db().set_banned(9, true)));
  ASSERT_TRUE(is_ok(db().set_password_hash(9, "$argon2id$v=19$m=65536,t=2,p=1$new")));
  auto p = must(db().get_participant(9));
  EXPECT_EQ(p.password_hash, "$argon2id$v=19$m=65536,t=2,p=1$new");
  EXPECT_EQ(must(db().find_participant(participant_kind::shop, "rehash")).password_hash, p.password_hash);
  EXPECT_EQ(p.username, "rehash");
  EXPECT_EQ(p.display_name, "Re Hash");
  EXPECT_TRUE(p.banned);
  EXPECT_TRUE(fails_with(db().set_password_hash(10, "x"), errc::not_found));
  EXPECT_TRUE(fails_with(db().get_participant(10), errc::not_found));  // and no row appeared
}

// =========================================================== conversations ===

TEST_P(StoreConformance, CreatedConversationReadsBackWithMembers) {
  auto c = make_conversation(500, conversation_kind::group, t0 + 7);
  c.title = "Weekend plans 🎉";
  c.creator_id = 3;
  ASSERT_TRUE(is_ok(db().create_conversation(c, {3, 1, 2})));
  auto got = must(db().get_conversation(500));
  EXPECT_EQ(got.id, 500u);
  EXPECT_EQ(got.kind, conversation_kind::group);
  EXPECT_EQ(got.title, "Weekend plans 🎉");
  EXPECT_EQ(got.created_at, t0 + 7);
  EXPECT_EQ(got.creator_id, 3u);
  EXPECT_EQ(sorted(must(db().list_members(500))), (std::vector<id_t>{1, 2, 3}));
  EXPECT_TRUE(must(db().is_member(500, 2)));
  EXPECT_FALSE(must(db().is_member(500, 4)));
}

TEST_P(StoreConformance, UnknownConversationIsNotFoundAndHasNoMembers) {
  EXPECT_TRUE(fails_with(db().get_conversation(404), errc::not_found));
  EXPECT_TRUE(must(db().list_members(404)).empty());
  EXPECT_FALSE(must(db().is_member(404, 1)));
  EXPECT_TRUE(fails_with(db().add_member(404, 1), errc::not_found));
  EXPECT_FALSE(must(db().is_member(404, 1)));
}

TEST_P(StoreConformance, CreateConversationIsIdempotentForTheSameId) {
  auto c = make_conversation(501);
  ASSERT_TRUE(is_ok(db().create_conversation(c, {1, 2})));
  ASSERT_TRUE(is_ok(db().create_conversation(c, {1, 2})));
  EXPECT_EQ(sorted(must(db().list_members(501))), (std::vector<id_t>{1, 2}));
  EXPECT_EQ(inbox_ids(must(db().list_inbox(1, 10))), (std::vector<id_t>{501}));
  // A duplicated member in the list is one member.
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(502), {5, 5, 6})));
  EXPECT_EQ(sorted(must(db().list_members(502))), (std::vector<id_t>{5, 6}));
}

TEST_P(StoreConformance, AddMemberJoinsOnce) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(510), {1, 2})));
  ASSERT_TRUE(is_ok(db().add_member(510, 3)));
  EXPECT_TRUE(must(db().is_member(510, 3)));
  ASSERT_TRUE(is_ok(db().add_member(510, 3)));
  ASSERT_TRUE(is_ok(db().add_member(510, 1)));
  EXPECT_EQ(sorted(must(db().list_members(510))), (std::vector<id_t>{1, 2, 3}));
  EXPECT_EQ(must(db().list_inbox(3, 10)).size(), 1u);
  EXPECT_EQ(must(db().list_inbox(1, 10)).size(), 1u);
}

TEST_P(StoreConformance, MembershipReadsFollowEveryChange) {
  // Read first, so a store that remembers what it read must see the change.
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(511), {1, 2})));
  EXPECT_FALSE(must(db().is_member(511, 3)));
  EXPECT_EQ(sorted(must(db().list_members(511))), (std::vector<id_t>{1, 2}));
  ASSERT_TRUE(is_ok(db().add_member(511, 3)));
  EXPECT_TRUE(must(db().is_member(511, 3)));
  EXPECT_EQ(sorted(must(db().list_members(511))), (std::vector<id_t>{1, 2, 3}));
  // Activity does not change the members, and the members do not undo it.
  ASSERT_TRUE(is_ok(db().touch_conversation(511, t0 + 10, id_at(t0 + 10))));
  EXPECT_EQ(sorted(must(db().list_members(511))), (std::vector<id_t>{1, 2, 3}));
  ASSERT_TRUE(is_ok(db().add_member(511, 4)));
  EXPECT_EQ(must(db().list_inbox(4, 10)).at(0).last_message_id, id_at(t0 + 10));
  EXPECT_EQ(must(db().get_conversation(511)).title, "group 511");
}

TEST_P(StoreConformance, ConversationKeepsItsCreatorThroughJoinsAndActivity) {
  auto g = make_conversation(513);
  g.creator_id = 2;
  ASSERT_TRUE(is_ok(db().create_conversation(g, {1, 2})));
  EXPECT_EQ(must(db().get_conversation(513)).creator_id, 2u);
  // Neither a join, nor activity, nor a replayed create with another
  // creator rewrites who created it.
  ASSERT_TRUE(is_ok(db().add_member(513, 3)));
  ASSERT_TRUE(is_ok(db().touch_conversation(513, t0 + 10, id_at(t0 + 10))));
  auto replay = g;
  replay.creator_id = 3;
  ASSERT_TRUE(is_ok(db().create_conversation(replay, {1, 2})));
  EXPECT_EQ(must(db().get_conversation(513)).creator_id, 2u);
  // Unknown (0) reads back as unknown.
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(514), {1})));
  EXPECT_EQ(must(db().get_conversation(514)).creator_id, 0u);
  // A direct pair answers with the creator of the conversation that exists.
  auto d = make_conversation(610, conversation_kind::direct);
  d.creator_id = 11;
  auto first = must(db().create_direct(d, 11, 12));
  EXPECT_EQ(first.first.creator_id, 11u);
  auto d2 = make_conversation(611, conversation_kind::direct);
  d2.creator_id = 12;
  auto again = must(db().create_direct(d2, 12, 11));
  EXPECT_FALSE(again.second);
  EXPECT_EQ(again.first.id, 610u);
  EXPECT_EQ(again.first.creator_id, 11u);
  EXPECT_EQ(must(db().get_conversation(610)).creator_id, 11u);
}

TEST_P(StoreConformance, ConcurrentJoinsAndReadsEndWithEveryMember) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(512), {1})));
  race(8, [&](int i) {
    // Half join, half read while they do.
    for (int k = 0; k < 10; ++k) {
      if (i % 2 == 0) {
        (void)db().add_member(512, 100 + static_cast<id_t>(i * 10 + k));
      } else {
        (void)db().is_member(512, 100 + static_cast<id_t>((i - 1) * 10 + k));
        (void)db().list_members(512);
      }
    }
  });
  auto members = must(db().list_members(512));
  EXPECT_EQ(members.size(), 41u);
  for (int i = 0; i < 8; i += 2) {
    for (int k = 0; k < 10; ++k) EXPECT_TRUE(must(db().is_member(512, 100 + static_cast<id_t>(i * 10 + k))));
  }
}

TEST_P(StoreConformance, DirectConversationIsUniquePerPairInEitherOrder) {
  auto first = must(db().create_direct(make_conversation(600, conversation_kind::direct), 11, 12));
  EXPECT_TRUE(first.second);
  EXPECT_EQ(first.first.id, 600u);
  EXPECT_EQ(first.first.kind, conversation_kind::direct);

  auto again = must(db().create_direct(make_conversation(601, conversation_kind::direct), 12, 11));
  EXPECT_FALSE(again.second);
  EXPECT_EQ(again.first.id, 600u);
  EXPECT_EQ(again.first.kind, conversation_kind::direct);
  auto same_order = must(db().create_direct(make_conversation(602, conversation_kind::direct), 11, 12));
  EXPECT_FALSE(same_order.second);
  EXPECT_EQ(same_order.first.id, 600u);

  EXPECT_TRUE(fails_with(db().get_conversation(601), errc::not_found));
  EXPECT_EQ(must(db().get_conversation(600)).kind, conversation_kind::direct);
  EXPECT_EQ(sorted(must(db().list_members(600))), (std::vector<id_t>{11, 12}));
  EXPECT_EQ(inbox_ids(must(db().list_inbox(11, 10))), (std::vector<id_t>{600}));
  EXPECT_EQ(inbox_ids(must(db().list_inbox(12, 10))), (std::vector<id_t>{600}));

  // Another pair sharing one participant is another conversation.
  auto other = must(db().create_direct(make_conversation(603, conversation_kind::direct), 11, 13));
  EXPECT_TRUE(other.second);
  EXPECT_EQ(other.first.id, 603u);
}

TEST_P(StoreConformance, ConcurrentCreateDirectMakesOneConversation) {
  std::vector<id_t> got(8);
  std::atomic<int> created{0}, failed{0};
  race(8, [&](int i) {
    // Half the threads name the pair the other way round.
    auto r = i % 2 ? db().create_direct(make_conversation(700 + i, conversation_kind::direct), 21, 22)
                   : db().create_direct(make_conversation(700 + i, conversation_kind::direct), 22, 21);
    if (!r) {
      failed.fetch_add(1);
      return;
    }
    got[i] = r->first.id;
    if (r->second) created.fetch_add(1);
  });
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(created.load(), 1);
  std::set<id_t> distinct(got.begin(), got.end());
  ASSERT_EQ(distinct.size(), 1u);
  id_t winner = *distinct.begin();
  EXPECT_EQ(sorted(must(db().list_members(winner))), (std::vector<id_t>{21, 22}));
  EXPECT_EQ(inbox_ids(must(db().list_inbox(21, 10))), (std::vector<id_t>{winner}));
  for (int i = 0; i < 8; ++i) {
    if (700u + i != winner) {
      EXPECT_TRUE(fails_with(db().get_conversation(700 + i), errc::not_found));
    }
  }
}

// =================================================================== inbox ===

TEST_P(StoreConformance, NewConversationEntersEachInboxAtItsCreationTime) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(800, conversation_kind::group, t0 + 100), {1, 2})));
  auto inbox = must(db().list_inbox(2, 10));
  ASSERT_EQ(inbox.size(), 1u);
  EXPECT_EQ(inbox[0].conversation_id, 800u);
  EXPECT_EQ(inbox[0].updated_at, t0 + 100);
  EXPECT_EQ(inbox[0].last_message_id, 0u);
  EXPECT_TRUE(must(db().list_inbox(3, 10)).empty());
}

TEST_P(StoreConformance, InboxIsOrderedByLastActivity) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(801, conversation_kind::group, t0 + 1), {1, 2})));
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(802, conversation_kind::group, t0 + 2), {1, 3})));
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(803, conversation_kind::group, t0 + 3), {1})));
  EXPECT_EQ(inbox_ids(must(db().list_inbox(1, 10))), (std::vector<id_t>{803, 802, 801}));

  id_t m = id_at(t0 + 10);
  ASSERT_TRUE(is_ok(db().touch_conversation(801, t0 + 10, m)));
  auto inbox = must(db().list_inbox(1, 10));
  EXPECT_EQ(inbox_ids(inbox), (std::vector<id_t>{801, 803, 802}));
  EXPECT_EQ(inbox[0].updated_at, t0 + 10);
  EXPECT_EQ(inbox[0].last_message_id, m);

  // Every member's inbox moves, and only theirs.
  auto of2 = must(db().list_inbox(2, 10));
  ASSERT_EQ(of2.size(), 1u);
  EXPECT_EQ(of2[0].updated_at, t0 + 10);
  EXPECT_EQ(of2[0].last_message_id, m);
  EXPECT_EQ(must(db().list_inbox(3, 10))[0].updated_at, t0 + 2);

  EXPECT_EQ(inbox_ids(must(db().list_inbox(1, 2))), (std::vector<id_t>{801, 803}));
  EXPECT_TRUE(must(db().list_inbox(1, 0)).empty());
}

// Activity in one millisecond is ordered by its snowflake id: a conversation
// that got a message sits above an empty one created earlier in that ms.
TEST_P(StoreConformance, InboxTiesWithinAMillisecondFollowTheIds) {
  const id_t older = id_at(t0 + 7);
  const id_t newer = older + 1;    // created later in the same millisecond
  const id_t message = older + 2;  // a message in `older`, later still
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(older, conversation_kind::group, t0 + 7), {1})));
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(newer, conversation_kind::group, t0 + 7), {1})));
  EXPECT_EQ(inbox_ids(must(db().list_inbox(1, 10))), (std::vector<id_t>{newer, older}));
  ASSERT_TRUE(is_ok(db().touch_conversation(older, t0 + 7, message)));
  EXPECT_EQ(inbox_ids(must(db().list_inbox(1, 10))), (std::vector<id_t>{older, newer}));
}

TEST_P(StoreConformance, TouchOnlyMovesForward) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(810, conversation_kind::group, t0), {1})));
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(811, conversation_kind::group, t0 + 50), {1})));
  id_t late = id_at(t0 + 100);
  id_t early = id_at(t0 + 20);
  ASSERT_TRUE(is_ok(db().touch_conversation(810, t0 + 100, late)));
  ASSERT_TRUE(is_ok(db().touch_conversation(810, t0 + 20, early)));  // a replay from the past
  ASSERT_TRUE(is_ok(db().touch_conversation(810, t0 + 100, late)));  // the same again
  auto inbox = must(db().list_inbox(1, 10));
  ASSERT_EQ(inbox.size(), 2u);  // no stale entries left behind
  EXPECT_EQ(inbox[0].conversation_id, 810u);
  EXPECT_EQ(inbox[0].updated_at, t0 + 100);
  EXPECT_EQ(inbox[0].last_message_id, late);
  EXPECT_EQ(inbox[1].conversation_id, 811u);
}

TEST_P(StoreConformance, ConcurrentTouchesKeepTheNewest) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(815), {1, 2, 3})));
  race(8, [&](int i) {
    for (int k = 0; k < 20; ++k) {
      std::int64_t at = t0 + 1000 + ((k * 8 + i) * 7919) % 160;  // a shuffled 0..159
      (void)db().touch_conversation(815, at, id_at(at));
    }
  });
  for (id_t p : {1, 2, 3}) {
    auto inbox = must(db().list_inbox(p, 10));
    ASSERT_EQ(inbox.size(), 1u);
    EXPECT_EQ(inbox[0].updated_at, t0 + 1000 + 159);
    EXPECT_EQ(inbox[0].last_message_id, id_at(t0 + 1000 + 159));
  }
}

// Moving a conversation in an inbox (new activity) is one change to readers:
// a listing finds it at its old place or its new one, never missing.
TEST_P(StoreConformance, AMovingInboxEntryIsNeverMissing) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(816), {1, 2})));
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, missing{0};
  std::thread reader([&] {
    while (!done) {
      auto inbox = db().list_inbox(2, 10);
      if (!inbox) continue;
      ++reads;
      if (std::none_of(inbox->begin(), inbox->end(), [](const auto& e) { return e.conversation_id == 816u; })) {
        ++missing;
      }
    }
  });
  int failed_touches = 0;
  for (int k = 1; k <= 300; ++k) {
    if (!is_ok(db().touch_conversation(816, t0 + 1000 + k, id_at(t0 + 1000 + k)))) ++failed_touches;
  }
  done = true;
  reader.join();
  EXPECT_EQ(failed_touches, 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(missing.load(), 0) << "of " << reads.load() << " listings";
}

TEST_P(StoreConformance, AddedMemberGetsAnInboxEntryAtTheLastActivity) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(820, conversation_kind::group, t0), {1})));
  ASSERT_TRUE(is_ok(db().add_member(820, 2)));
  auto before_activity = must(db().list_inbox(2, 10));
  ASSERT_EQ(before_activity.size(), 1u);
  EXPECT_EQ(before_activity[0].updated_at, t0);
  EXPECT_EQ(before_activity[0].last_message_id, 0u);

  id_t m = id_at(t0 + 500);
  ASSERT_TRUE(is_ok(db().touch_conversation(820, t0 + 500, m)));
  ASSERT_TRUE(is_ok(db().add_member(820, 3)));
  auto inbox = must(db().list_inbox(3, 10));
  ASSERT_EQ(inbox.size(), 1u);
  EXPECT_EQ(inbox[0].conversation_id, 820u);
  EXPECT_EQ(inbox[0].updated_at, t0 + 500);
  EXPECT_EQ(inbox[0].last_message_id, m);
}

TEST_P(StoreConformance, TouchingAnUnknownConversationChangesNothing) {
  EXPECT_TRUE(is_ok(db().touch_conversation(899, t0, id_at(t0))));
  EXPECT_TRUE(fails_with(db().get_conversation(899), errc::not_found));
}

// ================================================================ messages ===

TEST_P(StoreConformance, PutMessageReadsBackWithEveryField) {
  auto m = make_message(id_at(t0, 1), 900, 1, "hello 👋 wörld");
  m.sender_kind = participant_kind::shop;
  m.client_msg_id = "client-1";
  m.created_at = t0 + 3;
  ASSERT_TRUE(is_ok(db().put_message(m)));
  auto got = must(db().get_message(m.id));
  EXPECT_EQ(got.id, m.id);
  EXPECT_EQ(got.conversation_id, 900u);
  EXPECT_EQ(got.sender_id, 1u);
  EXPECT_EQ(got.sender_kind, participant_kind::shop);
  EXPECT_EQ(got.body, "hello 👋 wörld");
  EXPECT_EQ(got.client_msg_id, "client-1");
  EXPECT_EQ(got.created_at, t0 + 3);
  EXPECT_EQ(got.edited_at, 0);
  EXPECT_FALSE(got.deleted);
  EXPECT_TRUE(fails_with(db().get_message(m.id + 1), errc::not_found));
}

TEST_P(StoreConformance, PutMessageUpsertsEditsAndDeletes) {
  auto m = make_message(id_at(t0, 1), 901, 1, "first");
  ASSERT_TRUE(is_ok(db().put_message(m)));
  ASSERT_TRUE(is_ok(db().put_message(m)));  // a replay stores nothing new
  m.body = "edited";
  m.edited_at = t0 + 60000;
  ASSERT_TRUE(is_ok(db().put_message(m)));
  auto got = must(db().get_message(m.id));
  EXPECT_EQ(got.body, "edited");
  EXPECT_EQ(got.edited_at, t0 + 60000);

  m.body.clear();
  m.deleted = true;
  ASSERT_TRUE(is_ok(db().put_message(m)));
  got = must(db().get_message(m.id));
  EXPECT_TRUE(got.deleted);
  EXPECT_EQ(got.body, "");

  auto page = must(db().list_messages(901, 0, 10));
  ASSERT_EQ(page.messages.size(), 1u);
  EXPECT_TRUE(page.messages[0].deleted);
  EXPECT_FALSE(page.has_more);
}

TEST_P(StoreConformance, InsertMessageStoresANewMessage) {
  auto m = make_message(id_at(t0, 2), 902, 1, "first words");
  m.sender_kind = participant_kind::shop;
  ASSERT_TRUE(is_ok(db().insert_message(m)));
  auto got = must(db().get_message(m.id));
  EXPECT_EQ(got.id, m.id);
  EXPECT_EQ(got.conversation_id, 902u);
  EXPECT_EQ(got.sender_id, 1u);
  EXPECT_EQ(got.sender_kind, participant_kind::shop);
  EXPECT_EQ(got.body, "first words");
  EXPECT_EQ(got.client_msg_id, m.client_msg_id);
  EXPECT_EQ(got.created_at, m.created_at);
  EXPECT_EQ(got.edited_at, 0);
  EXPECT_FALSE(got.deleted);
  EXPECT_EQ(ids_of(must(db().list_messages(902, 0, 10)).messages), std::vector<id_t>{m.id});
  EXPECT_EQ(ids_of(must(db().list_messages_after(902, 0, 10))), std::vector<id_t>{m.id});
}

TEST_P(StoreConformance, InsertMessageTwiceIsIdempotent) {
  auto m = make_message(id_at(t0, 3), 903, 1, "once");
  ASSERT_TRUE(is_ok(db().insert_message(m)));
  ASSERT_TRUE(is_ok(db().insert_message(m)));
  auto got = must(db().get_message(m.id));
  EXPECT_EQ(got.body, "once");
  EXPECT_EQ(got.edited_at, 0);
  auto page = must(db().list_messages(903, 0, 10));
  EXPECT_EQ(ids_of(page.messages), std::vector<id_t>{m.id});
  EXPECT_FALSE(page.has_more);
  EXPECT_EQ(must(db().count_messages_after(903, 0, 2, 10)), 1u);
}

// The original arrives after an edit was stored (the main chat service
// stored and edited it before the accepting chat server's insert landed).
TEST_P(StoreConformance, InsertMessageKeepsAStoredEdit) {
  auto m = make_message(id_at(t0, 4), 904, 1, "zz original");
  auto edited = m;
  edited.body = "aa edited";
  edited.edited_at = m.created_at + 60000;
  ASSERT_TRUE(is_ok(db().put_message(edited)));
  ASSERT_TRUE(is_ok(db().insert_message(m)));
  auto got = must(db().get_message(m.id));
  EXPECT_EQ(got.body, "aa edited");
  EXPECT_EQ(got.edited_at, m.created_at + 60000);
  EXPECT_FALSE(got.deleted);

  // Also when the editing server's clock is behind the one that minted the
  // id: the edit's time is not after the creation time.
  for (std::int64_t skew : {0, 5000}) {
    auto o = make_message(id_at(t0 + 1000 + skew, 1), 904, 1, "zz original " + std::to_string(skew));
    auto e = o;
    e.body = "aa edited " + std::to_string(skew);
    e.edited_at = o.created_at - skew;
    ASSERT_TRUE(is_ok(db().put_message(e)));
    ASSERT_TRUE(is_ok(db().insert_message(o)));
    got = must(db().get_message(o.id));
    EXPECT_EQ(got.body, e.body) << "skew " << skew;
    EXPECT_EQ(got.edited_at, e.edited_at) << "skew " << skew;
  }
  // An insert after the original was stored and then edited changes nothing either.
  auto later = make_message(id_at(t0 + 9000, 1), 904, 1, "zz later");
  ASSERT_TRUE(is_ok(db().insert_message(later)));
  auto later_edit = later;
  later_edit.body = "aa later edited";
  later_edit.edited_at = later.created_at + 10;
  ASSERT_TRUE(is_ok(db().put_message(later_edit)));
  ASSERT_TRUE(is_ok(db().insert_message(later)));
  EXPECT_EQ(must(db().get_message(later.id)).body, "aa later edited");
  EXPECT_EQ(must(db().list_messages(904, 0, 10)).messages.size(), 4u);
}

TEST_P(StoreConformance, InsertMessageKeepsAStoredDelete) {
  auto m = make_message(id_at(t0, 5), 905, 1, "regrettable");
  auto deleted = m;
  deleted.body.clear();
  deleted.deleted = true;
  deleted.edited_at = m.created_at;  // deleted within the millisecond it was sent
  ASSERT_TRUE(is_ok(db().put_message(deleted)));
  ASSERT_TRUE(is_ok(db().insert_message(m)));
  auto got = must(db().get_message(m.id));
  EXPECT_TRUE(got.deleted);
  EXPECT_EQ(got.body, "");
  EXPECT_EQ(must(db().count_messages_after(905, 0, 2, 10)), 0u);
  auto page = must(db().list_messages(905, 0, 10));
  ASSERT_EQ(page.messages.size(), 1u);
  EXPECT_TRUE(page.messages[0].deleted);
}

// The accepting chat server's insert races with the main chat service's
// store and an edit: whatever the interleaving, the edit stays.
TEST_P(StoreConformance, ConcurrentInsertsNeverUndoEdits) {
  constexpr int n = 40;
  std::vector<message> originals;
  for (int k = 0; k < n; ++k) originals.push_back(make_message(id_at(t0 + k, 0), 906, 1, "zz original"));
  race(3, [&](int t) {
    for (int k = 0; k < n; ++k) {
      const auto& o = originals[t == 0 ? k : n - 1 - k];
      if (t == 2) {
        auto e = o;
        e.body = "aa edited";
        e.edited_at = o.created_at + 1;
        if (!db().put_message(e)) throw std::runtime_error("put_message failed");
      } else if (!db().insert_message(o)) {
        throw std::runtime_error("insert_message failed");
      }
    }
  });
  for (const auto& o : originals) {
    auto got = must(db().get_message(o.id));
    EXPECT_EQ(got.body, "aa edited") << o.id;
    EXPECT_EQ(got.edited_at, o.created_at + 1) << o.id;
  }
  EXPECT_EQ(must(db().list_messages(906, 0, 100)).messages.size(), static_cast<std::size_t>(n));
}

// Three messages in each of four buckets with an empty bucket between the
// second and the third (t0 + 25 days falls in it), plus noise in the next
// conversation; returns the ids oldest first.
std::vector<id_t> fill_buckets(chat_store& db, id_t conv) {
  std::vector<id_t> ids;
  for (std::int64_t start : {t0, t0 + 11 * day_ms, t0 + 33 * day_ms, t0 + 45 * day_ms}) {
    for (int k = 0; k < 3; ++k) {
      id_t id = id_at(start + k * 1000, k);
      ids.push_back(id);
      if (!db.put_message(make_message(id, conv, k % 2 ? 2 : 1))) throw std::runtime_error("put_message failed");
      if (!db.put_message(make_message(id + 1, conv + 1, 1))) throw std::runtime_error("put_message failed");
    }
  }
  return ids;
}

TEST_P(StoreConformance, MessagesSpanSeveralBuckets) {
  auto ids = fill_buckets(db(), 910);
  std::set<std::uint32_t> buckets;
  for (auto id : ids) buckets.insert(message_bucket(id));
  EXPECT_EQ(buckets.size(), 4u);  // the tests below rely on these
  EXPECT_EQ(buckets.count(message_bucket(id_at(t0 + 25 * day_ms))), 0u);
  EXPECT_GT(message_bucket(id_at(t0 + 25 * day_ms)), message_bucket(ids[5]));
  EXPECT_LT(message_bucket(id_at(t0 + 25 * day_ms)), message_bucket(ids[6]));
}

TEST_P(StoreConformance, ListMessagesPagesNewestFirstAcrossBuckets) {
  auto ids = fill_buckets(db(), 910);
  std::vector<id_t> newest_first(ids.rbegin(), ids.rend());

  auto page = must(db().list_messages(910, 0, 5));
  EXPECT_EQ(ids_of(page.messages), std::vector<id_t>(newest_first.begin(), newest_first.begin() + 5));
  EXPECT_TRUE(page.has_more);
  for (const auto& m : page.messages) EXPECT_EQ(m.conversation_id, 910u);

  // Walk every page with `before`.
  std::vector<id_t> all;
  id_t before = 0;
  int pages = 0;
  for (;;) {
    auto p = must(db().list_messages(910, before, 5));
    ++pages;
    for (const auto& m : p.messages) all.push_back(m.id);
    if (!p.has_more) break;
    ASSERT_FALSE(p.messages.empty());
    before = p.messages.back().id;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(all, newest_first);
  EXPECT_EQ(pages, 3);

  // has_more is about older messages only.
  EXPECT_FALSE(must(db().list_messages(910, 0, 12)).has_more);
  EXPECT_EQ(must(db().list_messages(910, 0, 12)).messages.size(), 12u);
  EXPECT_TRUE(must(db().list_messages(910, 0, 11)).has_more);
  EXPECT_FALSE(must(db().list_messages(910, 0, 100)).has_more);
}

TEST_P(StoreConformance, ListMessagesBeforeAnyIdAndInEmptyStretches) {
  auto ids = fill_buckets(db(), 910);
  // Before the newest message of the third bucket.
  auto page = must(db().list_messages(910, ids[8], 4));
  EXPECT_EQ(ids_of(page.messages), (std::vector<id_t>{ids[7], ids[6], ids[5], ids[4]}));
  EXPECT_TRUE(page.has_more);

  // `before` need not be a stored id: here it falls in a bucket with no messages.
  page = must(db().list_messages(910, id_at(t0 + 25 * day_ms), 10));
  EXPECT_EQ(ids_of(page.messages), (std::vector<id_t>{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}));
  EXPECT_FALSE(page.has_more);

  // Inside a bucket but older than all of its messages.
  page = must(db().list_messages(910, ids[6] - 1, 2));
  EXPECT_EQ(ids_of(page.messages), (std::vector<id_t>{ids[5], ids[4]}));
  EXPECT_TRUE(page.has_more);

  // Before the oldest: nothing.
  page = must(db().list_messages(910, ids[0], 10));
  EXPECT_TRUE(page.messages.empty());
  EXPECT_FALSE(page.has_more);

  // Far in the future: everything.
  page = must(db().list_messages(910, id_at(t0 + 900 * day_ms), 3));
  EXPECT_EQ(ids_of(page.messages), (std::vector<id_t>{ids[11], ids[10], ids[9]}));
  EXPECT_TRUE(page.has_more);
}

TEST_P(StoreConformance, NewestMessageIdFollowsEveryWrite) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(915), {1, 2})));
  EXPECT_EQ(must(db().newest_message_id(915)), 0u);
  id_t a = id_at(t0 + 100);
  ASSERT_TRUE(is_ok(db().insert_message(make_message(a, 915, 1))));
  EXPECT_EQ(must(db().newest_message_id(915)), a);
  // An older message arriving late does not move it back.
  ASSERT_TRUE(is_ok(db().insert_message(make_message(id_at(t0 + 50), 915, 2))));
  EXPECT_EQ(must(db().newest_message_id(915)), a);
  id_t b = id_at(t0 + 30 * day_ms);  // another bucket
  ASSERT_TRUE(is_ok(db().put_message(make_message(b, 915, 2))));
  EXPECT_EQ(must(db().newest_message_id(915)), b);
  // Messages of a conversation that was never created count too.
  EXPECT_EQ(must(db().newest_message_id(916)), 0u);
  ASSERT_TRUE(is_ok(db().insert_message(make_message(a + 1, 916, 1))));
  EXPECT_EQ(must(db().newest_message_id(916)), a + 1);
}

TEST_P(StoreConformance, ConcurrentInsertsLeaveTheHighestNewestId) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(917), {1})));
  race(8, [&](int i) {
    for (int k = 0; k < 10; ++k) {
      (void)db().insert_message(make_message(id_at(t0 + 1000 + ((k * 8 + i) * 37) % 80), 917, 1));
      (void)db().newest_message_id(917);
    }
  });
  EXPECT_EQ(must(db().newest_message_id(917)), id_at(t0 + 1000 + 79));
}

TEST_P(StoreConformance, ListMessagesOfAnEmptyConversation) {
  auto page = must(db().list_messages(920, 0, 50));
  EXPECT_TRUE(page.messages.empty());
  EXPECT_FALSE(page.has_more);
  EXPECT_TRUE(must(db().list_messages_after(920, 0, 50)).empty());
  EXPECT_EQ(must(db().count_messages_after(920, 0, 1, 100)), 0u);
}

TEST_P(StoreConformance, ListMessagesAfterAscendsAcrossBuckets) {
  auto ids = fill_buckets(db(), 910);
  EXPECT_EQ(ids_of(must(db().list_messages_after(910, 0, 100))), ids);
  EXPECT_EQ(ids_of(must(db().list_messages_after(910, 0, 4))), std::vector<id_t>(ids.begin(), ids.begin() + 4));
  // From inside the second bucket, over the gap into the third and fourth.
  EXPECT_EQ(ids_of(must(db().list_messages_after(910, ids[4], 5))),
            std::vector<id_t>(ids.begin() + 5, ids.begin() + 10));
  // `after` need not be a stored id.
  EXPECT_EQ(ids_of(must(db().list_messages_after(910, id_at(t0 + 25 * day_ms), 100))),
            std::vector<id_t>(ids.begin() + 6, ids.end()));
  EXPECT_TRUE(must(db().list_messages_after(910, ids.back(), 100)).empty());
  EXPECT_TRUE(must(db().list_messages_after(910, 0, 0)).empty());
  for (const auto& m : must(db().list_messages_after(910, 0, 100))) EXPECT_EQ(m.conversation_id, 910u);
}

TEST_P(StoreConformance, CountMessagesAfterSkipsTheSenderAndDeletedOnesUpToCap) {
  auto ids = fill_buckets(db(), 910);  // senders alternate 1, 2, 1 in each bucket
  // Sender 2 wrote ids[1], ids[4], ids[7], ids[10]; sender 1 the other eight.
  EXPECT_EQ(must(db().count_messages_after(910, 0, 1, 100)), 4u);
  EXPECT_EQ(must(db().count_messages_after(910, 0, 2, 100)), 8u);
  EXPECT_EQ(must(db().count_messages_after(910, 0, 99, 100)), 12u);
  EXPECT_EQ(must(db().count_messages_after(910, ids[4], 1, 100)), 2u);
  EXPECT_EQ(must(db().count_messages_after(910, ids[4], 2, 100)), 5u);
  EXPECT_EQ(must(db().count_messages_after(910, 0, 99, 5)), 5u);
  EXPECT_EQ(must(db().count_messages_after(910, ids.back(), 99, 5)), 0u);

  auto deleted = must(db().get_message(ids[10]));
  deleted.deleted = true;
  deleted.body.clear();
  ASSERT_TRUE(is_ok(db().put_message(deleted)));
  EXPECT_EQ(must(db().count_messages_after(910, 0, 1, 100)), 3u);
  EXPECT_EQ(must(db().count_messages_after(910, 0, 99, 100)), 11u);
}

// ============================================================ client dedup ===

TEST_P(StoreConformance, ClientMsgIdClaimAndFind) {
  EXPECT_EQ(must(db().find_client_msg_id(1, 2, "k1")), std::nullopt);
  EXPECT_EQ(must(db().claim_client_msg_id(1, 2, "k1", 1000)), 1000u);
  EXPECT_EQ(must(db().claim_client_msg_id(1, 2, "k1", 2000)), 1000u);  // the second caller sees the first
  EXPECT_EQ(must(db().find_client_msg_id(1, 2, "k1")), std::optional<id_t>(1000));

  // Other senders, conversations and keys are other slots.
  EXPECT_EQ(must(db().claim_client_msg_id(1, 3, "k1", 3000)), 3000u);
  EXPECT_EQ(must(db().claim_client_msg_id(4, 2, "k1", 4000)), 4000u);
  EXPECT_EQ(must(db().claim_client_msg_id(1, 2, "k10", 5000)), 5000u);
  EXPECT_EQ(must(db().claim_client_msg_id(1, 2, "k", 6000)), 6000u);
  EXPECT_EQ(must(db().find_client_msg_id(1, 3, "k1")), std::optional<id_t>(3000));
  EXPECT_EQ(must(db().find_client_msg_id(1, 2, "k")), std::optional<id_t>(6000));
}

TEST_P(StoreConformance, ConcurrentClaimsHaveOneWinner) {
  std::vector<id_t> got(8);
  race(8, [&](int i) {
    auto r = db().claim_client_msg_id(30, 31, "same-key", 100 + i);
    got[i] = r ? *r : 0;
  });
  std::set<id_t> distinct(got.begin(), got.end());
  ASSERT_EQ(distinct.size(), 1u);
  id_t winner = *distinct.begin();
  EXPECT_GE(winner, 100u);
  EXPECT_LT(winner, 108u);
  EXPECT_EQ(must(db().find_client_msg_id(30, 31, "same-key")), std::optional<id_t>(winner));
}

// ============================================================== read state ===

TEST_P(StoreConformance, ClaimAndInsertStoresOnlyTheFirstMessageOfAKey) {
  ASSERT_TRUE(is_ok(db().create_conversation(make_conversation(32), {31})));
  auto first = make_message(id_at(t0 + 1), 32, 31, "first");
  first.client_msg_id = "key";
  EXPECT_EQ(must(db().claim_and_insert(first)), first.id);
  EXPECT_EQ(must(db().get_message(first.id)).body, "first");
  EXPECT_EQ(must(db().find_client_msg_id(32, 31, "key")), std::optional<id_t>(first.id));
  EXPECT_EQ(must(db().newest_message_id(32)), first.id);
  // The same key again: the first id, and nothing written.
  auto again = make_message(id_at(t0 + 2), 32, 31, "again");
  again.client_msg_id = "key";
  EXPECT_EQ(must(db().claim_and_insert(again)), first.id);
  EXPECT_TRUE(fails_with(db().get_message(again.id), errc::not_found));
  EXPECT_EQ(must(db().newest_message_id(32)), first.id);
  // Without a key it is an insert.
  auto plain = make_message(id_at(t0 + 3), 32, 31, "plain");
  plain.client_msg_id.clear();
  EXPECT_EQ(must(db().claim_and_insert(plain)), plain.id);
  EXPECT_EQ(must(db().list_messages(32, 0, 10)).messages.size(), 2u);
}

TEST_P(StoreConformance, ConcurrentClaimAndInsertStoresOneMessage) {
  std::vector<id_t> got(8);
  race(8, [&](int i) {
    auto m = make_message(id_at(t0 + 10 + i), 33, 31);
    m.client_msg_id = "same-key";
    auto r = db().claim_and_insert(m);
    got[i] = r ? *r : 0;
  });
  std::set<id_t> distinct(got.begin(), got.end());
  ASSERT_EQ(distinct.size(), 1u);
  EXPECT_EQ(ids_of(must(db().list_messages(33, 0, 10)).messages), std::vector<id_t>{*distinct.begin()});
}

TEST_P(StoreConformance, MarkReadOnlyMovesForward) {
  EXPECT_EQ(must(db().get_read(1, 50)), 0u);
  EXPECT_EQ(must(db().mark_read(1, 50, 10)), 10u);
  EXPECT_EQ(must(db().mark_read(1, 50, 5)), 10u);
  EXPECT_EQ(must(db().get_read(1, 50)), 10u);
  EXPECT_EQ(must(db().mark_read(1, 50, 10)), 10u);
  EXPECT_EQ(must(db().mark_read(1, 50, 20)), 20u);
  EXPECT_EQ(must(db().get_read(1, 50)), 20u);
  // Per participant and conversation.
  EXPECT_EQ(must(db().get_read(2, 50)), 0u);
  EXPECT_EQ(must(db().get_read(1, 51)), 0u);
}

TEST_P(StoreConformance, ConcurrentMarkReadKeepsTheMaximum) {
  race(8, [&](int i) {
    for (int k = 0; k < 50; ++k) (void)db().mark_read(3, 60, 1 + ((k * 8 + i) * 7919) % 400);
  });
  EXPECT_EQ(must(db().get_read(3, 60)), 400u);
}

// ================================================================ presence ===

TEST_P(StoreConformance, UnknownPresenceIsOffline) {
  auto p = must(db().get_presence(77));
  EXPECT_EQ(p.participant_id, 77u);
  EXPECT_EQ(p.state, presence_state::offline);
  EXPECT_EQ(p.last_seen_at, 0);
}

TEST_P(StoreConformance, PresenceIsStoredAndReplaced) {
  ASSERT_TRUE(is_ok(db().put_presence(presence{77, presence_state::active, t0}, 60000)));
  auto p = must(db().get_presence(77));
  EXPECT_EQ(p.participant_id, 77u);
  EXPECT_EQ(p.state, presence_state::active);
  EXPECT_EQ(p.last_seen_at, t0);

  ASSERT_TRUE(is_ok(db().put_presence(presence{77, presence_state::inactive, t0 + 5}, 60000)));
  p = must(db().get_presence(77));
  EXPECT_EQ(p.state, presence_state::inactive);
  EXPECT_EQ(p.last_seen_at, t0 + 5);

  ASSERT_TRUE(is_ok(db().put_presence(presence{77, presence_state::offline, t0 + 9}, 60000)));
  p = must(db().get_presence(77));
  EXPECT_EQ(p.state, presence_state::offline);
  EXPECT_EQ(p.last_seen_at, t0 + 9);
  EXPECT_EQ(must(db().get_presence(78)).state, presence_state::offline);
}

// The documented choice: an expired row reads offline but keeps last_seen_at.
TEST_P(StoreConformance, ExpiredPresenceReadsOfflineAndKeepsLastSeen) {
  ASSERT_TRUE(is_ok(db().put_presence(presence{79, presence_state::active, t0 + 42}, 1)));
  std::this_thread::sleep_for(30ms);
  auto p = must(db().get_presence(79));
  EXPECT_EQ(p.participant_id, 79u);
  EXPECT_EQ(p.state, presence_state::offline);
  EXPECT_EQ(p.last_seen_at, t0 + 42);

  // A fresh heartbeat brings it back.
  ASSERT_TRUE(is_ok(db().put_presence(presence{79, presence_state::inactive, t0 + 50}, 60000)));
  EXPECT_EQ(must(db().get_presence(79)).state, presence_state::inactive);
}

TEST_P(StoreConformance, PresenceWithoutTtlDoesNotExpire) {
  ASSERT_TRUE(is_ok(db().put_presence(presence{80, presence_state::active, t0}, 0)));
  std::this_thread::sleep_for(20ms);
  auto p = must(db().get_presence(80));
  EXPECT_EQ(p.state, presence_state::active);
  EXPECT_EQ(p.last_seen_at, t0);
}

// =========================================================== notifications ===

notification make_notification(id_t id, id_t recipient, id_t message_id, std::uint32_t count = 1) {
  notification n;
  n.id = id;
  n.recipient_id = recipient;
  n.conversation_id = 5;
  n.message_id = message_id;
  n.sender_id = 6;
  n.sender_kind = participant_kind::shop;
  n.preview = "preview of " + std::to_string(message_id);
  n.count = count;
  n.created_at = id_timestamp_ms(id);
  return n;
}

TEST_P(StoreConformance, NotificationsAreNewestFirstWithLimit) {
  std::vector<id_t> ids;
  for (int k = 0; k < 5; ++k) {
    id_t id = id_at(t0 + k * 1000);
    ids.push_back(id);
    ASSERT_TRUE(is_ok(db().put_notification(make_notification(id, 40, 9000 + k))));
  }
  ASSERT_TRUE(is_ok(db().put_notification(make_notification(id_at(t0 + 99999), 41, 1))));

  auto list = must(db().list_notifications(40, 3));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].id, ids[4]);
  EXPECT_EQ(list[1].id, ids[3]);
  EXPECT_EQ(list[2].id, ids[2]);
  EXPECT_EQ(list[0].recipient_id, 40u);
  EXPECT_EQ(list[0].conversation_id, 5u);
  EXPECT_EQ(list[0].message_id, 9004u);
  EXPECT_EQ(list[0].sender_id, 6u);
  EXPECT_EQ(list[0].sender_kind, participant_kind::shop);
  EXPECT_EQ(list[0].preview, "preview of 9004");
  EXPECT_EQ(list[0].count, 1u);
  EXPECT_EQ(list[0].created_at, t0 + 4000);

  EXPECT_EQ(must(db().list_notifications(40, 100)).size(), 5u);
  EXPECT_EQ(must(db().list_notifications(41, 100)).size(), 1u);
  EXPECT_TRUE(must(db().list_notifications(42, 100)).empty());
  EXPECT_TRUE(must(db().list_notifications(40, 0)).empty());
}

TEST_P(StoreConformance, NotificationUpsertCoalesces) {
  id_t id = id_at(t0);
  ASSERT_TRUE(is_ok(db().put_notification(make_notification(id, 43, 100, 1))));
  ASSERT_TRUE(is_ok(db().put_notification(make_notification(id, 43, 101, 2))));
  ASSERT_TRUE(is_ok(db().put_notification(make_notification(id, 43, 103, 3))));
  auto list = must(db().list_notifications(43, 10));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id, id);
  EXPECT_EQ(list[0].message_id, 103u);
  EXPECT_EQ(list[0].count, 3u);
  EXPECT_EQ(list[0].preview, "preview of 103");
}

TEST_P(StoreConformance, DeliveryIsMarkedOnce) {
  EXPECT_FALSE(must(db().is_delivered(44, 1)));
  EXPECT_TRUE(must(db().mark_delivered(44, 1)));
  EXPECT_FALSE(must(db().mark_delivered(44, 1)));
  EXPECT_TRUE(must(db().is_delivered(44, 1)));
  EXPECT_FALSE(must(db().is_delivered(44, 2)));
  EXPECT_FALSE(must(db().is_delivered(45, 1)));
  EXPECT_TRUE(must(db().mark_delivered(45, 1)));
}

TEST_P(StoreConformance, ConcurrentMarkDeliveredHasOneWinner) {
  std::atomic<int> first{0}, errors{0};
  race(8, [&](int) {
    auto r = db().mark_delivered(46, 7);
    if (!r) {
      errors.fetch_add(1);
    } else if (*r) {
      first.fetch_add(1);
    }
  });
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(first.load(), 1);
}

// ============================================================ chat servers ===

chat_server_row make_server(std::string id, std::int64_t expires_at) {
  chat_server_row s;
  s.id = std::move(id);
  s.url = "ws://" + s.id + ".test:9000/v1/ws";
  s.region = "eu-central";
  s.lat = 50.1109;
  s.lon = 8.6821;
  s.has_coordinates = true;
  s.load = 0.375;
  s.expires_at = expires_at;
  return s;
}

std::vector<chat_server_row> by_id(std::vector<chat_server_row> v) {
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return v;
}

TEST_P(StoreConformance, ChatServerRowsArePutListedExpiredAndRemoved) {
  std::int64_t now = now_ms();
  ASSERT_TRUE(is_ok(db().put_chat_server(make_server("cs-b", now + 60000))));
  auto a = make_server("cs-a", now + 30000);
  a.has_coordinates = false;
  a.lat = 0;
  a.lon = 0;
  a.region = "local";
  ASSERT_TRUE(is_ok(db().put_chat_server(a)));
  ASSERT_TRUE(is_ok(db().put_chat_server(make_server("cs-old", now - 1))));

  auto rows = by_id(must(db().list_chat_servers(now)));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, "cs-a");
  EXPECT_FALSE(rows[0].has_coordinates);
  EXPECT_EQ(rows[0].region, "local");
  EXPECT_EQ(rows[1].id, "cs-b");
  EXPECT_EQ(rows[1].url, "ws://cs-b.test:9000/v1/ws");
  EXPECT_EQ(rows[1].region, "eu-central");
  EXPECT_TRUE(rows[1].has_coordinates);
  EXPECT_NEAR(rows[1].lat, 50.1109, 1e-9);
  EXPECT_NEAR(rows[1].lon, 8.6821, 1e-9);
  EXPECT_NEAR(rows[1].load, 0.375, 1e-9);
  EXPECT_EQ(rows[1].expires_at, now + 60000);

  // A heartbeat replaces the row.
  auto refreshed = make_server("cs-a", now + 90000);
  refreshed.load = 0.5;
  ASSERT_TRUE(is_ok(db().put_chat_server(refreshed)));
  rows = by_id(must(db().list_chat_servers(now + 45000)));  // cs-a refreshed, cs-b still alive
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NEAR(rows[0].load, 0.5, 1e-9);
  EXPECT_TRUE(rows[0].has_coordinates);

  rows = by_id(must(db().list_chat_servers(now + 60000)));  // cs-b expires at exactly this time
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, "cs-a");

  ASSERT_TRUE(is_ok(db().remove_chat_server("cs-a")));
  EXPECT_TRUE(must(db().list_chat_servers(now)).size() == 1u);  // cs-b only
  ASSERT_TRUE(is_ok(db().remove_chat_server("cs-a")));          // removing twice is fine
  ASSERT_TRUE(is_ok(db().remove_chat_server("never-there")));
  EXPECT_TRUE(must(db().list_chat_servers(now + 100000)).empty());
}

// ======================================================== node-id leases ===

TEST_P(StoreConformance, NodeLeasesTakeTheLowestFreeNumber) {
  EXPECT_EQ(must(db().acquire_node_id("owner-a", 60000)), 1u);
  EXPECT_EQ(must(db().acquire_node_id("owner-b", 60000)), 2u);
  EXPECT_EQ(must(db().acquire_node_id("owner-c", 60000)), 3u);
  ASSERT_TRUE(is_ok(db().release_node_id(2, "owner-b")));
  EXPECT_EQ(must(db().acquire_node_id("owner-d", 60000)), 2u);
  EXPECT_EQ(must(db().acquire_node_id("owner-e", 60000)), 4u);
}

TEST_P(StoreConformance, NodeLeasesRunOutAtTheLastNumber) {
  for (std::uint32_t n = 1; n <= id_max_node; ++n) {
    ASSERT_EQ(must(db().acquire_node_id("owner-" + std::to_string(n), 60000)), n);
  }
  EXPECT_TRUE(fails_with(db().acquire_node_id("one-too-many", 60000), errc::unavailable));
  ASSERT_TRUE(is_ok(db().release_node_id(517, "owner-517")));
  EXPECT_EQ(must(db().acquire_node_id("one-too-many", 60000)), 517u);
  EXPECT_TRUE(fails_with(db().acquire_node_id("two-too-many", 60000), errc::unavailable));
}

TEST_P(StoreConformance, NodeLeaseArgumentsAreChecked) {
  EXPECT_TRUE(fails_with(db().acquire_node_id("", 60000), errc::bad_request));
  EXPECT_TRUE(fails_with(db().acquire_node_id("owner-a", 0), errc::bad_request));
  EXPECT_TRUE(fails_with(db().renew_node_id(1, "", 60000), errc::bad_request));
}

TEST_P(StoreConformance, ConcurrentNodeLeasesNeverShareANumber) {
  constexpr int threads = 6, each = 4;
  std::vector<std::vector<std::uint32_t>> got(threads);
  race(threads, [&](int t) {
    for (int k = 0; k < each; ++k) {
      auto r = db().acquire_node_id("owner-" + std::to_string(t) + "-" + std::to_string(k), 60000);
      if (!r) throw std::runtime_error("acquire_node_id failed: " + r.err().message);
      got[t].push_back(*r);
    }
  });
  std::set<std::uint32_t> all;
  for (auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(threads * each));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<std::uint32_t>(threads * each));  // the lowest ones, no gaps
}

TEST_P(StoreConformance, NodeLeaseRenewsOnlyForItsHolder) {
  auto n = must(db().acquire_node_id("owner-a", 60000));
  EXPECT_TRUE(is_ok(db().renew_node_id(n, "owner-a", 60000)));
  EXPECT_TRUE(fails_with(db().renew_node_id(n, "owner-b", 60000), errc::conflict));
  EXPECT_TRUE(is_ok(db().renew_node_id(n, "owner-a", 60000)));  // the failed renewal changed nothing
  EXPECT_NE(must(db().acquire_node_id("owner-b", 60000)), n);
  EXPECT_TRUE(fails_with(db().renew_node_id(700, "owner-a", 60000), errc::conflict));  // never leased
}

TEST_P(StoreConformance, NodeLeaseReleaseFreesOnlyForItsHolder) {
  auto n = must(db().acquire_node_id("owner-a", 60000));
  ASSERT_TRUE(is_ok(db().release_node_id(n, "owner-b")));  // not theirs: nothing happens
  EXPECT_TRUE(is_ok(db().renew_node_id(n, "owner-a", 60000)));
  EXPECT_NE(must(db().acquire_node_id("owner-c", 60000)), n);

  ASSERT_TRUE(is_ok(db().release_node_id(n, "owner-a")));
  EXPECT_TRUE(fails_with(db().renew_node_id(n, "owner-a", 60000), errc::conflict));
  EXPECT_EQ(must(db().acquire_node_id("owner-d", 60000)), n);  // the lowest free number again
  ASSERT_TRUE(is_ok(db().release_node_id(n, "owner-a")));      // releasing twice changes nothing
  EXPECT_TRUE(is_ok(db().renew_node_id(n, "owner-d", 60000)));
  ASSERT_TRUE(is_ok(db().release_node_id(900, "owner-a")));  // never leased
}

// TTLs on the CQL server are whole seconds (rounded up, plus one): this
// test waits for a 1 s lease to expire.
TEST_P(StoreConformance, ExpiredNodeLeaseCanBeTakenAndItsOldOwnerLosesIt) {
  auto a = must(db().acquire_node_id("owner-a", 1000));
  auto b = must(db().acquire_node_id("owner-b", 1000));
  auto c = must(db().acquire_node_id("owner-c", 60000));
  EXPECT_EQ(std::set<std::uint32_t>({a, b, c}).size(), 3u);
  EXPECT_TRUE(is_ok(db().renew_node_id(a, "owner-a", 1000)));
  std::int64_t renewed_at = now_ms();
  EXPECT_TRUE(is_ok(db().renew_node_id(b, "owner-b", 1000)));
  // Wait until both leases have expired by the wall clock the stores use.
  while (now_ms() <= renewed_at + 1000 + 100) std::this_thread::sleep_for(50ms);

  // Someone else takes the expired number (the lowest free one)...
  EXPECT_EQ(must(db().acquire_node_id("owner-d", 60000)), std::min(a, b));
  auto taken = std::min(a, b);
  auto left = std::max(a, b);
  std::string taken_owner = taken == a ? "owner-a" : "owner-b";
  std::string left_owner = taken == a ? "owner-b" : "owner-a";
  // ... and its old owner's renewal is refused, as is the renewal of an
  // expired lease nobody took (its owner must have stopped minting).
  EXPECT_TRUE(fails_with(db().renew_node_id(taken, taken_owner, 60000), errc::conflict));
  EXPECT_TRUE(fails_with(db().renew_node_id(left, left_owner, 60000), errc::conflict));
  EXPECT_TRUE(is_ok(db().renew_node_id(taken, "owner-d", 60000)));
  EXPECT_TRUE(is_ok(db().renew_node_id(c, "owner-c", 60000)));
  // The old owner's release does not free the new owner's lease.
  ASSERT_TRUE(is_ok(db().release_node_id(taken, taken_owner)));
  EXPECT_TRUE(is_ok(db().renew_node_id(taken, "owner-d", 60000)));
  EXPECT_EQ(must(db().acquire_node_id("owner-e", 60000)), left);
}

// ---- node_lease: the store's leases kept alive by a thread ----

using chatd::testing::latch;

TEST_P(StoreConformance, NodeLeasesOnOneStoreGetDifferentNumbers) {
  node_lease a(db(), make_lease_owner("a"), 3000ms, {});
  node_lease b(db(), make_lease_owner("b"), 3000ms, {});
  EXPECT_EQ(a.node(), 0u);
  a.start();
  b.start();
  EXPECT_GE(a.node(), 1u);
  EXPECT_LE(a.node(), id_max_node);
  EXPECT_GE(b.node(), 1u);
  EXPECT_NE(a.node(), b.node());
  EXPECT_NE(a.owner(), b.owner());
  EXPECT_THROW(a.start(), std::logic_error);
  a.stop();
  b.stop();
  EXPECT_FALSE(a.lost());
  EXPECT_FALSE(b.lost());
}

TEST_P(StoreConformance, NodeLeaseRenewsBeyondItsTtl) {
  latch lost;
  node_lease lease(db(), make_lease_owner(), 300ms, [&] { lost.set(); });
  lease.start();
  auto n = lease.node();
  auto until = std::chrono::steady_clock::now() + 1500ms;  // five ttls
  while (std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(lease.lost());
  // Still held: a newcomer does not get the (lowest) number.
  auto other = must(db().acquire_node_id("newcomer", 60000));
  EXPECT_NE(other, n);
  lease.stop();
  EXPECT_EQ(lost.count(), 0);
}

TEST_P(StoreConformance, NodeLeaseStopReleasesTheNumber) {
  node_lease lease(db(), make_lease_owner(), 3000ms, {});
  lease.start();
  auto n = lease.node();
  EXPECT_NE(must(db().acquire_node_id("newcomer", 60000)), n);
  lease.stop();
  lease.stop();  // twice is fine
  EXPECT_FALSE(lease.lost());
  EXPECT_EQ(must(db().acquire_node_id("after-stop", 60000)), n);
}

TEST_P(StoreConformance, StolenNodeLeaseFiresOnLostOnce) {
  latch lost;
  node_lease lease(db(), make_lease_owner(), 300ms, [&] { lost.set(); });
  lease.start();
  auto n = lease.node();
  // Someone else takes the number (as if our lease had expired unseen).
  ASSERT_TRUE(is_ok(db().release_node_id(n, lease.owner())));
  ASSERT_EQ(must(db().acquire_node_id("thief", 60000)), n);
  ASSERT_TRUE(lost.wait_for(10000ms)) << "on_lost was not called";
  EXPECT_TRUE(lease.lost());
  lease.stop();
  EXPECT_EQ(lost.count(), 1);
  // stop() released nothing: the thief still holds the number.
  EXPECT_TRUE(is_ok(db().renew_node_id(n, "thief", 60000)));
}

}  // namespace
}  // namespace chatd::store::testing
