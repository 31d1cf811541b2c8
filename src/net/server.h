// HTTP/1.1 + WebSocket server on Boost.Beast with C++20 coroutines.
// One io_context per core (net::io_pool); each connection lives on one strand;
// handlers run on a worker pool so that blocking work never holds a network
// thread. Beast is kept out of this header (pimpl).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/http.h"

namespace chatd {
class worker_pool;
}

namespace chatd::net {

// A fixed set of io_contexts, each run by one thread.
class io_pool {
 public:
  explicit io_pool(std::size_t threads);
  ~io_pool();
  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  void start();
  void stop();  // stops the io_contexts and joins the threads
  std::size_t size() const;

  struct impl;
  impl& get_impl() { return *impl_; }

 private:
  std::unique_ptr<impl> impl_;
};

// TLS on a listener (https/wss). Both files set: every connection starts
// with a TLS handshake (TLS 1.2 or 1.3, forward-secret AEAD ciphers only);
// both empty: plain TCP. The files are read at start(), which throws
// std::runtime_error naming the file when one cannot be used.
struct tls_options {
  std::string cert_file;  // PEM: the certificate, then any intermediates
  std::string key_file;   // PEM: its private key
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

struct server_options {
  std::string listen = "127.0.0.1:0";
  tls_options tls;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds request_timeout{30'000};  // read of one request, and keep-alive idle
  std::size_t max_connections = 10'000;
  // WebSocket
  std::size_t ws_max_message_bytes = 64 * 1024;
  std::size_t ws_max_queued_frames = 1024;  // outgoing; overflow closes the connection
  std::size_t ws_max_queued_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds ws_idle_timeout{30'000};  // pings at half of it; silence for it closes
  // Called on the connection's network thread after each HTTP response is
  // written (also for 404/405/413/400/503 answers), for per-route metrics;
  // req.route is the matched pattern or "" when none. Must not block.
  std::function<void(const http_request& req, int status, double seconds)> on_request;
};

struct server_stats {
  std::uint64_t connections_open = 0;
  std::uint64_t ws_open = 0;
};

class http_server {
 public:
  // The router and pools must outlive the server.
  http_server(io_pool& io, worker_pool& workers, const router& routes, server_options options);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds and starts accepting; returns the bound "host:port" (port 0 resolved).
  // Throws std::system_error when the address cannot be bound.
  std::string start();
  // Stops accepting, lets in-flight requests finish (up to the grace period),
  // closes WebSockets with 1001, then returns.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds{5000});

  server_stats stats() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace chatd::net
