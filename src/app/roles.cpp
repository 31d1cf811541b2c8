#include "app/roles.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "app/consume_loop.h"
#include "app/queue_publisher.h"
#include "auth/hmac.h"
#include "auth/password.h"
#include "auth/token.h"
#include "chat/conversations.h"
#include "chat/events.h"
#include "chat/messages.h"
#include "chatserver/chat_server.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rate_limiter.h"
#include "common/worker_pool.h"
#include "discovery/heartbeat_loop.h"
#include "discovery/http_registry.h"
#include "discovery/memory_registry.h"
#include "discovery/service.h"
#include "discovery/store_registry.h"
#include "gateway/gateway.h"
#include "mainchat/main_chat.h"
#include "net/reply.h"
#include "net/server.h"
#include "notification/internal_api.h"
#include "notification/service.h"
#include "participants/service.h"
#include "participants/views.h"
#include "presence/presence.h"
#include "queue/embedded_log.h"
#include "queue/kafka_queue.h"
#include "store/rocksdb_store.h"
#include "store/scylla_store.h"

namespace chatd::app {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void announce(const std::string& role, const std::string& addr) {
  // The contract: one line per listener on stdout, before /healthz answers.
  std::printf("listening %s %s\n", role.c_str(), addr.c_str());
  std::fflush(stdout);
}

// auth.jwt_secret, else a secret generated once and kept in the data dir so
// tokens survive restarts.
std::string jwt_secret(const config& cfg) {
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

std::size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// The parts every role that serves participants needs.
struct core {
  explicit core(const config& c)
      : cfg(c),
        db(open_store(c)),
        ids(c.node.id),
        secret(jwt_secret(c)),
        tokens(secret),
        cost(c.auth.password_cost == "fast" ? auth::fast_password_params() : auth::default_password_params()),
        participants(*db, tokens, cost, ids, c.auth.token_ttl_s),
        conversations(*db, ids) {}

  const config& cfg;
  std::unique_ptr<store::chat_store> db;
  id_generator ids;
  std::string secret;
  auth::token_signer tokens;
  auth::password_params cost;
  participants::service participants;
  chat::conversation_service conversations;
};

void bootstrap_admin(core& c) {
  const auto& a = c.cfg.admin;
  if (a.username.empty() && a.password.empty()) return;
  if (a.username.empty() || a.password.empty()) {
    throw std::runtime_error("admin.username and admin.password must be set together");
  }
  if (c.participants.ensure_admin(a.username, a.password, "Administrator")) {
    spdlog::info("created admin '{}'", a.username);
  }
}

sigset_t block_termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Runs a function every `period` on its own thread until stopped.
class ticker {
 public:
  ticker(std::chrono::milliseconds period, std::function<void()> fn) : period_(period), fn_(std::move(fn)) {
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!stop_) {
        cv_.wait_for(lock, period_, [this] { return stop_; });
        if (stop_) break;
        lock.unlock();
        fn_();
        lock.lock();
      }
    });
  }
  ~ticker() { stop(); }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::chrono::milliseconds period_;
  std::function<void()> fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

net::server_options gateway_options(const config& cfg) {
  net::server_options o;
  o.listen = cfg.gateway.listen;
  o.max_body_bytes = cfg.gateway.max_body_bytes;
  o.max_header_bytes = cfg.gateway.max_header_bytes;
  o.max_connections = cfg.gateway.max_connections;
  o.request_timeout = std::chrono::milliseconds(cfg.gateway.request_timeout_ms);
  return o;
}

void add_health_routes(net::router& r, metrics_registry& metrics, std::function<std::string()> readiness) {
  r.add("GET", "/healthz", [](net::http_request&) { return net::json_reply(200, json::object{{"status", "ok"}}); });
  r.add("GET", "/readyz", [readiness](net::http_request&) {
    if (auto why = readiness ? readiness() : std::string(); !why.empty()) {
      return net::error_reply(errc::unavailable, why);
    }
    return net::json_reply(200, json::object{{"status", "ready"}});
  });
  r.add("GET", "/metrics", [&metrics](net::http_request&) {
    net::http_response resp;
    resp.content_type = "text/plain; version=0.0.4";
    resp.body = metrics.render();
    return resp;
  });
}

std::string random_suffix() {
  std::random_device rd;
  return std::to_string(rd() % 1000000);
}

// Which services this process runs. `all` runs every one of them in-process
// and wires them directly; a single role runs its own and reaches the others
// through their ports' remote implementations.
struct plan {
  bool gateway = false, chat_server = false, main_chat = false, presence = false, notification = false,
       discovery = false;
};

plan plan_for(const std::string& role) {
  plan p;
  if (role == "all") return plan{true, true, true, true, true, true};
  if (role == "gateway") p.gateway = true;
  if (role == "chat-server") p.chat_server = true;
  if (role == "main-chat") p.main_chat = true;
  if (role == "presence") p.presence = true;
  if (role == "notification") p.notification = true;
  if (role == "discovery") p.discovery = true;
  return p;
}

int run_process(const config& cfg, const std::string& role) {
  const plan want = plan_for(role);
  // Signals are blocked before any thread starts so only sigwait sees them.
  sigset_t signals = block_termination_signals();
  auto& metrics = default_registry();

  core c(cfg);
  bootstrap_admin(c);
  auto q = open_queue(cfg);
  topics t{cfg.queue.topic_prefix + "messages", cfg.queue.topic_prefix + "events"};
  for (const auto& topic : {t.messages, t.events}) {
    if (auto s = q->ensure_topic(topic, static_cast<std::int32_t>(cfg.queue.partitions)); !s) {
      throw std::runtime_error("cannot create topic " + topic + ": " + s.err().message);
    }
  }
  auto producer = q->make_producer();
  queue_publisher publisher(*producer, t, metrics);
  for (const auto& topic : {t.messages}) {
    metrics.gauge_fn("chatd_queue_lag", "Records not yet processed by the main chat service",
                     {{"group", "main-chat"}, {"topic", topic}}, [&q, topic] {
                       auto l = q->lag("main-chat", topic);
                       return l ? static_cast<double>(*l) : 0.0;
                     });
  }

  net::io_pool io(cfg.node.io_threads ? cfg.node.io_threads : cores());
  worker_pool workers(cfg.node.worker_threads ? cfg.node.worker_threads : 4 * cores(), "worker");
  rate_limiter send_limit(cfg.rate_limits.send_per_second, cfg.rate_limits.send_burst);

  // Presence: in-process aggregation; changes fan out through the events topic.
  presence::service presence(*c.db, cfg.presence, [&publisher](const store::presence& p) {
    chat::event e;
    e.kind = chat::event_kind::presence;
    e.participant_id = p.participant_id;
    e.presence = p;
    publisher.publish_ephemeral(e);
  });
  presence.start();

  // Notifications: in-process, or the notification role over HTTP.
  std::unique_ptr<notification::service> notifications;
  std::unique_ptr<notification::http_notifier> remote_notifier;
  notification::notifier* notifier = nullptr;
  if (want.notification || cfg.notifications.url.empty()) {
    notifications = std::make_unique<notification::service>(*c.db, c.ids, cfg.notifications, metrics);
    notifications->start();
    notifier = notifications.get();
  } else {
    remote_notifier = std::make_unique<notification::http_notifier>(cfg.notifications.url, c.secret);
    notifier = remote_notifier.get();
  }

  chat::message_service messages(*c.db, c.ids, c.conversations, publisher);

  // Discovery registry: in memory for `all`, the database for separate roles,
  // or the discovery role over HTTP.
  std::unique_ptr<discovery::registry> registry;
  if (role == "all") {
    registry = std::make_unique<discovery::memory_registry>();
  } else if (!cfg.discovery.url.empty() && !want.discovery) {
    registry = std::make_unique<discovery::http_registry>(cfg.discovery.url, c.secret);
  } else {
    registry = std::make_unique<discovery::store_registry>(*c.db);
  }
  discovery::service discovery(*registry, cfg.discovery);

  // The chat server.
  std::unique_ptr<chatserver::chat_server> chat;
  std::unique_ptr<net::router> chat_routes;
  std::unique_ptr<net::http_server> chat_http;
  std::unique_ptr<discovery::heartbeat_loop> heartbeat;
  std::unique_ptr<ticker> presence_lease;
  std::string chat_id = cfg.chat_server.id.empty() ? "cs-" + std::to_string(cfg.node.id) : cfg.chat_server.id;
  if (want.chat_server) {
    chatserver::options o;
    o.server_id = chat_id;
    o.max_connections = cfg.chat_server.max_connections;
    chat = std::make_unique<chatserver::chat_server>(
        chatserver::deps{*c.db, c.participants, c.conversations, messages, presence, send_limit, metrics, workers}, o);
    c.participants.on_ban([&publisher, &chat](std::uint64_t pid) {
      chat->close_participant(pid, net::ws_close_policy, "banned");  // this server at once
      chat::event e;
      e.kind = chat::event_kind::ban;
      e.participant_id = pid;
      publisher.publish_ephemeral(e);  // and every other one
    });
    chat_routes = std::make_unique<net::router>();
    chat_routes->add_ws("/v1/ws", [&chat](net::http_request& req) { return chat->upgrade(req); });
    add_health_routes(*chat_routes, metrics, {});
    net::server_options so;
    so.listen = cfg.chat_server.listen;
    so.max_connections = cfg.chat_server.max_connections + 64;
    so.ws_max_queued_frames = cfg.chat_server.max_queued_frames;
    so.ws_idle_timeout = std::chrono::milliseconds(cfg.presence.timeout_ms);
    chat_http = std::make_unique<net::http_server>(io, workers, *chat_routes, so);
  }

  // Consumers.
  std::vector<std::unique_ptr<consume_loop>> loops;
  std::unique_ptr<mainchat::main_chat> main;
  if (want.main_chat) {
    main = std::make_unique<mainchat::main_chat>(*c.db, presence, *notifier, metrics);
    loops.push_back(std::make_unique<consume_loop>(
        *q, "main-chat", std::vector<std::string>{t.messages}, queue::start_position::earliest,
        [&main](const queue::record& r) -> status {
          auto e = chat::decode_event(r.value);
          if (!e) return std::move(e).err();
          return main->apply(*e);
        },
        "main-chat"));
  }
  if (want.chat_server) {
    // Each chat server instance reads everything from now on in a group of
    // its own; what it missed while down, clients recover with ?since=.
    loops.push_back(std::make_unique<consume_loop>(
        *q, "chat-server-" + chat_id + "-" + random_suffix(), std::vector<std::string>{t.messages, t.events},
        queue::start_position::latest,
        [&chat](const queue::record& r) -> status {
          auto e = chat::decode_event(r.value);
          if (!e) return std::move(e).err();
          chat->on_event(*e);
          return {};
        },
        "chat-consumer"));
  }

  // The gateway.
  std::unique_ptr<gateway::gateway> gw;
  std::unique_ptr<net::router> gw_routes;
  std::unique_ptr<net::http_server> gw_http;
  if (want.gateway) {
    gateway::deps d{*c.db, c.participants, c.conversations, metrics};
    d.messages = &messages;
    d.presence = &presence;
    d.discovery = &discovery;
    if (notifications) {
      d.notifications = [&notifications](const net::http_request& req, std::uint64_t caller) {
        return notifications->handle_list(req, caller);
      };
    }
    gateway::extensions ext;
    ext.readiness = [&q, &t]() -> std::string {
      auto n = q->partition_count(t.messages);
      return n ? std::string() : "message queue: " + n.err().message;
    };
    gw = std::make_unique<gateway::gateway>(d, cfg, std::move(ext));
    gw_routes = std::make_unique<net::router>();
    gw->add_routes(*gw_routes);
    auto opts = gateway_options(cfg);
    opts.on_request = [&gw](const net::http_request& req, int status, double seconds) {
      gw->observe(req, status, seconds);
    };
    gw_http = std::make_unique<net::http_server>(io, workers, *gw_routes, opts);
  }

  // Service roles that serve only health, metrics and internal endpoints.
  std::unique_ptr<net::router> svc_routes;
  std::unique_ptr<net::http_server> svc_http;
  if (role != "all" && !want.gateway && !want.chat_server) {
    svc_routes = std::make_unique<net::router>();
    add_health_routes(*svc_routes, metrics, {});
    if (want.discovery) discovery.add_internal_routes(*svc_routes, c.secret);
    if (want.notification) notification::add_notify_route(*svc_routes, *notifier, c.secret);
    net::server_options so;
    so.listen = want.discovery      ? cfg.discovery.listen
                : want.notification ? cfg.notifications.listen
                : want.presence     ? cfg.presence.listen
                                    : cfg.main_chat.listen;
    svc_http = std::make_unique<net::http_server>(io, workers, *svc_routes, so);
  }

  io.start();
  for (auto& l : loops) l->start();
  if (chat_http) {
    auto bound = chat_http->start();
    std::string url = cfg.chat_server.public_url.empty() ? "ws://" + bound + "/v1/ws" : cfg.chat_server.public_url;
    auto max = static_cast<double>(cfg.chat_server.max_connections);
    heartbeat = std::make_unique<discovery::heartbeat_loop>(
        *registry,
        [&cfg, &chat, url, chat_id, max] {
          discovery::server_info s;
          s.id = chat_id;
          s.url = url;
          s.region = cfg.chat_server.region;
          s.lat = cfg.chat_server.lat;
          s.lon = cfg.chat_server.lon;
          s.load = std::min(1.0, static_cast<double>(chat->connections()) / max);
          return s;
        },
        std::chrono::milliseconds(cfg.chat_server.heartbeat_ms),
        std::chrono::milliseconds(cfg.discovery.server_ttl_ms));
    (void)heartbeat->start();
    presence_lease =
        std::make_unique<ticker>(std::chrono::milliseconds(std::max<std::int64_t>(cfg.presence.timeout_ms / 3, 50)),
                                 [&presence, chat_id] { presence.refresh(chat_id); });
    presence.refresh(chat_id);
    announce("chat-server", bound);
  }
  if (svc_http) announce(role, svc_http->start());
  if (gw_http) announce("gateway", gw_http->start());
  spdlog::info("chatd {} started (node {}, data {}, queue {}, store {})", role, cfg.node.id, cfg.storage.path,
               cfg.queue.backend, cfg.storage.backend);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}, shutting down", sig);

  // Stop taking work, finish what is in flight, then stop the consumers and
  // the services they call, and flush the queue last.
  if (heartbeat) heartbeat->stop();
  if (chat) chat->stop();
  if (gw_http) gw_http->stop();
  if (chat_http) chat_http->stop();
  if (svc_http) svc_http->stop();
  workers.stop();
  for (auto& l : loops) l->stop();
  if (presence_lease) presence_lease->stop();
  if (notifications) notifications->stop();
  presence.stop();
  (void)producer->flush(5s);
  io.stop();
  metrics.remove_gauge_fn("chatd_queue_lag", {{"group", "main-chat"}, {"topic", t.messages}});
  spdlog::info("chatd {} stopped", role);
  return 0;
}

}  // namespace

int run_role(const std::string& role, const config& cfg) { return run_process(cfg, role); }

int admin_create(const config& cfg, const std::string& username, const std::string& password,
                 const std::string& display_name) {
  core c(cfg);
  bool created = c.participants.ensure_admin(username, password, display_name);
  auto p = c.db->find_participant(store::participant_kind::admin, username);
  if (!p) {
    std::cerr << "chatd: " << p.err().message << "\n";
    return 1;
  }
  std::printf("%s\n", to_json(participants::full_view(*p)).c_str());
  std::fprintf(stderr, "%s\n", created ? "admin created" : "admin exists already");
  return 0;
}

}  // namespace chatd::app
