#include "notification/internal_api.h"

#include <stdexcept>

#include "auth/hmac.h"
#include "common/ids.h"
#include "common/json.h"
#include "net/client.h"
#include "net/reply.h"
#include "notification/notification_json.h"

namespace chatd::notification {

namespace {

constexpr errc all_codes[] = {errc::bad_request, errc::unauthorized, errc::forbidden,   errc::not_found, errc::conflict,
                              errc::too_large,   errc::rate_limited, errc::unavailable, errc::internal};

// The contract error of an answer body, if it has that shape.
std::optional<error> error_of(std::string_view body) {
  auto o = parse_json_object(body);
  if (!o) return std::nullopt;
  auto e = o->find("error");
  if (e == o->end() || !e->value().is_object()) return std::nullopt;
  const auto& eo = e->value().get_object();
  auto c = eo.find("code");
  auto m = eo.find("message");
  if (c == eo.end() || !c->value().is_string()) return std::nullopt;
  std::string_view code(c->value().get_string().data(), c->value().get_string().size());
  std::string message = (m != eo.end() && m->value().is_string()) ? std::string(m->value().get_string()) : "";
  for (errc x : all_codes) {
    if (code_name(x) == code) return make_error(x, std::move(message));
  }
  return std::nullopt;
}

}  // namespace

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

std::string internal_signature(std::string_view secret, std::string_view body) {
  return "sha256=" + auth::hmac_sha256_hex(secret, body);
}

void add_notify_route(net::router& routes, notifier& target, std::string secret) {
  if (secret.empty()) throw std::invalid_argument("the internal notify route needs a non-empty secret");
  routes.add("POST", std::string(internal_notify_path), [&target, secret = std::move(secret)](net::http_request& req) {
    auto sig = req.header("x-chatd-internal-signature");
    // Both sides have the same length when the signature is well formed, so
    // the comparison time tells nothing about the expected value.
    if (!sig || !auth::constant_time_equal(*sig, internal_signature(secret, req.body))) {
      return net::error_reply(errc::unauthorized, "missing or invalid internal signature");
    }
    auto parsed = parse_internal_notify_body(req.body);
    if (!parsed) return net::error_reply(parsed.err());
    if (auto st = target.notify(*parsed); !st) return net::error_reply(st.err());
    return net::no_content();
  });
}

http_notifier::http_notifier(std::string base_url, std::string secret, std::chrono::milliseconds timeout)
    : secret_(std::move(secret)), timeout_(timeout) {
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  url_ = base_url + std::string(internal_notify_path);
}

status http_notifier::notify(const notify_request& req) {
  const std::string body = internal_notify_body(req);
  const net::header_list headers{
      {"Content-Type", "application/json"},
      {std::string(internal_signature_header), internal_signature(secret_, body)},
  };
  auto r = net::http_request_sync("POST", url_, body, headers, timeout_);
  if (!r) return make_error(errc::unavailable, "notification service: " + r.err().message);
  if (r->status >= 200 && r->status < 300) return {};
  if (r->status >= 400 && r->status < 500) {
    if (auto e = error_of(r->body)) return *e;
  }
  return make_error(errc::unavailable, "notification service answered HTTP " + std::to_string(r->status));
}

}  // namespace chatd::notification
