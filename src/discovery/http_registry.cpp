#include "discovery/http_registry.h"

#include <stdexcept>

#include "common/json.h"
#include "common/metrics.h"
#include "discovery/wire.h"

namespace chatd::discovery {

namespace {

std::string checked_url(std::string url) {
  if (url.rfind("http://", 0) != 0 || url.size() <= 7) {
    throw std::invalid_argument("discovery url must be http://host:port, got '" + url + "'");
  }
  return url;
}

std::string checked_secret(std::string secret) {
  if (secret.empty()) throw std::invalid_argument("the internal discovery secret must not be empty");
  return secret;
}

}  // namespace

http_registry::http_registry(std::string base_url, std::string secret, rpc::client_options o)
    : client_("discovery", checked_url(std::move(base_url)), checked_secret(std::move(secret)), default_registry(), o) {
}

result<std::string> http_registry::call(std::string_view method, std::string_view path, std::string body) {
  auto r = client_.call(method, path, body);
  if (r) return r;
  // An invalid heartbeat stays bad_request, as from the other registries;
  // anything else means the discovery service cannot help now.
  if (r.err().code == errc::bad_request) return std::move(r).err();
  return make_error(errc::unavailable, "discovery service " + client_.base_url() + ": " +
                                           std::string(code_name(r.err().code)) + ": " + r.err().message);
}

status http_registry::heartbeat(const server_info& s, std::chrono::milliseconds ttl) {
  // Checked here too so that an invalid heartbeat costs no round trip and
  // reads the same as from the other registries.
  if (auto v = validate_heartbeat(s, ttl); !v) return v;
  auto r = call("POST", wire::heartbeat_path, wire::heartbeat_body(s, ttl));
  if (!r) return std::move(r).err();
  return {};
}

status http_registry::remove(const std::string& id) {
  auto r = call("POST", wire::remove_path, wire::remove_body(id));
  if (!r) return std::move(r).err();
  return {};
}

result<std::vector<server_info>> http_registry::healthy() {
  auto r = call("GET", wire::servers_path, "");
  if (!r) return std::move(r).err();
  auto servers = wire::parse_servers(*r);
  if (!servers) {
    return make_error(errc::unavailable, "discovery service " + client_.base_url() +
                                             " sent an invalid server list: " + servers.err().message);
  }
  return servers;
}

}  // namespace chatd::discovery
