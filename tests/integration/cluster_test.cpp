// The distributed layout when its processes die: each role is killed with
// SIGKILL in turn while two participants on different chat servers keep
// writing, `scripts/cluster.sh up` brings it back on its old port, and at the
// end every acknowledged message is stored exactly once and was delivered to
// the other side (live, or through ?since= after a reconnect).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/ids.h"
#include "integration/chat_client.h"
#include "integration/chatd_process.h"

namespace chatd::testing {
namespace {

using namespace std::chrono_literals;

std::string type_of(const json::value& v) {
  return v.is_object() && v.as_object().if_contains("type") ? std::string(v.as_object().at("type").as_string()) : "";
}

// One side of the conversation: its socket, reconnected through discovery
// with ?since= whenever its chat server went away.
struct side {
  participant_handle who;
  chat_client ws;
  std::set<std::string> received;  // ids of the other side's messages
  std::string last_seen;           // the newest id this side saw, for ?since=
  int connects = 0;

  void note(const json::value& frame) {
    const auto& m = frame.at("message").as_object();
    std::string id(m.at("id").as_string());
    if (m.at("sender").at("id").as_string() != who.id) received.insert(id);
    if (last_seen.empty() || parse_id(id) > parse_id(last_seen)) last_seen = id;
  }
  void connect(const api& c) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      chat_client fresh;
      if (fresh.connect(c, who.token, last_seen)) {
        ws = std::move(fresh);
        ++connects;
        return;
      }
      std::this_thread::sleep_for(100ms);  // discovery still lists the dead server
    }
    FAIL() << who.username << " could not reconnect";
  }
  // Reads what arrived until `marker` (a message of the other side) is seen.
  bool drain_until(const std::string& marker, const api& c) {
    for (int round = 0; round < 3; ++round) {
      for (;;) {
        auto f = ws.wait_type("message", "", 10s);
        if (!f) break;  // closed or quiet: reconnect and recover below
        note(*f);
        if (received.count(marker)) return true;
      }
      if (received.count(marker)) return true;
      connect(c);
    }
    return received.count(marker) > 0;
  }
};

// A send that may meet a dead connection: null instead of a test failure.
json::value try_send(chat_client& ws, const std::string& conv, const std::string& body, const std::string& cmid) {
  json::object f{{"type", "send"}, {"id", cmid}, {"conversation_id", conv}, {"body", body}, {"client_msg_id", cmid}};
  if (!ws.raw().send_text(json::serialize(f))) return nullptr;
  auto r = ws.wait_for([&](const json::object& o) {
    auto* i = o.if_contains("id");
    return i && i->is_string() && i->as_string() == cmid;
  });
  return r ? *r : json::value(nullptr);
}

TEST(cluster_failover, every_role_killed_in_turn_loses_no_acknowledged_message) {
  if (!cluster_mode()) GTEST_SKIP() << "runs against scripts/cluster.sh (CHATD_TEST_CLUSTER=1)";
  chatd_process proc({{"rate_limits.send_per_second", "0"},
                      {"rate_limits.login_per_minute", "0"},
                      {"presence.timeout_ms", "3000"},
                      {"discovery.server_ttl_ms", "3000"}});
  proc.start();
  api c(proc.gateway());
  side a{make_participant(c, "user", "fail_a"), {}, {}, {}};
  side b{make_participant(c, "shop", "fail_b"), {}, {}, {}};
  auto conv = create_conversation(c, a.who, "direct", {b.who.id});
  a.connect(c);
  b.connect(c);  // the next chat server: the two sides sit on different ones

  std::vector<std::string> acked_by_a, acked_by_b;
  int n = 0;
  // Sends until `count` are acked, resending with the same client_msg_id
  // over a new connection when the chat server died under the send.
  auto send = [&](side& from, std::vector<std::string>& acked, int count) {
    for (int i = 0; i < count; ++i) {
      const std::string cmid = from.who.username + "-" + std::to_string(n++);
      for (int attempt = 0;; ++attempt) {
        ASSERT_LT(attempt, 20) << "no ack for " << cmid;
        auto ack = try_send(from.ws, conv, "m " + cmid, cmid);
        if (type_of(ack) == "ack") {
          acked.push_back(std::string(ack.at("message").at("id").as_string()));
          break;
        }
        from.connect(api(proc.gateway()));
      }
    }
  };
  auto exchange = [&] {
    send(a, acked_by_a, 5);
    send(b, acked_by_b, 5);
    ASSERT_TRUE(b.drain_until(acked_by_a.back(), api(proc.gateway())));
    ASSERT_TRUE(a.drain_until(acked_by_b.back(), api(proc.gateway())));
  };

  exchange();
  for (const std::string victim :
       {"main-chat-1", "presence", "notification", "discovery", "gateway", "chat-sg", "chat-fra", "main-chat-2"}) {
    SCOPED_TRACE(victim);
    proc.kill9_process(victim);
    exchange();  // while it is dead (a dead chat server: its clients move)
    proc.restart_dead();
    exchange();  // and after it is back
  }

  // Stored exactly once: history (newest first, 100 a page) holds each
  // acknowledged id once and nothing else.
  std::map<std::string, int> stored;
  std::string before;
  for (;;) {
    auto page = c.get("/v1/conversations/" + conv + "/messages?limit=100" + (before.empty() ? "" : "&before=" + before),
                      a.who.token);
    ASSERT_EQ(page.status, 200) << page.raw;
    const auto& msgs = page.obj().at("messages").as_array();
    for (const auto& m : msgs) ++stored[std::string(m.at("id").as_string())];
    if (!page.obj().at("has_more").as_bool() || msgs.empty()) break;
    before = std::string(msgs.back().at("id").as_string());
  }
  const std::size_t sent = acked_by_a.size() + acked_by_b.size();
  EXPECT_EQ(stored.size(), sent);
  for (const auto& [id, count] : stored) EXPECT_EQ(count, 1) << id;
  for (const auto& id : acked_by_a) {
    EXPECT_EQ(stored.count(id), 1u) << id;
    EXPECT_TRUE(b.received.count(id)) << "b never got " << id;
  }
  for (const auto& id : acked_by_b) {
    EXPECT_EQ(stored.count(id), 1u) << id;
    EXPECT_TRUE(a.received.count(id)) << "a never got " << id;
  }
  // The chat servers killed held at least one of the two sides: it moved.
  EXPECT_GT(a.connects + b.connects, 2);
  std::printf("failover: sent %zu, acked %zu, stored %zu, delivered to a %zu, to b %zu, reconnects %d\n", sent, sent,
              stored.size(), a.received.size(), b.received.size(), a.connects + b.connects - 2);
}

}  // namespace
}  // namespace chatd::testing
