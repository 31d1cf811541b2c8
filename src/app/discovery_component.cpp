// Service discovery. In one process the registry is in memory; the discovery
// role keeps it in the chat database and serves the internal heartbeat
// routes that chat servers in other processes call.
#include <optional>

#include "app/component.h"
#include "app/context.h"
#include "discovery/memory_registry.h"
#include "discovery/service.h"
#include "discovery/store_registry.h"

namespace chatd::app {
namespace {

class discovery_component final : public component {
 public:
  explicit discovery_component(context& ctx) {
    if (ctx.all_in_one()) {
      registry_ = std::make_unique<discovery::memory_registry>();
    } else {
      registry_ = std::make_unique<discovery::store_registry>(ctx.db());
      service_.emplace(*registry_, ctx.cfg().discovery);
      listener_.emplace(ctx, "discovery", ctx.cfg().discovery.listen);
      service_->add_internal_routes(listener_->routes(), ctx.internal_secret());
    }
    ctx.provide(*registry_);
  }
  void start() override {
    if (listener_) listener_->start();
  }
  void stop() override {
    if (listener_) listener_->stop();
  }

 private:
  std::unique_ptr<discovery::registry> registry_;
  std::optional<discovery::service> service_;
  std::optional<service_listener> listener_;
};

}  // namespace

std::unique_ptr<component> make_discovery(context& ctx) { return std::make_unique<discovery_component>(ctx); }

}  // namespace chatd::app
