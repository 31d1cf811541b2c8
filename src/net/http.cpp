// Transport-neutral HTTP pieces: request accessors, the router, JSON error
// bodies and small parsers. Deliberately free of Beast so it compiles fast.
#include "net/http.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "net/http_internal.h"

namespace chatd::net {

namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "/a/b" -> {"a","b"}; "/" -> {""}. Empty segments are kept so that "/a/" and
// "/a" stay different routes.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool is_param(std::string_view seg) { return seg.size() >= 3 && seg.front() == '{' && seg.back() == '}'; }

bool segments_match(const std::vector<std::string>& pattern, const std::vector<std::string_view>& path) {
  if (pattern.size() != path.size()) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (is_param(pattern[i])) {
      if (path[i].empty()) return false;
    } else if (pattern[i] != path[i]) {
      return false;
    }
  }
  return true;
}

// A catch-all's prefix segments (the "*" removed) against a path: the path
// has at least as many segments and they match. "/*" (no prefix) matches all.
bool catch_all_matches(const std::vector<std::string>& prefix, const std::vector<std::string_view>& path) {
  if (path.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (is_param(prefix[i]) ? path[i].empty() : prefix[i] != path[i]) return false;
  }
  return true;
}

// True when `a` is more specific than `b`: at the first segment where one has
// a static segment and the other a parameter, the static one wins.
bool more_specific(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    bool pa = is_param(a[i]), pb = is_param(b[i]);
    if (pa != pb) return !pa;
  }
  return false;
}

void fill_params(const std::vector<std::string>& pattern, const std::vector<std::string_view>& path,
                 http_request& req) {
  req.params.clear();
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (is_param(pattern[i])) {
      req.params.emplace_back(pattern[i].substr(1, pattern[i].size() - 2), std::string(path[i]));
    }
  }
}

std::vector<std::string> parse_pattern(const std::string& pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  }
  std::vector<std::string> out;
  for (auto s : split_path(pattern)) out.emplace_back(s);
  return out;
}

// Length of the UTF-8 sequence starting at s[i], or 0 when it is invalid
// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

// ---- http_request ----------------------------------------------------------

std::optional<std::string_view> http_request::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string_view> http_request::query_param(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view http_request::param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return {};
}

// ---- router ----------------------------------------------------------------

void router::add(std::string method, std::string pattern, http_handler handler) {
  add_entry(std::move(method), std::move(pattern), std::move(handler), {});
}

void router::add_async(std::string method, std::string pattern, async_http_handler handler) {
  add_entry(std::move(method), std::move(pattern), {}, std::move(handler));
}

void router::add_entry(std::string method, std::string pattern, http_handler handler, async_http_handler async) {
  entry e;
  e.segments = parse_pattern(pattern);
  if (e.segments.back() == "*") {
    e.segments.pop_back();
    e.catch_all = true;
  }
  e.method = std::move(method);
  e.pattern = std::move(pattern);
  e.handler = std::move(handler);
  e.async = std::move(async);
  entries_.push_back(std::move(e));
}

void router::add_ws(std::string pattern, ws_upgrade_handler handler) {
  entry e;
  e.segments = parse_pattern(pattern);
  e.method = "GET";
  e.pattern = std::move(pattern);
  e.ws = std::move(handler);
  entries_.push_back(std::move(e));
}

router::match router::find(http_request& req, bool websocket_upgrade) const {
  if (req.path.empty() || req.path.front() != '/') return match{};
  const auto path = split_path(req.path);
  const entry* best = nullptr;
  const entry* best_ws = nullptr;
  std::vector<std::string_view> allow;
  bool path_known = false;
  bool ws_known = false;
  const entry* best_catch_all = nullptr;
  for (const auto& e : entries_) {
    if (e.catch_all) {
      if (e.method == req.method && catch_all_matches(e.segments, path) &&
          (!best_catch_all || e.segments.size() > best_catch_all->segments.size())) {
        best_catch_all = &e;
      }
      continue;
    }
    if (!segments_match(e.segments, path)) continue;
    if (e.ws) {
      ws_known = true;
      // A WebSocket route only answers upgrades; a plain request to it is
      // neither a 404 nor a 405 for an HTTP route (the server says 426).
      if (websocket_upgrade && (!best_ws || more_specific(e.segments, best_ws->segments))) best_ws = &e;
      continue;
    }
    path_known = true;
    if (e.method == req.method) {
      if (!best || more_specific(e.segments, best->segments)) best = &e;
    } else if (std::find(allow.begin(), allow.end(), e.method) == allow.end()) {
      allow.push_back(e.method);
    }
  }
  match m;
  const entry* hit = best_ws ? best_ws : best;
  if (hit) {
    fill_params(hit->segments, path, req);
    req.route = hit->pattern;
    m.pattern = hit->pattern;
    if (hit == best_ws) {
      m.ws = &hit->ws;
    } else if (hit->async) {
      m.async = &hit->async;
    } else {
      m.handler = &hit->handler;
    }
    return m;
  }
  if (best_catch_all && !path_known && !ws_known) {
    req.params.clear();
    req.route = best_catch_all->pattern;
    m.pattern = best_catch_all->pattern;
    if (best_catch_all->async) {
      m.async = &best_catch_all->async;
    } else {
      m.handler = &best_catch_all->handler;
    }
    return m;
  }
  m.path_known = path_known;
  for (auto a : allow) {
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += a;
  }
  return m;
}

// ---- helpers ---------------------------------------------------------------

http_response error_response(int status, std::string_view code, std::string_view message) {
  http_response r;
  r.status = status;
  r.body.reserve(40 + code.size() + message.size());
  r.body += R"({"error":{"code":")";
  detail::append_json_escaped(r.body, code);
  r.body += R"(","message":")";
  detail::append_json_escaped(r.body, message);
  r.body += "\"}}";
  return r;
}

std::pair<std::string, std::uint16_t> split_host_port(std::string_view hostport) {
  std::string_view host, port;
  if (!hostport.empty() && hostport.front() == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos || close + 1 >= hostport.size() || hostport[close + 1] != ':') {
      throw std::invalid_argument("expected [ipv6]:port, got '" + std::string(hostport) + "'");
    }
    host = hostport.substr(1, close - 1);
    port = hostport.substr(close + 2);
    if (host.empty()) throw std::invalid_argument("empty host in '" + std::string(hostport) + "'");
  } else {
    auto colon = hostport.rfind(':');
    if (colon == std::string_view::npos) {
      throw std::invalid_argument("expected host:port, got '" + std::string(hostport) + "'");
    }
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      throw std::invalid_argument("an IPv6 address needs brackets: '" + std::string(hostport) + "'");
    }
  }
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || port.size() > 5 || ec != std::errc{} || p != port.data() + port.size() || value > 65535) {
    throw std::invalid_argument("bad port in '" + std::string(hostport) + "'");
  }
  // An empty host (":8080") means every interface.
  return {std::string(host), static_cast<std::uint16_t>(value)};
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    // A malformed escape is kept as it is rather than refused: the router
    // then simply finds no such path.
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

namespace detail {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = ascii_lower(c);
  return out;
}

void parse_target(std::string_view target, http_request& req) {
  // absolute-form: keep only what follows the authority.
  if (auto scheme = target.find("://"); scheme != std::string_view::npos && target.front() != '/') {
    auto rest = target.substr(scheme + 3);
    auto slash = rest.find_first_of("/?");
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  }
  if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  req.path = percent_decode(path.empty() ? std::string_view("/") : path, false);
  req.query.clear();
  if (q == std::string_view::npos) return;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    req.query.emplace_back(percent_decode(key, true), percent_decode(value, true));
  }
}

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xf]);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for each byte that is not valid UTF-8
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
}

bool parse_url(std::string_view url, parsed_url& out) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  out.scheme = to_lower(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  bool has_port = authority.front() == '[' ? authority.find("]:") != std::string_view::npos
                                           : authority.find(':') != std::string_view::npos;
  try {
    if (has_port) {
      auto [h, p] = split_host_port(authority);
      if (h.empty()) return false;
      out.host = std::move(h);
      out.port = p;
    } else {
      if (authority.front() == '[') {
        if (authority.back() != ']' || authority.size() < 3) return false;
        authority = authority.substr(1, authority.size() - 2);
      }
      out.host = std::string(authority);
      out.port = (out.scheme == "https" || out.scheme == "wss") ? 443 : 80;
    }
  } catch (const std::invalid_argument&) {
    return false;
  }
  if (target.empty()) {
    out.target = "/";
  } else if (target.front() == '?') {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  return true;
}

}  // namespace detail

}  // namespace chatd::net
