// A chat server: the WebSocket channel, its consumer of the queue (a group of
// its own, from the latest offset: what it missed while down, clients recover
// with ?since=), its heartbeat to discovery and its presence lease. It reads
// its own delivery topic with routed delivery (ADR 009), else every message
// and event.
#include <mutex>
#include <random>
#include <thread>

#include "app/component.h"
#include "app/consume_loop.h"
#include "app/context.h"
#include "chat/events.h"
#include "chat/publisher.h"
#include "chatserver/chat_server.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/periodic.h"
#include "discovery/heartbeat_loop.h"
#include "mainchat/router.h"
#include "net/server.h"
#include "participants/service.h"
#include "presence/presence.h"
#include "queue/queue.h"

namespace chatd::app {
namespace {

std::string random_suffix() {
  std::random_device rd;
  return std::to_string(rd() % 1000000);
}

chatserver::options server_options(context& ctx) {
  chatserver::options o;
  const auto& cs = ctx.cfg().chat_server;
  o.server_id = cs.id.empty() ? "cs-" + std::to_string(ctx.ids().node()) : cs.id;
  o.max_connections = cs.max_connections;
  o.max_sends_in_flight = cs.max_sends_in_flight;
  o.max_send_wait_ms = cs.max_send_wait_ms;
  if (ctx.routed_delivery() && !mainchat::valid_route_name(o.server_id)) {
    throw config_error("chat_server.id '" + o.server_id +
                       "' must be 1-200 of [a-zA-Z0-9._-] with routed delivery (it names a topic)");
  }
  return o;
}

// What this chat server reads; the delivery topic is created here so that it
// exists (and its end is known) before the first record is routed to it.
std::vector<std::string> consumed_topics(context& ctx, const std::string& server_id) {
  if (!ctx.routed_delivery()) return {ctx.topic_names().messages, ctx.topic_names().events};
  auto topic = mainchat::delivery_topic(ctx.cfg().queue.topic_prefix, server_id);
  // One partition: one reader, and the router keeps each conversation's order.
  if (auto s = ctx.queue().ensure_topic(topic, 1); !s) {
    throw std::runtime_error("cannot create topic " + topic + ": " + s.err().message);
  }
  return {topic};
}

class chat_server_component final : public component {
 public:
  explicit chat_server_component(context& ctx)
      : ctx_(ctx),
        opt_(server_options(ctx)),
        chat_(chatserver::deps{ctx.db(), ctx.participants(), ctx.conversations(), ctx.messages(), ctx.presence(),
                               ctx.limits(), ctx.metrics(), ctx.workers()},
              opt_),
        loop_(
            ctx.queue(), "chat-server-" + opt_.server_id + "-" + random_suffix(), consumed_topics(ctx, opt_.server_id),
            queue::start_position::latest,
            [this](const queue::record& r) -> status {
              auto e = chat::decode_event(r.value);
              if (!e) return std::move(e).err();
              chat_.on_event(*e);
              return {};
            },
            "chat-consumer") {
    // A ban closes this server's connections at once, and every other
    // server's through the events topic.
    ctx.participants().on_ban([this, &pub = ctx.publisher()](std::uint64_t pid) {
      chat_.close_participant(pid, net::ws_close_policy, "banned");
      chat::event e;
      e.kind = chat::event_kind::ban;
      e.participant_id = pid;
      pub.publish_ephemeral(e);
    });
    routes_.add_ws("/v1/ws", [this](net::http_request& req) { return chat_.upgrade(req); });
    add_health_routes(routes_, ctx.metrics());
    const auto& cs = ctx.cfg().chat_server;
    net::server_options so;
    so.listen = cs.listen;
    so.max_connections = cs.max_connections + 64;
    so.ws_max_queued_frames = cs.max_queued_frames;
    so.ws_idle_timeout = std::chrono::milliseconds(ctx.cfg().presence.timeout_ms);
    so.tls = {cs.tls_cert_file, cs.tls_key_file};
    http_ = std::make_unique<net::http_server>(ctx.io(), ctx.workers(), routes_, so);
  }

  void start() override {
    loop_.start();
    auto bound = http_->start();
    const auto& cfg = ctx_.cfg();
    const char* scheme = cfg.chat_server.tls_cert_file.empty() ? "ws://" : "wss://";
    std::string url = cfg.chat_server.public_url.empty() ? scheme + bound + "/v1/ws" : cfg.chat_server.public_url;
    auto max = static_cast<double>(cfg.chat_server.max_connections);
    heartbeat_ = std::make_unique<discovery::heartbeat_loop>(
        ctx_.registry(),
        [this, url, max] {
          const auto& cs = ctx_.cfg().chat_server;
          discovery::server_info s;
          s.id = opt_.server_id;
          s.url = url;
          s.region = cs.region;
          s.lat = cs.lat;
          s.lon = cs.lon;
          s.load = std::min(1.0, static_cast<double>(chat_.connections()) / max);
          return s;
        },
        std::chrono::milliseconds(cfg.chat_server.heartbeat_ms),
        std::chrono::milliseconds(cfg.discovery.server_ttl_ms));
    (void)heartbeat_->start();
    // The presence lease: this server's connections still count.
    auto& presence = ctx_.presence();
    presence.refresh(opt_.server_id);
    lease_ =
        std::make_unique<periodic>(std::chrono::milliseconds(presence::snapshot_period_ms(cfg.presence.timeout_ms)),
                                   [&presence, id = opt_.server_id] { presence.refresh(id); });
    // A connection lives no longer than its token (give or take this
    // period) unless the client sent a `refresh` frame with a newer one.
    expiry_ = std::make_unique<periodic>(std::chrono::seconds(1), [this] {
      if (auto n = chat_.close_expired(now_ms() / 1000); n > 0) spdlog::info("closed {} connections: token expired", n);
    });
    announce("chat-server", bound);
  }

  void stop() override {
    if (expiry_) expiry_->stop();
    if (heartbeat_) heartbeat_->stop();
    chat_.stop();
    if (http_) http_->stop();
    loop_.stop();
    if (lease_) lease_->stop();
  }

 private:
  context& ctx_;
  chatserver::options opt_;
  chatserver::chat_server chat_;
  consume_loop loop_;
  net::router routes_;
  std::unique_ptr<net::http_server> http_;
  std::unique_ptr<discovery::heartbeat_loop> heartbeat_;
  std::unique_ptr<periodic> lease_;
  std::unique_ptr<periodic> expiry_;
};

}  // namespace

std::unique_ptr<component> make_chat_server(context& ctx) { return std::make_unique<chat_server_component>(ctx); }

}  // namespace chatd::app
