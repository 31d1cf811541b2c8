// Transport-neutral HTTP types. Handlers see only these; Beast stays inside
// src/net/*.cpp so that services compile without its headers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace chatd::net {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_request {
  std::string method;                                       // "GET", "POST", ...
  std::string target;                                       // raw request target, e.g. "/v1/x?a=b"
  std::string path;                                         // percent-decoded path without the query
  std::vector<std::pair<std::string, std::string>> query;   // decoded
  std::vector<std::pair<std::string, std::string>> params;  // from "{name}" route segments
  header_list headers;                                      // names lower-cased
  std::string body;
  std::string remote_addr;  // client IP, no port
  std::string route;        // the matched route pattern, e.g. "/v1/participants/{id}" (for metrics)

  std::optional<std::string_view> header(std::string_view lower_name) const;
  std::optional<std::string_view> query_param(std::string_view name) const;
  std::string_view param(std::string_view name) const;  // "" when absent
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  header_list headers;
};

using http_handler = std::function<http_response(http_request&)>;

// Hands a deferred answer back to the server: the first call answers, from
// any thread; later calls are ignored. Dropped without a call, it answers 500
// (and logs), so a lost callback never leaves a client waiting forever.
using http_responder = std::function<void(http_response)>;
// A handler that may answer after it returns, so that no worker thread waits
// (for the message queue's confirmation, say). It runs on a worker; `req`
// stays valid until the answer is given.
using async_http_handler = std::function<void(http_request&, http_responder)>;

// A WebSocket connection as the services see it. All methods are thread-safe.
class ws_connection {
 public:
  virtual ~ws_connection() = default;
  // Queues a text frame. Returns false when the connection is closing or its
  // bounded outgoing queue overflowed (the connection is then closed: a client
  // that cannot keep up reconnects with ?since=).
  virtual bool send_text(std::string text) = 0;
  // Sends a close frame with the code and closes. Idempotent.
  virtual void close(std::uint16_t code, std::string reason) = 0;
  virtual const std::string& remote_addr() const = 0;
  // Stops reading frames from the peer until resume_reading(); writes go on.
  // The kernel's buffers then fill and TCP slows a client that sends faster
  // than its requests finish. Both may be called from any thread.
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
};

// Receives the events of one accepted WebSocket. Calls for one connection never
// overlap and arrive in order; they run on a network thread, so anything that
// blocks must be handed to a worker.
class ws_handler {
 public:
  virtual ~ws_handler() = default;
  virtual void on_open(std::shared_ptr<ws_connection> conn) = 0;
  virtual void on_text(std::string text) = 0;
  virtual void on_close() = 0;
};

// What an upgrade route answers: a refusal (an HTTP response) or the handler
// of the new connection. Runs on a worker thread, so it may block.
using ws_upgrade_result = std::variant<http_response, std::shared_ptr<ws_handler>>;
using ws_upgrade_handler = std::function<ws_upgrade_result(http_request&)>;

// Standard WebSocket close codes the contract names.
inline constexpr std::uint16_t ws_close_normal = 1000;
inline constexpr std::uint16_t ws_close_going_away = 1001;
inline constexpr std::uint16_t ws_close_invalid_payload = 1007;
inline constexpr std::uint16_t ws_close_policy = 1008;
inline constexpr std::uint16_t ws_close_too_big = 1009;
inline constexpr std::uint16_t ws_close_internal = 1011;
// Application codes (4000-4999, RFC 6455 7.4.2).
inline constexpr std::uint16_t ws_close_token_expired = 4001;

// Routes "METHOD /path/{param}/..." to handlers; static segments win over params.
// A pattern ending in "/*" (e.g. "/*", "/static/*") is a catch-all for every
// path under that prefix. It is a last resort: it answers only when no other
// route (HTTP or WebSocket, any method) knows the path, so adding one never
// turns an API 404/405/426 into something else; the longest prefix wins, and
// a catch-all with another method leaves the answer a 404.
class router {
 public:
  void add(std::string method, std::string pattern, http_handler handler);
  void add_async(std::string method, std::string pattern, async_http_handler handler);
  void add_ws(std::string pattern, ws_upgrade_handler handler);

  struct match {
    const http_handler* handler = nullptr;  // or
    const async_http_handler* async = nullptr;
    const ws_upgrade_handler* ws = nullptr;
    bool path_known = false;  // path matched but method did not -> 405
    std::string pattern;
    std::string allow;  // when path_known: the path's methods, e.g. "GET, POST" (the 405's Allow header)
  };
  // Fills req.params and req.route on success.
  match find(http_request& req, bool websocket_upgrade) const;

 private:
  struct entry {
    std::string method;
    std::vector<std::string> segments;  // a catch-all's without the trailing "*"
    bool catch_all = false;
    std::string pattern;
    http_handler handler;
    async_http_handler async;
    ws_upgrade_handler ws;
  };
  void add_entry(std::string method, std::string pattern, http_handler handler, async_http_handler async);
  std::vector<entry> entries_;
};

// Helpers for building JSON error bodies in the contract's shape.
http_response error_response(int status, std::string_view code, std::string_view message);

// Splits "host:port" (or "[v6]:port"). Throws std::invalid_argument.
std::pair<std::string, std::uint16_t> split_host_port(std::string_view hostport);

std::string percent_decode(std::string_view s, bool plus_is_space);

}  // namespace chatd::net
