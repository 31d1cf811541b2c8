// The API gateway: the contract's HTTP API. It reaches the chat database
// directly, presence through the presence port, discovery through the
// registry port, and answers GET /v1/notifications from the chat database, so
// it serves every route in every layout.
#include <optional>

#include "app/component.h"
#include "app/context.h"
#include "app/dead_letters.h"
#include "chat/events.h"
#include "chat/publisher.h"
#include "common/metrics.h"
#include "discovery/service.h"
#include "gateway/gateway.h"
#include "net/server.h"
#include "notification/service.h"
#include "participants/service.h"
#include "queue/queue.h"

namespace chatd::app {
namespace {

net::server_options gateway_options(const config& cfg) {
  net::server_options o;
  o.listen = cfg.gateway.listen;
  o.max_body_bytes = cfg.gateway.max_body_bytes;
  o.max_header_bytes = cfg.gateway.max_header_bytes;
  o.max_connections = cfg.gateway.max_connections;
  o.request_timeout = std::chrono::milliseconds(cfg.gateway.request_timeout_ms);
  o.tls = {cfg.gateway.tls_cert_file, cfg.gateway.tls_key_file};
  return o;
}

gateway::deps gateway_deps(context& ctx, discovery::service& discovery) {
  return gateway::deps{ctx.db(),
                       ctx.participants(),
                       ctx.conversations(),
                       ctx.metrics(),
                       ctx.limits(),
                       &ctx.messages(),
                       &ctx.presence(),
                       &discovery,
                       [&db = ctx.db()](const net::http_request& req, std::uint64_t caller) {
                         return notification::list_reply(db, req, caller);
                       },
                       [&dl = ctx.dead_letters()](const net::http_request& req) { return dl.list_reply(req); },
                       [&dl = ctx.dead_letters()](const net::http_request& req) { return dl.replay_reply(req); }};
}

class gateway_component final : public component {
 public:
  explicit gateway_component(context& ctx)
      : discovery_(ctx.registry(), ctx.cfg().discovery),
        gateway_(gateway_deps(ctx, discovery_), ctx.cfg(), extensions(ctx)) {
    if (!ctx.all_in_one()) {
      // Without a chat server in this process, a ban reaches the open
      // connections only through the events topic that every chat server
      // reads (in `chatd all` the chat server component does both).
      ctx.participants().on_ban([&pub = ctx.publisher()](std::uint64_t pid) {
        chat::event e;
        e.kind = chat::event_kind::ban;
        e.participant_id = pid;
        pub.publish_ephemeral(e);
      });
    }
    gateway_.add_routes(routes_);
    auto opts = gateway_options(ctx.cfg());
    opts.on_request = [this](const net::http_request& req, int status, double seconds) {
      gateway_.observe(req, status, seconds);
    };
    http_ = std::make_unique<net::http_server>(ctx.io(), ctx.workers(), routes_, opts);
  }

  void start() override { announce("gateway", http_->start()); }
  void stop() override { http_->stop(); }

 private:
  static gateway::extensions extensions(context& ctx) {
    gateway::extensions ext;
    ext.readiness = [&q = ctx.queue(), topic = ctx.topic_names().messages]() -> std::string {
      auto n = q.partition_count(topic);
      return n ? std::string() : "message queue: " + n.err().message;
    };
    return ext;
  }

  discovery::service discovery_;
  gateway::gateway gateway_;
  net::router routes_;
  std::unique_ptr<net::http_server> http_;
};

}  // namespace

std::unique_ptr<component> make_gateway(context& ctx) { return std::make_unique<gateway_component>(ctx); }

}  // namespace chatd::app
