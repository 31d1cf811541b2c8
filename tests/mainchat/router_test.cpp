// The router (ADR 009) on a real embedded log, a real RocksDB store and the
// in-process presence service: each record reaches exactly the chat servers
// that hold its recipients, with those recipients, and every live server
// when the route table cannot answer.
#include "mainchat/router.h"

#include <gtest/gtest.h>

#include <map>

#include "../queue/temp_dir.h"
#include "chat/events.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "presence/presence.h"
#include "queue/embedded_log.h"
#include "temp_store.h"

namespace chatd::mainchat {
namespace {

using namespace std::chrono_literals;
using store::presence_state;

class router_test : public ::testing::Test {
 protected:
  router_test() : ids(3), presence(*db, presence_cfg(), {}) {
    queue::embedded_log_options o;
    o.path = dir.path();
    o.partitions = 1;
    log = queue::open_embedded_log(o);
    producer = log->make_producer();
    conv = make_conversation({a, b, c});
    other = make_conversation({a, d});
  }
  static presence_config presence_cfg() {
    presence_config p;
    p.timeout_ms = 60'000;
    return p;
  }
  std::uint64_t make_conversation(std::vector<std::uint64_t> members) {
    store::conversation x;
    x.id = ids.next();
    x.kind = store::conversation_kind::group;
    x.created_at = now_ms();
    EXPECT_TRUE(db->create_conversation(x, members));
    return x.id;
  }
  router make_router() {
    return router(router_deps{*db, presence, *producer, metrics, [this] { return live; }}, "t.");
  }
  static queue::record as_record(const chat::event& e) {
    queue::record r;
    r.topic = "t.messages";
    r.key = chat::event_key(e);
    r.value = chat::encode_event(e);
    return r;
  }
  chat::event message_in(std::uint64_t conversation, std::uint64_t sender) {
    chat::event e;
    e.kind = chat::event_kind::message;
    e.message.id = ids.next();
    e.message.conversation_id = conversation;
    e.message.sender_id = sender;
    e.message.body = "hi";
    e.message.created_at = now_ms();
    return e;
  }
  // Everything written to one chat server's delivery topic so far.
  std::vector<chat::event> delivered_to(const std::string& server) {
    auto topic = delivery_topic("t.", server);
    std::vector<chat::event> out;
    auto w = log->watermark_offsets(topic, 0);
    if (!w) return out;
    auto c = log->subscribe("reader-" + std::to_string(ids.next()), {topic}, queue::start_position::earliest);
    EXPECT_TRUE(c);
    while (out.size() < static_cast<std::size_t>(w->high)) {
      auto batch = (*c)->poll(1s, 100);
      EXPECT_TRUE(batch);
      if (!batch || batch->empty()) break;
      for (const auto& r : *batch) out.push_back(*chat::decode_event(r.value));
    }
    return out;
  }

  testing::temp_store db;
  queue::testing::temp_dir dir;
  std::unique_ptr<queue::embedded_log> log;
  std::unique_ptr<queue::producer> producer;
  id_generator ids;
  presence::service presence;
  metrics_registry metrics;
  std::vector<std::string> live;
  const std::uint64_t a = 11, b = 12, c = 13, d = 14;
  std::uint64_t conv = 0, other = 0;
};

TEST_F(router_test, a_message_goes_only_to_the_servers_of_its_recipients) {
  presence.connection_state("s1", 1, a, presence_state::active);
  presence.connection_state("s2", 2, b, presence_state::inactive);
  presence.connection_state("s2", 3, b, presence_state::active);  // two tabs: one copy
  presence.connection_state("s3", 4, d, presence_state::active);  // not a member
  auto r = make_router();
  auto m = message_in(conv, a);
  ASSERT_TRUE(r.route({as_record(m)}));
  auto s1 = delivered_to("s1");
  ASSERT_EQ(s1.size(), 1u);
  EXPECT_EQ(s1[0].message.id, m.message.id);
  EXPECT_EQ(s1[0].recipients, (std::vector<std::uint64_t>{a}));  // the sender's other devices
  auto s2 = delivered_to("s2");
  ASSERT_EQ(s2.size(), 1u);
  EXPECT_EQ(s2[0].recipients, (std::vector<std::uint64_t>{b}));
  EXPECT_TRUE(delivered_to("s3").empty());  // c is offline, d is not a member
}

TEST_F(router_test, typing_presence_and_bans_follow_their_own_recipients) {
  presence.connection_state("s1", 1, a, presence_state::active);
  presence.connection_state("s2", 2, b, presence_state::active);
  presence.connection_state("s3", 3, d, presence_state::active);
  auto r = make_router();
  chat::event typing;
  typing.kind = chat::event_kind::typing;
  typing.conversation_id = conv;
  typing.participant_id = a;
  chat::event changed;  // a's partners: b and c (conv), d (other)
  changed.kind = chat::event_kind::presence;
  changed.participant_id = a;
  changed.presence = {a, presence_state::inactive, now_ms()};
  chat::event ban;
  ban.kind = chat::event_kind::ban;
  ban.participant_id = b;
  ASSERT_TRUE(r.route({as_record(typing), as_record(changed), as_record(ban)}));
  EXPECT_TRUE(delivered_to("s1").empty());  // nobody tells a about a
  auto s2 = delivered_to("s2");
  ASSERT_EQ(s2.size(), 3u);  // in the order routed
  EXPECT_EQ(s2[0].kind, chat::event_kind::typing);
  EXPECT_EQ(s2[1].kind, chat::event_kind::presence);
  EXPECT_EQ(s2[2].kind, chat::event_kind::ban);
  for (const auto& e : s2) EXPECT_EQ(e.recipients, (std::vector<std::uint64_t>{b}));
  auto s3 = delivered_to("s3");
  ASSERT_EQ(s3.size(), 1u);
  EXPECT_EQ(s3[0].kind, chat::event_kind::presence);
  EXPECT_EQ(s3[0].recipients, (std::vector<std::uint64_t>{d}));
}

TEST_F(router_test, without_a_complete_route_table_every_live_server_gets_everything) {
  auto r = make_router();
  // The table names s1 once while it is complete: remembered as alive.
  presence.connection_state("s1", 1, a, presence_state::active);
  ASSERT_TRUE(r.route({as_record(message_in(conv, b))}));
  ASSERT_EQ(delivered_to("s1").size(), 1u);
  // Restarted just now: a snapshot period to go before the table is whole.
  presence.start();
  live = {"s2", "not a topic name"};
  auto m = message_in(conv, a);
  ASSERT_TRUE(r.route({as_record(m)}));
  presence.stop();
  for (const auto* server : {"s1", "s2"}) {
    auto got = delivered_to(server);
    ASSERT_FALSE(got.empty()) << server;
    EXPECT_EQ(got.back().message.id, m.message.id) << server;
    EXPECT_EQ(got.back().recipients, (std::vector<std::uint64_t>{a, b, c})) << server;
  }
  EXPECT_NE(metrics.render().find("chatd_router_copies_total{mode=\"broadcast\"} 2"), std::string::npos)
      << metrics.render();
}

TEST_F(router_test, an_undecodable_record_is_skipped_and_the_rest_routed) {
  presence.connection_state("s1", 1, b, presence_state::active);
  auto r = make_router();
  queue::record junk;
  junk.value = "not json";
  auto m = message_in(conv, a);
  ASSERT_TRUE(r.route({junk, as_record(m)}));
  auto s1 = delivered_to("s1");
  ASSERT_EQ(s1.size(), 1u);
  EXPECT_EQ(s1[0].message.id, m.message.id);
}

}  // namespace
}  // namespace chatd::mainchat
