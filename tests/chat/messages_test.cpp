// Message rules above the store: validation, access, dedup, id order, edits
// and deletes. The queue is replaced by a recording publisher; the store is
// the real RocksDB one.
#include "chat/messages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>

#include "common/ids.h"
#include "fakes.h"
#include "temp_store.h"

namespace chatd::chat {
namespace {

using testing::recording_publisher;

class messages_test : public ::testing::Test {
 protected:
  messages_test() : ids(1), conversations(*db, ids), messages(*db, ids, conversations, pub) {
    alice = person(store::participant_kind::user, "alice");
    bob = person(store::participant_kind::shop, "bob");
    eve = person(store::participant_kind::user, "eve");
    admin = person(store::participant_kind::admin, "root");
    conv = conversations.create(alice, store::conversation_kind::direct, {bob.id}, "")->first.conv.id;
  }
  store::participant person(store::participant_kind k, const std::string& name) {
    return db.add_participant(ids.next(), k, name);
  }
  origin here() { return origin{"test", 1, now_ms()}; }

  testing::temp_store db;
  id_generator ids;
  conversation_service conversations;
  recording_publisher pub;
  message_service messages;
  store::participant alice, bob, eve, admin;
  std::uint64_t conv = 0;
};

TEST_F(messages_test, validates_bodies_first) {
  EXPECT_EQ(messages.send(alice, conv, "k", "", here()).err().code, errc::bad_request);
  EXPECT_EQ(messages.send(alice, conv, "k", std::string(4001, 'a'), here()).err().code, errc::too_large);
  EXPECT_TRUE(messages.send(alice, conv, "k1", std::string(4000, 'a'), here()));
  // 4000 code points of 4 bytes each is 16000 bytes: allowed.
  std::string emoji;
  for (int i = 0; i < 4000; ++i) emoji += "\xf0\x9f\x98\x80";
  EXPECT_TRUE(messages.send(alice, conv, "k2", emoji, here()));
  EXPECT_EQ(messages.send(alice, conv, "k3", emoji + "\xf0\x9f\x98\x80", here()).err().code, errc::too_large);
  EXPECT_EQ(messages.send(alice, conv, "k4", "\xff", here()).err().code, errc::bad_request);
  // An invalid body is refused even with a client_msg_id used before.
  EXPECT_EQ(messages.send(alice, conv, "k1", "", here()).err().code, errc::bad_request);
}

// A process that lost the lease of its id node number stops minting: its
// sends are answered `unavailable` (the client sends again elsewhere), and
// nothing is stored or queued. Before, the exception ended the worker thread
// and with it the process.
TEST_F(messages_test, a_server_that_lost_its_id_lease_refuses_sends_without_throwing) {
  ids.disable();
  result<send_result> r = make_error(errc::internal, "not answered");
  EXPECT_NO_THROW(r = messages.send(alice, conv, "after-lease", "hi", here()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
  EXPECT_TRUE(pub.durable.empty());
  EXPECT_FALSE(*db->find_client_msg_id(conv, alice.id, "after-lease"));
  EXPECT_EQ(*db->newest_message_id(conv), 0u);
}

TEST_F(messages_test, outsiders_get_not_found_and_admins_must_join) {
  EXPECT_EQ(messages.send(eve, conv, "x", "hi", here()).err().code, errc::not_found);
  EXPECT_EQ(messages.send(alice, 424242, "x", "hi", here()).err().code, errc::not_found);
  auto first = messages.send(alice, conv, "x", "hi", here());
  ASSERT_TRUE(first);
  // An admin who has not joined reads, but neither writes, marks read nor types.
  EXPECT_TRUE(conversations.history(admin, conv, 0, 10));
  EXPECT_EQ(messages.send(admin, conv, "y", "hi", here()).err().code, errc::forbidden);
  EXPECT_EQ(messages.mark_read(admin, conv, first->message.id, here()).err().code, errc::forbidden);
  EXPECT_EQ(messages.typing(admin, conv, here()).err().code, errc::forbidden);
  EXPECT_EQ(messages.typing(eve, conv, here()).err().code, errc::not_found);
  ASSERT_TRUE(conversations.add_member(admin, conv, admin.id));
  EXPECT_TRUE(messages.send(admin, conv, "y", "hi", here()));
  EXPECT_TRUE(messages.mark_read(admin, conv, first->message.id, here()));
  EXPECT_TRUE(messages.typing(admin, conv, here()));
}

TEST_F(messages_test, repeated_client_msg_id_returns_the_original) {
  auto first = messages.send(alice, conv, "same", "one", here());
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(db->get_message(first->message.id)->body, "one");  // readable once acked
  // The ack came after the message was stored (read-your-writes), so the
  // retry answers with the stored original at once, whatever the body.
  auto again = messages.send(alice, conv, "same", "different", here());
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->message.id, first->message.id);
  EXPECT_EQ(again->message.body, "one");
  // Handed over again as it was (the first may never have reached the
  // queue); downstream everything is idempotent by id.
  ASSERT_EQ(pub.durable.size(), 2u);
  EXPECT_EQ(pub.durable[1].message.id, first->message.id);
  EXPECT_EQ(pub.durable[1].message.body, "one");
  // Claimed but never stored (the first attempt died between its claim and
  // its insert, on a store where they are two writes): the retry stores it
  // under the claimed id and queues it.
  const std::uint64_t orphan = ids.next();
  ASSERT_TRUE(db->claim_client_msg_id(conv, alice.id, "orphan", orphan));
  auto revived = messages.send(alice, conv, "orphan", "two", here());
  ASSERT_TRUE(revived) << revived.err().message;
  EXPECT_TRUE(revived->duplicate);
  EXPECT_EQ(revived->message.id, orphan);
  ASSERT_EQ(pub.durable.size(), 3u);
  EXPECT_EQ(pub.durable[2].message.id, orphan);
  EXPECT_EQ(db->get_message(orphan)->body, "two");
  // Other senders and other conversations have their own keys.
  auto bobs = messages.send(bob, conv, "same", "bob's", here());
  ASSERT_TRUE(bobs);
  EXPECT_FALSE(bobs->duplicate);
}

TEST_F(messages_test, a_queue_failure_keeps_the_claim_so_a_retry_is_never_a_second_message) {
  // The queue reports a failure; the message is stored already, with its
  // claim (and the record may even have got there).
  pub.fail = true;
  auto r = messages.send(alice, conv, "retry-me", "hello", here());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
  ASSERT_EQ(pub.durable.size(), 1u);
  const auto first_id = pub.durable[0].message.id;
  EXPECT_EQ(db->get_message(first_id)->body, "hello");
  pub.fail = false;
  // The retry answers with the first message and queues it again, under its
  // id: whether or not the first record got there, it is delivered.
  auto ok = messages.send(alice, conv, "retry-me", "hello", here());
  ASSERT_TRUE(ok) << ok.err().message;
  EXPECT_TRUE(ok->duplicate);
  EXPECT_EQ(ok->message.id, first_id);
  ASSERT_EQ(pub.durable.size(), 2u);
  EXPECT_EQ(pub.durable[1].message.id, first_id);
  auto page = db->list_messages(conv, 0, 10);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->messages.size(), 1u);  // never a second message
}

// Two processes share the chat database; the second one's clock is a minute
// behind. Replies it accepts still get ids above what they answer.
TEST_F(messages_test, ids_keep_increasing_across_processes_with_skewed_clocks) {
  id_generator behind(2, -60'000);
  conversation_service other_conversations(*db, behind);
  recording_publisher other_pub;
  message_service other(*db, behind, other_conversations, other_pub);
  std::uint64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    auto& svc = i % 2 == 0 ? messages : other;
    auto& who = i % 2 == 0 ? alice : bob;
    auto r = svc.send(who, conv, "", "turn " + std::to_string(i), here());
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_GT(r->message.id, last) << "turn " << i;
    last = r->message.id;
  }
  // History is in sending order.
  auto page = db->list_messages(conv, 0, 100);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->messages.size(), 20u);
  EXPECT_EQ(page->messages.front().body, "turn 19");
  EXPECT_EQ(page->messages.back().body, "turn 0");
  // Without the floor, that clock would have minted ids below.
  id_generator fresh(3, -60'000);
  EXPECT_LT(fresh.next(), last);
}

TEST_F(messages_test, ids_follow_queue_order_under_concurrency) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(messages.send(alice, conv, "t" + std::to_string(t) + "-" + std::to_string(i), "x", here()));
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(pub.durable.size(), 800u);
  for (std::size_t i = 1; i < pub.durable.size(); ++i) {
    EXPECT_LT(pub.durable[i - 1].message.id, pub.durable[i].message.id) << "at " << i;
  }
}

TEST_F(messages_test, edit_and_delete_rules) {
  auto m = messages.send(alice, conv, "e", "original", here());
  ASSERT_TRUE(m);
  ASSERT_TRUE(db->put_message(m->message));
  EXPECT_EQ(messages.edit(bob, m->message.id, "hack", here()).err().code, errc::forbidden);
  EXPECT_EQ(messages.edit(eve, m->message.id, "hack", here()).err().code, errc::not_found);
  EXPECT_EQ(messages.remove(eve, m->message.id, here()).err().code, errc::not_found);
  EXPECT_EQ(messages.remove(bob, m->message.id, here()).err().code, errc::forbidden);
  auto edited = messages.edit(alice, m->message.id, "better", here());
  ASSERT_TRUE(edited);
  EXPECT_EQ(edited->body, "better");
  EXPECT_GT(edited->edited_at, 0);
  EXPECT_EQ(pub.durable.back().kind, event_kind::message_updated);
  auto removed = messages.remove(admin, m->message.id, here());
  ASSERT_TRUE(removed);
  EXPECT_TRUE(removed->deleted);
  EXPECT_TRUE(removed->body.empty());
  EXPECT_EQ(messages.edit(alice, 999, "x", here()).err().code, errc::not_found);
}

// Edits and deletes are stored before they are queued (as sends are): a
// change the queue did not confirm is answered unavailable but kept, and
// sending it again queues it again, a repeated delete included.
TEST_F(messages_test, a_change_the_queue_did_not_confirm_is_kept_and_queued_again_on_retry) {
  auto m = messages.send(alice, conv, "c", "original", here());
  ASSERT_TRUE(m);
  const auto id = m->message.id;

  pub.fail = true;
  EXPECT_EQ(messages.edit(alice, id, "better", here()).err().code, errc::unavailable);
  EXPECT_EQ(db->get_message(id)->body, "better") << "history shows the edit at once";
  pub.fail = false;
  const auto before = pub.durable.size();
  auto edited = messages.edit(alice, id, "better", here());
  ASSERT_TRUE(edited);
  ASSERT_EQ(pub.durable.size(), before + 1);
  EXPECT_EQ(pub.durable.back().kind, event_kind::message_updated);
  EXPECT_EQ(pub.durable.back().message.body, "better");

  pub.fail = true;
  EXPECT_EQ(messages.remove(alice, id, here()).err().code, errc::unavailable);
  EXPECT_TRUE(db->get_message(id)->deleted);
  pub.fail = false;
  auto removed = messages.remove(alice, id, here());
  ASSERT_TRUE(removed);
  EXPECT_TRUE(removed->deleted);
  ASSERT_EQ(pub.durable.size(), before + 3);
  EXPECT_TRUE(pub.durable.back().message.deleted) << "the retry queued the deletion";
  EXPECT_TRUE(pub.durable.back().message.body.empty());
  EXPECT_EQ(messages.edit(alice, id, "back", here()).err().code, errc::not_found) << "a delete is final";
}

// The asynchronous forms answer through the callback, errors included.
TEST_F(messages_test, edit_async_and_remove_async_answer_through_the_callback) {
  auto m = messages.send(alice, conv, "a", "original", here());
  ASSERT_TRUE(m);
  std::optional<result<store::message>> got;
  messages.edit_async(bob, m->message.id, "hack", here(), [&](result<store::message> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->err().code, errc::forbidden);
  got.reset();
  messages.edit_async(alice, m->message.id, "async", here(), [&](result<store::message> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_EQ((*got)->body, "async");
  got.reset();
  messages.remove_async(admin, m->message.id, here(), [&](result<store::message> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_TRUE((*got)->deleted);
}

TEST_F(messages_test, read_and_typing_are_broadcast) {
  auto m = messages.send(alice, conv, "r", "read me", here());
  ASSERT_TRUE(db->put_message(m->message));
  auto r = messages.mark_read(bob, conv, m->message.id, here());
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, m->message.id);
  ASSERT_TRUE(messages.typing(bob, conv, here()));
  EXPECT_EQ(messages.typing(eve, conv, here()).err().code, errc::not_found);
  ASSERT_EQ(pub.ephemeral.size(), 2u);
  EXPECT_EQ(pub.ephemeral[0].kind, event_kind::read);
  EXPECT_EQ(pub.ephemeral[1].kind, event_kind::typing);
}

TEST(events, round_trip) {
  event e;
  e.kind = event_kind::message;
  e.message.id = 123;
  e.message.conversation_id = 45;
  e.message.sender_id = 6;
  e.message.sender_kind = store::participant_kind::shop;
  e.message.body = "h\xc3\xa9llo \"quoted\"";
  e.message.client_msg_id = "c1";
  e.message.created_at = 1700000000000;
  e.origin_server = "cs-1";
  e.origin_connection = 9;
  e.sent_at_ms = 1700000000001;
  auto d = decode_event(encode_event(e));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->message.id, 123u);
  EXPECT_EQ(d->message.body, e.message.body);
  EXPECT_EQ(d->message.sender_kind, store::participant_kind::shop);
  EXPECT_EQ(d->origin_connection, 9u);
  EXPECT_EQ(event_key(*d), "45");
  EXPECT_FALSE(decode_event("garbage"));
  EXPECT_FALSE(decode_event("{\"k\":\"nope\"}"));
  EXPECT_FALSE(decode_event("{\"k\":\"message\"}"));
  EXPECT_TRUE(d->recipients.empty());
}

TEST(events, recipients_travel_with_a_routed_event) {
  event e;
  e.kind = event_kind::typing;
  e.conversation_id = 7;
  e.participant_id = 8;
  e.recipients = {9, 10, 18446744073709551615ULL};
  auto d = decode_event(encode_event(e));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->recipients, e.recipients);
  EXPECT_EQ(decode_event(R"({"k":"typing","r":"9"})").err().code, errc::bad_request);
  EXPECT_EQ(decode_event(R"({"k":"typing","r":[9]})").err().code, errc::bad_request);
}

}  // namespace
}  // namespace chatd::chat
