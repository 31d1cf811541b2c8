#include "discovery/http_registry.h"

#include <stdexcept>

#include "common/json.h"
#include "discovery/wire.h"
#include "net/client.h"

namespace chatd::discovery {

namespace {

// The contract's error body {"error":{"code","message"}}; the raw (bounded)
// body when it is not one.
std::string error_message(const std::string& body) {
  if (auto o = parse_json_object(body)) {
    if (auto it = o->find("error"); it != o->end() && it->value().is_object()) {
      const auto& e = it->value().get_object();
      if (auto m = e.find("message"); m != e.end() && m->value().is_string()) {
        return std::string(m->value().get_string());
      }
    }
  }
  return utf8_prefix(valid_utf8(body) ? body : std::string("(binary)"), 200);
}

}  // namespace

http_registry::http_registry(std::string base_url, std::string secret, std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), secret_(std::move(secret)), timeout_(timeout) {
  if (base_url_.rfind("http://", 0) != 0 || base_url_.size() <= 7) {
    throw std::invalid_argument("discovery url must be http://host:port, got '" + base_url_ + "'");
  }
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  if (secret_.empty()) throw std::invalid_argument("the internal discovery secret must not be empty");
}

result<std::string> http_registry::call(std::string_view method, std::string_view path, std::string body) {
  net::header_list headers{{std::string(wire::signature_header), wire::sign(secret_, body)}};
  if (!body.empty()) headers.emplace_back("content-type", "application/json");
  std::string url = base_url_ + std::string(path);
  auto r = net::http_request_sync(method, url, body, headers, timeout_);
  if (!r) return make_error(errc::unavailable, "discovery service " + base_url_ + ": " + r.err().message);
  if (r->status >= 200 && r->status < 300) return std::move(r->body);
  std::string why = error_message(r->body);
  if (r->status == 400) return make_error(errc::bad_request, why);
  return make_error(errc::unavailable,
                    "discovery service " + base_url_ + " answered " + std::to_string(r->status) + ": " + why);
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
    return make_error(errc::unavailable,
                      "discovery service " + base_url_ + " sent an invalid server list: " + servers.err().message);
  }
  return servers;
}

}  // namespace chatd::discovery
