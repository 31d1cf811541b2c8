// The main chat service's rules: store once, keep edits and deletes final,
// notify exactly the recipients who are not active.
#include "mainchat/main_chat.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>

#include "chat/events.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "notification/notifier.h"
#include "presence/presence.h"
#include "temp_store.h"

namespace chatd::mainchat {
namespace {

struct fixed_presence : presence::presence_port {
  std::map<std::uint64_t, store::presence_state> states;
  void connection_state(const std::string&, std::uint64_t, std::uint64_t, store::presence_state) override {}
  void connection_closed(const std::string&, std::uint64_t, std::uint64_t) override {}
  void refresh(const std::string&) override {}
  result<store::presence> get(std::uint64_t id) override {
    auto it = states.find(id);
    return store::presence{id, it == states.end() ? store::presence_state::offline : it->second, 0};
  }
};

struct recording_notifier : notification::notifier {
  std::vector<notification::notify_request> calls;
  bool fail = false;
  status notify(const notification::notify_request& r) override {
    if (fail) return make_error(errc::unavailable, "down");
    calls.push_back(r);
    return {};
  }
};

class main_chat_test : public ::testing::Test {
 protected:
  main_chat_test() : ids(2), main(*db, presence, notifier, metrics) {
    store::conversation c;
    c.id = ids.next();
    c.kind = store::conversation_kind::group;
    c.created_at = now_ms();
    conv = c.id;
    EXPECT_TRUE(db->create_conversation(c, {a, b, d}));
  }
  chat::event message(std::uint64_t sender, const std::string& body, const std::string& cmid) {
    chat::event e;
    e.kind = chat::event_kind::message;
    e.message.id = ids.next();
    e.message.conversation_id = conv;
    e.message.sender_id = sender;
    e.message.body = body;
    e.message.client_msg_id = cmid;
    e.message.created_at = now_ms();
    return e;
  }

  testing::temp_store db;
  id_generator ids;
  metrics_registry metrics;
  fixed_presence presence;
  recording_notifier notifier;
  main_chat main;
  std::uint64_t conv = 0, a = 11, b = 12, d = 13;
};

TEST_F(main_chat_test, stores_once_and_updates_inbox_and_read_state) {
  auto e = message(a, "hello", "c1");
  ASSERT_TRUE(main.apply(e));
  ASSERT_TRUE(main.apply(e));  // redelivery
  auto page = db->list_messages(conv, 0, 10);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->messages.size(), 1u);
  EXPECT_EQ(page->messages[0].body, "hello");
  EXPECT_EQ(*db->get_read(a, conv), e.message.id);  // the sender read it
  EXPECT_EQ(*db->get_read(b, conv), 0u);
  auto inbox = db->list_inbox(b, 10);
  ASSERT_EQ(inbox->size(), 1u);
  EXPECT_EQ((*inbox)[0].last_message_id, e.message.id);
  // A second record with the same client_msg_id but another id is a duplicate.
  auto dup = message(a, "hello again", "c1");
  ASSERT_TRUE(main.apply(dup));
  EXPECT_EQ(db->list_messages(conv, 0, 10)->messages.size(), 1u);
}

TEST_F(main_chat_test, notifies_recipients_who_are_not_active) {
  presence.states[b] = store::presence_state::active;
  presence.states[d] = store::presence_state::inactive;
  auto e = message(a, "ping", "n1");
  ASSERT_TRUE(main.apply(e));
  ASSERT_EQ(notifier.calls.size(), 1u);
  EXPECT_EQ(notifier.calls[0].recipient_id, d);
  EXPECT_EQ(notifier.calls[0].message.id, e.message.id);
  // A failing notifier makes the record fail, to be retried (not committed).
  notifier.fail = true;
  EXPECT_FALSE(main.apply(message(a, "again", "n2")));
}

TEST_F(main_chat_test, a_batch_stores_every_message_and_leaves_inbox_and_reads_at_the_newest) {
  presence.states[b] = store::presence_state::active;
  auto first = message(a, "one", "b1");
  auto second = message(b, "two", "b2");
  auto third = message(a, "three", "b3");
  auto dup = message(a, "one again", "b1");  // a duplicate inside the batch
  chat::event edit = first;
  edit.kind = chat::event_kind::message_updated;
  edit.message.body = "one, edited";
  edit.message.edited_at = now_ms() + 10;
  std::vector<chat::event> batch{first, second, third, dup, edit};
  ASSERT_TRUE(main.apply_batch(batch));
  ASSERT_TRUE(main.apply_batch(batch));  // the whole batch redelivered
  auto page = db->list_messages(conv, 0, 10);
  ASSERT_EQ(page->messages.size(), 3u);
  EXPECT_EQ(db->get_message(first.message.id)->body, "one, edited");
  EXPECT_EQ(*db->get_read(a, conv), third.message.id);
  EXPECT_EQ(*db->get_read(b, conv), second.message.id);
  EXPECT_EQ(*db->get_read(d, conv), 0u);
  for (auto p : {a, b, d}) {
    auto inbox = db->list_inbox(p, 10);
    ASSERT_EQ(inbox->size(), 1u);
    EXPECT_EQ((*inbox)[0].last_message_id, third.message.id);
  }
  // Every message's inactive recipients, once per delivery of the batch:
  // first and third to d; second to a and d (b is active).
  std::multiset<std::pair<std::uint64_t, std::uint64_t>> asked;
  for (const auto& c : notifier.calls) asked.emplace(c.recipient_id, c.message.id);
  EXPECT_EQ(asked.count({d, first.message.id}), 2u);
  EXPECT_EQ(asked.count({d, third.message.id}), 2u);
  EXPECT_EQ(asked.count({a, second.message.id}), 2u);
  EXPECT_EQ(asked.count({d, second.message.id}), 2u);
  EXPECT_EQ(asked.count({b, first.message.id}), 0u);
  EXPECT_EQ(notifier.calls.size(), 8u);
}

TEST_F(main_chat_test, a_delete_is_final_and_old_edits_do_not_win) {
  auto e = message(a, "v1", "u1");
  ASSERT_TRUE(main.apply(e));
  chat::event edit = e;
  edit.kind = chat::event_kind::message_updated;
  edit.message.body = "v2";
  edit.message.edited_at = now_ms() + 10;
  ASSERT_TRUE(main.apply(edit));
  chat::event older = edit;
  older.message.body = "v-old";
  older.message.edited_at = edit.message.edited_at - 5;
  ASSERT_TRUE(main.apply(older));
  EXPECT_EQ(db->get_message(e.message.id)->body, "v2");
  chat::event del = edit;
  del.message.deleted = true;
  del.message.body.clear();
  del.message.edited_at = edit.message.edited_at + 1;
  ASSERT_TRUE(main.apply(del));
  ASSERT_TRUE(main.apply(edit));  // a late edit
  auto m = db->get_message(e.message.id);
  EXPECT_TRUE(m->deleted);
  EXPECT_TRUE(m->body.empty());
  // Redelivery of the original after all that changes nothing either.
  ASSERT_TRUE(main.apply(e));
  EXPECT_TRUE(db->get_message(e.message.id)->deleted);
}

}  // namespace
}  // namespace chatd::mainchat
