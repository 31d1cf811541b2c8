// The distributed layout under failures and routed delivery: each role is
// killed with SIGKILL in turn, then the broker and the CQL server restart,
// while tens of clients keep a steady load; `scripts/cluster.sh up` brings
// back what died on its old port, and at the end every acknowledged message
// is stored exactly once and was delivered to its receiver (live, or through
// ?since= after a reconnect). With CHATD_CLUSTER_NETNS every process runs in
// a network namespace of its own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <thread>
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

const std::vector<std::pair<std::string, std::string>> flags = {
    {"rate_limits.send_per_second", "0"},   {"rate_limits.login_per_minute", "0"}, {"rate_limits.read_per_second", "0"},
    {"rate_limits.typing_per_second", "0"}, {"presence.timeout_ms", "3000"},       {"discovery.server_ttl_ms", "3000"}};

// One of the tens of clients of the steady-load failover test: sends to its
// partner at a steady pace on its own thread, resends the same
// client_msg_id over a new connection (through discovery, with ?since=)
// whenever the old one failed, and notes what its partner sent.
class load_client {
 public:
  load_client(participant_handle who, std::string conv, std::string gateway, std::size_t first_server)
      : who_(std::move(who)), conv_(std::move(conv)), gateway_(std::move(gateway)), turn_(first_server) {}

  void run(const std::atomic<bool>& stop, std::chrono::milliseconds period) {
    connect();
    auto next = std::chrono::steady_clock::now();
    while (!stop) {
      send_one();
      drain(1ms);
      next += period;
      std::this_thread::sleep_until(next);
      if (std::chrono::steady_clock::now() > next + 5 * period) next = std::chrono::steady_clock::now();
    }
  }

  // After the load: reads until every id in `expected` arrived, reconnecting
  // with ?since= when the socket is quiet or gone.
  void catch_up(const std::vector<std::string>& expected) {
    auto missing = [&] {
      return std::any_of(expected.begin(), expected.end(), [&](const auto& id) { return !received_.count(id); });
    };
    for (int round = 0; round < 4 && missing(); ++round) {
      auto quiet_until = std::chrono::steady_clock::now() + 10s;
      while (missing() && std::chrono::steady_clock::now() < quiet_until) {
        if (!drain(500ms)) break;
      }
      if (missing()) connect();
    }
  }

  const participant_handle& who() const { return who_; }
  const std::string& conv() const { return conv_; }
  const std::vector<std::string>& acked() const { return acked_; }
  const std::string& last_seen() const { return last_seen_; }
  const std::set<std::string>& received() const { return received_; }
  std::size_t attempts() const { return attempts_; }
  std::size_t duplicates() const { return duplicates_; }
  int reconnects() const { return connects_ - 1; }

 private:
  void connect() {
    for (int attempt = 0; attempt < 600; ++attempt) {  // up to a minute: the gateway may be down
      for (const auto& url : discover()) {
        chat_client fresh;
        if (fresh.connect_url(url, who_.token, last_seen_)) {
          ws_ = std::move(fresh);
          server_ = url;
          for (const auto& conv : ws_.ready().at("conversations").as_array()) {
            for (const auto& m : conv.at("messages").as_array()) note(m.as_object(), false);
          }
          ++connects_;
          connected_ = true;
          return;
        }
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << who_.username << " could not reconnect";
  }

  // The chat servers the gateway offers, in turn as chat_client::connect
  // picks them; none while the gateway is down (not a failure here).
  std::vector<std::string> discover() {
    auto r = net::http_request_sync("GET", "http://" + gateway_ + "/v1/discovery", "",
                                    {{"Authorization", "Bearer " + who_.token}});
    std::vector<std::string> urls;
    if (!r || r->status != 200) return urls;
    std::error_code ec;
    auto v = json::parse(r->body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("servers")) return urls;
    for (const auto& s : v.at("servers").as_array()) urls.emplace_back(s.at("url").as_string());
    if (!urls.empty())
      std::rotate(urls.begin(), urls.begin() + static_cast<std::ptrdiff_t>(turn_++ % urls.size()), urls.end());
    return urls;
  }

  // Gives up only after a minute and a half of refusals: the CQL server's
  // restart (up to ~40 s on a cold machine) plus the driver's reconnect
  // back-off (up to 10 s). Counted in time, not attempts, and not cut short
  // when the load stops: a send that began during the outage still has its
  // whole allowance after it.
  void send_one() {
    const std::string cmid = who_.username + "-" + std::to_string(acked_.size());
    const auto give_up_at = std::chrono::steady_clock::now() + 90s;
    int attempts = 0;
    while (std::chrono::steady_clock::now() < give_up_at) {
      if (!connected_) connect();
      ++attempts_;
      ++attempts;
      auto ack = try_send(ws_, conv_, "load " + cmid, cmid);
      if (type_of(ack) == "ack") {
        acked_.push_back(std::string(ack.at("message").at("id").as_string()));
        return;
      }
      // An error frame (the database restarting) or a dead connection: the
      // same client_msg_id again, over a new connection if need be.
      if (ack.is_null()) connected_ = false;
      last_refusal_ = ack.is_null() ? "no answer" : json::serialize(ack);
      last_refusal_ += " from " + server_;
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "no ack for " << cmid << " within 90 s (" << attempts
                  << " attempts); the last answer: " << last_refusal_;
  }

  // A message of the conversation, pushed or in `ready`'s history (which is
  // how one sent before the first connect arrives).
  void note(const json::object& m, bool pushed) {
    std::string id(m.at("id").as_string());
    if (last_seen_.empty() || parse_id(id) > parse_id(last_seen_)) last_seen_ = id;
    if (m.at("sender").at("id").as_string() == who_.id) return;
    if (!received_.insert(id).second && pushed) ++duplicates_;
  }

  // Notes every frame already there or arriving within `wait`; false once
  // the socket is closed.
  bool drain(std::chrono::milliseconds wait) {
    if (!connected_) return false;
    for (;;) {
      auto f = ws_.next(wait);
      if (!f) {
        if (ws_.close_code() != 0) connected_ = false;
        return connected_;
      }
      if (type_of(*f) != "message") continue;
      note(f->at("message").as_object(), true);
      wait = 1ms;
    }
  }

  participant_handle who_;
  std::string conv_;
  std::string gateway_;
  chat_client ws_;
  bool connected_ = false;
  std::string last_seen_;
  std::vector<std::string> acked_;
  std::set<std::string> received_;
  std::size_t attempts_ = 0;
  std::string last_refusal_;
  std::string server_;  // the chat server of the current connection
  std::size_t duplicates_ = 0;
  int connects_ = 0;
  std::size_t turn_ = 0;
};

// Every id of a conversation's history, with how often each is there.
std::map<std::string, int> stored_ids(const api& c, const std::string& conv, const std::string& token) {
  std::map<std::string, int> stored;
  std::string before;
  for (;;) {
    auto page =
        c.get("/v1/conversations/" + conv + "/messages?limit=100" + (before.empty() ? "" : "&before=" + before), token);
    EXPECT_EQ(page.status, 200) << page.raw;
    if (page.status != 200) break;
    const auto& msgs = page.obj().at("messages").as_array();
    for (const auto& m : msgs) ++stored[std::string(m.at("id").as_string())];
    if (!page.obj().at("has_more").as_bool() || msgs.empty()) break;
    before = std::string(msgs.back().at("id").as_string());
  }
  return stored;
}

// Tens of clients over the three chat servers keep a steady load of a few
// hundred messages a second while every role is killed with SIGKILL in turn,
// then the broker and the CQL server restart. At the end every acknowledged
// message is stored exactly once and its receiver got it.
TEST(cluster_failover, steady_load_through_every_kill_and_engine_restart_loses_nothing) {
  if (!cluster_mode()) GTEST_SKIP() << "runs against scripts/cluster.sh (CHATD_TEST_CLUSTER=1)";
  if (std::getenv("CHATD_CLUSTER_NETNS") != nullptr && ::geteuid() != 0) {
    GTEST_SKIP() << "network namespaces need root";
  }
  chatd_process proc(flags);
  proc.start(120s);  // in namespaces the cluster starts engines of its own first
  api c(proc.gateway());
  constexpr int pairs = 12;
  constexpr auto period = 80ms;  // 24 clients: ~300 messages/s
  std::vector<std::unique_ptr<load_client>> clients;
  for (int k = 0; k < pairs; ++k) {
    auto a = make_participant(c, "user", "load_u" + std::to_string(k));
    auto b = make_participant(c, "shop", "load_s" + std::to_string(k));
    auto conv = create_conversation(c, a, "direct", {b.id});
    // The two sides of a pair on different chat servers.
    clients.push_back(std::make_unique<load_client>(a, conv, proc.gateway(), 2 * k));
    clients.push_back(std::make_unique<load_client>(b, conv, proc.gateway(), 2 * k + 1));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  struct joiner {  // also when an assertion below returns early
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~joiner() {
      stop = true;
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_at_exit{stop, threads};
  for (auto& cl : clients) threads.emplace_back([&, cl = cl.get()] { cl->run(stop, period); });
  auto under_load = [](std::chrono::seconds d) { std::this_thread::sleep_for(d); };
  under_load(3s);
  for (const std::string victim :
       {"chat-sg", "main-chat-1", "presence", "notification", "gateway", "discovery", "chat-fra", "main-chat-2"}) {
    std::printf("%lld killing %s\n", static_cast<long long>(now_ms()), victim.c_str());
    proc.kill9_process(victim);
    under_load(3s);
    proc.restart_dead();
    under_load(2s);
  }
  for (const std::string engine : {"kafka", "cassandra"}) {
    std::printf("%lld restarting %s\n", static_cast<long long>(now_ms()), engine.c_str());
    proc.restart_engine(engine);
    proc.restart_dead();
    under_load(3s);
  }
  stop = true;
  for (auto& t : threads) t.join();

  std::size_t attempts = 0, acked = 0, stored_total = 0, delivered = 0, duplicates = 0;
  int reconnects = 0;
  for (std::size_t k = 0; k < clients.size(); k += 2) {
    auto& a = *clients[k];
    auto& b = *clients[k + 1];
    a.catch_up(b.acked());
    b.catch_up(a.acked());
    auto stored = stored_ids(c, a.conv(), a.who().token);
    for (const auto& [id, n] : stored) EXPECT_EQ(n, 1) << "stored " << n << " times: " << id;
    std::set<std::string> acked_ids;
    EXPECT_EQ(stored.size(), a.acked().size() + b.acked().size()) << a.conv();
    for (const auto* from : {&a, &b}) {
      const auto& to = from == &a ? b : a;
      for (const auto& id : from->acked()) {
        EXPECT_EQ(stored.count(id), 1u) << "acked, not stored: " << id;
        acked_ids.insert(id);
        EXPECT_TRUE(to.received().count(id))
            << to.who().username << " never got " << id << " (sent at " << id_timestamp_ms(*parse_id(id))
            << ", it saw up to " << to.last_seen() << ")";
      }
      attempts += from->attempts();
      acked += from->acked().size();
      delivered += from->received().size();
      duplicates += from->duplicates();
      reconnects += from->reconnects();
    }
    stored_total += stored.size();
    for (const auto& [id, n] : stored) {
      EXPECT_TRUE(acked_ids.count(id)) << "stored, never acked: " << id << " (at " << id_timestamp_ms(*parse_id(id))
                                       << ")";
    }
  }
  std::printf(
      "steady load: sent %zu (attempts) acked %zu stored %zu delivered %zu duplicates suppressed %zu reconnects %d\n",
      attempts, acked, stored_total, delivered, duplicates, reconnects);
  EXPECT_GT(acked, 2000u);  // the load was there
  EXPECT_GT(reconnects, 0);
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
