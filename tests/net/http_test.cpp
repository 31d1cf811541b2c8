#include "net/http.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <stdexcept>

#include "net/http_internal.h"

namespace chatd::net {
namespace {

http_response ok(std::string body) {
  http_response r;
  r.body = std::move(body);
  return r;
}

http_request get(std::string method, std::string path) {
  http_request r;
  r.method = std::move(method);
  r.path = std::move(path);
  return r;
}

// Runs the matched handler so the test sees which route won.
std::string run(const router::match& m, http_request& req) { return m.handler ? (*m.handler)(req).body : "<none>"; }

TEST(net_router, matches_static_and_param_routes) {
  router r;
  r.add("GET", "/v1/participants/{id}", [](http_request& q) { return ok("one:" + std::string(q.param("id"))); });
  r.add("GET", "/v1/participants", [](http_request&) { return ok("list"); });
  r.add("POST", "/v1/participants/{id}/ban", [](http_request& q) { return ok("ban:" + std::string(q.param("id"))); });

  auto q = get("GET", "/v1/participants/42");
  auto m = r.find(q, false);
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(run(m, q), "one:42");
  EXPECT_EQ(q.route, "/v1/participants/{id}");
  EXPECT_EQ(m.pattern, "/v1/participants/{id}");
  ASSERT_EQ(q.params.size(), 1u);
  EXPECT_EQ(q.params[0].first, "id");

  q = get("GET", "/v1/participants");
  m = r.find(q, false);
  EXPECT_EQ(run(m, q), "list");
  EXPECT_TRUE(q.params.empty());

  q = get("POST", "/v1/participants/7/ban");
  m = r.find(q, false);
  EXPECT_EQ(run(m, q), "ban:7");
  EXPECT_EQ(q.param("missing"), "");
}

TEST(net_router, static_segment_wins_over_param_whatever_the_order) {
  router r;
  r.add("GET", "/v1/conversations/{id}", [](http_request&) { return ok("param"); });
  r.add("GET", "/v1/conversations/unread", [](http_request&) { return ok("static"); });
  r.add("GET", "/a/{x}/c", [](http_request&) { return ok("param-first"); });
  r.add("GET", "/a/b/{y}", [](http_request&) { return ok("static-first"); });

  auto q = get("GET", "/v1/conversations/unread");
  EXPECT_EQ(run(r.find(q, false), q), "static");
  EXPECT_EQ(q.route, "/v1/conversations/unread");
  q = get("GET", "/v1/conversations/12");
  EXPECT_EQ(run(r.find(q, false), q), "param");
  q = get("GET", "/a/b/c");
  EXPECT_EQ(run(r.find(q, false), q), "static-first");
  EXPECT_EQ(q.param("y"), "c");
}

TEST(net_router, unknown_path_and_wrong_method) {
  router r;
  r.add("GET", "/v1/conversations/{id}", [](http_request&) { return ok("get"); });
  r.add("DELETE", "/v1/conversations/{id}", [](http_request&) { return ok("delete"); });

  auto q = get("POST", "/v1/conversations/5");
  auto m = r.find(q, false);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "GET, DELETE");
  EXPECT_EQ(q.route, "");

  for (std::string path :
       {"/v1/conversations", "/v1/conversations/5/x", "/v1/conversations/", "", "v1/conversations/5"}) {
    q = get("GET", path);
    m = r.find(q, false);
    EXPECT_EQ(m.handler, nullptr) << path;
    EXPECT_FALSE(m.path_known) << path;
  }
  // Methods are case-sensitive.
  q = get("get", "/v1/conversations/5");
  EXPECT_TRUE(r.find(q, false).path_known);
}

TEST(net_router, websocket_routes_only_answer_upgrades) {
  router r;
  r.add_ws("/v1/ws", [](http_request&) -> ws_upgrade_result { return http_response{}; });
  r.add("GET", "/v1/ws/info", [](http_request&) { return ok("info"); });

  auto q = get("GET", "/v1/ws");
  auto m = r.find(q, true);
  EXPECT_NE(m.ws, nullptr);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_EQ(q.route, "/v1/ws");

  q = get("GET", "/v1/ws");
  m = r.find(q, false);
  EXPECT_EQ(m.ws, nullptr);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_FALSE(m.path_known);

  // An upgrade to an HTTP-only path falls back to the HTTP route.
  q = get("GET", "/v1/ws/info");
  m = r.find(q, true);
  EXPECT_EQ(m.ws, nullptr);
  EXPECT_EQ(run(m, q), "info");
}

TEST(net_router, catch_all_answers_only_paths_no_other_route_knows) {
  router r;
  r.add("GET", "/*", [](http_request& q) { return ok("files:" + q.path); });
  r.add("GET", "/static/*", [](http_request&) { return ok("static"); });
  r.add("GET", "/v1/conversations/{id}", [](http_request&) { return ok("conversation"); });
  r.add("POST", "/v1/users", [](http_request&) { return ok("register"); });
  r.add_ws("/v1/ws", [](http_request&) -> ws_upgrade_result { return http_response{}; });

  // Every route that existed before keeps its answer.
  auto q = get("GET", "/v1/conversations/9");
  EXPECT_EQ(run(r.find(q, false), q), "conversation");
  q = get("GET", "/v1/users");  // known path, other method: still a 405
  auto m = r.find(q, false);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "POST");
  q = get("GET", "/v1/ws");  // a WebSocket path without an upgrade: still the server's 426
  m = r.find(q, false);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_FALSE(m.path_known);
  q = get("GET", "/v1/ws");
  EXPECT_NE(r.find(q, true).ws, nullptr);

  // Unknown paths, the root included, reach the catch-all; the longest prefix wins.
  for (std::string path : {"/", "/index.html", "/assets/app.js", "/chat/123", "/v1/nope"}) {
    q = get("GET", path);
    EXPECT_EQ(run(r.find(q, false), q), "files:" + path) << path;
    EXPECT_EQ(q.route, "/*");
  }
  q = get("GET", "/static/a/b.css");
  EXPECT_EQ(run(r.find(q, false), q), "static");
  EXPECT_EQ(q.route, "/static/*");
  q = get("GET", "/static");
  EXPECT_EQ(run(r.find(q, false), q), "static");

  // Another method on an unknown path stays a plain 404, not a 405.
  q = get("POST", "/index.html");
  m = r.find(q, false);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_FALSE(m.path_known);
  q = get("GET", "relative");
  EXPECT_EQ(r.find(q, false).handler, nullptr);
}

TEST(net_router, refuses_patterns_without_leading_slash) {
  router r;
  EXPECT_THROW(r.add("GET", "v1/x", [](http_request&) { return ok(""); }), std::invalid_argument);
}

TEST(net_percent_decode, decodes_escapes_and_keeps_malformed_ones) {
  EXPECT_EQ(percent_decode("a%20b%2Fc", false), "a b/c");
  EXPECT_EQ(percent_decode("%41%42%43", false), "ABC");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("%zz%4", false), "%zz%4");
  EXPECT_EQ(percent_decode("100%", false), "100%");
  EXPECT_EQ(percent_decode("%e2%82%AC", false), "\xe2\x82\xac");
  EXPECT_EQ(percent_decode("%00", false), std::string(1, '\0'));
  EXPECT_EQ(percent_decode("", true), "");
}

TEST(net_parse_target, splits_path_and_decodes_query) {
  http_request r;
  detail::parse_target("/v1/participants%2Fx/a%20b?q=caf%C3%A9+au+lait&limit=10&flag&=v&&x=1%3D2", r);
  EXPECT_EQ(r.path, "/v1/participants/x/a b");
  ASSERT_EQ(r.query.size(), 5u);
  EXPECT_EQ(*r.query_param("q"), "caf\xc3\xa9 au lait");
  EXPECT_EQ(*r.query_param("limit"), "10");
  EXPECT_EQ(*r.query_param("flag"), "");
  EXPECT_EQ(*r.query_param(""), "v");
  EXPECT_EQ(*r.query_param("x"), "1=2");
  EXPECT_FALSE(r.query_param("nope").has_value());

  detail::parse_target("http://example.com:8080/healthz?a=1", r);
  EXPECT_EQ(r.path, "/healthz");
  EXPECT_EQ(*r.query_param("a"), "1");
  detail::parse_target("/only", r);
  EXPECT_EQ(r.path, "/only");
  EXPECT_TRUE(r.query.empty());
}

TEST(net_http_request, header_lookup_by_lower_case_name) {
  http_request r;
  r.headers = {{"content-type", "application/json"}, {"x-a", "1"}, {"x-a", "2"}};
  EXPECT_EQ(*r.header("content-type"), "application/json");
  EXPECT_EQ(*r.header("x-a"), "1");
  EXPECT_FALSE(r.header("authorization").has_value());
}

TEST(net_split_host_port, accepts_host_port_and_bracketed_v6) {
  EXPECT_EQ(split_host_port("127.0.0.1:8080"), (std::pair<std::string, std::uint16_t>{"127.0.0.1", 8080}));
  EXPECT_EQ(split_host_port("localhost:0"), (std::pair<std::string, std::uint16_t>{"localhost", 0}));
  EXPECT_EQ(split_host_port("[::1]:443"), (std::pair<std::string, std::uint16_t>{"::1", 443}));
  EXPECT_EQ(split_host_port(":9000"), (std::pair<std::string, std::uint16_t>{"", 9000}));
  EXPECT_EQ(split_host_port("h:65535").second, 65535);
}

TEST(net_split_host_port, refuses_malformed_input) {
  for (const char* bad :
       {"localhost", "h:", "h:65536", "h:-1", "h:12a", "::1:80", "[::1]", "[::1]80", "[]:80", "h:123456", ""}) {
    EXPECT_THROW(split_host_port(bad), std::invalid_argument) << bad;
  }
}

TEST(net_parse_url, splits_urls) {
  detail::parsed_url u;
  ASSERT_TRUE(detail::parse_url("http://127.0.0.1:8080/v1/x?a=b", u));
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/v1/x?a=b");
  ASSERT_TRUE(detail::parse_url("ws://[::1]:9/ws", u));
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 9);
  ASSERT_TRUE(detail::parse_url("http://example.com", u));
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.target, "/");
  ASSERT_TRUE(detail::parse_url("ws://h:1?since=5", u));
  EXPECT_EQ(u.target, "/?since=5");
  EXPECT_FALSE(detail::parse_url("127.0.0.1:80/x", u));
  EXPECT_FALSE(detail::parse_url("http://:80/", u));
  EXPECT_FALSE(detail::parse_url("http://h:99999/", u));
}

// The body must always be valid JSON of exactly the contract's shape.
boost::json::value parse_json(const std::string& s) {
  boost::system::error_code ec;
  auto v = boost::json::parse(s, ec);
  EXPECT_FALSE(ec) << s;
  return v;
}

TEST(net_error_response, has_the_contract_shape) {
  auto r = error_response(404, "not_found", "participant not found");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":{"code":"not_found","message":"participant not found"}})");
}

TEST(net_error_response, escapes_quotes_backslashes_and_control_characters) {
  std::string msg = "say \"hi\"\\ \n\t\r\b\f";
  msg.push_back('\x01');
  msg.push_back('\x1f');
  msg.push_back('\0');
  msg += "end";
  auto r = error_response(400, "bad_request", msg);
  EXPECT_EQ(r.body, R"({"error":{"code":"bad_request","message":"say \"hi\"\\ \n\t\r\b\f\u0001\u001f\u0000end"}})");
  auto v = parse_json(r.body);
  EXPECT_EQ(v.at("error").at("message").as_string(), msg);
}

TEST(net_error_response, replaces_invalid_utf8_and_keeps_valid_utf8) {
  const std::string valid = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  auto r = error_response(400, "bad_request", valid);
  EXPECT_EQ(parse_json(r.body).at("error").at("message").as_string(), valid);

  // Lone continuation byte, truncated sequence, overlong '/', a UTF-16
  // surrogate, a code point above U+10FFFF and 0xFF.
  const std::string invalid =
      std::string("a\x80") + "b\xe2\x82" + "c\xc0\xaf" + "d\xed\xa0\x80" + "e\xf4\x90\x80\x80" + "f\xff";
  r = error_response(400, "bad_request", invalid);
  auto v = parse_json(r.body);
  std::string msg(v.at("error").at("message").as_string());
  EXPECT_EQ(msg.find('\x80'), std::string::npos);
  EXPECT_EQ(msg.find('\xff'), std::string::npos);
  EXPECT_EQ(msg.substr(0, 5),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_NE(msg.find("f\xef\xbf\xbd"), std::string::npos);
  // Every byte is valid UTF-8 now: a strict parse of the body succeeded and
  // re-escaping gives the same text back.
  std::string again;
  detail::append_json_escaped(again, msg);
  EXPECT_EQ(again, msg);
}

}  // namespace
}  // namespace chatd::net
