// The presence service: aggregates the connection states that chat servers
// report (in-process in `chatd all`, over internal HTTP otherwise; ADR 007),
// stores each participant's state and publishes changes on the events topic
// so that chat servers push `presence` frames.
#include <optional>

#include "app/component.h"
#include "app/context.h"
#include "chat/events.h"
#include "chat/publisher.h"
#include "presence/presence.h"
#include "presence/remote.h"

namespace chatd::app {
namespace {

class presence_component final : public listened_component<presence::service> {
 public:
  explicit presence_component(context& ctx)
      : listened_component(ctx.db(), ctx.cfg().presence, [&pub = ctx.publisher()](const store::presence& p) {
          chat::event e;
          e.kind = chat::event_kind::presence;
          e.participant_id = p.participant_id;
          e.presence = p;
          pub.publish_ephemeral(e);
        }) {
    ctx.provide(service_);
    if (!ctx.all_in_one()) {
      listener_.emplace(ctx, "presence", ctx.cfg().presence.listen);
      presence::add_internal_routes(listener_->routes(), service_, ctx.internal_secret());
    }
  }
};

}  // namespace

std::unique_ptr<component> make_presence(context& ctx) { return std::make_unique<presence_component>(ctx); }

}  // namespace chatd::app
