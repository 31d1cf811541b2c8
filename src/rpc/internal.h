// Calls between chatd's own services (presence, notification, discovery):
// signed HTTP with a timeout, bounded idempotent retries and metrics. Both
// ends live here so that the signing scheme is written once.
//
// Every request carries
//   X-Chatd-Internal-Timestamp: <Unix seconds>
//   X-Chatd-Internal-Signature: sha256=<hex HMAC-SHA256 of
//       "<timestamp>\n<METHOD>\n<path>\n<body>", keyed by the shared secret>
// so a captured request cannot be replayed after five minutes, nor turned
// into another method, path or body. The secret is auth.jwt_secret, which
// every process of a deployment already shares.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.h"
#include "net/http.h"

namespace chatd {
class metrics_registry;
class counter;
class histogram;
}  // namespace chatd

namespace chatd::rpc {

inline constexpr std::string_view signature_header = "X-Chatd-Internal-Signature";
inline constexpr std::string_view timestamp_header = "X-Chatd-Internal-Timestamp";
inline constexpr std::int64_t max_clock_skew_s = 300;

// "sha256=<64 hex digits>".
std::string sign(std::string_view secret, std::int64_t unix_seconds, std::string_view method, std::string_view path,
                 std::string_view body);
// The two headers for a request made now.
net::header_list signed_headers(std::string_view secret, std::string_view method, std::string_view path,
                                std::string_view body);
// Unauthorized unless the request is signed with `secret` within the skew
// window (compared in constant time).
status verify(std::string_view secret, const net::http_request& req, std::int64_t now_unix_seconds);

// Adds a route that answers 401 to requests not signed with `secret`.
// Throws std::invalid_argument for an empty secret (anyone could sign).
void add_route(net::router& routes, std::string method, std::string pattern, std::string secret,
               net::http_handler handler);

// The contract error carried by an answer body ({"error":{"code","message"}}), if any.
std::optional<error> error_of(std::string_view body);

struct client_options {
  std::chrono::milliseconds timeout{2000};  // per attempt
  int attempts = 3;                         // transport failures and 5xx are tried again
  std::chrono::milliseconds backoff{50};    // doubled after each failed attempt
};

// One remote service. Thread-safe. Only for idempotent requests: a request
// whose answer was lost is sent again.
class client {
 public:
  // `service` names it in metrics and errors; `base_url` is "http://host:port".
  client(std::string service, std::string base_url, std::string secret, metrics_registry& metrics,
         client_options o = {});

  // The 2xx answer's body. A 4xx answer comes back as the contract error the
  // server sent (not retried); transport failures, timeouts and 5xx, once the
  // attempts are used up, as errc::unavailable.
  result<std::string> call(std::string_view method, std::string_view path, std::string_view body = {});

  const std::string& base_url() const { return base_url_; }

 private:
  std::string service_;
  std::string base_url_;
  std::string secret_;
  client_options opt_;
  counter& ok_;
  counter& failed_;
  counter& retried_;
  histogram& latency_;
};

}  // namespace chatd::rpc
