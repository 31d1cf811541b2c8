// The discovery service: answers GET /v1/discovery (the healthy chat servers,
// best first, for one client) and serves the internal endpoints through which
// remote chat servers heartbeat (wire.h). Transport-free apart from the
// net::http types: the gateway calls handle_discovery() after checking the
// caller's token, and the discovery role mounts add_internal_routes().
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "discovery/ranking.h"
#include "discovery/registry.h"
#include "net/http.h"

namespace chatd::discovery {

class service {
 public:
  // The client's location from its IP address (a GeoIP or CIDR table),
  // consulted only when the request carries no hint; nullopt: unknown.
  using ip_locator = std::function<std::optional<client_location>(std::string_view remote_addr)>;

  // `reg` must outlive the service; `cfg` is copied.
  service(registry& reg, const discovery_config& cfg, ip_locator locate = {});

  // GET /v1/discovery?lat=&lon=&region= . No authentication here: the
  // gateway checks the token before calling. 400 bad_request for an invalid
  // hint, 503 unavailable when the registry cannot be read.
  net::http_response handle_discovery(const net::http_request& req);

  // The query of GET /v1/discovery: lat in [-90,90] and lon in [-180,180]
  // (decimal numbers, both or neither), region [a-z0-9_-]{1,32}. An empty
  // value counts as absent.
  static result<client_location> parse_location(const net::http_request& req);

  // The healthy servers ranked for `client`.
  result<std::vector<ranked_server>> find(const client_location& client);

  // POST /v1/internal/discovery/heartbeat, POST .../remove, GET .../servers,
  // each checking X-Chatd-Internal-Signature against `secret` (401
  // unauthorized otherwise). Throws std::invalid_argument for an empty
  // secret: anyone could sign with it.
  void add_internal_routes(net::router& r, std::string secret);

 private:
  net::http_response internal_heartbeat(const net::http_request& req, const std::string& secret);
  net::http_response internal_remove(const net::http_request& req, const std::string& secret);
  net::http_response internal_servers(const net::http_request& req, const std::string& secret);

  registry& reg_;
  discovery_config cfg_;
  ip_locator locate_;
};

// The answer body of GET /v1/discovery: {"servers":[{"id","url","region","distance_km","load"}]}.
std::string discovery_body(const std::vector<ranked_server>& ranked);

}  // namespace chatd::discovery
