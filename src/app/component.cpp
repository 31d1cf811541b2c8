#include "app/component.h"

#include <stdexcept>

#include "app/context.h"
#include "common/metrics.h"
#include "common/worker_pool.h"
#include "net/reply.h"
#include "net/server.h"

namespace chatd::app {

std::vector<std::unique_ptr<component>> make_components(context& ctx) {
  const std::string& role = ctx.role();
  std::vector<std::unique_ptr<component>> out;
  // Providers before users: discovery, presence and notification provide
  // the ports the chat services use.
  if (role == "all" || role == "discovery") out.push_back(make_discovery(ctx));
  if (role == "all" || role == "presence") out.push_back(make_presence(ctx));
  if (role == "all" || role == "notification") out.push_back(make_notification(ctx));
  if (role == "all" || role == "main-chat") out.push_back(make_main_chat(ctx));
  if (role == "all" || role == "chat-server") out.push_back(make_chat_server(ctx));
  if (role == "all" || role == "gateway") out.push_back(make_gateway(ctx));
  if (out.empty()) throw std::runtime_error("unknown role '" + role + "'");
  return out;
}

void add_health_routes(net::router& r, metrics_registry& metrics, std::function<std::string()> readiness) {
  r.add("GET", "/healthz", [](net::http_request&) { return net::json_reply(200, json::object{{"status", "ok"}}); });
  r.add("GET", "/readyz", [readiness = std::move(readiness)](net::http_request&) {
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

service_listener::service_listener(context& ctx, std::string role, std::string listen)
    : ctx_(ctx), role_(std::move(role)), listen_(std::move(listen)), routes_(std::make_unique<net::router>()) {
  add_health_routes(*routes_, ctx.metrics());
}

service_listener::~service_listener() { stop(); }

void service_listener::start() {
  net::server_options so;
  so.listen = listen_;
  server_ = std::make_unique<net::http_server>(ctx_.io(), ctx_.workers(), *routes_, so);
  announce(role_, server_->start());
}

void service_listener::stop() {
  if (server_) server_->stop();
}

}  // namespace chatd::app
