// The discovery registry port: which chat servers are alive, where they are
// and how busy. Chat servers heartbeat into it; the discovery service reads
// the healthy ones and ranks them for a client (ranking.h).
//
// Implementations, all checked by one conformance suite
// (tests/discovery/registry_conformance_test.cpp):
//   memory_registry  in-process (chatd all)
//   store_registry   rows with an expiry in the chat database (distributed layout)
//   http_registry    a client of a remote discovery service's internal endpoints
// All calls are thread-safe and may block (store, network): call them from
// worker threads, never from a network thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace chatd::discovery {

struct server_info {
  std::string id;                  // opaque, 1..128 bytes of printable UTF-8
  std::string url;                 // the WebSocket URL clients connect to: ws://... or wss://...
  std::string region;              // [a-z0-9_-]{1,32}
  std::optional<double> lat, lon;  // both or neither
  double load = 0;                 // 0 (idle) .. 1 (full)

  friend bool operator==(const server_info&, const server_info&) = default;
};

class registry {
 public:
  virtual ~registry() = default;
  // Registers the server or refreshes its entry (url, region, coordinates and
  // load are replaced); the entry expires `ttl` after this heartbeat.
  // bad_request when validate_heartbeat() refuses the input.
  virtual status heartbeat(const server_info& s, std::chrono::milliseconds ttl) = 0;
  // Forgets the server at once (clean shutdown). Removing an unknown id is ok.
  virtual status remove(const std::string& id) = 0;
  // The unexpired entries, ordered by id.
  virtual result<std::vector<server_info>> healthy() = 0;
};

// The longest ttl a heartbeat may ask for: an entry must not outlive a dead
// server for long.
inline constexpr std::chrono::milliseconds max_ttl{24LL * 3600 * 1000};

// Shared input rules of heartbeat(), so every implementation refuses the same
// things with the same code (bad_request) and message.
status validate_server_info(const server_info& s);
status validate_heartbeat(const server_info& s, std::chrono::milliseconds ttl);
// [a-z0-9_-]{1,32}
bool valid_region(std::string_view region);

}  // namespace chatd::discovery
