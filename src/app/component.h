// A component is one service of chatd as a process runs it: built from its
// config section and the shared context, started in dependency order and
// stopped in reverse (as userver composes components). `chatd <role>` runs
// one of them; `chatd all` runs all of them in one process, wired in-process.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace chatd {
class metrics_registry;
namespace net {
class router;
class http_server;
}  // namespace net
}  // namespace chatd

namespace chatd::app {

class context;

class component {
 public:
  virtual ~component() = default;
  // Starts threads and listeners; prints the `listening` lines. Throws on
  // start-up failure.
  virtual void start() = 0;
  // Stops taking work and lets in-flight work finish. Idempotent.
  virtual void stop() = 0;
};

// Every component of `role` ("all" for every one), in start order. Throws
// std::runtime_error for a configuration the role cannot run with.
std::vector<std::unique_ptr<component>> make_components(context& ctx);

std::unique_ptr<component> make_discovery(context& ctx);
std::unique_ptr<component> make_presence(context& ctx);
std::unique_ptr<component> make_notification(context& ctx);
std::unique_ptr<component> make_main_chat(context& ctx);
std::unique_ptr<component> make_chat_server(context& ctx);
std::unique_ptr<component> make_gateway(context& ctx);

// GET /healthz, /readyz (ready when `readiness` returns ""), /metrics.
void add_health_routes(net::router& r, metrics_registry& metrics, std::function<std::string()> readiness = {});

// The listener of a role that serves only health, metrics and internal
// routes (discovery, presence, notification, main-chat on their own).
class service_listener {
 public:
  service_listener(context& ctx, std::string role, std::string listen);
  ~service_listener();
  net::router& routes() { return *routes_; }
  void start();  // binds and announces
  void stop();

 private:
  context& ctx_;
  std::string role_;
  std::string listen_;
  std::unique_ptr<net::router> routes_;
  std::unique_ptr<net::http_server> server_;
};

// A service whose role, outside `chatd all`, serves its internal routes on a
// listener of its own: the service starts before the listener takes calls
// and stops after the listener stopped taking them.
template <class Service>
class listened_component : public component {
 public:
  void start() override {
    service_.start();
    if (listener_) listener_->start();
  }
  void stop() override {
    if (listener_) listener_->stop();
    service_.stop();
  }

 protected:
  template <class... Args>
  explicit listened_component(Args&&... args) : service_(std::forward<Args>(args)...) {}

  Service service_;
  std::optional<service_listener> listener_;
};

}  // namespace chatd::app
