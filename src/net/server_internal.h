// What the server's translation units share: the io_pool's insides, the
// server's state, the two kinds of stream (plain TCP and TLS) and the
// connection base the server tracks. Private to src/net; includes Beast, so
// only the server's .cpp files include it.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "net/server.h"

namespace chatd::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

// A connection's byte stream: plain TCP, or TLS over it (server_options::tls).
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

struct io_pool::impl {
  explicit impl(std::size_t n);
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

// One accepted connection as the server's bookkeeping sees it, whatever its
// stream. The methods post to the connection's strand and may be called from
// any thread.
struct connection_base {
  virtual ~connection_base() = default;
  // Closes an idle keep-alive connection, lets a request in a handler finish,
  // closes a WebSocket with 1001.
  virtual void begin_shutdown() = 0;
  // Closes the socket without any handshake.
  virtual void force_close() = 0;
  std::uint64_t id = 0;  // set before the connection runs; never changes after
};

// The server's shared state. Coroutines hold it by shared_ptr, so it outlives
// the http_server object if a connection is still winding down.
struct server_state {
  server_state(io_pool& pool, worker_pool& w, const router& r, server_options o)
      : io(pool.get_impl()), workers(w), routes(r), opt(std::move(o)) {}

  io_pool::impl& io;
  worker_pool& workers;
  const router& routes;
  const server_options opt;
  std::optional<asio::ssl::context> tls;  // set by start() when opt.tls is

  std::optional<tcp::acceptor> acceptor;  // on a strand of context 0
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> websockets{0};
  std::atomic<int> rejecting{0};
  std::atomic<int> in_worker{0};  // connections waiting for a handler on the worker pool
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<std::uint64_t, std::weak_ptr<connection_base>> live;
  std::uint64_t next_id = 0;
  bool started = false;
  bool stop_called = false;
  bool accept_running = false;
  std::string bound;

  void observe(const http_request& req, int status, clock_type::time_point start) const;
  void unregister(std::uint64_t id);
  bool ws_route_exists(const std::string& path) const;
};

// http_session.cpp: a connection object for an accepted socket (TLS when the
// server has a TLS context), not yet running; run it with start_connection
// once it is registered in `live`.
std::shared_ptr<connection_base> make_connection(server_state& srv, tcp::socket sock, std::string remote);
void start_connection(const std::shared_ptr<server_state>& srv, const std::shared_ptr<connection_base>& c);
// Answers 503 to a connection over max_connections (after the TLS handshake
// on a TLS server), then closes; releases one `rejecting` count when done.
void start_rejection(const std::shared_ptr<server_state>& srv, tcp::socket sock, std::string remote);

void log_task_failure(std::exception_ptr e);

}  // namespace chatd::net
