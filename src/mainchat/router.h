// Routed delivery (ADR 009): the router reads <prefix>messages and
// <prefix>events in consumer group "router" and copies each record to the
// delivery topic of every chat server that holds a connection of one of its
// recipients, with those recipients attached. Chat servers read only their
// own delivery topic, so with N chat servers each does about 1/N of the work
// instead of all of it.
//
// Where the route table cannot answer (presence down, or just restarted and
// not yet told every connection), a record goes to every chat server known
// alive, with every recipient: slower, never lost.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace chatd {
class metrics_registry;
}
namespace chatd::store {
class chat_store;
}
namespace chatd::presence {
class presence_port;
}
namespace chatd::queue {
class producer;
struct record;
}  // namespace chatd::queue

namespace chatd::mainchat {

// <prefix>deliver.<server id>
std::string delivery_topic(std::string_view prefix, std::string_view server_id);
// A chat server id that can name its delivery topic: 1-200 of [a-zA-Z0-9._-].
bool valid_route_name(std::string_view server_id);

struct router_deps {
  store::chat_store& db;
  presence::presence_port& presence;
  queue::producer& producer;
  metrics_registry& metrics;
  // The chat servers believed alive (discovery's list): the fallback targets.
  std::function<std::vector<std::string>()> live_servers;
};

class router {
 public:
  router(router_deps d, std::string topic_prefix);
  ~router();
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  // Routes a batch of records; returns once every copy is durably in its
  // delivery topic, or errc::unavailable (the batch may be routed again:
  // chat servers and clients drop what they already have).
  status route(const std::vector<queue::record>& batch);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace chatd::mainchat
