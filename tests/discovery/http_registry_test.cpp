// What only the remote registry has: signatures on the wire, a discovery
// service that is down, and the heartbeat loop across processes.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "auth/hmac.h"
#include "discovery/heartbeat_loop.h"
#include "discovery/wire.h"
#include "http_fixture.h"
#include "net/client.h"
#include "rpc/internal.h"

namespace chatd::discovery::testing {
namespace {

using namespace std::chrono_literals;

server_info cs(std::string id) {
  return server_info{id, "ws://" + id + ":9000/v1/ws", "local", std::nullopt, std::nullopt, 0.5};
}

TEST(HttpRegistry, WrongSecretIsUnavailable) {
  http_env env;
  http_registry wrong("http://" + env.address(), "not-the-secret");
  auto s = wrong.heartbeat(cs("cs-1"), 10s);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::unavailable);
  EXPECT_NE(s.err().message.find("unauthorized"), std::string::npos) << s.err().message;
  EXPECT_EQ(wrong.healthy().err().code, errc::unavailable);
  EXPECT_EQ(wrong.remove("cs-1").err().code, errc::unavailable);
  EXPECT_TRUE(env.backend().healthy()->empty());
}

TEST(HttpRegistry, RawRequestsNeedTheSignature) {
  http_env env;
  std::string base = "http://" + env.address();
  auto body = wire::heartbeat_body(cs("cs-raw"), 10s);
  auto r = net::http_request_sync("POST", base + std::string(wire::heartbeat_path), body);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->body.find("\"unauthorized\""), std::string::npos) << r->body;

  auto h = rpc::signed_headers(http_env::secret, "POST", wire::heartbeat_path, body);
  r = net::http_request_sync("POST", base + std::string(wire::heartbeat_path), body, h);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->status, 204) << r->body;
  EXPECT_EQ(env.backend().healthy()->size(), 1u);

  // The signature covers the path and the body: the same headers on another request fail.
  r = net::http_request_sync("POST", base + std::string(wire::remove_path), R"({"id":"cs-raw"})", h);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(env.backend().healthy()->size(), 1u);
}

TEST(HttpRegistry, ServiceDownIsUnavailable) {
  // A port that was just free: bind a server, note its port, stop it.
  std::string address;
  {
    http_env env;
    address = env.address();
  }
  http_registry gone("http://" + address, "secret", rpc::client_options{1000ms, 2, 10ms});
  auto t0 = std::chrono::steady_clock::now();
  auto s = gone.heartbeat(cs("cs-1"), 10s);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::unavailable);
  EXPECT_EQ(gone.healthy().err().code, errc::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(HttpRegistry, ConstructorRefusesBadConfiguration) {
  EXPECT_THROW(http_registry("ws://127.0.0.1:1", "s"), std::invalid_argument);
  EXPECT_THROW(http_registry("127.0.0.1:1", "s"), std::invalid_argument);
  EXPECT_THROW(http_registry("http://127.0.0.1:1", ""), std::invalid_argument);
  EXPECT_NO_THROW(http_registry("http://127.0.0.1:1/", "s"));
}

TEST(HttpRegistry, HeartbeatLoopAcrossTheWire) {
  http_env env;
  heartbeat_loop loop(
      env.get(), [] { return cs("cs-loop"); }, 50ms, 2s);
  EXPECT_TRUE(loop.start());
  ASSERT_EQ(env.backend().healthy()->size(), 1u);
  auto end = std::chrono::steady_clock::now() + 2s;
  while (loop.heartbeats_sent() < 4 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(10ms);
  EXPECT_GE(loop.heartbeats_sent(), 4u);
  loop.stop();
  EXPECT_TRUE(env.backend().healthy()->empty());
}

TEST(HttpRegistry, ServerSideValidationMatches) {
  // The client checks first; a server behind an older client still refuses.
  http_env env;
  std::string base = "http://" + env.address();
  std::string body = R"({"id":"x","url":"ftp://x","region":"r","load":0,"ttl_ms":1000})";
  auto h = rpc::signed_headers(http_env::secret, "POST", wire::heartbeat_path, body);
  auto r = net::http_request_sync("POST", base + std::string(wire::heartbeat_path), body, h);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("bad_request"), std::string::npos);
}

}  // namespace
}  // namespace chatd::discovery::testing
