// http_server: the listener and the server's lifecycle. The threading model
// (README.md here): every connection is a coroutine on its own strand of one
// of the io_pool's contexts (round-robin at accept); handlers run on the
// worker pool (http_session.cpp); a WebSocket is a reader and a writer
// coroutine on the same strand (ws_session.h).
#include "net/server.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>
#include <system_error>

#include "common/log.h"
#include "net/server_internal.h"
#include "net/tls_context.h"

namespace chatd::net {

using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Connections answered 503 at once; beyond this they are just closed.
constexpr int max_rejecting = 64;

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

asio::awaitable<void> accept_loop(std::shared_ptr<server_state> srv) {
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
    std::shared_ptr<connection_base> c;
    {
      std::lock_guard lock(srv->mu);
      if (srv->stopping) {
        sock.close(oec);
        continue;
      }
      if (srv->live.size() >= srv->opt.max_connections) {
        // Full: answer 503 from a task of its own, or just close when too
        // many such answers are already in flight.
        if (srv->rejecting.fetch_add(1) < max_rejecting) {
          start_rejection(srv, std::move(sock), std::move(remote));
        } else {
          srv->rejecting.fetch_sub(1);
          sock.close(oec);
        }
        continue;
      }
      c = make_connection(*srv, std::move(sock), std::move(remote));
      c->id = srv->next_id++;
      srv->live.emplace(c->id, c);
      srv->connections.store(srv->live.size());
    }
    start_connection(srv, c);
  }
  {
    std::lock_guard lock(srv->mu);
    srv->accept_running = false;
  }
  srv->cv.notify_all();
}

}  // namespace

// ---- server_state ------------------------------------------------------------

void server_state::observe(const http_request& req, int status, clock_type::time_point start) const {
  if (!opt.on_request) return;
  try {
    opt.on_request(req, status, std::chrono::duration<double>(clock_type::now() - start).count());
  } catch (const std::exception& e) {
    spdlog::warn("net: on_request observer threw: {}", e.what());
  } catch (...) {
  }
}

void server_state::unregister(std::uint64_t id) {
  std::lock_guard lock(mu);
  live.erase(id);
  connections.store(live.size());
  cv.notify_all();
}

bool server_state::ws_route_exists(const std::string& path) const {
  http_request probe;
  probe.method = "GET";
  probe.path = path;
  return routes.find(probe, true).ws != nullptr;
}

struct http_server::impl : server_state {
  using server_state::server_state;
};

// ---- http_server ---------------------------------------------------------------

http_server::http_server(io_pool& io, worker_pool& workers, const router& routes, server_options options)
    : impl_(std::make_shared<impl>(io, workers, routes, std::move(options))) {}

http_server::~http_server() { stop(); }

std::string http_server::start() {
  auto& s = *impl_;
  std::lock_guard lock(s.mu);
  if (s.stop_called) throw std::logic_error("http_server: start() after stop()");
  if (s.started) return s.bound;
  if (s.opt.tls.enabled() && !s.tls) s.tls.emplace(make_server_tls_context(s.opt.tls));

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
    std::vector<std::shared_ptr<connection_base>> out;
    for (auto& [id, w] : s.live) {
      if (auto c = w.lock()) out.push_back(std::move(c));
    }
    return out;
  };
  std::vector<std::shared_ptr<connection_base>> conns;
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
  for (auto& c : conns) c->begin_shutdown();
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
  for (auto& c : conns) c->force_close();
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
