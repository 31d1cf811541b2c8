// The notifier port over HTTP, for the distributed layout where the main chat
// service and the notification service are separate processes:
//
//   POST /v1/internal/notify
//   X-Chatd-Internal-Signature: sha256=<hex HMAC-SHA256 of the raw body, shared secret>
//   {"recipient_id":"<id>","message":{<the contract's message object>}}
//   -> 204 once notify() returned, or the contract's error body.
//
// The signature is the only authentication: the route is meant for a listener
// the outside cannot reach, and the secret keeps a misrouted caller out.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.h"
#include "net/http.h"
#include "notification/notifier.h"

namespace chatd::notification {

inline constexpr std::string_view internal_notify_path = "/v1/internal/notify";
inline constexpr std::string_view internal_signature_header = "X-Chatd-Internal-Signature";

// The request body, and its strict parser (bad_request on any other shape).
std::string internal_notify_body(const notify_request& req);
result<notify_request> parse_internal_notify_body(std::string_view body);

// "sha256=<hex>" of `body` under `secret`.
std::string internal_signature(std::string_view secret, std::string_view body);

// Adds the route, calling `target.notify()`; `target` must outlive the router.
// The signature is compared in constant time; a missing or wrong one is 401.
// Throws std::invalid_argument for an empty secret (anyone could sign).
void add_notify_route(net::router& routes, notifier& target, std::string secret);

// The client side. Transport failures, timeouts and 5xx answers are
// errc::unavailable; a 4xx answer carries the contract code the server sent
// (bad_request, unauthorized, ...), so that both notifiers fail alike.
class http_notifier : public notifier {
 public:
  // `base_url` is "http://host:port" (a trailing '/' is ignored).
  http_notifier(std::string base_url, std::string secret,
                std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});
  status notify(const notify_request& req) override;

 private:
  std::string url_;
  std::string secret_;
  std::chrono::milliseconds timeout_;
};

}  // namespace chatd::notification
