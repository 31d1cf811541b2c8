// Small helpers every service uses to answer HTTP in the contract's shapes.
#pragma once

#include <charconv>
#include <optional>
#include <string_view>

#include "common/error.h"
#include "common/json.h"
#include "net/http.h"

namespace chatd::net {

inline http_response json_reply(int status, const json::value& v) {
  http_response r;
  r.status = status;
  r.body = chatd::to_json(v);
  return r;
}

inline http_response error_reply(const error& e) {
  return error_response(http_status(e.code), code_name(e.code), e.message);
}

inline http_response error_reply(errc code, std::string_view message) {
  return error_response(http_status(code), code_name(code), message);
}

inline http_response no_content() {
  http_response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

// The token of "Authorization: Bearer <token>", or of ?access_token= when
// allow_query (browsers cannot set headers on a WebSocket).
inline std::optional<std::string_view> bearer_token(const http_request& req, bool allow_query) {
  if (auto h = req.header("authorization")) {
    std::string_view v = *h;
    constexpr std::string_view prefix = "Bearer ";
    if (v.size() > prefix.size() && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) {
      return v.substr(prefix.size());
    }
    return std::nullopt;
  }
  if (allow_query) {
    if (auto q = req.query_param("access_token"); q && !q->empty()) return q;
  }
  return std::nullopt;
}

// ?name=<integer in [min,max]>; absent -> fallback; malformed -> bad_request.
inline result<std::int64_t> int_query(const http_request& req, std::string_view name, std::int64_t fallback,
                                      std::int64_t min, std::int64_t max) {
  auto q = req.query_param(name);
  if (!q) return fallback;
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(q->data(), q->data() + q->size(), v);
  if (q->empty() || ec != std::errc{} || p != q->data() + q->size() || v < min || v > max) {
    return make_error(errc::bad_request, std::string(name) + " must be an integer from " + std::to_string(min) +
                                             " to " + std::to_string(max));
  }
  return v;
}

}  // namespace chatd::net
