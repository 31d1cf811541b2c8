// One accepted connection: reads HTTP/1.1 requests, has the worker pool
// answer them, and hands an upgraded connection to a ws_session. The same
// code serves plain TCP and TLS (a template over the stream); a TLS
// connection first completes its handshake within request_timeout.
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <functional>
#include <type_traits>
#include <variant>

#include "common/log.h"
#include "common/worker_pool.h"
#include "net/http_internal.h"
#include "net/server_internal.h"
#include "net/ws_session.h"

namespace chatd::net {

namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;
using ws_detail::use_tuple;
using ws_detail::ws_session;

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

namespace {

// After an error answer the server stops sending and reads (and drops) what
// the client still sends for a moment, so that the client sees the answer
// instead of a reset caused by unread data.
constexpr std::chrono::milliseconds linger_time{2000};
constexpr std::size_t linger_max_bytes = 8 * 1024 * 1024;
// A TLS peer gets this long to answer our close_notify.
constexpr std::chrono::milliseconds tls_shutdown_time{2000};

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

// A note on g++ 12: temporaries with destructors inside a co_await
// full-expression (a lambda, a std::string, a by-value argument of the awaited
// coroutine) can be destroyed twice. Every such object is therefore a named
// local here, and awaited coroutines take their arguments by reference. In
// these templates a co_await inside an `if` condition also miscompiled (an
// illegal instruction at run time): await into a named local first.

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

// The state behind one http_responder: the first answer is delivered; an
// answer never given (every copy of the responder dropped) is a 500.
class responder_state {
 public:
  responder_state(std::function<void(http_response)> deliver, const http_request& req)
      : deliver_(std::move(deliver)), method_(req.method), route_(req.route) {}
  ~responder_state() {
    if (answered_.load()) return;
    spdlog::error("net: handler {} {} dropped its responder without answering", method_, route_);
    answer(error_response(500, "internal", "internal error"));
  }
  responder_state(const responder_state&) = delete;
  responder_state& operator=(const responder_state&) = delete;

  void answer(http_response r) {
    if (answered_.exchange(true)) return;
    deliver_(std::move(r));
  }

 private:
  std::atomic<bool> answered_{false};
  std::function<void(http_response)> deliver_;
  const std::string method_;
  const std::string route_;
};

// Runs an async handler on the worker pool and resumes the calling coroutine
// on its own executor with the answer, whenever and from whichever thread the
// handler gives it. If the pool no longer takes work, the answer is
// `fallback`. All three references must live until this completes.
asio::awaitable<http_response> run_async_on_workers(worker_pool& pool, const async_http_handler& fn, http_request& req,
                                                    http_response& fallback) {
  auto ex = co_await asio::this_coro::executor;
  auto initiation = [&pool, ex, &fn, &req, &fallback](auto handler) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    auto deliver = [h, ex](http_response r) {
      asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
    };
    auto state = std::make_shared<responder_state>(std::move(deliver), req);
    bool queued = pool.post([state, &fn, &req] {
      try {
        fn(req, [state](http_response r) { state->answer(std::move(r)); });
      } catch (const std::exception& e) {
        spdlog::error("net: handler {} {} threw: {}", req.method, req.route, e.what());
        state->answer(error_response(500, "internal", "internal error"));
      } catch (...) {
        spdlog::error("net: handler {} {} threw", req.method, req.route);
        state->answer(error_response(500, "internal", "internal error"));
      }
    });
    if (!queued) state->answer(std::move(fallback));
  };
  http_response value = co_await asio::async_initiate<decltype(asio::use_awaitable), void(http_response)>(
      initiation, asio::use_awaitable);
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

// ---- what differs between plain TCP and TLS -----------------------------------

// Plain TCP has none: callers skip it at compile time rather than pay a
// coroutine frame per accepted connection.
asio::awaitable<bool> tls_handshake(tls_stream& stream, std::chrono::milliseconds timeout) {
  beast::get_lowest_layer(stream).expires_after(timeout);
  auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
  co_return !ec;
}

// The end of a connection the server closes after its answer.
asio::awaitable<void> finish(plain_stream& stream) {
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  co_return;
}

asio::awaitable<void> finish(tls_stream& stream) {
  // close_notify tells the client the answer is complete (not truncated).
  beast::get_lowest_layer(stream).expires_after(tls_shutdown_time);
  auto [ec] = co_await stream.async_shutdown(use_tuple);
  (void)ec;
}

// ---- answers ---------------------------------------------------------------------

template <class Stream>
asio::awaitable<bool> write_response(Stream& stream, bhttp::response<bhttp::string_body>& res,
                                     std::chrono::milliseconds timeout) {
  beast::get_lowest_layer(stream).expires_after(timeout);
  auto [ec, n] = co_await bhttp::async_write(stream, res, use_tuple);
  co_return !ec;
}

// Stops sending and drops what the client still sends for a moment. On TLS
// the bytes are dropped undecrypted, straight from the TCP layer.
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

// The Beast form of an error answer after which the connection closes.
bhttp::response<bhttp::string_body> closing_answer(int status, std::string_view code, std::string_view message) {
  bool keep_alive = false;
  return to_beast(error_response(status, code, message), keep_alive);
}

// Writes an error answer on a connection that cannot continue, then closes.
template <class Stream>
asio::awaitable<void> answer_and_close(server_state& srv, Stream& stream, bhttp::response<bhttp::string_body>& out,
                                       const http_request& req, clock_type::time_point start) {
  const auto timeout = srv.opt.request_timeout;
  const bool written = co_await write_response(stream, out, timeout);
  if (written) srv.observe(req, static_cast<int>(out.result_int()), start);
  auto& tcp_layer = beast::get_lowest_layer(stream);
  co_await linger_close(tcp_layer);
}

// Answers 503 to a connection over max_connections.
template <class Stream>
asio::awaitable<void> reject_connection(std::shared_ptr<server_state> srv, std::shared_ptr<Stream> stream,
                                        http_request req) {
  struct guard {
    server_state* s;
    ~guard() { s->rejecting.fetch_sub(1); }
  } g{srv.get()};
  if constexpr (std::is_same_v<Stream, tls_stream>) {
    const bool secured = co_await tls_handshake(*stream, srv->opt.request_timeout);
    if (!secured) {
      beast::get_lowest_layer(*stream).close();
      co_return;
    }
  }
  auto out = closing_answer(503, "unavailable", "too many connections");
  auto start = clock_type::now();
  co_await answer_and_close(*srv, *stream, out, req, start);
}

// ---- the connection ----------------------------------------------------------

// Every member is touched only on the strand (the socket's executor), except
// `id` and `remote` which never change.
template <class Stream>
struct connection final : connection_base, std::enable_shared_from_this<connection<Stream>> {
  connection(Stream s, std::string remote_ip)
      : stream(std::move(s)), strand(stream.get_executor()), remote(std::move(remote_ip)) {}
  Stream stream;
  // The stream's executor, kept apart: a moved-from TLS stream (after an
  // upgrade) has none.
  const asio::any_io_executor strand;
  std::string remote;
  bool busy = false;      // a request is being answered: stop() lets it finish
  bool upgraded = false;  // `stream` was moved into `ws`
  std::shared_ptr<ws_session<Stream>> ws;

  void begin_shutdown() override {
    asio::post(strand, [c = this->shared_from_this()] {
      if (c->ws) {
        c->ws->close(ws_close_going_away, "going away");
      } else if (!c->upgraded && !c->busy) {
        beast::get_lowest_layer(c->stream).close();  // idle keep-alive, or a request still arriving
      }
    });
  }

  void force_close() override {
    asio::post(strand, [c = this->shared_from_this()] {
      if (c->ws) {
        c->ws->force_close();
      } else if (!c->upgraded) {
        beast::get_lowest_layer(c->stream).close();
      }
    });
  }
};

template <class Stream>
asio::awaitable<void> run_connection(std::shared_ptr<server_state> srv, std::shared_ptr<connection<Stream>> c) {
  struct guard {
    server_state* s;
    std::uint64_t id;
    ~guard() { s->unregister(id); }
  } g{srv.get(), c->id};
  const auto& opt = srv->opt;
  beast::flat_buffer buffer;

  if constexpr (std::is_same_v<Stream, tls_stream>) {
    const bool secured = co_await tls_handshake(c->stream, opt.request_timeout);
    if (!secured) {
      beast::get_lowest_layer(c->stream).close();
      co_return;
    }
  }
  for (;;) {
    if (srv->stopping) break;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(opt.max_header_bytes, UINT32_MAX)));
    parser.body_limit(static_cast<std::uint64_t>(opt.max_body_bytes));
    beast::get_lowest_layer(c->stream).expires_after(opt.request_timeout);  // one bound for the whole request
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
        auto out = status == 413 ? closing_answer(413, "too_large", "request header or body too large")
                                 : closing_answer(400, "bad_request", "malformed HTTP request");
        c->busy = true;
        co_await answer_and_close(*srv, c->stream, out, req, start);
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
        auto session = std::make_shared<ws_session<Stream>>(std::move(c->stream), c->remote, opt, std::move(handler));
        c->upgraded = true;
        c->ws = session;
        auto upgrade_request = parser.release();
        co_await ws_session<Stream>::run(session, srv, upgrade_request, req, start);
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
    } else if (m.async) {
      // Waiting for the answer counts as being in a handler (stop() lets it finish).
      worker_count wc(srv->in_worker);
      http_response fallback = error_response(503, "unavailable", "server is shutting down");
      res = co_await run_async_on_workers(srv->workers, *m.async, req, fallback);
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
      co_await finish(c->stream);
      break;
    }
  }
  if (!c->upgraded) beast::get_lowest_layer(c->stream).close();
}

template <class Stream>
void spawn(const std::shared_ptr<server_state>& srv, const std::shared_ptr<connection_base>& base) {
  auto c = std::static_pointer_cast<connection<Stream>>(base);
  auto ex = c->strand;
  asio::co_spawn(ex, run_connection<Stream>(srv, std::move(c)), log_task_failure);
}

}  // namespace

std::shared_ptr<connection_base> make_connection(server_state& srv, tcp::socket sock, std::string remote) {
  if (srv.tls) {
    return std::make_shared<connection<tls_stream>>(tls_stream(std::move(sock), *srv.tls), std::move(remote));
  }
  return std::make_shared<connection<plain_stream>>(plain_stream(std::move(sock)), std::move(remote));
}

void start_connection(const std::shared_ptr<server_state>& srv, const std::shared_ptr<connection_base>& c) {
  if (srv->tls) {
    spawn<tls_stream>(srv, c);
  } else {
    spawn<plain_stream>(srv, c);
  }
}

void start_rejection(const std::shared_ptr<server_state>& srv, tcp::socket sock, std::string remote) {
  // co_spawn only posts: cheap enough for the accept loop's lock.
  auto ex = sock.get_executor();
  http_request req;
  req.remote_addr = std::move(remote);
  if (srv->tls) {
    auto stream = std::make_shared<tls_stream>(std::move(sock), *srv->tls);
    asio::co_spawn(ex, reject_connection<tls_stream>(srv, std::move(stream), std::move(req)), log_task_failure);
  } else {
    auto stream = std::make_shared<plain_stream>(std::move(sock));
    asio::co_spawn(ex, reject_connection<plain_stream>(srv, std::move(stream), std::move(req)), log_task_failure);
  }
}

}  // namespace chatd::net
