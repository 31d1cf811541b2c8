// The notification service: signed webhooks with retries and the stored
// notifications. The main chat service calls it in-process in `chatd all`,
// over the internal notify route otherwise.
#include <optional>

#include "app/component.h"
#include "app/context.h"
#include "common/metrics.h"
#include "notification/service.h"

namespace chatd::app {
namespace {

class notification_component final : public listened_component<notification::service> {
 public:
  explicit notification_component(context& ctx)
      : listened_component(ctx.db(), ctx.ids(), ctx.cfg().notifications, ctx.metrics()) {
    ctx.provide(service_);
    if (!ctx.all_in_one()) {
      listener_.emplace(ctx, "notification", ctx.cfg().notifications.listen);
      service_.add_internal_routes(listener_->routes(), ctx.internal_secret());
    }
  }
};

}  // namespace

std::unique_ptr<component> make_notification(context& ctx) { return std::make_unique<notification_component>(ctx); }

}  // namespace chatd::app
