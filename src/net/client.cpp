// Blocking clients over Beast. Each object runs its own io_context: the HTTP
// calls run it on the calling thread for the duration of the call (bounded by
// run_for), the WebSocket client on one background thread that keeps a read
// pending so that pings are answered and frames are queued for read().
#include "net/client.h"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "net/http_internal.h"
#include "net/tls_context.h"

namespace chatd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint64_t max_response_body = 64 * 1024 * 1024;
constexpr std::chrono::milliseconds ws_write_timeout{10'000};

std::string host_header(const std::string& host, std::uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

error unavailable(std::string what) { return make_error(errc::unavailable, std::move(what)); }

// SNI and host-name verification, then the client side of the TLS handshake,
// within the stream's current expiry. SNI names hosts only (RFC 6066 3); the
// certificate must name the host, or carry the address. `shown` names the
// peer in the error.
asio::awaitable<status> tls_client_handshake(beast::ssl_stream<beast::tcp_stream>& tls, const std::string& host,
                                             const std::string& shown) {
  error_code ip_ec;
  (void)asio::ip::make_address(host, ip_ec);
  if (ip_ec && SSL_set_tlsext_host_name(tls.native_handle(), host.c_str()) != 1) {
    co_return unavailable("cannot set the TLS server name " + host);
  }
  tls.set_verify_callback(ssl::host_name_verification(host));
  auto [ec] = co_await tls.async_handshake(ssl::stream_base::client, use_tuple);
  if (ec) co_return unavailable("TLS handshake with " + shown + " failed: " + ec.message());
  co_return status{};
}

// Connects within the stream's current expiry.
asio::awaitable<error_code> connect_stream(beast::tcp_stream& stream, const std::string& host, std::uint16_t port) {
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (!ec) {
    tcp::endpoint ep(addr, port);
    auto [cec] = co_await stream.async_connect(ep, use_tuple);
    if (!cec) stream.socket().set_option(tcp::no_delay(true), ec);
    co_return cec;
  }
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  const std::string service = std::to_string(port);
  auto [rec, results] = co_await resolver.async_resolve(host, service, use_tuple);
  if (rec) co_return rec;
  auto [cec, ep] = co_await stream.async_connect(results, use_tuple);
  // Small requests and masked WebSocket frames should not wait for Nagle.
  if (!cec) stream.socket().set_option(tcp::no_delay(true), ec);
  co_return cec;
}

bhttp::request<bhttp::string_body> make_request(std::string_view method, std::string_view target,
                                                const std::string& host, std::string_view body,
                                                const header_list& headers) {
  bhttp::request<bhttp::string_body> req;
  auto verb = bhttp::string_to_verb(method);
  if (verb == bhttp::verb::unknown) {
    req.method_string(method);
  } else {
    req.method(verb);
  }
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, host);
  bool has_content_type = false;
  for (const auto& [name, value] : headers) {
    auto lower = detail::to_lower(name);
    if (lower == "content-length" || lower == "transfer-encoding") continue;
    if (lower == "content-type") has_content_type = true;
    req.set(name, value);
  }
  if (!body.empty() && !has_content_type) req.set(bhttp::field::content_type, "application/json");
  req.body() = std::string(body);
  req.prepare_payload();
  return req;
}

client_response to_client_response(bhttp::response<bhttp::string_body>&& r) {
  client_response out;
  out.status = static_cast<int>(r.result_int());
  for (const auto& f : r) out.headers.emplace_back(detail::to_lower(f.name_string()), std::string(f.value()));
  out.body = std::move(r.body());
  return out;
}

struct exchange_outcome {
  std::optional<result<client_response>> res;
  bool nothing_received = false;  // failed before any byte of a response: safe to retry on a new connection
  bool keep_alive = false;
};

// Writes `req` and reads the answer on an already connected stream (plain
// TCP, or TLS over it).
template <class Stream>
asio::awaitable<void> exchange(Stream& stream, beast::flat_buffer& buffer, bhttp::request<bhttp::string_body>& req,
                               std::chrono::milliseconds timeout, exchange_outcome& out) {
  beast::get_lowest_layer(stream).expires_after(timeout);
  auto [wec, wn] = co_await bhttp::async_write(stream, req, use_tuple);
  // A server may answer (413, 503) and stop reading before the whole request
  // is written: still try to read its answer.
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(max_response_body);
  auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
  if (rec) {
    out.nothing_received = !parser.got_some() && buffer.size() == 0;
    out.res = unavailable("HTTP exchange failed: " + (wec ? wec.message() : rec.message()));
    co_return;
  }
  out.keep_alive = parser.get().keep_alive() && !wec;
  out.res = to_client_response(parser.release());
}

// One keep-alive connection; the io_context runs on the calling thread for the
// duration of a call only.
struct client_core {
  client_core(std::string h, std::uint16_t p) : host(std::move(h)), port(p) {}
  ~client_core() { drop(); }

  // Cancels whatever is pending and lets it finish, so that the stream can
  // be destroyed before its io_context.
  void drop() {
    if (stream) {
      stream->close();
      ioc.restart();
      ioc.run();
      stream.reset();
    }
    buffer.clear();
  }

  result<client_response> request(bhttp::request<bhttp::string_body>& req, std::chrono::milliseconds timeout) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = stream.has_value();
      exchange_outcome out;
      std::optional<error_code> connect_error;
      ioc.restart();
      asio::co_spawn(
          ioc,
          [&]() -> asio::awaitable<void> {
            if (!stream) {
              auto ex = co_await asio::this_coro::executor;
              stream.emplace(ex);
              stream->expires_after(timeout);
              auto ec = co_await connect_stream(*stream, host, port);
              if (ec) {
                connect_error = ec;
                co_return;
              }
            }
            co_await exchange(*stream, buffer, req, timeout, out);
          },
          asio::detached);
      // The whole call is bounded here.
      ioc.run_for(timeout);
      if (!ioc.stopped()) {  // still pending: timed out
        drop();
        return unavailable("timeout");
      }
      if (connect_error) {
        drop();
        return unavailable("cannot connect to " + host + ":" + std::to_string(port) + ": " + connect_error->message());
      }
      if (out.res && out.res->ok()) {
        if (!out.keep_alive) drop();
        return std::move(*out.res);
      }
      drop();
      // The server closed the idle keep-alive connection before it saw the
      // request: one retry on a fresh connection.
      if (reused && out.nothing_received) continue;
      if (out.res) return std::move(*out.res);
      return unavailable("request failed");
    }
    return unavailable("connection closed by the server");
  }

  std::string host;
  std::uint16_t port;
  asio::io_context ioc{1};
  std::optional<beast::tcp_stream> stream;  // declared after ioc: destroyed before it
  beast::flat_buffer buffer;
};

}  // namespace

std::optional<std::string_view> client_response::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return std::string_view(v);
  }
  return std::nullopt;
}

// ---- https ---------------------------------------------------------------------

namespace {

result<client_response> https_request(const detail::parsed_url& u, bhttp::request<bhttp::string_body>& req,
                                      std::chrono::milliseconds timeout) {
  asio::io_context ioc{1};
  beast::ssl_stream<beast::tcp_stream> stream(ioc, client_tls_context());
  std::optional<result<client_response>> res;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto& tcp_layer = beast::get_lowest_layer(stream);
        tcp_layer.expires_after(timeout);
        if (auto ec = co_await connect_stream(tcp_layer, u.host, u.port); ec) {
          res = unavailable("cannot connect to " + u.host + ":" + std::to_string(u.port) + ": " + ec.message());
          co_return;
        }
        auto handshake = co_await tls_client_handshake(stream, u.host, u.host + ":" + std::to_string(u.port));
        if (!handshake) {
          res = std::move(handshake).err();
          co_return;
        }
        // Connection: close was asked for: once the answer is read, waiting
        // for the peer's close_notify would only add a round trip.
        beast::flat_buffer buffer;
        exchange_outcome out;
        co_await exchange(stream, buffer, req, timeout, out);
        res = std::move(out.res);
      },
      asio::detached);
  ioc.run_for(timeout);
  if (!ioc.stopped()) {
    // Timed out: cancel and let the handlers finish before the stream goes.
    beast::get_lowest_layer(stream).close();
    ioc.restart();
    ioc.run();
  }
  if (!res) return unavailable("timeout");
  return std::move(*res);
}

}  // namespace

// ---- http_request_sync -------------------------------------------------------

result<client_response> http_request_sync(std::string_view method, std::string_view url, std::string_view body,
                                          const header_list& headers, std::chrono::milliseconds timeout) {
  detail::parsed_url u;
  if (!detail::parse_url(url, u) || (u.scheme != "http" && u.scheme != "https")) {
    return make_error(errc::bad_request, "not an http:// or https:// URL: " + std::string(url));
  }
  auto req = make_request(method, u.target, host_header(u.host, u.port), body, headers);
  req.keep_alive(false);
  if (u.scheme == "https") return https_request(u, req, timeout);
  client_core c(u.host, u.port);
  return c.request(req, timeout);
}

// ---- http_connection ---------------------------------------------------------

struct http_connection::impl : client_core {
  using client_core::client_core;
};

http_connection::http_connection(std::string host, std::uint16_t port)
    : impl_(std::make_unique<impl>(std::move(host), port)) {}

http_connection::~http_connection() = default;
http_connection::http_connection(http_connection&&) noexcept = default;
http_connection& http_connection::operator=(http_connection&&) noexcept = default;

result<client_response> http_connection::request(std::string_view method, std::string_view target,
                                                 std::string_view body, const header_list& headers,
                                                 std::chrono::milliseconds timeout) {
  if (!impl_) return unavailable("moved-from http_connection");
  auto req = make_request(method, target, host_header(impl_->host, impl_->port), body, headers);
  return impl_->request(req, timeout);
}

// ---- ws_client -----------------------------------------------------------------

struct ws_client::impl {
  using plain_ws = websocket::stream<beast::tcp_stream>;
  using tls_ws = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<plain_ws> ws;  // ws://, or
  std::unique_ptr<tls_ws> wss;   // wss://
  std::thread thread;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<frame> frames;
  std::optional<frame> terminal;  // the close (or failure) that ended the reader; sticky
  std::atomic<int> refused_status{0};
  std::atomic<bool> connected{false};
  bool write_busy = false;     // io thread only
  bool close_started = false;  // io thread only

  // Calls f with whichever stream is open (io thread, or before it runs).
  template <class F>
  void with_stream(F&& f) {
    if (ws) {
      f(*ws);
    } else if (wss) {
      f(*wss);
    }
  }

  void push(frame f, bool last) {
    {
      std::lock_guard lock(mu);
      if (last) {
        terminal = std::move(f);
      } else {
        frames.push_back(std::move(f));
      }
    }
    cv.notify_all();
  }

  bool reader_done() {
    std::lock_guard lock(mu);
    return terminal.has_value();
  }

  template <class Ws>
  static asio::awaitable<void> reader(impl* self, Ws& ws) {
    for (;;) {
      beast::flat_buffer buffer;
      auto [ec, n] = co_await ws.async_read(buffer, use_tuple);
      if (ec) {
        frame f;
        f.closed = true;
        // A close we started ends the pending read with operation_aborted
        // once the peer answered; reason() then holds the peer's close.
        // 1005: a close frame without a code; 1006: no close frame at all
        // (RFC 6455 7.1.5).
        const auto code = ws.reason().code;
        if (code != websocket::close_code::none) {
          f.close_code = code;
        } else {
          f.close_code = ec == websocket::error::closed ? 1005 : 1006;
        }
        self->push(std::move(f), true);
        co_return;
      }
      frame f;
      f.text = beast::buffers_to_string(buffer.data());
      self->push(std::move(f), false);
    }
  }

  // The opening handshake (TCP, TLS for wss, the upgrade) within the stream's expiry.
  template <class Ws>
  asio::awaitable<void> open(Ws& ws, const detail::parsed_url& u, const std::string& host,
                             std::optional<status>& outcome) {
    auto& tcp_layer = beast::get_lowest_layer(ws);
    auto ec = co_await connect_stream(tcp_layer, u.host, u.port);
    if (ec == beast::error::timeout) {
      outcome = unavailable("timeout");
      co_return;
    }
    if (ec) {
      outcome = unavailable("cannot connect to " + host + ": " + ec.message());
      co_return;
    }
    if constexpr (std::is_same_v<Ws, tls_ws>) {
      auto handshake = co_await tls_client_handshake(ws.next_layer(), u.host, host);
      if (!handshake) {
        outcome = std::move(handshake);
        co_return;
      }
    }
    websocket::response_type res;
    auto [hec] = co_await ws.async_handshake(res, host, u.target, use_tuple);
    if (hec == beast::error::timeout) {
      outcome = unavailable("timeout");
      co_return;
    }
    if (hec) {
      if (res.result_int() != 0 && res.result() != bhttp::status::switching_protocols) {
        refused_status = static_cast<int>(res.result_int());
        outcome = unavailable("HTTP " + std::to_string(res.result_int()) + ": " + res.body());
      } else {
        outcome = unavailable("websocket handshake failed: " + hec.message());
      }
      co_return;
    }
    tcp_layer.expires_never();
    outcome = status{};
  }

  status write(std::string data, bool text) {
    if (!connected) return unavailable("not connected");
    if (reader_done()) return unavailable("connection closed");
    auto done = std::make_shared<std::promise<error_code>>();
    auto fut = done->get_future();
    asio::post(ioc, [this, done, text, data = std::make_shared<std::string>(std::move(data))] {
      if (write_busy) {
        done->set_value(asio::error::in_progress);
        return;
      }
      write_busy = true;
      with_stream([&](auto& s) {
        s.text(text);  // Beast does not validate what it sends: invalid UTF-8 goes out as is
        s.async_write(asio::buffer(*data), [this, done, data](error_code ec, std::size_t) {
          write_busy = false;
          done->set_value(ec);
        });
      });
    });
    if (fut.wait_for(ws_write_timeout) != std::future_status::ready) return unavailable("write timeout");
    auto ec = fut.get();
    if (ec) return unavailable("write failed: " + ec.message());
    return {};
  }

  void close_socket() {
    with_stream([](auto& s) { beast::get_lowest_layer(s).close(); });
  }
};

ws_client::ws_client() : impl_(std::make_unique<impl>()) {}

ws_client::~ws_client() {
  auto& s = *impl_;
  if (!s.thread.joinable()) return;
  if (!s.reader_done()) close(ws_close_normal);
  // Everything pending ends once the socket is closed; then run() runs out of work.
  asio::post(s.ioc, [&s] { s.close_socket(); });
  s.work.reset();
  {
    std::unique_lock lock(s.mu);
    s.cv.wait_for(lock, std::chrono::seconds{3}, [&] { return s.terminal.has_value(); });
  }
  if (!s.reader_done()) s.ioc.stop();
  s.thread.join();
}

status ws_client::connect(std::string_view url, const header_list& headers, std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  if (s.connected || s.ws || s.wss) return make_error(errc::bad_request, "ws_client: already connected");
  detail::parsed_url u;
  if (!detail::parse_url(url, u) || (u.scheme != "ws" && u.scheme != "wss")) {
    return make_error(errc::bad_request, "not a ws:// or wss:// URL: " + std::string(url));
  }
  s.refused_status = 0;
  if (u.scheme == "wss") {
    s.wss = std::make_unique<impl::tls_ws>(s.ioc, client_tls_context());
  } else {
    s.ws = std::make_unique<impl::plain_ws>(s.ioc);
  }
  std::optional<status> outcome;
  const std::string host = host_header(u.host, u.port);
  s.with_stream([&](auto& ws) {
    ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
      for (const auto& [name, value] : headers) req.set(name, value);
    }));
    beast::get_lowest_layer(ws).expires_after(timeout);
    asio::co_spawn(s.ioc, s.open(ws, u, host, outcome), asio::detached);
  });
  s.ioc.run_for(timeout);
  if (!outcome || !outcome->ok()) {
    const bool timed_out = !outcome.has_value();
    // Let anything still pending finish before the stream goes away.
    s.close_socket();
    s.ioc.restart();
    s.ioc.run();
    s.ws.reset();
    s.wss.reset();
    s.ioc.restart();
    if (timed_out || !outcome) return unavailable("timeout");
    return std::move(*outcome);
  }

  s.ioc.restart();
  s.work.emplace(asio::make_work_guard(s.ioc));
  s.with_stream([&](auto& ws) { asio::co_spawn(s.ioc, impl::reader(&s, ws), asio::detached); });
  s.connected = true;
  s.thread = std::thread([&s] { s.ioc.run(); });
  return {};
}

int ws_client::http_status() const { return impl_->refused_status; }

status ws_client::send_text(std::string_view text) { return impl_->write(std::string(text), true); }

status ws_client::send_binary(std::string_view data) { return impl_->write(std::string(data), false); }

status ws_client::send_raw_text(std::string_view bytes) { return impl_->write(std::string(bytes), true); }

result<ws_client::frame> ws_client::read(std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  if (!s.connected) return unavailable("not connected");
  std::unique_lock lock(s.mu);
  s.cv.wait_for(lock, timeout, [&] { return !s.frames.empty() || s.terminal.has_value(); });
  if (!s.frames.empty()) {
    frame f = std::move(s.frames.front());
    s.frames.pop_front();
    return f;
  }
  if (s.terminal) return *s.terminal;
  return unavailable("timeout");
}

void ws_client::close(std::uint16_t code) {
  auto& s = *impl_;
  if (!s.connected || s.reader_done()) return;
  asio::post(s.ioc, [&s, code] {
    s.with_stream([&](auto& ws) {
      if (s.close_started || !ws.is_open()) return;
      s.close_started = true;
      ws.async_close(websocket::close_reason(code), [](error_code) {});
    });
  });
  std::unique_lock lock(s.mu);
  if (s.cv.wait_for(lock, std::chrono::seconds{3}, [&] { return s.terminal.has_value(); })) return;
  lock.unlock();
  // The server did not answer the close: drop the connection.
  asio::post(s.ioc, [&s] { s.close_socket(); });
  lock.lock();
  s.cv.wait_for(lock, std::chrono::seconds{1}, [&] { return s.terminal.has_value(); });
}

bool ws_client::is_open() const { return impl_->connected && !impl_->reader_done(); }

}  // namespace chatd::net
