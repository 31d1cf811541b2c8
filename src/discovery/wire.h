// JSON shapes of the internal discovery endpoints, shared by the server side
// (service.cpp) and the client (http_registry.cpp) so they cannot drift.
//
//   POST /v1/internal/discovery/heartbeat  {"id","url","region","lat"?,"lon"?,"load","ttl_ms"} -> 204
//   POST /v1/internal/discovery/remove     {"id"}                                             -> 204
//   GET  /v1/internal/discovery/servers    -> 200 {"servers":[{"id","url","region","lat","lon","load"}]}
//
// Every request is signed as all internal calls are (rpc/internal.h).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "discovery/registry.h"

namespace chatd::discovery::wire {

inline constexpr std::string_view heartbeat_path = "/v1/internal/discovery/heartbeat";
inline constexpr std::string_view remove_path = "/v1/internal/discovery/remove";
inline constexpr std::string_view servers_path = "/v1/internal/discovery/servers";
// lat/lon as numbers or null.
json::object to_json(const server_info& s);

std::string heartbeat_body(const server_info& s, std::chrono::milliseconds ttl);
struct heartbeat_request {
  server_info server;
  std::chrono::milliseconds ttl{0};
};
// Strict: types, unknown fields, and validate_heartbeat(); bad_request otherwise.
result<heartbeat_request> parse_heartbeat(std::string_view body);

std::string remove_body(const std::string& id);
result<std::string> parse_remove(std::string_view body);

std::string servers_body(const std::vector<server_info>& servers);
// Strict as well: a discovery service that answers nonsense is treated like
// one that does not answer.
result<std::vector<server_info>> parse_servers(std::string_view body);

}  // namespace chatd::discovery::wire
