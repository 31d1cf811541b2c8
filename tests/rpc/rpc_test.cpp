#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "common/ids.h"
#include "common/metrics.h"
#include "common/worker_pool.h"
#include "net/client.h"
#include "net/reply.h"
#include "net/server.h"
#include "rpc/internal.h"

namespace chatd::rpc {
namespace {

using namespace std::chrono_literals;

net::http_request request(std::string method, std::string path, std::string body, net::header_list headers) {
  net::http_request req;
  req.method = std::move(method);
  req.path = std::move(path);
  req.target = req.path;
  req.body = std::move(body);
  req.headers = std::move(headers);
  return req;
}

std::int64_t now_s() { return now_ms() / 1000; }

TEST(rpc_signature, covers_time_method_path_and_body) {
  auto h = signed_headers("k", "POST", "/v1/internal/x", "{}");
  EXPECT_TRUE(verify("k", request("POST", "/v1/internal/x", "{}", h), now_s()));
  EXPECT_FALSE(verify("other", request("POST", "/v1/internal/x", "{}", h), now_s()));
  EXPECT_FALSE(verify("k", request("PUT", "/v1/internal/x", "{}", h), now_s()));
  EXPECT_FALSE(verify("k", request("POST", "/v1/internal/y", "{}", h), now_s()));
  EXPECT_FALSE(verify("k", request("POST", "/v1/internal/x", "{ }", h), now_s()));
  // A captured request is refused once it is older than the window, and one
  // from too far in the future too.
  EXPECT_TRUE(verify("k", request("POST", "/v1/internal/x", "{}", h), now_s() + max_clock_skew_s - 1));
  auto late = verify("k", request("POST", "/v1/internal/x", "{}", h), now_s() + max_clock_skew_s + 2);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.err().code, errc::unauthorized);
  EXPECT_FALSE(verify("k", request("POST", "/v1/internal/x", "{}", h), now_s() - max_clock_skew_s - 2));
  EXPECT_FALSE(verify("k", request("POST", "/v1/internal/x", "{}", {}), now_s()));
  // The timestamp is part of what is signed: changing it breaks the signature.
  auto forged = h;
  for (auto& [k, v] : forged) {
    if (k == timestamp_header) v = std::to_string(std::stoll(v) + 1);
  }
  EXPECT_FALSE(verify("k", request("POST", "/v1/internal/x", "{}", forged), now_s()));
  // The query string is not signed (internal routes take none), the path is.
  auto q = signed_headers("k", "GET", "/v1/internal/x?a=1", "");
  EXPECT_TRUE(verify("k", request("GET", "/v1/internal/x", "", q), now_s()));
  // The nonce is signed too, and a request without one is refused.
  auto other_nonce = h;
  for (auto& [k, v] : other_nonce) {
    if (k == nonce_header) v = std::string(32, 'a');
  }
  EXPECT_FALSE(verify("k", request("POST", "/v1/internal/x", "{}", other_nonce), now_s()));
  net::header_list no_nonce;
  for (auto& [k, v] : h) {
    if (k != nonce_header) no_nonce.emplace_back(k, v);
  }
  EXPECT_FALSE(verify("k", request("POST", "/v1/internal/x", "{}", no_nonce), now_s()));
  // The framing pinned down by a value computed outside chatd:
  //   printf '1700000000\n0123456789abcdef0123456789abcdef\nPOST\n/v1/internal/x\n{}' |
  //     openssl dgst -sha256 -hmac k
  EXPECT_EQ(sign("k", 1700000000, "0123456789abcdef0123456789abcdef", "POST", "/v1/internal/x", "{}"),
            "sha256=4f122b0c5eec214afaff2a2e80d9bf4a1834e3a5530a42d9d1f72b83e62b78ca");
}

TEST(rpc_signature, a_signed_request_is_accepted_once) {
  replay_guard guard;
  auto h = signed_headers("k", "POST", "/v1/internal/x", "{}");
  auto req = request("POST", "/v1/internal/x", "{}", h);
  EXPECT_TRUE(verify("k", req, now_s(), &guard));
  auto again = verify("k", req, now_s(), &guard);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code, errc::unauthorized);
  EXPECT_NE(again.err().message.find("replayed"), std::string::npos);
  // The same call made again is a new request with a new nonce.
  EXPECT_TRUE(verify("k", request("POST", "/v1/internal/x", "{}", signed_headers("k", "POST", "/v1/internal/x", "{}")),
                     now_s(), &guard));
  // A request whose signature fails takes no place in the guard.
  EXPECT_FALSE(verify("other",
                      request("POST", "/v1/internal/x", "{}", signed_headers("k", "POST", "/v1/internal/x", "{}")),
                      now_s(), &guard));
  EXPECT_EQ(guard.size(), 2u);
}

TEST(rpc_signature, the_guard_forgets_nonces_after_the_window_and_at_its_bound) {
  replay_guard guard(3);
  EXPECT_TRUE(guard.admit("n1", 1000));
  EXPECT_FALSE(guard.admit("n1", 1000 + 2 * max_clock_skew_s));  // still within: a replay
  EXPECT_TRUE(guard.admit("n1", 1001 + 2 * max_clock_skew_s));   // past it verify() refuses by time anyway
  EXPECT_TRUE(guard.admit("n2", 2000));
  EXPECT_TRUE(guard.admit("n3", 2000));
  EXPECT_TRUE(guard.admit("n4", 2000));
  EXPECT_EQ(guard.size(), 3u);
  EXPECT_EQ(guard.forgotten_early(), 1u);
}

TEST(rpc_error, reads_the_contract_error_body) {
  auto e = error_of(R"({"error":{"code":"forbidden","message":"no"}})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, errc::forbidden);
  EXPECT_EQ(e->message, "no");
  EXPECT_FALSE(error_of("not json"));
  EXPECT_FALSE(error_of(R"({"error":{"code":"nonsense"}})"));
}

class rpc_server : public ::testing::Test {
 protected:
  rpc_server() : io_(1), workers_(2, "rpc-test") {}
  void SetUp() override {
    add_route(routes_, "POST", "/v1/internal/flaky", "secret", [this](net::http_request& req) {
      if (calls_.fetch_add(1) < failures_) return net::error_reply(errc::unavailable, "not yet");
      return net::json_reply(200, json::object{{"echo", req.body}});
    });
    add_route(routes_, "POST", "/v1/internal/refuse", "secret", [this](net::http_request&) {
      calls_.fetch_add(1);
      return net::error_reply(errc::forbidden, "never");
    });
    server_ = std::make_unique<net::http_server>(io_, workers_, routes_, net::server_options{});
    io_.start();
    url_ = "http://" + server_->start();
  }
  void TearDown() override {
    server_->stop(1s);
    io_.stop();
    workers_.stop();
  }

  net::io_pool io_;
  worker_pool workers_;
  net::router routes_;
  std::unique_ptr<net::http_server> server_;
  std::string url_;
  std::atomic<int> calls_{0};
  int failures_ = 0;
  metrics_registry metrics_;
};

TEST_F(rpc_server, retries_unavailable_answers_and_counts_them) {
  failures_ = 2;
  client c("test", url_, "secret", metrics_, client_options{1s, 3, 5ms});
  auto r = c.call("POST", "/v1/internal/flaky", "hello");
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_NE(r->find("hello"), std::string::npos);
  EXPECT_EQ(calls_.load(), 3);
  auto text = metrics_.render();
  EXPECT_NE(text.find("chatd_internal_call_retries_total{service=\"test\"} 2"), std::string::npos) << text;
}

TEST_F(rpc_server, gives_up_after_the_attempts) {
  failures_ = 100;
  client c("test", url_, "secret", metrics_, client_options{1s, 2, 5ms});
  auto r = c.call("POST", "/v1/internal/flaky", "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
  EXPECT_EQ(calls_.load(), 2);
}

TEST_F(rpc_server, a_client_error_is_final_and_keeps_its_code) {
  client c("test", url_, "secret", metrics_, client_options{1s, 3, 5ms});
  auto r = c.call("POST", "/v1/internal/refuse", "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::forbidden);
  EXPECT_EQ(calls_.load(), 1);
  // A wrong secret never reaches the handler.
  client wrong("test", url_, "other", metrics_, client_options{1s, 3, 5ms});
  auto w = wrong.call("POST", "/v1/internal/refuse", "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.err().code, errc::unauthorized);
  EXPECT_EQ(calls_.load(), 1);
}

TEST(rpc_client, unreachable_service_is_unavailable) {
  std::string address;
  {
    net::io_pool io(1);
    worker_pool workers(1, "probe");
    net::router routes;
    net::http_server probe(io, workers, routes, net::server_options{});
    io.start();
    address = probe.start();
    probe.stop(1s);
    io.stop();
  }
  metrics_registry metrics;
  client c("gone", "http://" + address, "s", metrics, client_options{500ms, 2, 5ms});
  auto r = c.call("GET", "/v1/internal/x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::unavailable);
  EXPECT_NE(metrics.render().find("chatd_internal_calls_total{outcome=\"failed\",service=\"gone\"} 1"),
            std::string::npos)
      << metrics.render();
}

TEST_F(rpc_server, a_captured_request_sent_again_is_refused) {
  auto body = std::string("{}");
  auto h = signed_headers("secret", "POST", "/v1/internal/flaky", body);
  h.emplace_back("Content-Type", "application/json");
  auto first = net::http_request_sync("POST", url_ + "/v1/internal/flaky", body, h, 2s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200) << first->body;
  auto replayed = net::http_request_sync("POST", url_ + "/v1/internal/flaky", body, h, 2s);
  ASSERT_TRUE(replayed);
  EXPECT_EQ(replayed->status, 401) << replayed->body;
  EXPECT_EQ(calls_.load(), 1);
}

TEST(rpc_route, refuses_an_empty_secret) {
  net::router routes;
  EXPECT_THROW(add_route(routes, "GET", "/x", "", [](net::http_request&) { return net::no_content(); }),
               std::invalid_argument);
}

}  // namespace
}  // namespace chatd::rpc
