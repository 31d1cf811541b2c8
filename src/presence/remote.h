// The presence service across processes (ADR 007): chat servers report their
// connections to the `presence` role over signed internal HTTP, and the main
// chat service and the gateway ask it for a participant's state.
//
//   POST /v1/internal/presence/report
//        {"server":"<id>","snapshot":bool,
//         "connections":[{"id":"<conn>","participant_id":"<id>","state":"active"|"inactive"|"closed"}]}
//        -> 204. snapshot=true: these are all of the server's open
//        connections (renews its lease; any other connection of that server
//        is closed). snapshot=false: changes, in the order they happened.
//   GET  /v1/internal/presence/{id}
//        -> 200 {"participant_id","state","last_seen_at"}
//   POST /v1/internal/presence/query {"participant_ids":["<id>",...]} (1..1000)
//        -> 200 {"presence":[{"participant_id","state","last_seen_at"},...]} in that order
//   POST /v1/internal/presence/routes {"participant_ids":[...]} (1..1000)
//        -> 200 {"routes":[["<server>",...],...],"complete":bool}: the route
//        table (ADR 009), the chat servers holding each one's connections.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "net/http.h"
#include "presence/presence.h"

namespace chatd {
class metrics_registry;
}

namespace chatd::presence {

inline constexpr std::string_view report_path = "/v1/internal/presence/report";
inline constexpr std::string_view state_path_prefix = "/v1/internal/presence/";
inline constexpr std::string_view query_path = "/v1/internal/presence/query";
inline constexpr std::string_view routes_path = "/v1/internal/presence/routes";
inline constexpr std::size_t max_query_ids = 1000;

// A report's connections; `closed` is carried as its own flag.
struct reported_connection {
  connection_report conn;
  bool closed = false;
};
struct report {
  std::string server;
  bool snapshot = false;
  std::vector<reported_connection> connections;
};
std::string report_body(const report& r);
result<report> parse_report(std::string_view body);  // strict: bad_request otherwise

// The internal routes of the presence role, on `target`, which must outlive
// the router.
void add_internal_routes(net::router& routes, service& target, std::string secret);

// presence_port for processes that do not run the presence service.
// connection_state/connection_closed never block: they are queued and sent in
// order by one thread, and refresh() sends a snapshot of every connection
// reported through this client, which also repairs anything lost while the
// presence service was unreachable. get() asks the service and falls back to
// the stored row when it does not answer, so a presence outage degrades to
// slightly stale answers rather than errors.
class client : public presence_port {
 public:
  client(std::string base_url, std::string secret, store::chat_store& db, metrics_registry& metrics);
  ~client() override;
  void start();
  void stop();

  void connection_state(const std::string& server_id, std::uint64_t connection_id, std::uint64_t participant_id,
                        presence_state state) override;
  void connection_closed(const std::string& server_id, std::uint64_t connection_id,
                         std::uint64_t participant_id) override;
  void refresh(const std::string& server_id) override;
  result<store::presence> get(std::uint64_t participant_id) override;
  result<std::vector<store::presence>> get_many(const std::vector<std::uint64_t>& participant_ids) override;
  // No fallback: without the service there is no route table.
  result<routes> routes_of(const std::vector<std::uint64_t>& participant_ids) override;
  void after_reported(std::function<void()> done) override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace chatd::presence
