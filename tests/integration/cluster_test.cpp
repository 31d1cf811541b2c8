// The distributed layout when its processes die: each role is killed with
// SIGKILL in turn while two participants on different chat servers keep
// writing, `scripts/cluster.sh up` brings it back on its old port, and at the
// end every acknowledged message is stored exactly once and was delivered to
// the other side (live, or through ?since= after a reconnect).
#include <gtest/gtest.h>

#include <cstdlib>
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

// The conversation between two sides on different chat servers, with the
// bookkeeping both failover tests check at the end.
class conversation_under_failure {
 public:
  explicit conversation_under_failure(chatd_process& proc) : proc_(proc) {
    api c(proc.gateway());
    a_.who = make_participant(c, "user", "fail_a");
    b_.who = make_participant(c, "shop", "fail_b");
    conv_ = create_conversation(c, a_.who, "direct", {b_.who.id});
    a_.connect(c);
    b_.connect(c);  // the next chat server: the two sides sit on different ones
  }

  // Five messages each way, each acked (resent with the same client_msg_id
  // over a new connection when the chat server died under it), then each
  // side reads until it has the other's last one.
  void exchange() {
    send(a_, acked_by_a_, 5);
    send(b_, acked_by_b_, 5);
    ASSERT_TRUE(b_.drain_until(acked_by_a_.back(), api(proc_.gateway())));
    ASSERT_TRUE(a_.drain_until(acked_by_b_.back(), api(proc_.gateway())));
  }

  // Stored exactly once: history (newest first, 100 a page) holds each
  // acknowledged id once and nothing else; each side got the other's.
  void check(const char* what) {
    api c(proc_.gateway());
    std::map<std::string, int> stored;
    std::string before;
    for (;;) {
      auto page =
          c.get("/v1/conversations/" + conv_ + "/messages?limit=100" + (before.empty() ? "" : "&before=" + before),
                a_.who.token);
      ASSERT_EQ(page.status, 200) << page.raw;
      const auto& msgs = page.obj().at("messages").as_array();
      for (const auto& m : msgs) ++stored[std::string(m.at("id").as_string())];
      if (!page.obj().at("has_more").as_bool() || msgs.empty()) break;
      before = std::string(msgs.back().at("id").as_string());
    }
    const std::size_t sent = acked_by_a_.size() + acked_by_b_.size();
    EXPECT_EQ(stored.size(), sent);
    for (const auto& [id, count] : stored) EXPECT_EQ(count, 1) << id;
    for (const auto& id : acked_by_a_) {
      EXPECT_EQ(stored.count(id), 1u) << id;
      EXPECT_TRUE(b_.received.count(id)) << "b never got " << id;
    }
    for (const auto& id : acked_by_b_) {
      EXPECT_EQ(stored.count(id), 1u) << id;
      EXPECT_TRUE(a_.received.count(id)) << "a never got " << id;
    }
    std::printf("%s: sent %zu, acked %zu, stored %zu, delivered to a %zu, to b %zu, reconnects %d\n", what, sent, sent,
                stored.size(), a_.received.size(), b_.received.size(), reconnects());
  }

  int reconnects() const { return a_.connects + b_.connects - 2; }

 private:
  void send(side& from, std::vector<std::string>& acked, int count) {
    for (int i = 0; i < count; ++i) {
      const std::string cmid = from.who.username + "-" + std::to_string(n_++);
      for (int attempt = 0;; ++attempt) {
        ASSERT_LT(attempt, 30) << "no ack for " << cmid;
        auto ack = try_send(from.ws, conv_, "m " + cmid, cmid);
        if (type_of(ack) == "ack") {
          acked.push_back(std::string(ack.at("message").at("id").as_string()));
          break;
        }
        from.connect(api(proc_.gateway()));
      }
    }
  }

  chatd_process& proc_;
  side a_, b_;
  std::string conv_;
  std::vector<std::string> acked_by_a_, acked_by_b_;
  int n_ = 0;
};

const std::vector<std::pair<std::string, std::string>> flags = {{"rate_limits.send_per_second", "0"},
                                                                {"rate_limits.login_per_minute", "0"},
                                                                {"presence.timeout_ms", "3000"},
                                                                {"discovery.server_ttl_ms", "3000"}};

TEST(cluster_failover, every_role_killed_in_turn_loses_no_acknowledged_message) {
  if (!cluster_mode()) GTEST_SKIP() << "runs against scripts/cluster.sh (CHATD_TEST_CLUSTER=1)";
  chatd_process proc(flags);
  proc.start();
  conversation_under_failure talk(proc);
  talk.exchange();
  for (const std::string victim :
       {"main-chat-1", "presence", "notification", "discovery", "gateway", "chat-sg", "chat-fra", "main-chat-2"}) {
    SCOPED_TRACE(victim);
    proc.kill9_process(victim);
    talk.exchange();  // while it is dead (a dead chat server: its clients move)
    proc.restart_dead();
    talk.exchange();  // and after it is back
  }
  talk.check("roles killed");
  // The chat servers killed held at least one of the two sides: it moved.
  EXPECT_GT(talk.reconnects(), 0);
}

// The broker, then the CQL server, stopped and started again under the
// cluster (processes that could not ride it out come back through
// cluster.sh up: a process whose node-id lease expired during the database
// outage stops by design).
TEST(cluster_failover, broker_and_database_restarts_lose_no_acknowledged_message) {
  if (!cluster_mode()) GTEST_SKIP() << "runs against scripts/cluster.sh (CHATD_TEST_CLUSTER=1)";
  chatd_process proc(flags);
  proc.start();
  conversation_under_failure talk(proc);
  talk.exchange();
  for (const std::string engine : {"kafka", "cassandra"}) {
    SCOPED_TRACE(engine);
    const std::string script = std::string(CHATD_SOURCE_DIR) + "/scripts/" + engine + ".sh";
    ASSERT_EQ(std::system((script + " stop >/dev/null 2>&1").c_str()), 0);
    ASSERT_EQ(std::system((script + " start >/dev/null 2>&1").c_str()), 0);
    proc.restart_dead();
    talk.exchange();
  }
  talk.check("engines restarted");
}

// A counter of one process's /metrics (0 when absent).
double metric(const std::string& addr, const std::string& name) {
  auto text = api(addr).get("/metrics").raw;
  auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + name.size() + 2));
}

// Routed delivery (ADR 009): pairs spread evenly over the three chat
// servers, both members of a pair on the same one, so each chat server
// should process about a third of what the cluster delivers, not all of it
// as with broadcast. Then a participant moves to another server: what was
// sent meanwhile comes back through ?since=, and what is sent once `ready`
// arrived there is pushed there live (its route was known before `ready`).
TEST(cluster_routing, each_chat_server_processes_its_share_and_a_moved_client_misses_nothing) {
  if (!cluster_mode()) GTEST_SKIP() << "runs against scripts/cluster.sh (CHATD_TEST_CLUSTER=1)";
  chatd_process proc(flags);
  proc.start();
  api c(proc.gateway());
  const auto servers = proc.chat_servers();
  ASSERT_EQ(servers.size(), 3u);
  auto url_of = [](const std::string& addr) { return "ws://" + addr + "/v1/ws"; };

  struct pair_on_server {
    participant_handle from, to;
    std::string conv;
    chat_client from_ws, to_ws;
  };
  constexpr int pairs_per_server = 3;
  constexpr int messages_per_pair = 30;
  std::vector<std::unique_ptr<pair_on_server>> pairs;
  for (std::size_t s = 0; s < servers.size(); ++s) {
    for (int k = 0; k < pairs_per_server; ++k) {
      auto p = std::make_unique<pair_on_server>();
      auto tag = std::to_string(s) + "_" + std::to_string(k);
      p->from = make_participant(c, "user", "route_u" + tag);
      p->to = make_participant(c, "shop", "route_s" + tag);
      p->conv = create_conversation(c, p->from, "direct", {p->to.id});
      ASSERT_TRUE(p->from_ws.connect_url(url_of(servers[s]), p->from.token));
      ASSERT_TRUE(p->to_ws.connect_url(url_of(servers[s]), p->to.token));
      pairs.push_back(std::move(p));
    }
  }
  std::vector<double> before;
  for (const auto& s : servers) before.push_back(metric(s, "chatd_chat_server_events_total"));
  for (auto& p : pairs) {
    std::string last;
    for (int i = 0; i < messages_per_pair; ++i) {
      auto ack = p->from_ws.send_message(p->conv, "m" + std::to_string(i));
      ASSERT_EQ(type_of(ack), "ack") << json::serialize(ack);
      last = std::string(ack.at("message").at("id").as_string());
    }
    // Delivered live: the last one arrives, so every one before it went
    // through the receiver's server (one partition per conversation).
    auto got = p->to_ws.wait_for([&](const json::object& o) {
      return o.at("type").as_string() == "message" && o.at("message").at("id").as_string() == last;
    });
    ASSERT_TRUE(got) << "no live delivery in " << p->conv;
  }
  std::vector<double> share;
  double total = 0;
  for (std::size_t s = 0; s < servers.size(); ++s) {
    share.push_back(metric(servers[s], "chatd_chat_server_events_total") - before[s]);
    total += share.back();
  }
  const double sent = static_cast<double>(pairs.size() * messages_per_pair);
  std::printf("routed delivery: %.0f messages sent; records processed per chat server:", sent);
  for (auto v : share) std::printf(" %.0f (%.0f%%)", v, 100.0 * v / total);
  std::printf("\n");
  for (std::size_t s = 0; s < servers.size(); ++s) {
    // Its own pairs' messages, and not the other servers' (broadcast would
    // make it process all of them).
    EXPECT_GE(share[s], sent / 3) << servers[s];
    EXPECT_LT(share[s], sent / 2) << servers[s];
  }

  // The receiver of the first pair moves from server 0 to server 1.
  auto& p = *pairs.front();
  std::string seen;
  {
    auto last = p.to_ws.wait_type("message", "", 200ms);
    while (last) last = p.to_ws.wait_type("message", "", 200ms);
  }
  auto marker = p.from_ws.send_message(p.conv, "before the move");
  ASSERT_EQ(type_of(marker), "ack");
  seen = std::string(marker.at("message").at("id").as_string());
  ASSERT_TRUE(p.to_ws.wait_for([&](const json::object& o) {
    return o.at("type").as_string() == "message" && o.at("message").at("id").as_string() == seen;
  }));
  p.to_ws = chat_client();  // gone from server 0
  std::vector<std::string> while_away;
  for (int i = 0; i < 5; ++i) {
    auto ack = p.from_ws.send_message(p.conv, "while away " + std::to_string(i));
    ASSERT_EQ(type_of(ack), "ack");
    while_away.push_back(std::string(ack.at("message").at("id").as_string()));
  }
  chat_client moved;
  ASSERT_TRUE(moved.connect_url(url_of(servers[1]), p.to.token, seen));
  for (const auto& id : while_away) {
    EXPECT_TRUE(moved.wait_for([&](const json::object& o) {
      return o.at("type").as_string() == "message" && o.at("message").at("id").as_string() == id;
    })) << "not recovered: "
        << id;
  }
  auto live = p.from_ws.send_message(p.conv, "after the move");
  ASSERT_EQ(type_of(live), "ack");
  std::string live_id(live.at("message").at("id").as_string());
  EXPECT_TRUE(moved.wait_for([&](const json::object& o) {
    return o.at("type").as_string() == "message" && o.at("message").at("id").as_string() == live_id;
  })) << "not pushed to the new server";
}

}  // namespace
}  // namespace chatd::testing
