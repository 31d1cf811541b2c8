#include "app/roles.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "app/component.h"
#include "app/context.h"
#include "common/ids.h"
#include "common/log.h"
#include "participants/service.h"
#include "participants/views.h"
#include "store/store.h"

namespace chatd::app {
namespace {

void bootstrap_admin(context& ctx) {
  const auto& a = ctx.cfg().admin;
  if (a.username.empty() && a.password.empty()) return;
  if (a.username.empty() || a.password.empty()) {
    throw std::runtime_error("admin.username and admin.password must be set together");
  }
  if (ctx.participants().ensure_admin(a.username, a.password, "Administrator")) {
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

}  // namespace

int run_role(const std::string& role, const config& cfg) {
  // Blocked before any thread starts, so that only sigwait sees them.
  sigset_t signals = block_termination_signals();

  context ctx(cfg, role);
  // The roles that log participants in create the configured admin.
  if (role == "all" || role == "gateway") bootstrap_admin(ctx);
  auto components = make_components(ctx);
  ctx.start();
  for (auto& c : components) c->start();
  spdlog::info("chatd {} started (node {}, data {}, queue {}, store {})", role, ctx.ids().node(), cfg.storage.path,
               cfg.queue.backend, cfg.storage.backend);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}, shutting down", sig);

  // Users before providers: each component stops taking work and finishes
  // what is in flight while the services it calls still run.
  for (auto it = components.rbegin(); it != components.rend(); ++it) (*it)->stop();
  ctx.stop();
  components.clear();
  spdlog::info("chatd {} stopped", role);
  return 0;
}

int admin_create(const config& cfg, const std::string& username, const std::string& password,
                 const std::string& display_name) {
  context ctx(cfg, "admin");
  bool created = ctx.participants().ensure_admin(username, password, display_name);
  auto p = ctx.db().find_participant(store::participant_kind::admin, username);
  if (!p) {
    std::cerr << "chatd: " << p.err().message << "\n";
    return 1;
  }
  std::printf("%s\n", to_json(participants::full_view(*p)).c_str());
  std::fprintf(stderr, "%s\n", created ? "admin created" : "admin exists already");
  return 0;
}

}  // namespace chatd::app
