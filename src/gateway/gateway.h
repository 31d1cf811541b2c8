// The API gateway: maps the contract's HTTP API onto the services, checks
// tokens, applies rate limits, and serves /healthz, /readyz and /metrics.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/config.h"
#include "net/http.h"

namespace chatd {
class metrics_registry;
struct participant_limits;
namespace store {
class chat_store;
}
namespace participants {
class service;
}
namespace chat {
class conversation_service;
class message_service;
}  // namespace chat
namespace presence {
class presence_port;
}
namespace discovery {
class service;
}
}  // namespace chatd

namespace chatd::gateway {

// Optional hooks to services that may live in other processes; each is set
// by the role wiring in src/app.
struct extensions {
  // Extra routes (discovery, presence, notifications, messages) registered by
  // the roles that provide them.
  std::function<void(net::router&)> add_routes;
  // Readiness of dependencies beyond the store; empty string = ready.
  std::function<std::string()> readiness;
};

struct deps {
  store::chat_store& db;
  participants::service& participants;
  chat::conversation_service& conversations;
  metrics_registry& metrics;
  participant_limits& limits;  // shared with the chat server in the same process
  // The services below add their routes when present.
  chat::message_service* messages = nullptr;    // send / edit / delete over HTTP
  presence::presence_port* presence = nullptr;  // GET /v1/presence/{id}
  discovery::service* discovery = nullptr;      // GET /v1/discovery
  // GET /v1/notifications for the authenticated caller.
  std::function<net::http_response(const net::http_request&, std::uint64_t caller)> notifications;
  // GET /v1/admin/dead-letters and POST /v1/admin/dead-letters/{id}/replay,
  // answered for admins only (ADR 013).
  std::function<net::http_response(const net::http_request&)> dead_letters_list;
  std::function<net::http_response(const net::http_request&)> dead_letter_replay;
};

class gateway {
 public:
  gateway(deps d, const config& cfg, extensions ext = {});
  ~gateway();
  // Registers every route of the gateway on `r`.
  void add_routes(net::router& r);
  // Per-request metrics hook for the HTTP server.
  void observe(const net::http_request& req, int status, double seconds);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace chatd::gateway
