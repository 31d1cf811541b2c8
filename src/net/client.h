// Blocking HTTP and WebSocket clients for service-to-service calls, webhooks
// and tests. Each call runs its own small io_context on the calling thread, so
// call them from worker threads, never from a network thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "net/http.h"

namespace chatd::net {

struct client_response {
  int status = 0;
  header_list headers;  // names lower-cased
  std::string body;
  std::optional<std::string_view> header(std::string_view lower_name) const;
};

// `url` is "http://host:port/path?query" or "https://..." (TLS 1.2+, the
// certificate verified against the system trust store, or SSL_CERT_FILE,
// and the host name). Errors (connect, timeout, TLS, protocol) come back as
// errc::unavailable with the reason in the message.
result<client_response> http_request_sync(std::string_view method, std::string_view url, std::string_view body = {},
                                          const header_list& headers = {},
                                          std::chrono::milliseconds timeout = std::chrono::milliseconds{10'000});

// A keep-alive HTTP connection to one host, for tests and benchmarks that make many calls.
class http_connection {
 public:
  http_connection(std::string host, std::uint16_t port);
  ~http_connection();
  http_connection(http_connection&&) noexcept;
  http_connection& operator=(http_connection&&) noexcept;
  result<client_response> request(std::string_view method, std::string_view target, std::string_view body = {},
                                  const header_list& headers = {},
                                  std::chrono::milliseconds timeout = std::chrono::milliseconds{10'000});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// A blocking WebSocket client. Not thread-safe: one thread reads and writes,
// except close() which may be called from another thread to unblock a read.
class ws_client {
 public:
  ws_client();
  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  // `url` is "ws://host:port/path?query" or "wss://..." (TLS as for https).
  // On a refused upgrade the error's message holds "HTTP <status>: <body>"
  // and http_status() tells the status.
  status connect(std::string_view url, const header_list& headers = {},
                 std::chrono::milliseconds timeout = std::chrono::milliseconds{10'000});
  int http_status() const;  // status of a refused upgrade, else 0

  status send_text(std::string_view text);
  status send_binary(std::string_view data);
  // A raw text frame whose payload may be invalid UTF-8 (for tests).
  status send_raw_text(std::string_view bytes);

  struct frame {
    std::string text;
    bool closed = false;  // the peer closed
    std::uint16_t close_code = 0;
  };
  // Waits for the next data frame (answers pings by itself). On timeout
  // returns errc::unavailable with message "timeout" and the connection stays usable.
  result<frame> read(std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});
  void close(std::uint16_t code = 1000);
  bool is_open() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace chatd::net
