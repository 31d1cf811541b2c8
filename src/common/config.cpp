#include "common/config.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <toml.hpp>

#include "common/json.h"

extern char** environ;

namespace chatd {
namespace {

const std::vector<std::string>& known_sections() {
  static const std::vector<std::string> s{"node", "gateway", "chat_server",   "storage",  "queue",     "discovery",
                                          "auth", "admin",   "notifications", "presence", "main_chat", "rate_limits"};
  return s;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

struct entry {
  std::string value;
  std::string origin;
  bool used = false;
};

std::string scalar_to_string(const toml::value& v, const std::string& key, const std::string& file) {
  switch (v.type()) {
    case toml::value_t::string:
      return v.as_string().str;
    case toml::value_t::integer:
      return std::to_string(v.as_integer());
    case toml::value_t::boolean:
      return v.as_boolean() ? "true" : "false";
    case toml::value_t::floating: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", v.as_floating());
      return buf;
    }
    default:
      throw config_error(file + ": config key '" + key + "' must be a string, number or boolean");
  }
}

void flatten(const toml::value& table, const std::string& prefix, const std::string& file,
             std::map<std::string, entry>& out) {
  for (const auto& [k, v] : table.as_table()) {
    std::string key = prefix.empty() ? k : prefix + "." + k;
    if (v.is_table()) {
      flatten(v, key, file, out);
    } else {
      if (prefix.empty()) throw config_error(file + ": key '" + key + "' must be inside a [section]");
      out[key] = entry{scalar_to_string(v, key, file), file, false};
    }
  }
}

class reader {
 public:
  explicit reader(const config_sources& src) {
    if (!src.file.empty() || src.file_text) {
      std::string text;
      if (src.file_text) {
        text = *src.file_text;
      } else {
        std::ifstream f(src.file, std::ios::binary);
        if (!f) throw config_error("cannot read config file " + src.file + ": cannot open it");
        text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
      }
      // toml11 3.7 reads past the end of its buffer while reporting some
      // invalid UTF-8 (e.g. an unterminated literal string), and TOML must be
      // UTF-8 anyway: such a file is refused before it gets there.
      if (!valid_utf8(text)) throw config_error("cannot read config file " + src.file + ": it is not valid UTF-8");
      toml::value root;
      try {
        std::istringstream in(text);
        root = toml::parse(in, src.file);
      } catch (const std::exception& e) {
        throw config_error("cannot read config file " + src.file + ": " + e.what());
      }
      flatten(root, "", src.file, file_);
    }
    for (const auto& [k, v] : src.flags) flags_[k] = entry{v, "flag --set " + k, false};
    if (src.env) {
      env_ = *src.env;
    } else {
      for (char** e = environ; e && *e; ++e) {
        std::string_view kv(*e);
        if (kv.rfind("CHATD_", 0) != 0) continue;
        auto eq = kv.find('=');
        if (eq == std::string_view::npos) continue;
        env_.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
      }
    }
  }

  // The strongest source that sets section.key, with where it came from.
  std::optional<std::pair<std::string, std::string>> get(const std::string& section, const std::string& key) {
    std::string full = section + "." + key;
    used_keys_.insert(full);
    if (auto it = flags_.find(full); it != flags_.end()) {
      it->second.used = true;
      file_mark(full);
      return std::make_pair(it->second.value, it->second.origin);
    }
    std::string env_name = "CHATD_" + upper(section) + "_" + upper(key);
    if (auto it = env_.find(env_name); it != env_.end()) {
      used_env_.insert(env_name);
      file_mark(full);
      return std::make_pair(it->second, "environment " + env_name);
    }
    if (auto it = file_.find(full); it != file_.end()) {
      it->second.used = true;
      return std::make_pair(it->second.value, it->second.origin + ": " + full);
    }
    return std::nullopt;
  }

  // All keys "section.prefix.<rest>" from the file and flags (env cannot
  // express dotted sub-keys).
  std::map<std::string, std::string> get_prefixed(const std::string& prefix) {
    std::map<std::string, std::string> out;
    for (auto* m : {&file_, &flags_}) {
      for (auto& [k, e] : *m) {
        if (k.rfind(prefix, 0) == 0 && k.size() > prefix.size()) {
          e.used = true;
          out[k.substr(prefix.size())] = e.value;
        }
      }
    }
    return out;
  }

  void check_unknown() const {
    for (const auto* m : {&flags_, &file_}) {
      for (const auto& [k, e] : *m) {
        if (!e.used) throw config_error("unknown config key '" + k + "' (" + e.origin + ")");
      }
    }
    for (const auto& [name, value] : env_) {
      if (used_env_.count(name)) continue;
      for (const auto& s : known_sections()) {
        std::string p = "CHATD_" + upper(s) + "_";
        if (name.rfind(p, 0) == 0) {
          // CHATD_CHAT_SERVER_X must not be taken for a section "chat".
          bool longer_section = false;
          for (const auto& s2 : known_sections()) {
            std::string p2 = "CHATD_" + upper(s2) + "_";
            if (s2 != s && p2.size() > p.size() && name.rfind(p2, 0) == 0) longer_section = true;
          }
          if (!longer_section) {
            throw config_error("unknown config key '" + s + "." + name.substr(p.size()) + "' (environment " + name +
                               ")");
          }
        }
      }
    }
  }

 private:
  void file_mark(const std::string& full) {
    if (auto it = file_.find(full); it != file_.end()) it->second.used = true;
  }

  std::map<std::string, entry> file_;
  std::map<std::string, entry> flags_;
  std::map<std::string, std::string> env_;
  std::set<std::string> used_env_;
  std::set<std::string> used_keys_;
};

class section {
 public:
  section(reader& r, std::string name) : r_(r), name_(std::move(name)) {}

  void str(const char* key, std::string& out) {
    if (auto v = r_.get(name_, key)) out = v->first;
  }
  template <class Int>
  void integer(const char* key, Int& out, std::int64_t min, std::int64_t max) {
    auto v = r_.get(name_, key);
    if (!v) return;
    std::int64_t x = 0;
    const auto& s = v->first;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (ec != std::errc{} || p != s.data() + s.size()) {
      throw config_error(v->second + ": '" + s + "' is not an integer");
    }
    if (x < min || x > max) {
      throw config_error(v->second + ": " + s + " is out of range " + std::to_string(min) + ".." + std::to_string(max));
    }
    out = static_cast<Int>(x);
  }
  void number(const char* key, double& out, double min, double max) {
    auto v = r_.get(name_, key);
    if (!v) return;
    out = parse_double(*v, min, max);
  }
  void opt_number(const char* key, std::optional<double>& out, double min, double max) {
    auto v = r_.get(name_, key);
    if (!v) return;
    if (v->first.empty()) {
      out.reset();
      return;
    }
    out = parse_double(*v, min, max);
  }
  void boolean(const char* key, bool& out) {
    auto v = r_.get(name_, key);
    if (!v) return;
    const auto& s = v->first;
    if (s == "true" || s == "1" || s == "yes" || s == "on") {
      out = true;
    } else if (s == "false" || s == "0" || s == "no" || s == "off") {
      out = false;
    } else {
      throw config_error(v->second + ": '" + s + "' is not a boolean");
    }
  }
  void one_of(const char* key, std::string& out, std::initializer_list<const char*> allowed) {
    auto v = r_.get(name_, key);
    if (!v) return;
    std::string list;
    for (const char* a : allowed) {
      if (v->first == a) {
        out = v->first;
        return;
      }
      list += list.empty() ? a : std::string(", ") + a;
    }
    throw config_error(v->second + ": '" + v->first + "' must be one of " + list);
  }
  void listen(const char* key, std::string& out) {
    auto v = r_.get(name_, key);
    if (!v) return;
    auto colon = v->first.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == v->first.size()) {
      throw config_error(v->second + ": '" + v->first + "' is not host:port");
    }
    int port = -1;
    auto ps = std::string_view(v->first).substr(colon + 1);
    auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
    if (ec != std::errc{} || p != ps.data() + ps.size() || port < 0 || port > 65535) {
      throw config_error(v->second + ": bad port in '" + v->first + "'");
    }
    out = v->first;
  }
  reader& raw() { return r_; }
  const std::string& name() const { return name_; }

 private:
  double parse_double(const std::pair<std::string, std::string>& v, double min, double max) {
    char* end = nullptr;
    double x = std::strtod(v.first.c_str(), &end);
    if (v.first.empty() || end != v.first.c_str() + v.first.size() || !std::isfinite(x)) {
      throw config_error(v.second + ": '" + v.first + "' is not a number");
    }
    if (x < min || x > max) throw config_error(v.second + ": " + v.first + " is out of range");
    return x;
  }

  reader& r_;
  std::string name_;
};

constexpr std::int64_t big = std::int64_t{1} << 40;

// A listener's TLS files come together: one without the other is a mistake
// that would otherwise start a plain listener or fail obscurely.
void require_pair(const std::string& section, const std::string& cert, const std::string& key) {
  if (cert.empty() != key.empty()) {
    throw config_error(section + ".tls_cert_file and " + section + ".tls_key_file must be set together");
  }
}

}  // namespace

config load_config(const config_sources& sources) {
  reader r(sources);
  config c;
#ifdef CHATD_DEFAULT_WEB_ROOT
  c.gateway.web_root = CHATD_DEFAULT_WEB_ROOT;
#endif
  {
    section s(r, "node");
    s.integer("id", c.node.id, 0, 1023);
    s.integer("io_threads", c.node.io_threads, 0, 256);
    s.integer("worker_threads", c.node.worker_threads, 0, 1024);
    s.one_of("log_level", c.node.log_level, {"trace", "debug", "info", "warn", "error", "off"});
  }
  {
    section s(r, "gateway");
    s.listen("listen", c.gateway.listen);
    s.integer("max_body_bytes", c.gateway.max_body_bytes, 1024, 64 << 20);
    s.integer("max_header_bytes", c.gateway.max_header_bytes, 1024, 1 << 20);
    s.integer("max_connections", c.gateway.max_connections, 1, 1'000'000);
    s.integer("request_timeout_ms", c.gateway.request_timeout_ms, 100, big);
    s.str("web_root", c.gateway.web_root);
    s.str("tls_cert_file", c.gateway.tls_cert_file);
    s.str("tls_key_file", c.gateway.tls_key_file);
    require_pair("gateway", c.gateway.tls_cert_file, c.gateway.tls_key_file);
  }
  {
    section s(r, "chat_server");
    s.listen("listen", c.chat_server.listen);
    s.str("public_url", c.chat_server.public_url);
    s.str("region", c.chat_server.region);
    s.opt_number("lat", c.chat_server.lat, -90, 90);
    s.opt_number("lon", c.chat_server.lon, -180, 180);
    s.str("id", c.chat_server.id);
    s.integer("max_connections", c.chat_server.max_connections, 1, 1'000'000);
    s.integer("max_queued_frames", c.chat_server.max_queued_frames, 8, 1'000'000);
    s.integer("max_sends_in_flight", c.chat_server.max_sends_in_flight, 1, 1'000'000);
    s.integer("max_send_wait_ms", c.chat_server.max_send_wait_ms, 1, 600'000);
    s.integer("heartbeat_ms", c.chat_server.heartbeat_ms, 50, 60'000);
    s.str("tls_cert_file", c.chat_server.tls_cert_file);
    s.str("tls_key_file", c.chat_server.tls_key_file);
    require_pair("chat_server", c.chat_server.tls_cert_file, c.chat_server.tls_key_file);
  }
  {
    section s(r, "storage");
    s.one_of("backend", c.storage.backend, {"rocksdb", "scylla"});
    s.str("path", c.storage.path);
    s.boolean("sync_writes", c.storage.sync_writes);
    s.str("hosts", c.storage.hosts);
    s.str("keyspace", c.storage.keyspace);
    s.one_of("consistency", c.storage.consistency, {"one", "quorum", "local_quorum", "local_one", "all"});
    s.str("local_dc", c.storage.local_dc);
    s.integer("replication_factor", c.storage.replication_factor, 1, 9);
  }
  {
    section s(r, "queue");
    s.one_of("backend", c.queue.backend, {"embedded", "kafka"});
    s.str("brokers", c.queue.brokers);
    s.str("topic_prefix", c.queue.topic_prefix);
    s.integer("partitions", c.queue.partitions, 1, 4096);
    s.integer("replication_factor", c.queue.replication_factor, 1, 9);
    s.boolean("fsync", c.queue.fsync);
    s.one_of("delivery", c.queue.delivery, {"auto", "routed", "broadcast"});
    c.queue.kafka = r.get_prefixed("queue.kafka.");
  }
  {
    section s(r, "discovery");
    s.str("url", c.discovery.url);
    s.listen("listen", c.discovery.listen);
    s.str("default_region", c.discovery.default_region);
    s.integer("server_ttl_ms", c.discovery.server_ttl_ms, 100, 60'000);
    // discovery.regions.<name>.lat / .lon
    auto regions = r.get_prefixed("discovery.regions.");
    for (const auto& [k, v] : regions) {
      auto dot = k.rfind('.');
      std::string name = k.substr(0, dot == std::string::npos ? 0 : dot);
      std::string field = dot == std::string::npos ? k : k.substr(dot + 1);
      if (name.empty() || (field != "lat" && field != "lon")) {
        throw config_error("unknown config key 'discovery.regions." + k + "' (expected regions.<name>.lat/lon)");
      }
      char* end = nullptr;
      double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(x) || (field == "lat" ? std::abs(x) > 90 : std::abs(x) > 180)) {
        throw config_error("discovery.regions." + k + ": '" + v + "' is not a valid coordinate");
      }
      (field == "lat" ? c.discovery.regions[name].lat : c.discovery.regions[name].lon) = x;
    }
  }
  {
    section s(r, "auth");
    s.str("jwt_secret", c.auth.jwt_secret);
    s.str("internal_secret", c.auth.internal_secret);
    // An HMAC key shorter than its hash's output is guessable offline from
    // one captured token (RFC 7518 3.2 asks for at least 256 bits).
    for (auto [name, value] :
         {std::pair{"jwt_secret", &c.auth.jwt_secret}, std::pair{"internal_secret", &c.auth.internal_secret}}) {
      if (!value->empty() && value->size() < min_secret_bytes) {
        throw config_error("auth." + std::string(name) + " must be at least " + std::to_string(min_secret_bytes) +
                           " bytes (it is " + std::to_string(value->size()) + ")");
      }
    }
    if (!c.auth.internal_secret.empty() && c.auth.internal_secret == c.auth.jwt_secret) {
      throw config_error("auth.internal_secret must differ from auth.jwt_secret");
    }
    s.integer("token_ttl_s", c.auth.token_ttl_s, 60, 365LL * 24 * 3600);
    s.one_of("password_cost", c.auth.password_cost, {"default", "fast"});
  }
  {
    section s(r, "admin");
    s.str("username", c.admin.username);
    s.str("password", c.admin.password);
  }
  {
    section s(r, "notifications");
    s.str("webhook_url", c.notifications.webhook_url);
    s.str("webhook_secret", c.notifications.webhook_secret);
    if (!c.notifications.webhook_url.empty()) {
      const auto& url = c.notifications.webhook_url;
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        throw config_error("notifications.webhook_url must be an http:// or https:// URL");
      }
      // An unsigned webhook lets anyone who finds the receiver's address
      // forge notifications.
      if (c.notifications.webhook_secret.empty()) {
        throw config_error("notifications.webhook_secret must be set when notifications.webhook_url is");
      }
    }
    s.integer("coalesce_ms", c.notifications.coalesce_ms, 0, 24LL * 3600 * 1000);
    s.listen("listen", c.notifications.listen);
    s.str("url", c.notifications.url);
    s.integer("retry_initial_ms", c.notifications.retry_initial_ms, 1, big);
    s.integer("retry_max_ms", c.notifications.retry_max_ms, 1, big);
    s.integer("max_attempts", c.notifications.max_attempts, 1, 1000);
  }
  {
    section s(r, "presence");
    s.integer("timeout_ms", c.presence.timeout_ms, 100, 24LL * 3600 * 1000);
    s.listen("listen", c.presence.listen);
    s.str("url", c.presence.url);
  }
  {
    section s(r, "main_chat");
    s.listen("listen", c.main_chat.listen);
  }
  {
    section s(r, "rate_limits");
    s.number("send_per_second", c.rate_limits.send_per_second, 0, 1e6);
    s.number("send_burst", c.rate_limits.send_burst, 0, 1e7);
    s.number("login_per_minute", c.rate_limits.login_per_minute, 0, 1e7);
    s.number("read_per_second", c.rate_limits.read_per_second, 0, 1e6);
    s.number("read_burst", c.rate_limits.read_burst, 0, 1e7);
    s.number("typing_per_second", c.rate_limits.typing_per_second, 0, 1e6);
    s.number("typing_burst", c.rate_limits.typing_burst, 0, 1e7);
  }
  r.check_unknown();
  return c;
}

std::vector<std::pair<std::string, std::string>> describe_config(const config& c) {
  auto mask = [](const std::string& s) { return s.empty() ? std::string() : std::string("***"); };
  auto num = [](double d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", d);
    return std::string(buf);
  };
  std::vector<std::pair<std::string, std::string>> v{
      {"node.id", std::to_string(c.node.id)},
      {"gateway.listen", c.gateway.listen},
      {"gateway.web_root", c.gateway.web_root},
      {"gateway.tls_cert_file", c.gateway.tls_cert_file},
      {"chat_server.listen", c.chat_server.listen},
      {"chat_server.public_url", c.chat_server.public_url},
      {"chat_server.region", c.chat_server.region},
      {"chat_server.tls_cert_file", c.chat_server.tls_cert_file},
      {"storage.backend", c.storage.backend},
      {"storage.path", c.storage.path},
      {"storage.hosts", c.storage.hosts},
      {"storage.keyspace", c.storage.keyspace},
      {"queue.backend", c.queue.backend},
      {"queue.brokers", c.queue.brokers},
      {"queue.topic_prefix", c.queue.topic_prefix},
      {"queue.partitions", std::to_string(c.queue.partitions)},
      {"queue.delivery", c.queue.delivery},
      {"discovery.url", c.discovery.url},
      {"auth.jwt_secret", mask(c.auth.jwt_secret)},
      {"auth.internal_secret", mask(c.auth.internal_secret)},
      {"admin.username", c.admin.username},
      {"admin.password", mask(c.admin.password)},
      {"notifications.webhook_url", c.notifications.webhook_url},
      {"notifications.webhook_secret", mask(c.notifications.webhook_secret)},
      {"notifications.coalesce_ms", std::to_string(c.notifications.coalesce_ms)},
      {"presence.timeout_ms", std::to_string(c.presence.timeout_ms)},
      {"rate_limits.send_per_second", num(c.rate_limits.send_per_second)},
      {"rate_limits.send_burst", num(c.rate_limits.send_burst)},
      {"rate_limits.login_per_minute", num(c.rate_limits.login_per_minute)},
      {"rate_limits.read_per_second", num(c.rate_limits.read_per_second)},
      {"rate_limits.read_burst", num(c.rate_limits.read_burst)},
      {"rate_limits.typing_per_second", num(c.rate_limits.typing_per_second)},
      {"rate_limits.typing_burst", num(c.rate_limits.typing_burst)},
  };
  return v;
}

}  // namespace chatd
