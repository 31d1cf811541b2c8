// The presence role across processes: chat servers' clients report over
// signed HTTP to a real presence service, which aggregates per participant
// across servers.
#include "presence/remote.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "common/ids.h"
#include "common/metrics.h"
#include "common/worker_pool.h"
#include "net/server.h"
#include "temp_store.h"

namespace chatd::presence {
namespace {

using namespace std::chrono_literals;
using store::presence_state;

// Polls until `pred` holds; the report path is asynchronous by design.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class presence_remote : public ::testing::Test {
 protected:
  presence_remote() : svc_(*db_, config(), {}), io_(1), workers_(2, "presence-test") {}
  static presence_config config() {
    presence_config c;
    c.timeout_ms = 1000;
    return c;
  }
  void SetUp() override {
    add_internal_routes(routes_, svc_, "secret");
    server_ = std::make_unique<net::http_server>(io_, workers_, routes_, net::server_options{});
    io_.start();
    url_ = "http://" + server_->start();
  }
  void TearDown() override {
    server_->stop(1s);
    io_.stop();
    workers_.stop();
  }

  testing::temp_store db_;
  service svc_;
  net::io_pool io_;
  worker_pool workers_;
  net::router routes_;
  std::unique_ptr<net::http_server> server_;
  std::string url_;
  metrics_registry metrics_;
};

TEST_F(presence_remote, aggregates_across_chat_servers) {
  client a(url_, "secret", *db_, metrics_);
  client b(url_, "secret", *db_, metrics_);
  a.start();
  b.start();
  a.connection_state("cs-a", 1, 42, presence_state::active);
  b.connection_state("cs-b", 2, 42, presence_state::inactive);
  ASSERT_TRUE(eventually([&] { return svc_.connection_count() == 2; }));
  EXPECT_EQ(a.get(42)->state, presence_state::active);
  // The active connection on one server closes while the other server still
  // holds an inactive one: inactive, and both servers' clients agree.
  a.connection_closed("cs-a", 1, 42);
  ASSERT_TRUE(eventually([&] { return svc_.connection_count() == 1; }));
  EXPECT_EQ(a.get(42)->state, presence_state::inactive);
  EXPECT_EQ(b.get(42)->state, presence_state::inactive);
  b.connection_closed("cs-b", 2, 42);
  ASSERT_TRUE(eventually([&] { return svc_.connection_count() == 0; }));
  auto off = b.get(42);
  ASSERT_TRUE(off);
  EXPECT_EQ(off->state, presence_state::offline);
  EXPECT_GT(off->last_seen_at, 0);
  a.stop();
  b.stop();
}

TEST_F(presence_remote, asks_for_many_in_one_call_in_order) {
  client a(url_, "secret", *db_, metrics_);
  a.start();
  a.connection_state("cs-a", 1, 5, presence_state::active);
  a.connection_state("cs-a", 2, 6, presence_state::inactive);
  ASSERT_TRUE(eventually([&] { return svc_.connection_count() == 2; }));
  std::vector<std::uint64_t> ids = {6, 99, 5};
  auto got = a.get_many(ids);
  ASSERT_TRUE(got) << got.err().message;
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].state, presence_state::inactive);
  EXPECT_EQ((*got)[1].state, presence_state::offline);
  EXPECT_EQ((*got)[2].state, presence_state::active);
  EXPECT_EQ((*got)[2].participant_id, 5u);
  // More than one request's worth is split, and still in order.
  std::vector<std::uint64_t> many;
  for (std::uint64_t i = 1; i <= max_query_ids + 5; ++i) many.push_back(i);
  auto all = a.get_many(many);
  ASSERT_TRUE(all) << all.err().message;
  ASSERT_EQ(all->size(), many.size());
  EXPECT_EQ((*all)[4].state, presence_state::active);  // participant 5
  EXPECT_EQ(all->back().participant_id, many.back());
  a.stop();
}

TEST_F(presence_remote, a_snapshot_repairs_what_was_lost) {
  // Reports made while the client is not running are sent in order once it
  // starts; a refresh() sends the whole truth.
  client a(url_, "secret", *db_, metrics_);
  a.connection_state("cs-a", 1, 7, presence_state::active);
  a.connection_state("cs-a", 2, 8, presence_state::active);
  a.connection_closed("cs-a", 2, 8);
  a.start();
  a.refresh("cs-a");
  ASSERT_TRUE(eventually([&] { return svc_.connection_count() == 1; }));
  EXPECT_EQ(svc_.get(7)->state, presence_state::active);
  EXPECT_EQ(svc_.get(8)->state, presence_state::offline);
  // A chat server that stops refreshing loses its connections at the timeout.
  a.stop();
  EXPECT_EQ(svc_.sweep(now_ms() + 1500), 1u);
  EXPECT_EQ(svc_.get(7)->state, presence_state::offline);
}

TEST_F(presence_remote, wrong_secret_changes_nothing_and_get_falls_back_to_the_store) {
  client wrong(url_, "not-it", *db_, metrics_);
  wrong.start();
  wrong.connection_state("cs-x", 1, 9, presence_state::active);
  // A marker through a correctly signed client, sent after the refused one.
  client right(url_, "secret", *db_, metrics_);
  right.start();
  right.connection_state("cs-y", 2, 10, presence_state::active);
  ASSERT_TRUE(eventually([&] { return svc_.get(10)->state == presence_state::active; }));
  ASSERT_TRUE(eventually([&] {
    return metrics_.render().find("chatd_internal_calls_total{outcome=\"failed\",service=\"presence\"} 1") !=
           std::string::npos;
  }));
  EXPECT_EQ(svc_.get(9)->state, presence_state::offline);
  wrong.stop();
  right.stop();

  // The presence service unreachable: the stored state answers.
  std::string gone_url = url_;
  server_->stop(1s);
  client orphan(gone_url, "secret", *db_, metrics_);
  auto p = orphan.get(10);
  ASSERT_TRUE(p) << p.err().message;
  EXPECT_EQ(p->state, presence_state::active);
}

TEST(presence_report, parsing_is_strict) {
  report r;
  r.server = "cs-1";
  r.connections.push_back({{1, 2, presence_state::inactive}, false});
  r.connections.push_back({{3, 2, presence_state::offline}, true});
  auto back = parse_report(report_body(r));
  ASSERT_TRUE(back) << back.err().message;
  EXPECT_EQ(back->server, "cs-1");
  ASSERT_EQ(back->connections.size(), 2u);
  EXPECT_EQ(back->connections[0].conn.state, presence_state::inactive);
  EXPECT_TRUE(back->connections[1].closed);
  for (const char* bad : {
           "[]",
           R"({"server":"s","snapshot":false})",
           R"({"server":"","snapshot":false,"connections":[]})",
           R"({"server":"s","snapshot":"no","connections":[]})",
           R"({"server":"s","snapshot":false,"connections":[{"id":"1","participant_id":"2","state":"away"}]})",
           R"({"server":"s","snapshot":false,"connections":[{"id":"1","participant_id":"2"}]})",
           R"({"server":"s","snapshot":true,"connections":[{"id":"1","participant_id":"2","state":"closed"}]})",
           R"({"server":"s","snapshot":false,"connections":[],"x":1})",
       }) {
    auto p = parse_report(bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.err().code, errc::bad_request) << bad;
  }
}

TEST_F(presence_remote, after_reported_runs_once_the_service_has_the_connection) {
  client a(url_, "secret", *db_, metrics_);
  a.start();
  for (std::uint64_t c = 1; c <= 200; ++c) a.connection_state("cs-a", c, 1000 + c, presence_state::active);
  std::promise<std::size_t> seen;
  // No polling: when the callback runs, every report made before it is in.
  a.after_reported([&] { seen.set_value(svc_.connection_count()); });
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get(), 200u);
  auto r = a.routes_of({1001, 1200, 5});
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_TRUE(r->complete);
  ASSERT_EQ(r->servers.size(), 3u);
  EXPECT_EQ(r->servers[0], (std::vector<std::string>{"cs-a"}));
  EXPECT_EQ(r->servers[1], (std::vector<std::string>{"cs-a"}));
  EXPECT_TRUE(r->servers[2].empty());
  // Nothing pending: runs at once.
  bool now = false;
  a.after_reported([&] { now = true; });
  EXPECT_TRUE(now);
  a.stop();
}

TEST_F(presence_remote, routes_are_asked_in_chunks_and_fail_without_the_service) {
  client a(url_, "secret", *db_, metrics_);
  a.start();
  std::vector<std::uint64_t> many;
  for (std::uint64_t p = 1; p <= 2500; ++p) many.push_back(p);
  a.connection_state("cs-z", 1, 2500, presence_state::inactive);
  std::promise<void> in;
  a.after_reported([&] { in.set_value(); });
  ASSERT_EQ(in.get_future().wait_for(5s), std::future_status::ready);
  auto r = a.routes_of(many);  // three calls of at most 1000
  ASSERT_TRUE(r) << r.err().message;
  ASSERT_EQ(r->servers.size(), 2500u);
  EXPECT_EQ(r->servers[2499], (std::vector<std::string>{"cs-z"}));
  EXPECT_TRUE(r->servers[0].empty());
  a.stop();
  // A report made while the service is down still releases its waiter (the
  // chat server then sends `ready` and the router falls back to broadcast).
  server_->stop(1s);
  EXPECT_EQ(a.routes_of({1}).err().code, errc::unavailable);
  client orphan(url_, "secret", *db_, metrics_);
  orphan.start();
  orphan.connection_state("cs-q", 1, 1, presence_state::active);
  std::promise<void> released;
  orphan.after_reported([&] { released.set_value(); });
  EXPECT_EQ(released.get_future().wait_for(10s), std::future_status::ready);
  orphan.stop();
}

}  // namespace
}  // namespace chatd::presence
