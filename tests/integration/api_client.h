// A thin JSON-over-HTTP client for integration tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "common/json.h"
#include "net/client.h"

namespace chatd::testing {

struct reply {
  int status = 0;
  json::value body;
  std::string raw;
  const json::object& obj() const { return body.as_object(); }
  std::string str(std::string_view key) const {
    const auto* v = body.is_object() ? body.as_object().if_contains(key) : nullptr;
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  }
  std::string error_code() const {
    if (!body.is_object()) return {};
    const auto* e = body.as_object().if_contains("error");
    if (!e || !e->is_object()) return {};
    const auto* c = e->as_object().if_contains("code");
    return c && c->is_string() ? std::string(c->as_string()) : std::string();
  }
};

class api {
 public:
  // "host:port" (plain http) or a base URL with its scheme ("https://host:port").
  explicit api(std::string hostport)
      : base_(hostport.find("://") == std::string::npos ? "http://" + hostport : std::move(hostport)) {}
  reply call(std::string_view method, std::string_view path, std::string_view body = {}, const std::string& token = {},
             net::header_list headers = {}) const {
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    auto r = net::http_request_sync(method, base_ + std::string(path), body, headers);
    reply out;
    if (!r) {
      ADD_FAILURE() << "request failed: " << r.err().message;
      return out;
    }
    out.status = r->status;
    out.raw = r->body;
    if (!r->body.empty()) {
      std::error_code ec;
      out.body = json::parse(r->body, ec);
    }
    return out;
  }
  reply get(std::string_view path, const std::string& token = {}) const { return call("GET", path, {}, token); }
  reply post(std::string_view path, const json::value& body, const std::string& token = {}) const {
    return call("POST", path, json::serialize(body), token);
  }
  const std::string& base() const { return base_; }

 private:
  std::string base_;
};

}  // namespace chatd::testing
