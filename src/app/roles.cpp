#include "app/roles.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "auth/hmac.h"
#include "auth/password.h"
#include "auth/token.h"
#include "chat/conversations.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/worker_pool.h"
#include "gateway/gateway.h"
#include "net/server.h"
#include "participants/service.h"
#include "participants/views.h"
#include "store/rocksdb_store.h"

namespace chatd::app {
namespace {

namespace fs = std::filesystem;

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
  throw std::runtime_error("storage.backend '" + cfg.storage.backend + "' is not available in this build");
}

std::size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// The parts every role that serves participants needs.
struct core {
  explicit core(const config& c)
      : cfg(c),
        db(open_store(c)),
        ids(c.node.id),
        tokens(jwt_secret(c)),
        cost(c.auth.password_cost == "fast" ? auth::fast_password_params() : auth::default_password_params()),
        participants(*db, tokens, cost, ids, c.auth.token_ttl_s),
        conversations(*db, ids) {}

  const config& cfg;
  std::unique_ptr<store::chat_store> db;
  id_generator ids;
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

int wait_for_signal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

net::server_options gateway_options(const config& cfg) {
  net::server_options o;
  o.listen = cfg.gateway.listen;
  o.max_body_bytes = cfg.gateway.max_body_bytes;
  o.max_header_bytes = cfg.gateway.max_header_bytes;
  o.max_connections = cfg.gateway.max_connections;
  o.request_timeout = std::chrono::milliseconds(cfg.gateway.request_timeout_ms);
  return o;
}

int run_gateway_process(const config& cfg, const std::string& role) {
  // Signals are blocked before any thread starts so only sigwait sees them.
  sigset_t signals = block_termination_signals();
  core c(cfg);
  bootstrap_admin(c);
  auto& metrics = default_registry();

  net::io_pool io(cfg.node.io_threads ? cfg.node.io_threads : cores());
  worker_pool workers(cfg.node.worker_threads ? cfg.node.worker_threads : 4 * cores(), "worker");

  gateway::gateway gw(gateway::deps{*c.db, c.participants, c.conversations, metrics}, cfg);
  net::router routes;
  gw.add_routes(routes);
  auto opts = gateway_options(cfg);
  opts.on_request = [&gw](const net::http_request& req, int status, double seconds) { gw.observe(req, status, seconds); };
  net::http_server server(io, workers, routes, opts);
  io.start();
  announce(role == "all" ? "gateway" : role, server.start());
  spdlog::info("chatd {} started (node {}, data {})", role, cfg.node.id, cfg.storage.path);

  int sig = wait_for_signal(signals);
  spdlog::info("received signal {}, shutting down", sig);
  server.stop();
  workers.stop();
  io.stop();
  spdlog::info("chatd {} stopped", role);
  return 0;
}

}  // namespace

int run_role(const std::string& role, const config& cfg) {
  if (role == "all" || role == "gateway") return run_gateway_process(cfg, role);
  std::cerr << "chatd: role '" << role << "' is not available in this build\n";
  return 2;
}

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
