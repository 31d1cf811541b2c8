// The notifier port over HTTP, for the distributed layout where the main chat
// service and the notification service are separate processes:
//
//   POST /v1/internal/notify, signed as every internal call (rpc/internal.h)
//   {"recipient_id":"<id>","message":{<the contract's message object>}}
//   -> 204 once notify() returned, or the contract's error body.
//
// The signature is the only authentication: the route is meant for a listener
// the outside cannot reach, and the secret keeps a misrouted caller out.
// notify() is idempotent per (recipient, message), so the client retries.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.h"
#include "net/http.h"
#include "notification/notifier.h"
#include "rpc/internal.h"

namespace chatd {
class metrics_registry;
}

namespace chatd::notification {

inline constexpr std::string_view internal_notify_path = "/v1/internal/notify";

// The request body, and its strict parser (bad_request on any other shape).
std::string internal_notify_body(const notify_request& req);
result<notify_request> parse_internal_notify_body(std::string_view body);

// Adds the route, calling `target.notify()`; `target` must outlive the router.
// A request not signed with `secret` (rpc::verify) is 401.
// Throws std::invalid_argument for an empty secret (anyone could sign).
void add_notify_route(net::router& routes, notifier& target, std::string secret);

// The client side. Transport failures, timeouts and 5xx answers are
// errc::unavailable; a 4xx answer carries the contract code the server sent
// (bad_request, unauthorized, ...), so that both notifiers fail alike.
class http_notifier : public notifier {
 public:
  // `base_url` is "http://host:port" (a trailing '/' is ignored).
  http_notifier(std::string base_url, std::string secret, metrics_registry& metrics, rpc::client_options o = {});
  status notify(const notify_request& req) override;

 private:
  rpc::client client_;
};

}  // namespace chatd::notification
