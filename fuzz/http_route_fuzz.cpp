// What the HTTP server does with a request target before a handler runs
// (net/http.h, net/http_internal.h): parse_target splits and percent-decodes
// it, the router matches it against the API's route patterns. Also the other
// string parsers of src/net that take outside text.
//
// Input: "<METHOD> <target>" on the first line; the rest is fed to parse_url,
// split_host_port and the JSON string escaper.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/json.h"
#include "net/http.h"
#include "net/http_internal.h"

namespace {

// The route shapes the gateway and the chat server register (src/gateway,
// src/chatserver, src/discovery, src/presence, src/notification).
const chatd::net::router& routes() {
  static const chatd::net::router r = [] {
    chatd::net::router r;
    auto ok = [](chatd::net::http_request&) { return chatd::net::http_response{}; };
    for (const char* p : {"/healthz", "/readyz", "/metrics", "/v1/me", "/v1/participants", "/v1/participants/{id}",
                          "/v1/conversations", "/v1/conversations/{id}", "/v1/conversations/{id}/messages",
                          "/v1/presence/{id}", "/v1/discovery", "/v1/notifications"}) {
      r.add("GET", p, ok);
    }
    for (const char* p : {"/v1/users", "/v1/shops", "/v1/admins", "/v1/auth/login", "/v1/participants/{id}/ban",
                          "/v1/participants/{id}/unban", "/v1/conversations", "/v1/conversations/{id}/members",
                          "/v1/conversations/{id}/read", "/v1/conversations/{id}/messages"}) {
      r.add("POST", p, ok);
    }
    r.add("PATCH", "/v1/messages/{id}", ok);
    r.add("DELETE", "/v1/messages/{id}", ok);
    r.add("GET", "/*", ok);
    r.add("GET", "/static/*", ok);
    r.add_ws("/v1/ws",
             [](chatd::net::http_request&) -> chatd::net::ws_upgrade_result { return chatd::net::http_response{}; });
    return r;
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chatd::net;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view line = in.substr(0, in.find('\n'));
  std::string_view rest = line.size() < in.size() ? in.substr(line.size() + 1) : std::string_view();

  http_request req;
  auto space = line.find(' ');
  req.method = std::string(line.substr(0, space));
  req.target = space == std::string_view::npos ? std::string() : std::string(line.substr(space + 1));
  if (!req.target.empty()) detail::parse_target(req.target, req);
  for (bool ws : {false, true}) {
    auto m = routes().find(req, ws);
    // A match names a pattern, and every "{param}" of it got a value.
    if ((m.handler || m.async || m.ws) && m.pattern.empty()) __builtin_trap();
    for (const auto& [k, v] : req.params) {
      if (v.empty()) __builtin_trap();
    }
  }

  detail::parsed_url u;
  (void)detail::parse_url(rest, u);
  try {
    (void)split_host_port(rest);
  } catch (const std::invalid_argument&) {
  }
  // The escaper promises valid UTF-8 whatever it is given.
  std::string escaped;
  detail::append_json_escaped(escaped, rest);
  if (!chatd::valid_utf8(escaped)) __builtin_trap();
  auto body = error_response(400, "bad_request", rest).body;
  if (!chatd::parse_json_object(body)) __builtin_trap();
  return 0;
}
