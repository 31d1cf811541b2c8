// The HTTP/WebSocket server over real sockets on 127.0.0.1 (port 0). Raw
// POSIX sockets stand in for misbehaving clients (half-sent requests, peers
// that never read or never answer pings).
#include "net/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/worker_pool.h"
#include "net/client.h"
#include "net/http.h"

namespace chatd::net {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// Polls `pred` until it holds or `timeout` passes; every wait in this file is bounded.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
  auto deadline = clock_type::now() + timeout;
  while (!pred()) {
    if (clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

long ms_since(clock_type::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t).count());
}

// ---- a raw TCP client ----------------------------------------------------------

class raw_socket {
 public:
  explicit raw_socket(std::uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect");
    }
  }
  ~raw_socket() { ::close(fd_); }
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;

  void send_all(std::string_view s) {
    while (!s.empty()) {
      auto n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send");
      s.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  struct outcome {
    std::string data;
    bool closed = false;  // EOF or reset seen
  };
  // Reads until `done(data)` holds, the peer closes, or the time is up.
  outcome read_until(const std::function<bool(const std::string&)>& done, std::chrono::milliseconds timeout) {
    outcome o;
    auto deadline = clock_type::now() + timeout;
    for (;;) {
      if (done && done(o.data)) return o;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
      if (left <= 0) return o;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[64 * 1024];
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        o.closed = true;
        return o;
      }
      o.data.append(buf, static_cast<std::size_t>(n));
    }
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  outcome read_until_close(std::chrono::milliseconds timeout) { return read_until(nullptr, timeout); }
  outcome read_header(std::chrono::milliseconds timeout = 3000ms) {
    return read_until([](const std::string& d) { return d.find("\r\n\r\n") != std::string::npos; }, timeout);
  }

  // Upgrades to a WebSocket by hand (and then does whatever the test wants).
  std::string upgrade(std::string_view target) {
    send_all("GET " + std::string(target) +
             " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    auto o = read_header();
    return o.data;
  }

 private:
  int fd_ = -1;
};

// Server-to-client frames are not masked, so a tiny parser is enough.
struct raw_frame {
  int opcode = 0;
  std::string payload;
};
std::vector<raw_frame> parse_frames(std::string_view d) {
  std::vector<raw_frame> out;
  while (d.size() >= 2) {
    auto b = [&](std::size_t i) { return static_cast<unsigned char>(d[i]); };
    int opcode = b(0) & 0x0f;
    std::uint64_t len = b(1) & 0x7f;
    std::size_t pos = 2;
    if (len == 126) {
      if (d.size() < 4) break;
      len = (std::uint64_t{b(2)} << 8) | b(3);
      pos = 4;
    } else if (len == 127) {
      if (d.size() < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | b(2 + i);
      pos = 10;
    }
    if (d.size() < pos + len) break;
    out.push_back(raw_frame{opcode, std::string(d.substr(pos, len))});
    d.remove_prefix(pos + len);
  }
  return out;
}

// True once `d` holds a complete close frame (walks the headers only).
bool has_close_frame(std::string_view d) {
  while (d.size() >= 2) {
    auto b = [&](std::size_t i) { return static_cast<unsigned char>(d[i]); };
    std::uint64_t len = b(1) & 0x7f;
    std::size_t pos = 2;
    if (len == 126) {
      if (d.size() < 4) return false;
      len = (std::uint64_t{b(2)} << 8) | b(3);
      pos = 4;
    } else if (len == 127) {
      if (d.size() < 10) return false;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | b(2 + i);
      pos = 10;
    }
    if (d.size() < pos + len) return false;
    if ((b(0) & 0x0f) == 8) return true;
    d.remove_prefix(pos + len);
  }
  return false;
}

int close_code_of(const raw_frame& f) {
  if (f.opcode != 8 || f.payload.size() < 2) return 0;
  return (static_cast<unsigned char>(f.payload[0]) << 8) | static_cast<unsigned char>(f.payload[1]);
}

// ---- a WebSocket handler that records what it sees ---------------------------

struct ws_record {
  std::mutex mu;
  std::vector<std::string> events;  // "open", "text:<t>", "close"
  std::shared_ptr<ws_connection> last_conn;
  std::atomic<int> opens{0};
  std::atomic<int> closes{0};
  std::atomic<int> in_handler{0};
  std::atomic<bool> overlapped{false};

  void add(std::string e) {
    std::lock_guard lock(mu);
    events.push_back(std::move(e));
  }
  std::shared_ptr<ws_connection> conn() {
    std::lock_guard lock(mu);
    return last_conn;
  }
};

class echo_handler : public ws_handler {
 public:
  explicit echo_handler(std::shared_ptr<ws_record> rec) : rec_(std::move(rec)) {}
  void on_open(std::shared_ptr<ws_connection> conn) override {
    enter();
    conn_ = conn;
    {
      std::lock_guard lock(rec_->mu);
      rec_->last_conn = conn;
    }
    rec_->add("open");
    rec_->opens++;
    leave();
  }
  void on_text(std::string text) override {
    enter();
    rec_->add("text:" + text);
    if (text == "close-me") {
      conn_->close(4000, "asked to");
    } else if (text == "pause") {
      conn_->pause_reading();
      conn_->send_text("paused");
    } else {
      conn_->send_text("echo:" + text);
    }
    leave();
  }
  void on_close() override {
    enter();
    rec_->add("close");
    rec_->closes++;
    conn_.reset();
    leave();
  }

 private:
  void enter() {
    if (rec_->in_handler.fetch_add(1) != 0) rec_->overlapped = true;
  }
  void leave() { rec_->in_handler.fetch_sub(1); }

  std::shared_ptr<ws_record> rec_;
  std::shared_ptr<ws_connection> conn_;
};

// ---- fixture ----------------------------------------------------------------------

struct observed {
  std::string method, route;
  int status;
};

class net_server : public ::testing::Test {
 protected:
  void TearDown() override { shutdown(); }

  void start(server_options opt = {}) {
    opt.listen = "127.0.0.1:0";
    opt.on_request = [this](const http_request& req, int status, double seconds) {
      std::lock_guard lock(obs_mu_);
      observed_.push_back(observed{req.method, req.route, status});
      EXPECT_GE(seconds, 0.0);
    };
    add_routes();
    io_.start();
    server_ = std::make_unique<http_server>(io_, workers_, routes_, opt);
    addr_ = server_->start();
    port_ = split_host_port(addr_).second;
  }

  void shutdown() {
    if (server_) server_->stop(2000ms);
    server_.reset();
    workers_.stop();
    io_.stop();
  }

  std::string url(std::string_view path) const { return "http://" + addr_ + std::string(path); }
  std::string ws_url(std::string_view path) const { return "ws://" + addr_ + std::string(path); }

  std::vector<observed> seen() {
    std::lock_guard lock(obs_mu_);
    return observed_;
  }

  void add_routes() {
    routes_.add("POST", "/echo/{id}", [](http_request& q) {
      http_response r;
      r.content_type = "text/plain";
      r.body = q.method + "|" + q.path + "|" + std::string(q.param("id")) + "|" +
               std::string(q.query_param("q").value_or("-")) + "|" + std::string(q.header("x-test").value_or("-")) +
               "|" + q.remote_addr + "|" + q.route + "|" + q.body;
      r.headers.emplace_back("X-Reply", "yes");
      return r;
    });
    routes_.add("GET", "/hello", [](http_request&) {
      http_response r;
      r.body = R"({"hello":"world"})";
      return r;
    });
    routes_.add("GET", "/items/{id}", [](http_request& q) {
      http_response r;
      r.body = std::string(q.param("id"));
      return r;
    });
    routes_.add("GET", "/throw", [](http_request&) -> http_response { throw std::runtime_error("boom"); });
    routes_.add("GET", "/bye", [](http_request&) {
      http_response r;
      r.body = "bye";
      r.headers.emplace_back("Connection", "close");
      return r;
    });
    routes_.add("GET", "/slow", [this](http_request&) {
      slow_started_ = true;
      std::this_thread::sleep_for(slow_for_);
      http_response r;
      r.body = "done";
      return r;
    });
    routes_.add_ws("/ws-slow", [this](http_request&) -> ws_upgrade_result {
      std::this_thread::sleep_for(slow_for_);
      return std::make_shared<echo_handler>(ws_);
    });
    routes_.add_ws("/ws", [this](http_request& q) -> ws_upgrade_result {
      if (q.query_param("token") != std::optional<std::string_view>("good")) {
        return error_response(401, "unauthorized", "bad token");
      }
      if (auto h = q.header("x-test")) ws_->add("header:" + std::string(*h));
      return std::make_shared<echo_handler>(ws_);
    });
  }

  io_pool io_{2};
  worker_pool workers_{4, "test-worker"};
  router routes_;
  std::unique_ptr<http_server> server_;
  std::string addr_;
  std::uint16_t port_ = 0;
  std::shared_ptr<ws_record> ws_ = std::make_shared<ws_record>();
  std::atomic<bool> slow_started_{false};
  std::chrono::milliseconds slow_for_{400};
  std::mutex obs_mu_;
  std::vector<observed> observed_;
};

// ---- HTTP ---------------------------------------------------------------------------

TEST_F(net_server, handler_round_trip) {
  start();
  EXPECT_EQ(addr_.substr(0, 10), "127.0.0.1:");
  EXPECT_NE(port_, 0);
  auto r = http_request_sync("POST", url("/echo/a%20b?q=x+y&z=1"), "payload", {{"X-Test", "T"}});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST|/echo/a b|a b|x y|T|127.0.0.1|/echo/{id}|payload");
  EXPECT_EQ(r->header("content-type").value_or(""), "text/plain");
  EXPECT_EQ(r->header("x-reply").value_or(""), "yes");
  EXPECT_EQ(r->header("content-length").value_or(""), std::to_string(r->body.size()));

  ASSERT_TRUE(wait_until([&] { return !seen().empty(); }));
  auto obs = seen();
  EXPECT_EQ(obs[0].method, "POST");
  EXPECT_EQ(obs[0].route, "/echo/{id}");
  EXPECT_EQ(obs[0].status, 200);
}

TEST_F(net_server, keep_alive_reuses_one_connection) {
  start();
  http_connection c("127.0.0.1", port_);
  auto a = c.request("GET", "/hello");
  ASSERT_TRUE(a.ok()) << a.err().message;
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, R"({"hello":"world"})");
  EXPECT_EQ(a->header("content-type").value_or(""), "application/json");
  auto b = c.request("GET", "/items/9");
  ASSERT_TRUE(b.ok()) << b.err().message;
  EXPECT_EQ(b->body, "9");
  EXPECT_EQ(server_->stats().connections_open, 1u);
}

TEST_F(net_server, http_connection_reconnects_after_the_server_closed_it) {
  server_options o;
  o.request_timeout = 200ms;  // the idle keep-alive connection is closed after this
  start(o);
  http_connection c("127.0.0.1", port_);
  ASSERT_TRUE(c.request("GET", "/hello").ok());
  ASSERT_TRUE(wait_until([&] { return server_->stats().connections_open == 0; }, 3000ms));
  auto r = c.request("GET", "/items/2");
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->body, "2");
}

TEST_F(net_server, unknown_path_is_404_and_wrong_method_is_405) {
  start();
  auto r = http_request_sync("GET", url("/nope"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, R"({"error":{"code":"not_found","message":"no such route"}})");

  r = http_request_sync("DELETE", url("/items/3"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
  EXPECT_NE(r->body.find(R"("code":"bad_request")"), std::string::npos);
  EXPECT_EQ(r->header("allow").value_or(""), "GET");

  // A plain GET on a WebSocket-only path.
  r = http_request_sync("GET", url("/ws"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 426);

  ASSERT_TRUE(wait_until([&] { return seen().size() >= 3; }));
  auto obs = seen();
  EXPECT_EQ(obs[0].route, "");
  EXPECT_EQ(obs[0].status, 404);
  EXPECT_EQ(obs[1].status, 405);
}

TEST_F(net_server, oversized_body_is_413_too_large) {
  server_options o;
  o.max_body_bytes = 1024;
  start(o);
  auto r = http_request_sync("POST", url("/echo/1"), std::string(1024, 'a'));
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->status, 200);
  // Large enough that the client is still writing when the answer comes.
  r = http_request_sync("POST", url("/echo/1"), std::string(2 * 1024 * 1024, 'a'));
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find(R"("code":"too_large")"), std::string::npos);
}

TEST_F(net_server, chunked_body_over_the_limit_is_413) {
  server_options o;
  o.max_body_bytes = 1024;
  start(o);
  raw_socket s(port_);
  s.send_all("POST /echo/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string chunk(600, 'c');
  s.send_all("258\r\n" + chunk + "\r\n");  // 600 bytes
  s.send_all("258\r\n" + chunk + "\r\n0\r\n\r\n");
  auto out = s.read_until_close(3000ms);
  EXPECT_TRUE(out.closed);
  EXPECT_EQ(out.data.substr(0, 12), "HTTP/1.1 413");
  EXPECT_NE(out.data.find(R"("code":"too_large")"), std::string::npos);
}

TEST_F(net_server, expect_100_continue_is_answered) {
  start();
  raw_socket s(port_);
  s.send_all("POST /echo/7 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  auto interim = s.read_header();
  EXPECT_EQ(interim.data, "HTTP/1.1 100 Continue\r\n\r\n");
  s.send_all("hello");
  auto out = s.read_until([](const std::string& d) { return d.find("|hello") != std::string::npos; }, 3000ms);
  EXPECT_EQ(out.data.substr(0, 12), "HTTP/1.1 200");
  EXPECT_NE(out.data.find("POST|/echo/7|7|-|-|127.0.0.1|/echo/{id}|hello"), std::string::npos);
}

TEST_F(net_server, oversized_header_is_413) {
  server_options o;
  o.max_header_bytes = 4096;
  start(o);
  auto r = http_request_sync("GET", url("/hello"), {}, {{"X-Big", std::string(3000, 'b')}});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->status, 200);
  r = http_request_sync("GET", url("/hello"), {}, {{"X-Big", std::string(8000, 'b')}});
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find(R"("code":"too_large")"), std::string::npos);
}

TEST_F(net_server, malformed_request_is_400_then_closed) {
  start();
  raw_socket s(port_);
  s.send_all("GET / HTTX/1.1\r\nHost: x\r\n\r\n");
  auto o = s.read_until_close(3000ms);
  EXPECT_TRUE(o.closed);
  EXPECT_EQ(o.data.substr(0, 12), "HTTP/1.1 400");
  EXPECT_NE(o.data.find(R"({"error":{"code":"bad_request")"), std::string::npos);

  raw_socket t(port_);
  t.send_all("G@T / HTTP/1.1\r\nHost: x\r\n\r\n");
  o = t.read_until_close(3000ms);
  EXPECT_TRUE(o.closed);
  EXPECT_EQ(o.data.substr(0, 12), "HTTP/1.1 400");
}

TEST_F(net_server, handler_exception_is_500_internal) {
  start();
  auto r = http_request_sync("GET", url("/throw"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, R"({"error":{"code":"internal","message":"internal error"}})");
  // The server keeps serving.
  r = http_request_sync("GET", url("/hello"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(net_server, connection_close_from_the_handler_closes) {
  start();
  raw_socket s(port_);
  s.send_all("GET /bye HTTP/1.1\r\nHost: x\r\n\r\n");
  auto o = s.read_until_close(3000ms);
  EXPECT_TRUE(o.closed);
  EXPECT_EQ(o.data.substr(0, 12), "HTTP/1.1 200");
  EXPECT_NE(o.data.find("Connection: close"), std::string::npos);
  EXPECT_EQ(o.data.substr(o.data.size() - 3), "bye");
}

TEST_F(net_server, request_timeout_closes_a_half_sent_request) {
  server_options o;
  o.request_timeout = 300ms;
  start(o);
  raw_socket s(port_);
  auto t0 = clock_type::now();
  s.send_all("GET /hello HTTP/1.1\r\nHost: x\r\n");  // never finished
  auto out = s.read_until_close(5000ms);
  auto elapsed = ms_since(t0);
  EXPECT_TRUE(out.closed);
  EXPECT_EQ(out.data, "");
  EXPECT_GE(elapsed, 250);
  EXPECT_LT(elapsed, 3000);
  EXPECT_TRUE(wait_until([&] { return server_->stats().connections_open == 0; }));
}

TEST_F(net_server, max_connections_answers_503) {
  server_options o;
  o.max_connections = 2;
  start(o);
  auto a = std::make_unique<http_connection>("127.0.0.1", port_);
  http_connection b("127.0.0.1", port_);
  ASSERT_TRUE(a->request("GET", "/hello").ok());
  ASSERT_TRUE(b.request("GET", "/hello").ok());
  EXPECT_EQ(server_->stats().connections_open, 2u);

  auto r = http_request_sync("GET", url("/hello"));
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find(R"("code":"unavailable")"), std::string::npos);

  a.reset();
  ASSERT_TRUE(wait_until([&] { return server_->stats().connections_open == 1; }));
  r = http_request_sync("GET", url("/hello"));
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->status, 200);
}

TEST_F(net_server, client_reports_connection_errors) {
  start();
  auto r = http_request_sync("GET", "http://127.0.0.1:1/x", {}, {}, 2000ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
  // A server that does not answer in time: the call times out.
  r = http_request_sync("GET", url("/slow"), {}, {}, 100ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message, "timeout");
}

// ---- WebSocket --------------------------------------------------------------------

TEST_F(net_server, websocket_echo_and_close) {
  start();
  ws_client c;
  auto st = c.connect(ws_url("/ws?token=good"), {{"X-Test", "hdr"}});
  ASSERT_TRUE(st.ok()) << st.err().message;
  EXPECT_TRUE(c.is_open());
  ASSERT_TRUE(c.send_text("hello").ok());
  auto f = c.read();
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_FALSE(f->closed);
  EXPECT_EQ(f->text, "echo:hello");
  EXPECT_EQ(server_->stats().ws_open, 1u);
  EXPECT_EQ(ws_->conn()->remote_addr(), "127.0.0.1");

  // Nothing more arrives: read times out and the connection stays usable.
  auto none = c.read(50ms);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.err().message, "timeout");
  ASSERT_TRUE(c.send_text("again").ok());
  f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "echo:again");

  c.close(1000);
  EXPECT_FALSE(c.is_open());
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }));
  ASSERT_TRUE(wait_until([&] { return server_->stats().ws_open == 0 && server_->stats().connections_open == 0; }));
  EXPECT_FALSE(ws_->overlapped);
  std::lock_guard lock(ws_->mu);
  EXPECT_EQ(ws_->events, (std::vector<std::string>{"header:hdr", "open", "text:hello", "text:again", "close"}));
  EXPECT_FALSE(ws_->last_conn->send_text("late"));
}

TEST_F(net_server, websocket_paused_reading_holds_frames_until_resumed_and_writes_go_on) {
  start();
  ws_client c;
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  ASSERT_TRUE(c.send_text("pause").ok());
  auto f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "paused");
  ASSERT_TRUE(c.send_text("a").ok());
  ASSERT_TRUE(c.send_text("b").ok());
  // Writes are not paused: a frame the server sends now arrives.
  ASSERT_TRUE(ws_->conn()->send_text("marker"));
  f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "marker");
  {
    std::lock_guard lock(ws_->mu);
    EXPECT_EQ(std::count(ws_->events.begin(), ws_->events.end(), "text:a"), 0);
  }
  ws_->conn()->resume_reading();
  f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "echo:a");
  f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "echo:b");

  // A close from the server while paused still completes its handshake.
  ASSERT_TRUE(c.send_text("pause").ok());
  f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "paused");
  ws_->conn()->close(4001, "bye");
  f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->closed);
  EXPECT_EQ(f->close_code, 4001);
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }));
}

// Reading paused by the server is not the peer's silence: the idle timeout
// does not close the connection while paused, and counts again after.
TEST_F(net_server, websocket_paused_reading_outlasts_the_idle_timeout) {
  server_options o;
  o.ws_idle_timeout = 300ms;
  start(o);
  ws_client c;
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  ASSERT_TRUE(c.send_text("pause").ok());
  auto f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "paused");
  ASSERT_TRUE(c.send_text("a").ok());
  // Paused for several idle timeouts (what this test is about), then the
  // held frame's echo is the marker that the connection stayed open.
  std::this_thread::sleep_for(1200ms);
  ws_->conn()->resume_reading();
  f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->closed) << f->close_code;
  EXPECT_EQ(f->text, "echo:a");
  EXPECT_EQ(ws_->closes.load(), 0);
}

TEST_F(net_server, websocket_server_side_close_reaches_the_client) {
  start();
  ws_client c;
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  ASSERT_TRUE(c.send_text("close-me").ok());
  auto f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->closed);
  EXPECT_EQ(f->close_code, 4000);
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }));
  auto conn = ws_->conn();
  EXPECT_FALSE(conn->send_text("after close"));
  conn->close(1000, "twice");  // idempotent
  EXPECT_EQ(ws_->closes.load(), 1);
}

TEST_F(net_server, ws_client_close_from_another_thread_unblocks_a_read) {
  start();
  ws_client c;
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    c.close(1000);
  });
  auto t0 = clock_type::now();
  auto f = c.read(5000ms);
  closer.join();
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_TRUE(f->closed);
  EXPECT_EQ(f->close_code, 1000);  // the server echoes the code
  EXPECT_LT(ms_since(t0), 2000);
  EXPECT_FALSE(c.send_text("after").ok());
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }));
}

TEST_F(net_server, websocket_upgrade_refusal_is_seen_by_the_client) {
  start();
  ws_client c;
  auto st = c.connect(ws_url("/ws?token=bad"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(c.http_status(), 401);
  EXPECT_EQ(st.err().message, R"(HTTP 401: {"error":{"code":"unauthorized","message":"bad token"}})");
  EXPECT_FALSE(c.is_open());
  EXPECT_EQ(ws_->opens.load(), 0);
  auto missing = c.connect(ws_url("/nope?token=good"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(c.http_status(), 404);
}

TEST_F(net_server, websocket_connect_times_out) {
  slow_for_ = 300ms;
  start();
  ws_client c;
  auto t0 = clock_type::now();
  auto st = c.connect(ws_url("/ws-slow"), {}, 100ms);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().message, "timeout");
  EXPECT_LT(ms_since(t0), 250);
  EXPECT_FALSE(c.is_open());
  // The same client can connect again.
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  ASSERT_TRUE(c.send_text("x").ok());
  auto f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "echo:x");
}

TEST_F(net_server, websocket_oversized_message_closes_with_1009) {
  start();  // ws_max_message_bytes is 64 KiB by default
  ws_client c;
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  ASSERT_TRUE(c.send_text(std::string(64 * 1024, 'x')).ok());
  auto f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text.size(), 64 * 1024 + 5);  // the largest message still passes
  ASSERT_TRUE(c.send_text(std::string(64 * 1024 + 1, 'x')).ok());
  f = c.read();
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_TRUE(f->closed);
  EXPECT_EQ(f->close_code, ws_close_too_big);
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }));
}

TEST_F(net_server, websocket_invalid_utf8_closes_with_1007) {
  start();
  ws_client c;
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  ASSERT_TRUE(c.send_raw_text("ok \xc3\xa9").ok());
  auto f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "echo:ok \xc3\xa9");
  ASSERT_TRUE(c.send_raw_text("bad \xff\xfe").ok());
  f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->closed);
  EXPECT_EQ(f->close_code, ws_close_invalid_payload);
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }));
  std::lock_guard lock(ws_->mu);
  EXPECT_EQ(ws_->events.size(), 3u);  // open, the valid text, close
}

TEST_F(net_server, websocket_binary_frame_closes_with_1003) {
  start();
  ws_client c;
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  ASSERT_TRUE(c.send_binary("\x01\x02").ok());
  auto f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->closed);
  EXPECT_EQ(f->close_code, 1003);
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }));
}

TEST_F(net_server, websocket_send_text_from_many_threads_keeps_each_threads_order) {
  start();
  ws_client c;
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  ASSERT_TRUE(wait_until([&] { return ws_->conn() != nullptr; }));
  auto conn = ws_->conn();
  constexpr int threads = 4, per_thread = 200;
  std::vector<std::thread> senders;
  std::atomic<int> refused{0};
  for (int t = 0; t < threads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        if (!conn->send_text(std::to_string(t) + ":" + std::to_string(i))) refused++;
      }
    });
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(refused.load(), 0);
  std::vector<int> next(threads, 0);
  for (int n = 0; n < threads * per_thread; ++n) {
    auto f = c.read();
    ASSERT_TRUE(f.ok()) << "after " << n << ": " << f.err().message;
    ASSERT_FALSE(f->closed);
    auto colon = f->text.find(':');
    int t = std::stoi(f->text.substr(0, colon));
    int i = std::stoi(f->text.substr(colon + 1));
    ASSERT_EQ(i, next[t]) << "thread " << t;
    next[t]++;
  }
}

TEST_F(net_server, websocket_slow_consumer_is_closed_with_1008) {
  server_options o;
  o.ws_max_queued_frames = 64;
  o.ws_max_queued_bytes = 1024 * 1024;
  o.ws_idle_timeout = 2000ms;  // also bounds the close handshake
  start(o);
  raw_socket s(port_, 16 * 1024);  // small receive buffer, and it never reads
  auto head = s.upgrade("/ws?token=good");
  ASSERT_EQ(head.substr(0, 12), "HTTP/1.1 101") << head;
  ASSERT_TRUE(wait_until([&] { return ws_->conn() != nullptr; }));
  auto conn = ws_->conn();

  const std::string big(64 * 1024, 'z');
  int accepted = 0;
  bool refused = false;
  for (int i = 0; i < 4000 && !refused; ++i) {
    if (conn->send_text(big)) {
      ++accepted;
    } else {
      refused = true;
    }
  }
  ASSERT_TRUE(refused) << "send_text never refused after " << accepted << " frames";
  EXPECT_GT(accepted, 0);
  EXPECT_FALSE(conn->send_text("x"));

  // Now read everything: the frames already sent, then a close frame 1008.
  const std::string before = head.substr(head.find("\r\n\r\n") + 4);
  auto rest = s.read_until([&](const std::string& d) { return has_close_frame(before + d); }, 5000ms);
  auto frames = parse_frames(before + rest.data);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().opcode, 8);
  EXPECT_EQ(close_code_of(frames.back()), ws_close_policy);
  EXPECT_LE(static_cast<int>(frames.size()), accepted + 1);
  // Answer the close (a masked close frame with code 1008, zero mask key)
  // and end the stream, so that the handshake completes at once.
  s.send_all(std::string("\x88\x82\0\0\0\0\x03\xf0", 8));
  s.shutdown_write();  // the server's teardown waits for our EOF
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }, 1000ms));
}

TEST_F(net_server, websocket_slow_consumer_that_never_reads_is_dropped) {
  server_options o;
  o.ws_max_queued_frames = 16;
  o.ws_max_queued_bytes = 256 * 1024;
  o.ws_idle_timeout = 600ms;
  start(o);
  raw_socket s(port_, 16 * 1024);
  ASSERT_EQ(s.upgrade("/ws?token=good").substr(0, 12), "HTTP/1.1 101");
  ASSERT_TRUE(wait_until([&] { return ws_->conn() != nullptr; }));
  auto conn = ws_->conn();
  const std::string big(64 * 1024, 'z');
  bool refused = false;
  for (int i = 0; i < 4000 && !refused; ++i) refused = !conn->send_text(big);
  ASSERT_TRUE(refused);
  // The peer never reads, so no close frame can be sent: the socket is
  // dropped after the close timeout, and on_close runs.
  auto t0 = clock_type::now();
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }, 5000ms));
  EXPECT_LT(ms_since(t0), 3000);
  EXPECT_TRUE(wait_until([&] { return server_->stats().connections_open == 0; }));
}

TEST_F(net_server, websocket_idle_timeout_closes_a_silent_peer_but_not_a_live_client) {
  server_options o;
  o.ws_idle_timeout = 300ms;
  start(o);

  ws_client live;
  ASSERT_TRUE(live.connect(ws_url("/ws?token=good")).ok());

  raw_socket silent(port_);
  auto head = silent.upgrade("/ws?token=good");
  ASSERT_EQ(head.substr(0, 12), "HTTP/1.1 101");
  EXPECT_NE(head.find("Server: chatd\r\n"), std::string::npos);
  EXPECT_EQ(head.find("Beast"), std::string::npos);
  auto t0 = clock_type::now();
  auto out = silent.read_until_close(5000ms);
  auto elapsed = ms_since(t0);
  EXPECT_TRUE(out.closed);
  EXPECT_GE(elapsed, 200);
  EXPECT_LT(elapsed, 2000);
  // Beast pinged at half the timeout before giving up.
  auto frames = parse_frames(head.substr(head.find("\r\n\r\n") + 4) + out.data);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.front().opcode, 9);

  // The ws_client answered the pings all along (>3 idle timeouts by now).
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(live.is_open());
  ASSERT_TRUE(live.send_text("still here").ok());
  auto f = live.read();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->text, "echo:still here");
  ASSERT_TRUE(wait_until([&] { return ws_->closes.load() == 1; }));  // only the silent one
}

// ---- stop -------------------------------------------------------------------------

TEST_F(net_server, stop_finishes_in_flight_requests_and_closes_websockets_with_1001) {
  start();
  ws_client c;
  ASSERT_TRUE(c.connect(ws_url("/ws?token=good")).ok());
  http_connection idle("127.0.0.1", port_);
  ASSERT_TRUE(idle.request("GET", "/hello").ok());

  std::optional<result<client_response>> slow;
  std::thread t([&] { slow = http_request_sync("GET", url("/slow"), {}, {}, 5000ms); });
  ASSERT_TRUE(wait_until([&] { return slow_started_.load(); }));
  auto t0 = clock_type::now();
  server_->stop(5000ms);
  auto elapsed = ms_since(t0);
  t.join();

  ASSERT_TRUE(slow.has_value());
  ASSERT_TRUE(slow->ok()) << slow->err().message;
  EXPECT_EQ((*slow)->status, 200);
  EXPECT_EQ((*slow)->body, "done");
  EXPECT_EQ((*slow)->header("connection").value_or(""), "close");
  EXPECT_LT(elapsed, 4000);

  auto f = c.read();
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->closed);
  EXPECT_EQ(f->close_code, ws_close_going_away);
  EXPECT_EQ(ws_->closes.load(), 1);
  EXPECT_EQ(server_->stats().connections_open, 0u);
  EXPECT_EQ(server_->stats().ws_open, 0u);

  // No longer accepting; a second stop is harmless.
  auto r = http_request_sync("GET", url("/hello"), {}, {}, 1000ms);
  EXPECT_FALSE(r.ok());
  t0 = clock_type::now();
  server_->stop();
  EXPECT_LT(ms_since(t0), 100);
}

TEST_F(net_server, stop_waits_at_most_the_grace_period) {
  slow_for_ = 1000ms;
  start();
  std::optional<result<client_response>> slow;
  std::thread t([&] { slow = http_request_sync("GET", url("/slow"), {}, {}, 5000ms); });
  ASSERT_TRUE(wait_until([&] { return slow_started_.load(); }));
  auto t0 = clock_type::now();
  server_->stop(100ms);
  auto elapsed = ms_since(t0);
  t.join();
  EXPECT_GE(elapsed, 90);
  EXPECT_LT(elapsed, 800);
  ASSERT_TRUE(slow.has_value());
  EXPECT_FALSE(slow->ok());  // cut off after the grace period
}

TEST(net_server_lifecycle, stop_without_start_and_twice) {
  io_pool io(1);
  worker_pool workers(1);
  router routes;
  {
    http_server s(io, workers, routes, server_options{});
    auto t0 = clock_type::now();
    s.stop();
    s.stop();
    EXPECT_LT(ms_since(t0), 100);
  }
  io.start();
  {
    server_options o;
    o.listen = "127.0.0.1:0";
    http_server s(io, workers, routes, o);
    auto addr = s.start();
    EXPECT_EQ(s.start(), addr);  // idempotent
    // The port is taken now.
    o.listen = addr;
    http_server other(io, workers, routes, o);
    EXPECT_THROW(other.start(), std::system_error);
    s.stop();
    s.stop();
  }
  io.stop();
  io.stop();
}

}  // namespace
}  // namespace chatd::net
