#include "discovery/wire.h"

#include "auth/hmac.h"

namespace chatd::discovery::wire {

namespace {

constexpr std::string_view sig_prefix = "sha256=";

// json_fields has no floating-point reader; this one keeps the same
// "first problem wins" and "unknown fields are refused" behaviour by marking
// the key as seen in `f` and recording its own first problem in `err`.
std::optional<double> number(json_fields& f, const json::object& o, std::string_view key, bool required,
                             std::string& err) {
  f.ignore(key);
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) {
    if (required && err.empty()) err = "missing field '" + std::string(key) + "'";
    return std::nullopt;
  }
  const auto& v = it->value();
  if (!v.is_number()) {
    if (err.empty()) err = "field '" + std::string(key) + "' must be a number";
    return std::nullopt;
  }
  return v.to_number<double>();
}

server_info read_server(const json::object& o, json_fields& f, std::string& err) {
  server_info s;
  auto id = f.str("id", true);
  auto url = f.str("url", true);
  auto region = f.str("region", true);
  s.lat = number(f, o, "lat", false, err);
  s.lon = number(f, o, "lon", false, err);
  auto load = number(f, o, "load", true, err);
  if (id) s.id = std::string(*id);
  if (url) s.url = std::string(*url);
  if (region) s.region = std::string(*region);
  if (load) s.load = *load;
  return s;
}

}  // namespace

json::object to_json(const server_info& s) {
  json::object o;
  o["id"] = s.id;
  o["url"] = s.url;
  o["region"] = s.region;
  o["lat"] = s.lat ? json::value(*s.lat) : json::value(nullptr);
  o["lon"] = s.lon ? json::value(*s.lon) : json::value(nullptr);
  o["load"] = s.load;
  return o;
}

std::string heartbeat_body(const server_info& s, std::chrono::milliseconds ttl) {
  json::object o = to_json(s);
  o["ttl_ms"] = static_cast<std::int64_t>(ttl.count());
  return chatd::to_json(o);
}

result<heartbeat_request> parse_heartbeat(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj) return std::move(obj).err();
  json_fields f(*obj);
  std::string err;
  auto s = read_server(*obj, f, err);
  auto ttl = f.integer("ttl_ms", true, 1, max_ttl.count());
  if (auto st = f.finish(); !st) return std::move(st).err();
  if (!err.empty()) return make_error(errc::bad_request, err);
  heartbeat_request r{std::move(s), std::chrono::milliseconds{*ttl}};
  if (auto v = validate_heartbeat(r.server, r.ttl); !v) return std::move(v).err();
  return r;
}

std::string remove_body(const std::string& id) { return json::serialize(json::object{{"id", id}}); }

result<std::string> parse_remove(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj) return std::move(obj).err();
  json_fields f(*obj);
  auto id = f.str("id", true);
  if (auto st = f.finish(); !st) return std::move(st).err();
  if (id->empty() || id->size() > 128) return make_error(errc::bad_request, "server id must be 1 to 128 bytes");
  return std::string(*id);
}

std::string servers_body(const std::vector<server_info>& servers) {
  json::array a;
  a.reserve(servers.size());
  for (const auto& s : servers) a.push_back(to_json(s));
  return chatd::to_json(json::object{{"servers", std::move(a)}});
}

result<std::vector<server_info>> parse_servers(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj) return std::move(obj).err();
  auto it = obj->find("servers");
  if (it == obj->end() || !it->value().is_array()) {
    return make_error(errc::bad_request, "answer has no 'servers' array");
  }
  std::vector<server_info> out;
  for (const auto& item : it->value().get_array()) {
    if (!item.is_object()) return make_error(errc::bad_request, "'servers' must hold objects");
    const auto& o = item.get_object();
    json_fields f(o);
    std::string err;
    auto s = read_server(o, f, err);
    // Fields added by a newer discovery service are not this client's
    // business; wrong types and invalid values are.
    for (const auto& kv : o) f.ignore(std::string_view(kv.key().data(), kv.key().size()));
    if (auto st = f.finish(); !st) return std::move(st).err();
    if (!err.empty()) return make_error(errc::bad_request, err);
    if (auto v = validate_server_info(s); !v) return std::move(v).err();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace chatd::discovery::wire
