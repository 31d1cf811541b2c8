#include "ws.h"

#include <netinet/in.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace chatd_bench {

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
}

struct ws_connection::impl {
  explicit impl(asio::io_context& ioc) : ws(ioc) {}
  websocket::stream<tcp::socket> ws;
  beast::flat_buffer in;
  std::deque<std::string> out;
  bool writing = false;
  bool open = false;
  bool timed_out = false;
  std::string error;
};

ws_connection::ws_connection(asio::io_context& ioc) : impl_(std::make_unique<impl>(ioc)) {}
ws_connection::~ws_connection() = default;

asio::awaitable<std::string> ws_connection::open(const account& a, std::string_view path, asio::ip::address local,
                                                 handshake& h, std::chrono::milliseconds timeout) {
  auto& i = *impl_;
  auto self = shared_from_this();
  auto& sock = i.ws.next_layer();
  // Whatever step hangs, closing the socket makes it fail.
  asio::steady_timer deadline(sock.get_executor());
  deadline.expires_after(timeout);
  i.timed_out = false;
  deadline.async_wait([self](boost::system::error_code ec) {
    if (ec) return;
    self->impl_->timed_out = true;
    boost::system::error_code ignored;
    self->impl_->ws.next_layer().close(ignored);
  });
  auto fail = [&](std::string what, const boost::system::error_code& ec) {
    deadline.cancel();
    i.error = i.timed_out ? what + ": timed out" : ec ? what + ": " + ec.message() : what;
    boost::system::error_code ignored;
    sock.close(ignored);
    return i.error;
  };

  boost::system::error_code ec;
  tcp::endpoint remote;
  auto addr = asio::ip::make_address(a.host, ec);
  if (!ec) {
    remote = tcp::endpoint(addr, static_cast<unsigned short>(std::stoi(a.port)));
  } else {
    tcp::resolver r(sock.get_executor());
    auto [rec, results] = co_await r.async_resolve(a.host, a.port, tuple_awaitable);
    if (rec || results.empty()) co_return fail("resolve " + a.host, rec);
    remote = *results.begin();
  }
  sock.open(remote.protocol(), ec);
  if (ec) co_return fail("socket", ec);
  if (!local.is_unspecified()) {
    // Leaves the port to connect(), which then only needs the 4-tuple to be
    // unique: tens of thousands of connections per source address.
    int one = 1;
    ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sock.bind(tcp::endpoint(local, 0), ec);
    if (ec) co_return fail("bind " + local.to_string(), ec);
  }
  auto [cec] = co_await sock.async_connect(remote, tuple_awaitable);
  if (cec) co_return fail("connect " + a.host + ":" + a.port, cec);
  sock.set_option(tcp::no_delay(true), ec);

  i.ws.set_option(websocket::stream_base::decorator([&a](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "chatd-bench");
    for (auto& [k, v] : a.headers) req.set(k, v);
    if (!a.subprotocol.empty()) req.set(beast::http::field::sec_websocket_protocol, a.subprotocol);
  }));
  i.ws.read_message_max(64u << 20);
  websocket::response_type res;
  auto [hec] = co_await i.ws.async_handshake(res, a.host + ":" + a.port, std::string(path), tuple_awaitable);
  if (hec) {
    fail("upgrade", hec);
    if (res.result_int() != 0) i.error += " (HTTP " + std::to_string(res.result_int()) + " " + res.body() + ")";
    co_return i.error;
  }
  i.ws.text(true);
  i.open = true;

  for (auto& f : h.start()) {
    auto [wec, n] = co_await i.ws.async_write(asio::buffer(f), tuple_awaitable);
    if (wec) co_return fail("handshake write", wec);
  }
  for (;;) {
    i.in.consume(i.in.size());
    auto [rec, n] = co_await i.ws.async_read(i.in, tuple_awaitable);
    if (rec) co_return fail("waiting for ready", rec);
    auto* p = static_cast<const char*>(i.in.data().data());
    bool ready = false, failed = false;
    std::string why;
    auto answers = h.on_frame(std::string_view(p, i.in.size()), ready, failed, why);
    for (auto& f : answers) {
      auto [wec, wn] = co_await i.ws.async_write(asio::buffer(f), tuple_awaitable);
      if (wec) co_return fail("handshake write", wec);
    }
    if (failed) co_return fail("handshake: " + why, {});
    if (ready) break;
  }
  deadline.cancel();
  i.in.consume(i.in.size());
  co_return std::string{};
}

asio::awaitable<bool> ws_connection::read(std::string_view& frame) {
  auto& i = *impl_;
  auto self = shared_from_this();
  i.in.consume(i.in.size());
  auto [ec, n] = co_await i.ws.async_read(i.in, tuple_awaitable);
  if (ec) {
    if (i.error.empty()) i.error = ec.message();
    i.open = false;
    co_return false;
  }
  frame = std::string_view(static_cast<const char*>(i.in.data().data()), i.in.size());
  co_return true;
}

void ws_connection::send(std::string frame) {
  auto& i = *impl_;
  if (!i.open) return;
  i.out.push_back(std::move(frame));
  if (!i.writing) write_next();
}

void ws_connection::write_next() {
  auto& i = *impl_;
  i.writing = true;
  i.ws.async_write(asio::buffer(i.out.front()), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
    auto& i = *self->impl_;
    i.out.pop_front();
    if (ec) {
      if (i.error.empty()) i.error = "write: " + ec.message();
      i.out.clear();
      i.writing = false;
      return;
    }
    if (i.out.empty()) {
      i.writing = false;
    } else {
      self->write_next();
    }
  });
}

void ws_connection::close() {
  auto& i = *impl_;
  i.open = false;
  boost::system::error_code ignored;
  i.ws.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
  i.ws.next_layer().close(ignored);
}

bool ws_connection::is_open() const { return impl_->open; }
const std::string& ws_connection::error() const { return impl_->error; }
std::size_t ws_connection::queued() const { return impl_->out.size(); }

}  // namespace chatd_bench
