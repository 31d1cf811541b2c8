#include "notification/internal_api.h"

#include <stdexcept>

#include "common/ids.h"
#include "common/json.h"
#include "net/reply.h"
#include "notification/notification_json.h"

namespace chatd::notification {

std::string internal_notify_body(const notify_request& req) {
  json::object o;
  o["recipient_id"] = format_id(req.recipient_id);
  o["message"] = message_wire(req.message);
  return json::serialize(o);
}

result<notify_request> parse_internal_notify_body(std::string_view body) {
  auto o = parse_json_object(body);
  if (!o) return std::move(o).err();
  json_fields f(*o);
  auto recipient = f.id("recipient_id", true);
  f.ignore("message");
  if (auto st = f.finish(); !st) return std::move(st).err();
  auto m = o->find("message");
  if (m == o->end() || !m->value().is_object()) {
    return make_error(errc::bad_request, "field 'message' must be an object");
  }
  auto msg = parse_message_wire(m->value().get_object());
  if (!msg) return make_error(errc::bad_request, "message: " + msg.err().message);
  return notify_request{*recipient, std::move(*msg)};
}

void add_notify_route(net::router& routes, notifier& target, std::string secret) {
  if (secret.empty()) throw std::invalid_argument("the internal notify route needs a non-empty secret");
  rpc::add_route(routes, "POST", std::string(internal_notify_path), std::move(secret),
                 [&target](net::http_request& req) {
                   auto parsed = parse_internal_notify_body(req.body);
                   if (!parsed) return net::error_reply(parsed.err());
                   if (auto st = target.notify(*parsed); !st) return net::error_reply(st.err());
                   return net::no_content();
                 });
}

http_notifier::http_notifier(std::string base_url, std::string secret, metrics_registry& metrics, rpc::client_options o)
    : client_("notification", std::move(base_url), std::move(secret), metrics, o) {}

status http_notifier::notify(const notify_request& req) {
  auto r = client_.call("POST", internal_notify_path, internal_notify_body(req));
  if (!r) return std::move(r).err();
  return {};
}

}  // namespace chatd::notification
