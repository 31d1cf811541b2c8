#include "discovery/registry.h"

#include <cmath>

#include "common/json.h"

namespace chatd::discovery {

bool valid_region(std::string_view region) {
  if (region.empty() || region.size() > 32) return false;
  for (char c : region) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

bool printable_utf8(std::string_view s) {
  if (!valid_utf8(s)) return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace

status validate_server_info(const server_info& s) {
  if (s.id.empty() || s.id.size() > 128 || !printable_utf8(s.id)) {
    return make_error(errc::bad_request, "server id must be 1 to 128 bytes of printable UTF-8");
  }
  // Clients connect to this URL as it is, so it must at least be a WebSocket
  // URL with something after the scheme; anything finer is the operator's job.
  bool ws = starts_with_ci(s.url, "ws://") || starts_with_ci(s.url, "wss://");
  std::size_t scheme_len = starts_with_ci(s.url, "wss://") ? 6 : 5;
  if (!ws || s.url.size() <= scheme_len || s.url.size() > 2048 || !printable_utf8(s.url)) {
    return make_error(errc::bad_request, "server url must be a ws:// or wss:// URL of at most 2048 bytes");
  }
  if (!valid_region(s.region)) {
    return make_error(errc::bad_request, "server region must match [a-z0-9_-]{1,32}");
  }
  if (s.lat.has_value() != s.lon.has_value()) {
    return make_error(errc::bad_request, "server lat and lon must be given together");
  }
  if (s.lat && !(std::isfinite(*s.lat) && *s.lat >= -90 && *s.lat <= 90)) {
    return make_error(errc::bad_request, "server lat must be between -90 and 90");
  }
  if (s.lon && !(std::isfinite(*s.lon) && *s.lon >= -180 && *s.lon <= 180)) {
    return make_error(errc::bad_request, "server lon must be between -180 and 180");
  }
  if (!(std::isfinite(s.load) && s.load >= 0 && s.load <= 1)) {
    return make_error(errc::bad_request, "server load must be between 0 and 1");
  }
  return {};
}

status validate_heartbeat(const server_info& s, std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0 || ttl > max_ttl) {
    return make_error(errc::bad_request, "ttl must be between 1 ms and 24 h");
  }
  return validate_server_info(s);
}

}  // namespace chatd::discovery
