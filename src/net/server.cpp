// HTTP/1.1 + WebSocket server on Beast with C++20 coroutines.
//
// Threading: every connection is a coroutine on its own strand of one of the
// io_pool's contexts (round-robin at accept). Handlers run on the worker pool;
// the coroutine waits for the answer, which is posted back onto the strand.
// A WebSocket has two coroutines on the same strand: the reader (which also
// delivers the ws_handler events) and the writer (one write in flight, fed by a
// bounded queue that send_text fills from any thread).
#include "net/server.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "common/worker_pool.h"
#include "net/http_internal.h"

namespace chatd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// After an error answer the server stops sending and reads (and drops) what
// the client still sends for a moment, so that the client sees the answer
// instead of a reset caused by unread data.
constexpr std::chrono::milliseconds linger_time{2000};
constexpr std::size_t linger_max_bytes = 8 * 1024 * 1024;
// Connections answered 503 at once; beyond this they are just closed.
constexpr int max_rejecting = 64;

void log_task_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("net: connection task failed: {}", ex.what());
  } catch (...) {
    spdlog::error("net: connection task failed");
  }
}

}  // namespace

// ---- io_pool ----------------------------------------------------------------

struct io_pool::impl {
  explicit impl(std::size_t n) {
    if (n == 0) n = 1;
    for (std::size_t i = 0; i < n; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
  }

  asio::io_context& next_context() { return *contexts[next.fetch_add(1, std::memory_order_relaxed) % contexts.size()]; }

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> running{false};  // threads run the contexts
  std::mutex mu;
  bool started = false;
  bool stopped = false;
};

io_pool::io_pool(std::size_t threads) : impl_(std::make_unique<impl>(threads)) {}

io_pool::~io_pool() { stop(); }

void io_pool::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  impl_->running = true;
  for (std::size_t i = 0; i < impl_->contexts.size(); ++i) {
    auto& ctx = *impl_->contexts[i];
    impl_->guards.push_back(asio::make_work_guard(ctx));
    impl_->threads.emplace_back([&ctx] {
      // A handler that throws must not take the whole network thread down.
      for (;;) {
        try {
          ctx.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("net: io thread caught: {}", e.what());
        }
      }
    });
    auto name = "io-" + std::to_string(i);
    pthread_setname_np(impl_->threads.back().native_handle(), name.c_str());
  }
}

void io_pool::stop() {
  std::lock_guard lock(impl_->mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->running = false;
  impl_->guards.clear();
  for (auto& ctx : impl_->contexts) ctx->stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->threads.clear();
}

std::size_t io_pool::size() const { return impl_->contexts.size(); }

// ---- server internals -------------------------------------------------------

namespace {

class ws_session;

// One accepted TCP connection. Every member is touched only on the strand
// (the socket's executor), except `id` and `remote` which never change.
struct connection {
  connection(tcp::socket s, std::string remote_ip) : stream(std::move(s)), remote(std::move(remote_ip)) {}
  beast::tcp_stream stream;
  std::string remote;
  std::uint64_t id = 0;
  bool busy = false;      // a request is being answered: stop() lets it finish
  bool upgraded = false;  // `stream` was moved into `ws`
  std::shared_ptr<ws_session> ws;
};

std::string remote_ip(const tcp::socket& s) {
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return {};
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

std::string format_endpoint(const tcp::endpoint& ep) {
  auto a = ep.address();
  if (a.is_v6()) return "[" + a.to_string() + "]:" + std::to_string(ep.port());
  return a.to_string() + ":" + std::to_string(ep.port());
}

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

bool contains_token_close(std::string_view v) {
  auto lower = detail::to_lower(v);
  return lower.find("close") != std::string::npos;
}

// The Beast response for a handler's answer. Content-Length and the
// Connection header are the server's business; header lines with CR/LF are
// dropped rather than allowed to split the response.
bhttp::response<bhttp::string_body> to_beast(http_response&& r, bool& keep_alive) {
  unsigned status = (r.status >= 100 && r.status <= 599) ? static_cast<unsigned>(r.status) : 500u;
  bhttp::response<bhttp::string_body> out;
  out.version(11);
  out.result(status);
  for (auto& [name, value] : r.headers) {
    if (name.empty() || has_crlf(name) || has_crlf(value)) continue;
    auto lower = detail::to_lower(name);
    if (lower == "content-length" || lower == "transfer-encoding") continue;
    if (lower == "connection") {
      if (contains_token_close(value)) keep_alive = false;
      continue;
    }
    out.insert(name, value);
  }
  if (!r.content_type.empty() && !has_crlf(r.content_type)) out.set(bhttp::field::content_type, r.content_type);
  if (status < 200 || status == 204 || status == 304) {
    r.body.clear();  // these statuses carry no body
  }
  out.body() = std::move(r.body);
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
}

http_request to_request(bhttp::request<bhttp::string_body>& in, const std::string& remote) {
  http_request r;
  r.method = std::string(in.method_string());
  r.target = std::string(in.target());
  detail::parse_target(r.target, r);
  for (const auto& f : in) r.headers.emplace_back(detail::to_lower(f.name_string()), std::string(f.value()));
  r.body = std::move(in.body());
  r.remote_addr = remote;
  return r;
}

// 0: close quietly (EOF, reset, timeout); else the status to answer.
int status_for_read_error(const error_code& ec) {
  static const auto& http_category = bhttp::make_error_code(bhttp::error::bad_method).category();
  if (ec == bhttp::error::header_limit || ec == bhttp::error::body_limit || ec == bhttp::error::buffer_overflow) {
    return 413;
  }
  if (ec.category() != http_category) return 0;
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message || ec == bhttp::error::short_read) {
    return 0;
  }
  return 400;
}

std::uint16_t sanitize_close_code(std::uint16_t code) {
  bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
  return valid ? code : ws_close_normal;
}

// At most 123 bytes (the frame limit), cut on a UTF-8 boundary.
std::string sanitize_close_reason(std::string reason) {
  if (reason.size() <= 123) return reason;
  std::size_t n = 123;
  while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  reason.resize(n);
  return reason;
}

}  // namespace

// The server's shared state. Coroutines hold it by shared_ptr, so it outlives
// the http_server object if a connection is still winding down.
struct server_state {
  server_state(io_pool& pool, worker_pool& w, const router& r, server_options o)
      : io(pool.get_impl()), workers(w), routes(r), opt(std::move(o)) {}

  io_pool::impl& io;
  worker_pool& workers;
  const router& routes;
  const server_options opt;

  std::optional<tcp::acceptor> acceptor;  // on a strand of context 0
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> websockets{0};
  std::atomic<int> rejecting{0};
  std::atomic<int> in_worker{0};  // connections waiting for a handler on the worker pool
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<std::uint64_t, std::weak_ptr<connection>> live;
  std::uint64_t next_id = 0;
  bool started = false;
  bool stop_called = false;
  bool accept_running = false;
  std::string bound;

  void observe(const http_request& req, int status, clock_type::time_point start) const {
    if (!opt.on_request) return;
    try {
      opt.on_request(req, status, std::chrono::duration<double>(clock_type::now() - start).count());
    } catch (const std::exception& e) {
      spdlog::warn("net: on_request observer threw: {}", e.what());
    } catch (...) {
    }
  }

  void unregister(std::uint64_t id) {
    std::lock_guard lock(mu);
    live.erase(id);
    connections.store(live.size());
    cv.notify_all();
  }

  bool ws_route_exists(const std::string& path) const {
    http_request probe;
    probe.method = "GET";
    probe.path = path;
    return routes.find(probe, true).ws != nullptr;
  }
};

struct http_server::impl : server_state {
  using server_state::server_state;
};

namespace {

using server_impl = server_state;

// A note on g++ 12: temporaries with destructors inside a co_await
// full-expression (a lambda, a std::string, a by-value argument of the awaited
// coroutine) can be destroyed twice. Every such object is therefore a named
// local here, and awaited coroutines take their arguments by reference.

// Runs fn on the worker pool and resumes the calling coroutine on its own
// executor (the connection's strand) with the result. If the pool no longer
// takes work, the answer is `fallback`. Both must live until this completes.
template <class T>
asio::awaitable<T> run_on_workers(worker_pool& pool, const std::function<T()>& fn, T& fallback) {
  auto ex = co_await asio::this_coro::executor;
  auto initiation = [&pool, ex, &fn, &fallback](auto handler) {
    // worker_pool takes a copyable std::function; the completion handler is
    // move-only, hence the shared_ptr.
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    bool queued = pool.post([h, ex, fn] {
      T value = fn();
      asio::post(ex, [h, value = std::move(value)]() mutable { (*h)(std::move(value)); });
    });
    if (!queued) {
      asio::post(ex, [h, value = std::move(fallback)]() mutable { (*h)(std::move(value)); });
    }
  };
  T value = co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(initiation, asio::use_awaitable);
  co_return value;
}

// Counts a connection as waiting on the worker pool while it exists (the
// coroutine frame may also be destroyed while waiting, at io_context teardown).
class worker_count {
 public:
  explicit worker_count(std::atomic<int>& n) : n_(&n) { n_->fetch_add(1); }
  ~worker_count() { release(); }
  worker_count(const worker_count&) = delete;
  worker_count& operator=(const worker_count&) = delete;
  void release() {
    if (n_) n_->fetch_sub(1);
    n_ = nullptr;
  }

 private:
  std::atomic<int>* n_;
};

asio::awaitable<bool> write_response(beast::tcp_stream& stream, bhttp::response<bhttp::string_body>& res,
                                     std::chrono::milliseconds timeout) {
  stream.expires_after(timeout);
  auto [ec, n] = co_await bhttp::async_write(stream, res, use_tuple);
  co_return !ec;
}

asio::awaitable<void> linger_close(beast::tcp_stream& stream) {
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(linger_time);
  std::array<char, 16 * 1024> buf;
  std::size_t total = 0;
  while (total < linger_max_bytes) {
    auto [rec, n] = co_await stream.async_read_some(asio::buffer(buf), use_tuple);
    if (rec) break;
    total += n;
  }
  stream.close();
}

// Writes an error answer on a connection that cannot continue, then closes.
asio::awaitable<void> answer_and_close(server_impl& srv, beast::tcp_stream& stream, http_response& res,
                                       const http_request& req, clock_type::time_point start) {
  bool keep_alive = false;
  int status = res.status;
  auto out = to_beast(std::move(res), keep_alive);
  if (co_await write_response(stream, out, srv.opt.request_timeout)) srv.observe(req, status, start);
  co_await linger_close(stream);
}

// Answers 503 to a connection over max_connections.
asio::awaitable<void> reject_connection(std::shared_ptr<server_impl> srv, tcp::socket sock, std::string remote) {
  struct guard {
    server_impl* s;
    ~guard() { s->rejecting.fetch_sub(1); }
  } g{srv.get()};
  beast::tcp_stream stream(std::move(sock));
  http_request req;
  req.remote_addr = std::move(remote);
  auto res = error_response(503, "unavailable", "too many connections");
  auto start = clock_type::now();
  co_await answer_and_close(*srv, stream, res, req, start);
}

// ---- WebSocket session -------------------------------------------------------

// What services get as their ws_connection: a weak reference, so that a
// service holding on to it (or leaking it) neither keeps the socket and its
// buffers alive after the connection ended nor outlives the io_context with
// an I/O object inside.
class ws_connection_ref final : public ws_connection {
 public:
  ws_connection_ref(const std::shared_ptr<ws_session>& s, std::string remote)
      : session_(s), remote_(std::move(remote)) {}
  bool send_text(std::string text) override;
  void close(std::uint16_t code, std::string reason) override;
  const std::string& remote_addr() const override { return remote_; }
  void pause_reading() override;
  void resume_reading() override;

 private:
  std::weak_ptr<ws_session> session_;
  const std::string remote_;
};

class ws_session final : public ws_connection, public std::enable_shared_from_this<ws_session> {
 public:
  ws_session(beast::tcp_stream&& stream, std::string remote, const server_options& opt,
             std::shared_ptr<ws_handler> handler)
      : ws_(std::move(stream)),
        wake_(ws_.get_executor()),
        read_gate_(ws_.get_executor()),
        deadline_(ws_.get_executor()),
        handler_(std::move(handler)),
        remote_(std::move(remote)),
        max_frames_(std::max<std::size_t>(1, opt.ws_max_queued_frames)),
        max_bytes_(opt.ws_max_queued_bytes),
        // A peer that has not finished the close handshake within this is
        // dead anyway; its socket is then closed hard.
        close_timeout_(opt.ws_idle_timeout.count() > 0 ? std::clamp(opt.ws_idle_timeout, std::chrono::milliseconds{100},
                                                                    std::chrono::milliseconds{5000})
                                                       : std::chrono::milliseconds{5000}) {}

  bool send_text(std::string text) override {
    bool overflow = false;
    bool notify = false;
    {
      std::lock_guard lock(mu_);
      if (ended_ || close_requested_) return false;
      if (queue_.size() >= max_frames_ || text.size() > max_bytes_ - queued_bytes_) {
        // The peer does not keep up: drop what is queued rather than grow,
        // and close so that the client reconnects and catches up (?since=).
        queue_.clear();
        queued_bytes_ = 0;
        close_requested_ = true;
        close_code_ = ws_close_policy;
        close_reason_ = "too slow";
        overflow = true;
        notify = true;
      } else {
        notify = queue_.empty();
        queued_bytes_ += text.size();
        queue_.push_back(std::move(text));
      }
    }
    if (notify) poke(overflow);
    return !overflow;
  }

  void close(std::uint16_t code, std::string reason) override {
    {
      std::lock_guard lock(mu_);
      if (ended_ || close_requested_) return;
      close_requested_ = true;
      close_code_ = sanitize_close_code(code);
      close_reason_ = sanitize_close_reason(std::move(reason));
    }
    poke(true);
  }

  const std::string& remote_addr() const override { return remote_; }

  void pause_reading() override { read_paused_ = true; }
  void resume_reading() override {
    if (!read_paused_.exchange(false)) return;
    asio::post(ws_.get_executor(), [self = shared_from_this()] { self->read_gate_.cancel(); });
  }

  // Closes the socket without a handshake (stop() after its grace period).
  void force_close() {
    asio::post(ws_.get_executor(), [self = shared_from_this()] {
      if (!self->is_ended()) beast::get_lowest_layer(self->ws_).close();
    });
  }

  // The reader: accepts, delivers events, and ends the session.
  // The arguments belong to the awaiting run_connection frame.
  static asio::awaitable<void> run(const std::shared_ptr<ws_session>& self, const std::shared_ptr<server_impl>& srv,
                                   bhttp::request<bhttp::string_body>& upgrade, const http_request& req,
                                   clock_type::time_point start) {
    auto& ws = self->ws_;
    const auto& opt = srv->opt;
    beast::get_lowest_layer(ws).expires_never();  // the websocket's own timeouts take over
    websocket::stream_base::timeout t{};
    t.handshake_timeout = self->close_timeout_;
    if (opt.ws_idle_timeout.count() > 0) {
      t.idle_timeout = opt.ws_idle_timeout;
      t.keep_alive_pings = true;
    } else {
      t.idle_timeout = websocket::stream_base::none();
      t.keep_alive_pings = false;
    }
    ws.set_option(t);
    ws.read_message_max(opt.ws_max_message_bytes);
    ws.auto_fragment(false);
    // Beast otherwise announces itself and its version in the 101.
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(bhttp::field::server, "chatd"); }));

    auto [aec] = co_await ws.async_accept(upgrade, use_tuple);
    if (aec) {
      self->mark_ended();
      co_return;
    }
    srv->observe(req, 101, start);
    srv->websockets.fetch_add(1);
    asio::co_spawn(ws.get_executor(), writer(self), log_task_failure);

    auto conn = std::make_shared<ws_connection_ref>(self, self->remote_);
    self->deliver([&] { self->handler_->on_open(conn); });
    beast::flat_buffer buffer;
    for (;;) {
      // Paused: wait for resume_reading, which cancels the gate on this
      // strand. A close still reads on, to see the peer's close frame.
      if (self->read_paused_ && !self->closing()) {
        // Not reading is this server's choice, not the peer's silence: the
        // idle timeout (which counts only what a read sees) is off until
        // reading goes on, when the next read arms it afresh.
        auto idle_off = t;
        idle_off.idle_timeout = websocket::stream_base::none();
        idle_off.keep_alive_pings = false;
        ws.set_option(idle_off);
        while (self->read_paused_ && !self->closing()) {
          self->read_gate_.expires_at(asio::steady_timer::time_point::max());
          co_await self->read_gate_.async_wait(use_tuple);
        }
        ws.set_option(t);
      }
      auto [ec, n] = co_await ws.async_read(buffer, use_tuple);
      if (ec) break;
      if (!ws.got_text()) {
        self->close(1003, "binary frames are not supported");
      } else if (!self->closing()) {
        std::string text = beast::buffers_to_string(buffer.data());
        self->deliver([&] { self->handler_->on_text(std::move(text)); });
      }
      buffer.consume(buffer.size());
    }
    self->mark_ended();
    self->deliver([&] { self->handler_->on_close(); });
    // The handler usually holds this connection: dropping it breaks the cycle.
    self->handler_.reset();
    srv->websockets.fetch_sub(1);
  }

 private:
  // One write in flight: a frame from the queue, or at last the close frame.
  static asio::awaitable<void> writer(std::shared_ptr<ws_session> self) {
    auto& ws = self->ws_;
    for (;;) {
      std::string msg;
      bool have = false;
      bool do_close = false;
      websocket::close_reason cr;
      {
        std::lock_guard lock(self->mu_);
        if (self->ended_) break;
        if (!self->queue_.empty()) {
          msg = std::move(self->queue_.front());
          self->queue_.pop_front();
          self->queued_bytes_ -= msg.size();
          have = true;
        } else if (self->close_requested_) {
          do_close = true;
          cr.code = self->close_code_;
          cr.reason = self->close_reason_;
        }
      }
      if (have) {
        ws.text(true);
        auto [ec, n] = co_await ws.async_write(asio::buffer(msg), use_tuple);
        if (ec) {
          if (ec != websocket::error::closed && ec != asio::error::operation_aborted && !self->is_ended()) {
            beast::get_lowest_layer(ws).close();  // make the reader end too
          }
          break;
        }
        continue;
      }
      if (do_close) {
        co_await ws.async_close(cr, use_tuple);
        break;
      }
      self->wake_.expires_at(asio::steady_timer::time_point::max());
      co_await self->wake_.async_wait(use_tuple);
    }
  }

  // Wakes the writer (and, when closing, arms the hard-close deadline) on the
  // strand: the timers are not thread-safe.
  void poke(bool closing) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), closing] {
      self->wake_.cancel();
      if (closing) {
        self->read_gate_.cancel();
        self->arm_deadline();
      }
    });
  }

  void arm_deadline() {
    if (deadline_armed_ || is_ended()) return;
    deadline_armed_ = true;
    deadline_.expires_after(close_timeout_);
    deadline_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->is_ended()) return;
      // The close frame could not be sent (a write is stuck behind a peer
      // that does not read) or was not answered.
      beast::get_lowest_layer(self->ws_).close();
    });
  }

  template <class F>
  void deliver(F&& f) {
    if (!handler_) return;
    try {
      f();
    } catch (const std::exception& e) {
      spdlog::error("net: websocket handler threw: {}", e.what());
      close(ws_close_internal, "internal error");
    } catch (...) {
      spdlog::error("net: websocket handler threw");
      close(ws_close_internal, "internal error");
    }
  }

  bool is_ended() {
    std::lock_guard lock(mu_);
    return ended_;
  }

  bool closing() {
    std::lock_guard lock(mu_);
    return close_requested_ || ended_;
  }

  void mark_ended() {
    {
      std::lock_guard lock(mu_);
      ended_ = true;
      queue_.clear();
      queued_bytes_ = 0;
    }
    wake_.cancel();
    read_gate_.cancel();
    deadline_.cancel();
  }

  websocket::stream<beast::tcp_stream> ws_;
  asio::steady_timer wake_;       // the idle writer waits on it; cancel() wakes it
  asio::steady_timer read_gate_;  // a paused reader waits on it
  std::atomic<bool> read_paused_{false};
  asio::steady_timer deadline_;          // hard close when a close does not complete
  std::shared_ptr<ws_handler> handler_;  // strand only
  std::string remote_;
  const std::size_t max_frames_;
  const std::size_t max_bytes_;
  const std::chrono::milliseconds close_timeout_;
  bool deadline_armed_ = false;  // strand only

  std::mutex mu_;  // guards what send_text/close touch from other threads
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  bool close_requested_ = false;
  bool ended_ = false;
  std::uint16_t close_code_ = ws_close_normal;
  std::string close_reason_;
};

bool ws_connection_ref::send_text(std::string text) {
  auto s = session_.lock();
  return s && s->send_text(std::move(text));
}

void ws_connection_ref::close(std::uint16_t code, std::string reason) {
  if (auto s = session_.lock()) s->close(code, std::move(reason));
}

void ws_connection_ref::pause_reading() {
  if (auto s = session_.lock()) s->pause_reading();
}

void ws_connection_ref::resume_reading() {
  if (auto s = session_.lock()) s->resume_reading();
}

// ---- HTTP connection --------------------------------------------------------

void begin_shutdown(const std::shared_ptr<connection>& c) {
  asio::post(c->stream.get_executor(), [c] {
    if (c->ws) {
      c->ws->close(ws_close_going_away, "going away");
    } else if (!c->upgraded && !c->busy) {
      c->stream.close();  // idle keep-alive, or a request still arriving
    }
  });
}

void force_close(const std::shared_ptr<connection>& c) {
  asio::post(c->stream.get_executor(), [c] {
    if (c->ws) {
      c->ws->force_close();
    } else if (!c->upgraded) {
      c->stream.close();
    }
  });
}

asio::awaitable<void> run_connection(std::shared_ptr<server_impl> srv, std::shared_ptr<connection> c) {
  struct guard {
    server_impl* s;
    std::uint64_t id;
    ~guard() { s->unregister(id); }
  } g{srv.get(), c->id};
  const auto& opt = srv->opt;
  beast::flat_buffer buffer;

  for (;;) {
    if (srv->stopping) break;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(opt.max_header_bytes, UINT32_MAX)));
    parser.body_limit(static_cast<std::uint64_t>(opt.max_body_bytes));
    c->stream.expires_after(opt.request_timeout);  // one bound for the whole request
    error_code ec;
    {
      auto [hec, hn] = co_await bhttp::async_read_header(c->stream, buffer, parser, use_tuple);
      ec = hec;
    }
    if (!ec && !parser.is_done()) {
      // Clients such as curl wait for this before sending a large body. A
      // body over the limit was already refused with the header (413).
      if (beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
        static constexpr std::string_view continue_100 = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await asio::async_write(c->stream, asio::buffer(continue_100), use_tuple);
        ec = wec;
      }
      if (!ec) {
        auto [rec, rn] = co_await bhttp::async_read(c->stream, buffer, parser, use_tuple);
        ec = rec;
      }
    }
    const auto start = clock_type::now();
    if (ec) {
      int status = status_for_read_error(ec);
      if (status != 0) {
        http_request req;
        req.remote_addr = c->remote;
        if (parser.is_header_done()) {
          req.method = std::string(parser.get().method_string());
          req.target = std::string(parser.get().target());
          detail::parse_target(req.target, req);
        }
        auto res = status == 413 ? error_response(413, "too_large", "request header or body too large")
                                 : error_response(400, "bad_request", "malformed HTTP request");
        c->busy = true;
        co_await answer_and_close(*srv, c->stream, res, req, start);
      }
      break;
    }

    c->busy = true;
    auto& in = parser.get();
    bool keep_alive = in.keep_alive();
    const bool upgrade = websocket::is_upgrade(in);
    http_request req = to_request(in, c->remote);
    auto m = srv->routes.find(req, upgrade);
    http_response res;

    if (upgrade && m.ws) {
      keep_alive = false;
      const ws_upgrade_handler* h = m.ws;
      worker_count wc(srv->in_worker);
      std::function<ws_upgrade_result()> fn = [h, &req]() -> ws_upgrade_result {
        try {
          return (*h)(req);
        } catch (const std::exception& e) {
          spdlog::error("net: upgrade handler for {} threw: {}", req.route, e.what());
        } catch (...) {
          spdlog::error("net: upgrade handler for {} threw", req.route);
        }
        return error_response(500, "internal", "internal error");
      };
      ws_upgrade_result fallback = error_response(503, "unavailable", "server is shutting down");
      ws_upgrade_result result = co_await run_on_workers<ws_upgrade_result>(srv->workers, fn, fallback);
      wc.release();
      if (auto* refusal = std::get_if<http_response>(&result)) {
        res = std::move(*refusal);
      } else if (srv->stopping) {
        res = error_response(503, "unavailable", "server is shutting down");
      } else if (auto handler = std::get<std::shared_ptr<ws_handler>>(std::move(result)); !handler) {
        spdlog::error("net: upgrade handler for {} returned no handler", req.route);
        res = error_response(500, "internal", "internal error");
      } else {
        auto session = std::make_shared<ws_session>(std::move(c->stream), c->remote, opt, std::move(handler));
        c->upgraded = true;
        c->ws = session;
        auto upgrade_request = parser.release();
        co_await ws_session::run(session, srv, upgrade_request, req, start);
        co_return;
      }
    } else if (m.handler) {
      const http_handler* h = m.handler;
      worker_count wc(srv->in_worker);
      std::function<http_response()> fn = [h, &req]() -> http_response {
        try {
          return (*h)(req);
        } catch (const std::exception& e) {
          spdlog::error("net: handler {} {} threw: {}", req.method, req.route, e.what());
        } catch (...) {
          spdlog::error("net: handler {} {} threw", req.method, req.route);
        }
        return error_response(500, "internal", "internal error");
      };
      http_response fallback = error_response(503, "unavailable", "server is shutting down");
      res = co_await run_on_workers<http_response>(srv->workers, fn, fallback);
    } else if (m.path_known) {
      res = error_response(405, "bad_request", "method not allowed");
      res.headers.emplace_back("Allow", m.allow);
    } else if (!upgrade && srv->ws_route_exists(req.path)) {
      res = error_response(426, "bad_request", "this path needs a WebSocket upgrade");
      res.headers.emplace_back("Upgrade", "websocket");
    } else {
      res = error_response(404, "not_found", "no such route");
    }

    if (srv->stopping) keep_alive = false;
    int status = res.status;
    bool ok = false;
    try {
      auto out = to_beast(std::move(res), keep_alive);
      status = out.result_int();
      ok = co_await write_response(c->stream, out, opt.request_timeout);
    } catch (const std::exception& e) {
      // e.g. a header Beast refuses; the client gets nothing sensible now.
      spdlog::error("net: cannot write response for {} {}: {}", req.method, req.route, e.what());
    }
    c->busy = false;
    if (!ok) break;
    srv->observe(req, status, start);
    if (!keep_alive) {
      error_code sec;
      c->stream.socket().shutdown(tcp::socket::shutdown_send, sec);
      break;
    }
  }
  if (!c->upgraded) c->stream.close();
}

asio::awaitable<void> accept_loop(std::shared_ptr<server_impl> srv) {
  auto& acceptor = *srv->acceptor;
  for (;;) {
    tcp::socket sock(asio::make_strand(srv->io.next_context()));
    auto [ec] = co_await acceptor.async_accept(sock, use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || srv->stopping || !acceptor.is_open()) break;
      // Out of descriptors and the like: back off instead of spinning.
      spdlog::warn("net: accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds{50});
      co_await pause.async_wait(use_tuple);
      continue;
    }
    error_code oec;
    sock.set_option(tcp::no_delay(true), oec);
    std::string remote = remote_ip(sock);
    std::shared_ptr<connection> c;
    {
      std::lock_guard lock(srv->mu);
      if (srv->stopping) {
        sock.close(oec);
        continue;
      }
      if (srv->live.size() >= srv->opt.max_connections) {
        // Full: answer 503 from a task of its own (co_spawn only posts, so
        // doing it under the lock is cheap), or just close when too many
        // such answers are already in flight.
        if (srv->rejecting.fetch_add(1) < max_rejecting) {
          auto ex = sock.get_executor();
          asio::co_spawn(ex, reject_connection(srv, std::move(sock), std::move(remote)), log_task_failure);
        } else {
          srv->rejecting.fetch_sub(1);
          sock.close(oec);
        }
        continue;
      }
      c = std::make_shared<connection>(std::move(sock), remote);
      c->id = srv->next_id++;
      srv->live.emplace(c->id, c);
      srv->connections.store(srv->live.size());
    }
    auto ex = c->stream.get_executor();
    asio::co_spawn(ex, run_connection(srv, c), log_task_failure);
  }
  {
    std::lock_guard lock(srv->mu);
    srv->accept_running = false;
  }
  srv->cv.notify_all();
}

}  // namespace

// ---- http_server ---------------------------------------------------------------

http_server::http_server(io_pool& io, worker_pool& workers, const router& routes, server_options options)
    : impl_(std::make_shared<impl>(io, workers, routes, std::move(options))) {}

http_server::~http_server() { stop(); }

std::string http_server::start() {
  auto& s = *impl_;
  std::lock_guard lock(s.mu);
  if (s.stop_called) throw std::logic_error("http_server: start() after stop()");
  if (s.started) return s.bound;

  auto [host, port] = split_host_port(s.opt.listen);
  if (host.empty()) host = "0.0.0.0";
  error_code ec;
  tcp::endpoint ep;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) {
    ep = tcp::endpoint(addr, port);
  } else {
    asio::io_context tmp;
    tcp::resolver resolver(tmp);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
      throw std::system_error(std::make_error_code(std::errc::address_not_available),
                              "cannot resolve listen address '" + s.opt.listen + "'");
    }
    ep = results.begin()->endpoint();
  }

  auto fail = [&](const char* what) {
    auto code = ec.category() == boost::system::system_category()
                    ? std::error_code(ec.value(), std::system_category())
                    : std::make_error_code(std::errc::address_not_available);
    s.acceptor.reset();
    throw std::system_error(code, std::string(what) + " " + s.opt.listen);
  };
  s.acceptor.emplace(asio::make_strand(*s.io.contexts[0]));
  s.acceptor->open(ep.protocol(), ec);
  if (ec) fail("cannot open socket for");
  s.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) fail("cannot set SO_REUSEADDR on");
  s.acceptor->bind(ep, ec);
  if (ec) fail("cannot bind");
  s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("cannot listen on");
  auto local = s.acceptor->local_endpoint(ec);
  if (ec) fail("cannot read the address of");

  s.bound = format_endpoint(local);
  s.started = true;
  s.accept_running = true;
  asio::co_spawn(s.acceptor->get_executor(), accept_loop(impl_), log_task_failure);
  return s.bound;
}

void http_server::stop(std::chrono::milliseconds grace) {
  auto& s = *impl_;
  auto snapshot = [&s] {
    std::vector<std::shared_ptr<connection>> out;
    for (auto& [id, w] : s.live) {
      if (auto c = w.lock()) out.push_back(std::move(c));
    }
    return out;
  };
  std::vector<std::shared_ptr<connection>> conns;
  {
    std::lock_guard lock(s.mu);
    if (!s.started || s.stop_called) return;
    s.stop_called = true;
    s.stopping = true;
    conns = snapshot();
  }
  asio::post(s.acceptor->get_executor(), [srv = impl_] {
    error_code ec;
    srv->acceptor->close(ec);
  });
  for (auto& c : conns) begin_shutdown(c);
  conns.clear();

  // Without running io threads nothing can progress: do not wait for it.
  const bool io_running = s.io.running;
  auto all_done = [&s] { return s.live.empty() && !s.accept_running; };
  std::unique_lock lock(s.mu);
  if (s.cv.wait_for(lock, io_running ? grace : std::chrono::milliseconds{0}, all_done)) return;
  if (!io_running) return;
  spdlog::warn("net: {} connection(s) still open after the grace period; closing them", s.live.size());
  conns = snapshot();
  lock.unlock();
  for (auto& c : conns) force_close(c);
  conns.clear();
  lock.lock();
  // Handlers still running on the worker pool are not waited for: their
  // sockets are closed and they end on their own once the handler returns.
  // Bounded: if the io threads no longer run, nothing can finish anyway.
  s.cv.wait_for(lock, std::chrono::seconds{2}, [&s] {
    return s.live.size() <= static_cast<std::size_t>(std::max(0, s.in_worker.load())) && !s.accept_running;
  });
}

server_stats http_server::stats() const { return server_stats{impl_->connections.load(), impl_->websockets.load()}; }

}  // namespace chatd::net
