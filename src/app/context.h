// What the components of one process share, created on first use so that a
// role opens only what it needs (a presence process never opens the queue's
// consumer side, a discovery process never builds the chat services), and
// the ports that connect the components: the in-process service when this
// process runs it, otherwise a client of the role that does.
#pragma once

#include <memory>
#include <string>

#include "app/queue_publisher.h"
#include "common/config.h"

namespace chatd {
class id_generator;
class metrics_registry;
struct participant_limits;
class worker_pool;
namespace net {
class io_pool;
}
namespace store {
class chat_store;
class node_lease;
}  // namespace store
namespace queue {
class queue;
class producer;
}  // namespace queue
namespace participants {
class service;
}
namespace chat {
class conversation_service;
class message_service;
class publisher;
}  // namespace chat
namespace presence {
class presence_port;
}
namespace notification {
class notifier;
}
namespace discovery {
class registry;
}
}  // namespace chatd

namespace chatd::app {

class dead_letters;

class context {
 public:
  context(const config& cfg, std::string role);
  ~context();
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  const config& cfg() const { return cfg_; }
  const std::string& role() const { return role_; }
  // Every role in this one process (`chatd all`).
  bool all_in_one() const { return role_ == "all"; }

  metrics_registry& metrics();
  store::chat_store& db();
  // Snowflake ids: node.id when set, else a node number leased from the chat
  // database (the process stops if it loses the lease).
  id_generator& ids();
  // auth.jwt_secret (the token key), else generated once in the data dir.
  const std::string& secret();
  // auth.internal_secret; throws (a start-up error) when it is not set.
  const std::string& internal_secret();
  participants::service& participants();
  chat::conversation_service& conversations();
  chat::message_service& messages();
  queue::queue& queue();
  // This process's one producer (the publisher writes through it too).
  queue::producer& producer();
  chat::publisher& publisher();
  // <prefix>dead-letter (ADR 013), created on first use.
  class dead_letters& dead_letters();
  // queue.delivery resolved: chat servers read their own delivery topics
  // fed by main-chat's router (ADR 009) rather than every record.
  bool routed_delivery() const;
  const topics& topic_names() const { return topics_; }
  net::io_pool& io();
  worker_pool& workers();
  // One bucket per participant for every write path of this process.
  participant_limits& limits();

  // Ports. A component that runs the service provides it; anyone asking
  // later gets it, or a client of the remote role (its url must be set).
  void provide(presence::presence_port& p) { presence_ = &p; }
  void provide(notification::notifier& n) { notifier_ = &n; }
  void provide(discovery::registry& r) { registry_ = &r; }
  presence::presence_port& presence();
  notification::notifier& notifier();
  discovery::registry& registry();

  // Starts what was created (pools, remote clients); stop() flushes the
  // producer and stops them, after every component has stopped.
  void start();
  void stop();

  // Asks the process to shut down (as SIGTERM does).
  static void request_shutdown();

 private:
  struct parts;
  const config& cfg_;
  std::string role_;
  topics topics_;
  std::unique_ptr<parts> p_;
  presence::presence_port* presence_ = nullptr;
  notification::notifier* notifier_ = nullptr;
  discovery::registry* registry_ = nullptr;
};

// Prints `listening <role> <host:port>` (the contract: on stdout, one line per
// listener, before /healthz answers there).
void announce(const std::string& role, const std::string& addr);

}  // namespace chatd::app
