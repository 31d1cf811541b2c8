#include "discovery/service.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "discovery/wire.h"
#include "net/reply.h"
#include "rpc/internal.h"

namespace chatd::discovery {

namespace {

struct service_metrics {
  counter& requests;
  counter& heartbeats;
  counter& bad_signatures;
  gauge& healthy;
};

service_metrics& metrics() {
  auto& r = default_registry();
  static service_metrics m{
      r.counter("chatd_discovery_requests_total", "GET /v1/discovery requests answered"),
      r.counter("chatd_discovery_heartbeats_total", "Chat-server heartbeats accepted by the internal endpoint"),
      r.counter("chatd_discovery_bad_signatures_total", "Internal discovery requests refused for their signature"),
      r.gauge("chatd_discovery_healthy_servers", "Healthy chat servers at the last discovery request"),
  };
  return m;
}

// An empty value counts as absent (forms and templated URLs send "lat=").
std::optional<std::string_view> query(const net::http_request& req, std::string_view name) {
  auto v = req.query_param(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

result<std::optional<double>> coordinate(const net::http_request& req, std::string_view name, double limit) {
  auto v = query(req, name);
  if (!v) return std::optional<double>{};
  double x = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), x, std::chars_format::fixed);
  if (ec != std::errc{} || p != v->data() + v->size() || !std::isfinite(x) || x < -limit || x > limit) {
    return make_error(errc::bad_request, std::string(name) + " must be a decimal number from " +
                                             std::to_string(static_cast<int>(-limit)) + " to " +
                                             std::to_string(static_cast<int>(limit)));
  }
  return std::optional<double>{x};
}

}  // namespace

service::service(registry& reg, const discovery_config& cfg, ip_locator locate)
    : reg_(reg), cfg_(cfg), locate_(std::move(locate)) {
  (void)metrics();  // registered at start, so /metrics shows zeros before the first request
}

result<client_location> service::parse_location(const net::http_request& req) {
  client_location c;
  auto lat = coordinate(req, "lat", 90);
  if (!lat) return std::move(lat).err();
  auto lon = coordinate(req, "lon", 180);
  if (!lon) return std::move(lon).err();
  if (lat->has_value() != lon->has_value()) {
    return make_error(errc::bad_request, "lat and lon must be given together");
  }
  c.lat = *lat;
  c.lon = *lon;
  if (auto region = query(req, "region")) {
    if (!valid_region(*region)) return make_error(errc::bad_request, "region must match [a-z0-9_-]{1,32}");
    c.region = std::string(*region);
  }
  return c;
}

result<std::vector<ranked_server>> service::find(const client_location& client) {
  auto servers = reg_.healthy();
  if (!servers) return std::move(servers).err();
  metrics().healthy.set(static_cast<double>(servers->size()));
  return rank(*servers, client, cfg_);
}

std::string discovery_body(const std::vector<ranked_server>& ranked) {
  json::array a;
  a.reserve(ranked.size());
  for (const auto& r : ranked) {
    json::object o;
    o["id"] = r.server.id;
    o["url"] = r.server.url;
    o["region"] = r.server.region;
    // 0.1 km is far below what either side's coordinates are good for.
    o["distance_km"] = r.distance_km ? json::value(std::round(*r.distance_km * 10) / 10) : json::value(nullptr);
    o["load"] = r.server.load;
    a.push_back(std::move(o));
  }
  return chatd::to_json(json::object{{"servers", std::move(a)}});
}

net::http_response service::handle_discovery(const net::http_request& req) {
  auto client = parse_location(req);
  if (!client) return net::error_reply(client.err());
  if (!client->lat && client->region.empty() && locate_) {
    if (auto guessed = locate_(req.remote_addr)) client = std::move(*guessed);
  }
  auto ranked = find(*client);
  if (!ranked) {
    spdlog::warn("discovery: cannot read the registry: {}", ranked.err().message);
    return net::error_reply(ranked.err());
  }
  metrics().requests.inc();
  net::http_response r;
  r.body = discovery_body(*ranked);
  // Health changes within seconds; a cached answer would send clients to
  // servers that are gone.
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

namespace {

// rpc::verify, counting refusals.
std::optional<net::http_response> refused(const net::http_request& req, const std::string& secret) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  auto s = rpc::verify(secret, req, now.count(), &rpc::process_guard());
  if (s) return std::nullopt;
  metrics().bad_signatures.inc();
  return net::error_reply(s.err());
}

}  // namespace

net::http_response service::internal_heartbeat(const net::http_request& req, const std::string& secret) {
  if (auto r = refused(req, secret)) return std::move(*r);
  auto hb = wire::parse_heartbeat(req.body);
  if (!hb) return net::error_reply(hb.err());
  if (auto s = reg_.heartbeat(hb->server, hb->ttl); !s) return net::error_reply(s.err());
  metrics().heartbeats.inc();
  return net::no_content();
}

net::http_response service::internal_remove(const net::http_request& req, const std::string& secret) {
  if (auto r = refused(req, secret)) return std::move(*r);
  auto id = wire::parse_remove(req.body);
  if (!id) return net::error_reply(id.err());
  if (auto s = reg_.remove(*id); !s) return net::error_reply(s.err());
  spdlog::info("discovery: chat server {} signed off", *id);
  return net::no_content();
}

net::http_response service::internal_servers(const net::http_request& req, const std::string& secret) {
  if (auto r = refused(req, secret)) return std::move(*r);
  auto servers = reg_.healthy();
  if (!servers) return net::error_reply(servers.err());
  net::http_response r;
  r.body = wire::servers_body(*servers);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

void service::add_internal_routes(net::router& r, std::string secret) {
  if (secret.empty()) throw std::invalid_argument("the internal discovery secret must not be empty");
  auto s = std::make_shared<const std::string>(std::move(secret));
  r.add("POST", std::string(wire::heartbeat_path),
        [this, s](net::http_request& req) { return internal_heartbeat(req, *s); });
  r.add("POST", std::string(wire::remove_path), [this, s](net::http_request& req) { return internal_remove(req, *s); });
  r.add("GET", std::string(wire::servers_path),
        [this, s](net::http_request& req) { return internal_servers(req, *s); });
}

}  // namespace chatd::discovery
