#include "app/context.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "app/dead_letters.h"
#include "app/queue_publisher.h"
#include "auth/hmac.h"
#include "auth/password.h"
#include "auth/token.h"
#include "chat/conversations.h"
#include "chat/messages.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rate_limiter.h"
#include "common/worker_pool.h"
#include "discovery/http_registry.h"
#include "discovery/store_registry.h"
#include "net/server.h"
#include "notification/internal_api.h"
#include "participants/service.h"
#include "presence/remote.h"
#include "queue/embedded_log.h"
#include "queue/kafka_queue.h"
#include "store/node_lease.h"
#include "store/rocksdb_store.h"
#include "store/scylla_store.h"

namespace chatd::app {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// auth.jwt_secret, else a secret generated once and kept in the data dir so
// tokens survive restarts.
std::string load_secret(const config& cfg) {
  if (!cfg.auth.jwt_secret.empty()) return cfg.auth.jwt_secret;
  fs::path dir(cfg.storage.path);
  fs::create_directories(dir);
  fs::path file = dir / "jwt_secret";
  if (std::ifstream in(file); in) {
    std::string s;
    std::getline(in, s);
    if (s.size() >= 32) return s;
  }
  std::string s = auth::random_secret(32);
  fs::path tmp = dir / "jwt_secret.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << s << "\n";
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  ::chmod(tmp.c_str(), 0600);
  fs::rename(tmp, file);
  return s;
}

std::unique_ptr<store::chat_store> open_store(const config& cfg) {
  if (cfg.storage.backend == "rocksdb") {
    fs::create_directories(cfg.storage.path);
    store::rocksdb_options o;
    o.path = (fs::path(cfg.storage.path) / "store").string();
    o.sync_writes = cfg.storage.sync_writes;
    return store::open_rocksdb_store(o);
  }
  if (cfg.storage.backend == "scylla") {
    store::scylla_options o;
    o.hosts = cfg.storage.hosts;
    o.keyspace = cfg.storage.keyspace;
    o.consistency = cfg.storage.consistency;
    o.local_dc = cfg.storage.local_dc;
    o.replication_factor = cfg.storage.replication_factor;
    return store::open_scylla_store(o);
  }
  throw std::runtime_error("storage.backend '" + cfg.storage.backend + "' is not available in this build");
}

std::unique_ptr<queue::queue> open_queue(const config& cfg) {
  if (cfg.queue.backend == "embedded") {
    queue::embedded_log_options o;
    o.path = (fs::path(cfg.storage.path) / "queue").string();
    o.partitions = static_cast<std::int32_t>(cfg.queue.partitions);
    o.fsync = cfg.queue.fsync;
    return queue::open_embedded_log(o);
  }
  if (cfg.queue.backend == "kafka") {
    queue::kafka_queue_options o;
    o.brokers = cfg.queue.brokers;
    o.replication_factor = static_cast<std::int16_t>(cfg.queue.replication_factor);
    // Groups are namespaced like topics, so deployments sharing a cluster
    // never join each other's "main-chat".
    o.group_prefix = cfg.queue.topic_prefix;
    o.settings = cfg.queue.kafka;
    return queue::open_kafka_queue(o);
  }
  throw std::runtime_error("queue.backend '" + cfg.queue.backend + "' is not available in this build");
}

}  // namespace

struct context::parts {
  std::unique_ptr<store::chat_store> db;
  std::unique_ptr<store::node_lease> lease;
  std::unique_ptr<id_generator> ids;
  std::optional<std::string> secret;
  std::unique_ptr<auth::token_signer> tokens;
  std::unique_ptr<participants::service> participants;
  std::unique_ptr<chat::conversation_service> conversations;
  std::unique_ptr<chat::message_service> messages;
  std::unique_ptr<queue::queue> q;
  // The producer is declared last of the two so that it goes first: its
  // destructor may still complete sends through the publisher.
  std::unique_ptr<queue_publisher> publisher;
  std::unique_ptr<queue::producer> producer;
  std::unique_ptr<app::dead_letters> dead_letters;  // before the producer it writes through
  std::unique_ptr<net::io_pool> io;
  std::unique_ptr<worker_pool> workers;
  std::unique_ptr<participant_limits> limits;
  std::unique_ptr<presence::client> presence;
  std::unique_ptr<notification::http_notifier> notifier;
  std::unique_ptr<discovery::registry> registry;
  bool started = false;
};

context::context(const config& cfg, std::string role)
    : cfg_(cfg),
      role_(std::move(role)),
      topics_{cfg.queue.topic_prefix + "messages", cfg.queue.topic_prefix + "events",
              cfg.queue.topic_prefix + "dead-letter"},
      p_(std::make_unique<parts>()) {}

context::~context() { stop(); }

metrics_registry& context::metrics() { return default_registry(); }

store::chat_store& context::db() {
  if (!p_->db) p_->db = open_store(cfg_);
  return *p_->db;
}

id_generator& context::ids() {
  if (p_->ids) return *p_->ids;
  std::uint32_t node = cfg_.node.id;
  if (node == 0) {
    // Separate processes must never share a node number: lease one.
    p_->lease = std::make_unique<store::node_lease>(
        db(), store::make_lease_owner(role_), store::node_lease::default_ttl, [this] {
          spdlog::critical("lost the lease of snowflake node {}; no more ids, shutting down", p_->lease->node());
          if (p_->ids) p_->ids->disable();
          request_shutdown();
        });
    p_->lease->start();
    node = p_->lease->node();
    spdlog::info("leased snowflake node {}", node);
  }
  p_->ids = std::make_unique<id_generator>(node);
  return *p_->ids;
}

const std::string& context::internal_secret() {
  if (cfg_.auth.internal_secret.empty()) {
    throw std::runtime_error("chatd " + role_ +
                             " needs auth.internal_secret (CHATD_AUTH_INTERNAL_SECRET, at least 32 bytes, the same in "
                             "every process and not the token key): the roles sign their calls to each other with it");
  }
  return cfg_.auth.internal_secret;
}

const std::string& context::secret() {
  if (!p_->secret) p_->secret = load_secret(cfg_);
  return *p_->secret;
}

participants::service& context::participants() {
  if (!p_->participants) {
    p_->tokens = std::make_unique<auth::token_signer>(secret());
    auto cost = cfg_.auth.password_cost == "fast" ? auth::fast_password_params() : auth::default_password_params();
    if (cfg_.auth.password_cost == "fast") {
      // Loud on purpose: a stolen database would give up its passwords in
      // minutes. The test suites set it; no deployment should.
      spdlog::warn(
          "auth.password_cost=fast: passwords are hashed with test-only parameters (Argon2id at its minimum); "
          "never use this outside tests");
    }
    p_->participants = std::make_unique<participants::service>(db(), *p_->tokens, cost, ids(), cfg_.auth.token_ttl_s);
  }
  return *p_->participants;
}

chat::conversation_service& context::conversations() {
  if (!p_->conversations) p_->conversations = std::make_unique<chat::conversation_service>(db(), ids());
  return *p_->conversations;
}

chat::message_service& context::messages() {
  if (!p_->messages) {
    p_->messages = std::make_unique<chat::message_service>(db(), ids(), conversations(), publisher());
  }
  return *p_->messages;
}

queue::queue& context::queue() {
  if (!p_->q) {
    p_->q = open_queue(cfg_);
    for (const auto& topic : {topics_.messages, topics_.events}) {
      if (auto s = p_->q->ensure_topic(topic, static_cast<std::int32_t>(cfg_.queue.partitions)); !s) {
        throw std::runtime_error("cannot create topic " + topic + ": " + s.err().message);
      }
    }
  }
  return *p_->q;
}

queue::producer& context::producer() {
  if (!p_->producer) p_->producer = queue().make_producer();
  return *p_->producer;
}

app::dead_letters& context::dead_letters() {
  if (!p_->dead_letters) {
    auto d = std::make_unique<app::dead_letters>(queue(), producer(), topics_.dead_letter, metrics());
    d->ensure();
    p_->dead_letters = std::move(d);
  }
  return *p_->dead_letters;
}

chat::publisher& context::publisher() {
  if (!p_->publisher) p_->publisher = std::make_unique<queue_publisher>(producer(), topics_, metrics());
  return *p_->publisher;
}

bool context::routed_delivery() const {
  const auto& mode = cfg_.queue.delivery;
  return mode == "routed" || (mode == "auto" && !all_in_one());
}

net::io_pool& context::io() {
  if (!p_->io) {
    p_->io = std::make_unique<net::io_pool>(cfg_.node.io_threads ? cfg_.node.io_threads : cores());
    // Components may bind their listeners in start(), after the context started.
    if (p_->started) p_->io->start();
  }
  return *p_->io;
}

worker_pool& context::workers() {
  if (!p_->workers) {
    p_->workers =
        std::make_unique<worker_pool>(cfg_.node.worker_threads ? cfg_.node.worker_threads : 4 * cores(), "worker");
  }
  return *p_->workers;
}

participant_limits& context::limits() {
  if (!p_->limits) p_->limits = std::make_unique<participant_limits>(cfg_.rate_limits);
  return *p_->limits;
}

presence::presence_port& context::presence() {
  if (presence_) return *presence_;
  if (cfg_.presence.url.empty()) {
    throw std::runtime_error("chatd " + role_ + " needs presence.url (the presence role's http://host:port)");
  }
  p_->presence = std::make_unique<presence::client>(cfg_.presence.url, internal_secret(), db(), metrics());
  if (p_->started) p_->presence->start();
  presence_ = p_->presence.get();
  return *presence_;
}

notification::notifier& context::notifier() {
  if (notifier_) return *notifier_;
  if (cfg_.notifications.url.empty()) {
    throw std::runtime_error("chatd " + role_ + " needs notifications.url (the notification role's http://host:port)");
  }
  p_->notifier = std::make_unique<notification::http_notifier>(cfg_.notifications.url, internal_secret(), metrics());
  notifier_ = p_->notifier.get();
  return *notifier_;
}

discovery::registry& context::registry() {
  if (registry_) return *registry_;
  // The discovery role over HTTP, or the registry rows in the chat database
  // that the discovery role also reads.
  if (!cfg_.discovery.url.empty()) {
    p_->registry = std::make_unique<discovery::http_registry>(cfg_.discovery.url, internal_secret());
  } else {
    p_->registry = std::make_unique<discovery::store_registry>(db());
  }
  registry_ = p_->registry.get();
  return *registry_;
}

void context::start() {
  p_->started = true;
  if (p_->io) p_->io->start();
  if (p_->presence) p_->presence->start();
}

void context::stop() {
  if (!p_) return;
  if (p_->workers) p_->workers->stop();
  if (p_->presence) p_->presence->stop();
  if (p_->producer) (void)p_->producer->flush(5s);
  if (p_->io) p_->io->stop();
  if (p_->lease) p_->lease->stop();
}

void context::request_shutdown() { ::kill(::getpid(), SIGTERM); }

void announce(const std::string& role, const std::string& addr) {
  std::printf("listening %s %s\n", role.c_str(), addr.c_str());
  std::fflush(stdout);
}

}  // namespace chatd::app
