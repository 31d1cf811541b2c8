// Calls between chatd's own services (presence, notification, discovery):
// signed HTTP with a timeout, bounded idempotent retries and metrics. Both
// ends live here so that the signing scheme is written once.
//
// Every request carries
//   X-Chatd-Internal-Timestamp: <Unix seconds>
//   X-Chatd-Internal-Nonce: <32 hex digits, random per attempt>
//   X-Chatd-Internal-Signature: sha256=<hex HMAC-SHA256 of
//       "<timestamp>\n<nonce>\n<METHOD>\n<path>\n<body>", keyed by the secret>
// so a captured request cannot be turned into another method, path or body,
// is refused after five minutes, and within them is refused the second time
// (the receiver remembers the nonces it accepted). The secret is
// auth.internal_secret: a leaked token key must not let anyone call the
// internal routes, nor the other way round.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

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
inline constexpr std::string_view nonce_header = "X-Chatd-Internal-Nonce";
inline constexpr std::int64_t max_clock_skew_s = 300;

// "sha256=<64 hex digits>".
std::string sign(std::string_view secret, std::int64_t unix_seconds, std::string_view nonce, std::string_view method,
                 std::string_view path, std::string_view body);
// The three headers for a request made now, with a fresh nonce.
net::header_list signed_headers(std::string_view secret, std::string_view method, std::string_view path,
                                std::string_view body);
// Remembers the nonces of accepted requests for as long as their timestamp
// is in the window (twice the skew), so that each is accepted once. Bounded:
// past max_entries the oldest are forgotten (counted), which can only let a
// replay of a request older than that many others through.
class replay_guard {
 public:
  explicit replay_guard(std::size_t max_entries = std::size_t{1} << 20) : max_(max_entries) {}
  // False when `nonce` was accepted before.
  bool admit(std::string_view nonce, std::int64_t now_unix_seconds);
  std::size_t size() const;
  std::uint64_t forgotten_early() const;

 private:
  std::size_t max_;
  mutable std::mutex mu_;
  // (accepted at, nonce), oldest first; owns the nonces. A deque's elements
  // stay where they are while others are added or removed at its ends, so
  // seen_ can view them.
  std::deque<std::pair<std::int64_t, std::string>> order_;
  std::unordered_set<std::string_view> seen_;
  std::uint64_t forgotten_early_ = 0;
};

// The guard of this process: a nonce is good for one request to any route.
replay_guard& process_guard();

// Unauthorized unless the request is signed with `secret` within the skew
// window (compared in constant time) and, with a guard, its nonce is new.
status verify(std::string_view secret, const net::http_request& req, std::int64_t now_unix_seconds,
              replay_guard* guard = nullptr);

// Adds a route that answers 401 to requests not signed with `secret`, and
// to a request whose nonce this process accepted before (any route).
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
