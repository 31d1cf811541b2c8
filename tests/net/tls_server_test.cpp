// The server's https/wss listener against the project's own clients and a
// raw OpenSSL client, with a CA and certificates made at test time.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "common/worker_pool.h"
#include "net/client.h"
#include "net/server.h"
#include "test_pki.h"

namespace chatd::net {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using testing_support::test_pki;

class echo_ws final : public ws_handler {
 public:
  void on_open(std::shared_ptr<ws_connection> conn) override { conn_ = std::move(conn); }
  void on_text(std::string text) override { conn_->send_text("echo:" + text); }
  void on_close() override { conn_.reset(); }

 private:
  std::shared_ptr<ws_connection> conn_;
};

class tls_listener : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new test_pki();
    pki_->make_ca("ca");
    pki_->make_ca("other-ca");
    pki_->make_server("server", "ca", "DNS:localhost,IP:127.0.0.1");
    pki_->make_server("stranger", "other-ca", "DNS:localhost,IP:127.0.0.1");
    // The clients' trust store, read when their TLS context is first built.
    ::setenv("SSL_CERT_FILE", pki_->path("ca.pem").c_str(), 1);
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override {
    routes_.add("GET", "/hello", [](http_request&) {
      http_response r;
      r.body = "hello over tls";
      return r;
    });
    routes_.add("POST", "/echo", [](http_request& q) {
      http_response r;
      r.body = "echo:" + q.body;
      return r;
    });
    routes_.add_ws("/ws", [](http_request&) -> ws_upgrade_result { return std::make_shared<echo_ws>(); });
    io_.start();
  }

  void TearDown() override {
    if (server_) server_->stop(2000ms);
    server_.reset();
    workers_.stop();
    io_.stop();
  }

  server_options tls_options_for(const std::string& cert, const std::string& key) {
    server_options o;
    o.listen = "127.0.0.1:0";
    o.tls = {pki_->path(cert), pki_->path(key)};
    return o;
  }

  void start(server_options o) {
    server_ = std::make_unique<http_server>(io_, workers_, routes_, std::move(o));
    addr_ = server_->start();
    port_ = split_host_port(addr_).second;
  }

  static test_pki* pki_;
  io_pool io_{2};
  worker_pool workers_{2, "tls-worker"};
  router routes_;
  std::unique_ptr<http_server> server_;
  std::string addr_;
  std::uint16_t port_ = 0;
};
test_pki* tls_listener::pki_ = nullptr;

// A raw TLS client with the given protocol range and TLS 1.2 ciphers. Returns
// the negotiated protocol ("TLSv1.3"), or "" when the handshake failed.
std::string handshake_with(std::uint16_t port, int max_version, const char* tls12_ciphers) {
  asio::io_context ioc;
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.native_handle(), max_version);
  if (tls12_ciphers && SSL_CTX_set_cipher_list(ctx.native_handle(), tls12_ciphers) != 1) return "bad cipher list";
  ctx.set_verify_mode(ssl::verify_none);  // the policy, not the certificate, is under test here
  ssl::stream<tcp::socket> stream(ioc, ctx);
  boost::system::error_code ec;
  stream.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return "connect failed";
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) return "";
  std::string version = SSL_get_version(stream.native_handle());
  stream.shutdown(ec);
  return version;
}

TEST_F(tls_listener, https_requests_are_answered_one_connection_each) {
  start(tls_options_for("server.pem", "server.key"));
  for (int i = 0; i < 3; ++i) {
    auto r = http_request_sync("GET", "https://127.0.0.1:" + std::to_string(port_) + "/hello", "", {}, 5s);
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello over tls");
  }
  // The host name is checked too: the certificate names localhost.
  auto post = http_request_sync("POST", "https://localhost:" + std::to_string(port_) + "/echo", "payload", {}, 5s);
  ASSERT_TRUE(post) << post.err().message;
  EXPECT_EQ(post->body, "echo:payload");
}

TEST_F(tls_listener, a_body_over_the_limit_is_answered_413_over_tls) {
  auto o = tls_options_for("server.pem", "server.key");
  o.max_body_bytes = 1024;
  start(o);
  auto r =
      http_request_sync("POST", "https://127.0.0.1:" + std::to_string(port_) + "/echo", std::string(4096, 'x'), {}, 5s);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("too_large"), std::string::npos) << r->body;
}

TEST_F(tls_listener, wss_carries_frames_and_stop_closes_with_1001) {
  start(tls_options_for("server.pem", "server.key"));
  ws_client ws;
  auto s = ws.connect("wss://127.0.0.1:" + std::to_string(port_) + "/ws");
  ASSERT_TRUE(s) << s.err().message;
  ASSERT_TRUE(ws.send_text("hi"));
  auto f = ws.read(5s);
  ASSERT_TRUE(f) << f.err().message;
  EXPECT_EQ(f->text, "echo:hi");
  server_->stop(2000ms);
  auto closed = ws.read(5s);
  ASSERT_TRUE(closed) << closed.err().message;
  EXPECT_TRUE(closed->closed);
  EXPECT_EQ(closed->close_code, 1001);
}

TEST_F(tls_listener, plain_http_and_silent_clients_get_nothing_and_do_not_hold_the_listener) {
  auto o = tls_options_for("server.pem", "server.key");
  o.request_timeout = 300ms;  // also the bound on a TLS handshake
  start(o);
  // Plain HTTP on the TLS port: no HTTP answer, the connection is closed.
  auto plain = http_request_sync("GET", "http://127.0.0.1:" + std::to_string(port_) + "/hello", "", {}, 5s);
  EXPECT_FALSE(plain && plain->status == 200);
  // A client that connects and never says anything is closed after the
  // handshake bound.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_);
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1) << "the silent connection was not closed";
  char buf[16];
  EXPECT_EQ(::recv(fd, buf, sizeof buf, 0), 0);
  ::close(fd);
  // And the listener still serves.
  auto r = http_request_sync("GET", "https://127.0.0.1:" + std::to_string(port_) + "/hello", "", {}, 5s);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->status, 200);
}

TEST_F(tls_listener, the_cipher_policy_takes_forward_secret_aead_only) {
  start(tls_options_for("server.pem", "server.key"));
  // A default client gets TLS 1.3.
  EXPECT_EQ(handshake_with(port_, TLS1_3_VERSION, nullptr), "TLSv1.3");
  // TLS 1.2 with an AEAD suite: accepted.
  EXPECT_EQ(handshake_with(port_, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256"), "TLSv1.2");
  // TLS 1.2 offering only CBC suites (accepted by OpenSSL's defaults): refused.
  EXPECT_EQ(handshake_with(port_, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384"), "");
}

TEST_F(tls_listener, a_certificate_the_client_does_not_trust_fails_the_handshake) {
  start(tls_options_for("stranger.pem", "stranger.key"));
  auto r = http_request_sync("GET", "https://127.0.0.1:" + std::to_string(port_) + "/hello", "", {}, 5s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.err().message.find("TLS handshake"), std::string::npos) << r.err().message;
  ws_client ws;
  EXPECT_FALSE(ws.connect("wss://127.0.0.1:" + std::to_string(port_) + "/ws"));
}

TEST_F(tls_listener, start_refuses_missing_files_and_a_key_of_another_certificate) {
  {
    http_server s(io_, workers_, routes_, tls_options_for("missing.pem", "server.key"));
    try {
      s.start();
      ADD_FAILURE() << "started without a certificate file";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
    }
  }
  {
    http_server s(io_, workers_, routes_, tls_options_for("server.pem", "stranger.key"));
    try {
      s.start();
      ADD_FAILURE() << "started with a key of another certificate";
    } catch (const std::runtime_error& e) {
      // OpenSSL refuses the key as it is loaded ("key values mismatch"), or
      // the check after it does.
      std::string what = e.what();
      EXPECT_NE(what.find("stranger.key"), std::string::npos) << what;
      EXPECT_TRUE(what.find("mismatch") != std::string::npos || what.find("does not match") != std::string::npos)
          << what;
    }
  }
  {
    server_options o;
    o.listen = "127.0.0.1:0";
    o.tls.cert_file = pki_->path("server.pem");  // no key
    http_server s(io_, workers_, routes_, o);
    EXPECT_THROW(s.start(), std::runtime_error);
  }
}

}  // namespace
}  // namespace chatd::net
