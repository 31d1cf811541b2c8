// The HTTP API of `chatd all`, over real sockets against a real process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "common/ids.h"
#include "integration/api_client.h"
#include "integration/chat_client.h"
#include "integration/chatd_process.h"

namespace chatd::testing {
namespace {

json::object obj(std::initializer_list<std::pair<json::string_view, json::value_ref>> init) {
  return json::object(init);
}

class api_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    proc_ = new chatd_process({{"admin.username", "root"},
                               {"admin.password", "rootpassword"},
                               {"rate_limits.login_per_minute", "0"},
                               {"rate_limits.send_per_second", "0"},
                               {"rate_limits.read_per_second", "0"},
                               {"rate_limits.typing_per_second", "0"}});
    proc_->start();
  }
  static void TearDownTestSuite() {
    delete proc_;
    proc_ = nullptr;
  }
  api c() const { return api(proc_->gateway()); }

  // Registers (kind "users"/"shops") and logs in; returns {id, token}.
  std::pair<std::string, std::string> make(const std::string& kind_path, const std::string& username) {
    auto r = c().post("/v1/" + kind_path,
                      obj({{"username", username}, {"password", "password123"}, {"display_name", "N " + username}}));
    EXPECT_EQ(r.status, 201) << r.raw;
    std::string kind = kind_path == "users" ? "user" : kind_path == "shops" ? "shop" : "admin";
    auto l = c().post("/v1/auth/login", obj({{"kind", kind}, {"username", username}, {"password", "password123"}}));
    EXPECT_EQ(l.status, 200) << l.raw;
    return {r.str("id"), l.str("access_token")};
  }
  std::string admin_token() {
    auto l = c().post("/v1/auth/login", obj({{"kind", "admin"}, {"username", "root"}, {"password", "rootpassword"}}));
    EXPECT_EQ(l.status, 200) << l.raw;
    return l.str("access_token");
  }

  static chatd_process* proc_;
};
chatd_process* api_test::proc_ = nullptr;

TEST_F(api_test, register_login_me) {
  auto r = c().post("/v1/users", obj({{"username", "alice"}, {"password", "password123"}, {"display_name", "Alice"}}));
  ASSERT_EQ(r.status, 201) << r.raw;
  EXPECT_EQ(r.str("kind"), "user");
  EXPECT_EQ(r.str("username"), "alice");
  EXPECT_EQ(r.str("display_name"), "Alice");
  ASSERT_TRUE(parse_id(r.str("id")));
  EXPECT_EQ(r.obj().if_contains("password"), nullptr);
  EXPECT_EQ(r.raw.find("argon2"), std::string::npos);

  auto again = c().post("/v1/users", obj({{"username", "alice"}, {"password", "password456"}, {"display_name", "A"}}));
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.error_code(), "conflict");
  // Same username as another kind is fine.
  auto shop = c().post(
      "/v1/shops",
      obj({{"username", "alice"}, {"password", "shoppass123"}, {"display_name", "Alice's"}, {"description", "hats"}}));
  EXPECT_EQ(shop.status, 201) << shop.raw;
  EXPECT_EQ(shop.str("kind"), "shop");

  auto login = c().post("/v1/auth/login", obj({{"kind", "user"}, {"username", "alice"}, {"password", "password123"}}));
  ASSERT_EQ(login.status, 200) << login.raw;
  EXPECT_EQ(login.str("token_type"), "Bearer");
  EXPECT_GT(login.obj().at("expires_in").as_int64(), 0);
  EXPECT_EQ(login.obj().at("participant").at("id").as_string(), r.str("id"));
  auto token = login.str("access_token");

  auto me = c().get("/v1/me", token);
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.str("id"), r.str("id"));
  EXPECT_EQ(me.str("username"), "alice");

  auto wrong = c().post("/v1/auth/login", obj({{"kind", "user"}, {"username", "alice"}, {"password", "nopenope1"}}));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.error_code(), "unauthorized");
  auto unknown = c().post("/v1/auth/login", obj({{"kind", "user"}, {"username", "nobody"}, {"password", "nopenope1"}}));
  EXPECT_EQ(unknown.status, 401);
  auto wrong_kind =
      c().post("/v1/auth/login", obj({{"kind", "shop"}, {"username", "alice"}, {"password", "password123"}}));
  EXPECT_EQ(wrong_kind.status, 401);
}

TEST_F(api_test, tokens_are_checked) {
  EXPECT_EQ(c().get("/v1/me").status, 401);
  EXPECT_EQ(c().get("/v1/me").error_code(), "unauthorized");
  EXPECT_EQ(c().get("/v1/me", "garbage").status, 401);
  auto [id, token] = make("users", "tok_user");
  std::string tampered = token;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(c().get("/v1/me", tampered).status, 401);
  auto raw = c().call("GET", "/v1/me", {}, {}, {{"Authorization", "Basic abc"}});
  EXPECT_EQ(raw.status, 401);
}

TEST_F(api_test, registration_validation) {
  struct bad_case {
    std::string body;
    std::string code;
  };
  std::vector<bad_case> cases = {
      {R"({"username":"ab","password":"password123","display_name":"x"})", "bad_request"},
      {R"({"username":"Alice","password":"password123","display_name":"x"})", "bad_request"},
      {R"({"username":"al ice","password":"password123","display_name":"x"})", "bad_request"},
      {R"({"username":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","password":"password123","display_name":"x"})",
       "bad_request"},
      {R"({"username":"okname","password":"short","display_name":"x"})", "bad_request"},
      {R"({"username":"okname","password":"password123"})", "bad_request"},
      {R"({"username":"okname","password":"password123","display_name":""})", "bad_request"},
      {R"({"username":"okname","password":"password123","display_name":"x","admin":true})", "bad_request"},
      {R"({"username":"okname","password":12345678,"display_name":"x"})", "bad_request"},
      {R"({"username":["okname"],"password":"password123","display_name":"x"})", "bad_request"},
      {R"({"username":"okname","password":"password123","display_name":"x")", "bad_request"},
      {R"([])", "bad_request"},
      {"", "bad_request"},
      {"{\"username\":\"okname\",\"password\":\"password123\",\"display_name\":\"\xff\xfe\"}", "bad_request"},
      {R"({"username":"okname","password":"password123","display_name":"x","description":"d"})", "bad_request"},
  };
  for (const auto& bc : cases) {
    auto r = c().call("POST", "/v1/users", bc.body);
    EXPECT_EQ(r.status, 400) << bc.body << " -> " << r.raw;
    EXPECT_EQ(r.error_code(), bc.code) << bc.body;
    ASSERT_TRUE(r.body.is_object()) << r.raw;
    EXPECT_TRUE(r.obj().at("error").at("message").is_string());
  }
  // None of them created anything.
  auto l = c().post("/v1/auth/login", obj({{"kind", "user"}, {"username", "okname"}, {"password", "password123"}}));
  EXPECT_EQ(l.status, 401);
}

TEST_F(api_test, admins_and_bans) {
  auto admin = admin_token();
  auto [uid, utoken] = make("users", "ban_me");
  // Only admins create admins.
  auto denied =
      c().post("/v1/admins", obj({{"username", "mod1"}, {"password", "password123"}, {"display_name", "M"}}), utoken);
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.error_code(), "forbidden");
  auto created =
      c().post("/v1/admins", obj({{"username", "mod1"}, {"password", "password123"}, {"display_name", "M"}}), admin);
  EXPECT_EQ(created.status, 201) << created.raw;
  EXPECT_EQ(created.str("kind"), "admin");

  EXPECT_EQ(c().post("/v1/participants/" + uid + "/ban", json::object(), utoken).status, 403);
  auto ban = c().post("/v1/participants/" + uid + "/ban", json::object(), admin);
  EXPECT_EQ(ban.status, 204) << ban.raw;
  EXPECT_EQ(c().get("/v1/me", utoken).status, 403);
  auto login = c().post("/v1/auth/login", obj({{"kind", "user"}, {"username", "ban_me"}, {"password", "password123"}}));
  EXPECT_EQ(login.status, 403);
  EXPECT_EQ(login.error_code(), "forbidden");
  EXPECT_EQ(c().post("/v1/participants/" + uid + "/unban", json::object(), admin).status, 204);
  EXPECT_EQ(c().get("/v1/me", utoken).status, 200);
  EXPECT_EQ(c().post("/v1/participants/999999999/ban", json::object(), admin).status, 404);
}

TEST_F(api_test, presence_is_visible_to_conversation_partners_only) {
  auto [a, at] = make("users", "pres_a");
  auto [b, bt] = make("shops", "pres_b");
  auto [x, xt] = make("users", "pres_stranger");
  auto admin = admin_token();
  // Before they share a conversation, b's presence is as unknown to a as a
  // conversation a cannot see.
  auto hidden = c().get("/v1/presence/" + b, at);
  EXPECT_EQ(hidden.status, 404) << hidden.raw;
  EXPECT_EQ(hidden.error_code(), "not_found");
  auto conv = c().post("/v1/conversations", obj({{"kind", "direct"}, {"members", json::array{json::value(b)}}}), at);
  ASSERT_EQ(conv.status, 201) << conv.raw;
  for (const auto* token : {&at, &bt, &admin}) {
    auto r = c().get("/v1/presence/" + b, *token);
    EXPECT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.str("participant_id"), b);
  }
  EXPECT_EQ(c().get("/v1/presence/" + a, bt).status, 200);  // both ways
  // A stranger learns nothing, not even that b exists.
  auto stranger = c().get("/v1/presence/" + b, xt);
  EXPECT_EQ(stranger.status, 404);
  EXPECT_EQ(stranger.error_code(), "not_found");
  EXPECT_EQ(c().get("/v1/presence/" + x, xt).status, 200);  // oneself
  EXPECT_EQ(c().get("/v1/presence/999999999", admin).status, 404);
  EXPECT_EQ(c().get("/v1/presence/" + b).status, 401);
}

TEST_F(api_test, participants_lookup_and_search) {
  auto [uid, token] = make("users", "finder");
  auto [sid, stoken] = make("shops", "hatshop");
  make("shops", "hatstore");
  make("shops", "shoes");
  auto p = c().get("/v1/participants/" + sid, token);
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(p.str("kind"), "shop");
  EXPECT_EQ(p.str("display_name"), "N hatshop");
  EXPECT_EQ(p.obj().if_contains("password_hash"), nullptr);
  EXPECT_EQ(c().get("/v1/participants/123", token).status, 404);
  EXPECT_EQ(c().get("/v1/participants/abc", token).status, 404);
  EXPECT_EQ(c().get("/v1/participants/..%2F..%2Fetc", token).status, 404);

  auto s = c().get("/v1/participants?kind=shop&q=hat&limit=10", token);
  ASSERT_EQ(s.status, 200) << s.raw;
  const auto& arr = s.obj().at("participants").as_array();
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(arr[0].at("username").as_string(), "hatshop");
  EXPECT_EQ(arr[1].at("username").as_string(), "hatstore");
  auto by_display = c().get("/v1/participants?kind=shop&q=n%20hats", token);
  EXPECT_EQ(by_display.obj().at("participants").as_array().size(), 2u);
  EXPECT_EQ(c().get("/v1/participants?kind=shop&q=hat&limit=1", token).obj().at("participants").as_array().size(), 1u);
  EXPECT_EQ(c().get("/v1/participants?kind=robot", token).status, 400);
  EXPECT_EQ(c().get("/v1/participants?kind=shop&limit=0", token).status, 400);
  EXPECT_EQ(c().get("/v1/participants?kind=shop&limit=99999999999999999999", token).status, 400);
}

TEST_F(api_test, conversations) {
  auto [a, at] = make("users", "conv_a");
  auto [b, bt] = make("shops", "conv_b");
  auto [x, xt] = make("users", "conv_x");
  auto d1 = c().post("/v1/conversations", obj({{"kind", "direct"}, {"members", json::array{json::value(b)}}}), at);
  ASSERT_EQ(d1.status, 201) << d1.raw;
  auto conv = d1.str("id");
  EXPECT_EQ(d1.str("kind"), "direct");
  EXPECT_EQ(d1.obj().at("members").as_array().size(), 2u);
  EXPECT_TRUE(d1.obj().at("last_message").is_null());
  EXPECT_EQ(d1.obj().at("unread_count").as_int64(), 0);
  // Unique per pair, from either side, listing the caller or not.
  auto d2 = c().post("/v1/conversations",
                     obj({{"kind", "direct"}, {"members", json::array{json::value(a), json::value(b)}}}), bt);
  EXPECT_EQ(d2.status, 200) << d2.raw;
  EXPECT_EQ(d2.str("id"), conv);

  auto g = c().post("/v1/conversations",
                    obj({{"kind", "group"}, {"members", json::array{json::value(b)}}, {"title", "Support"}}), at);
  ASSERT_EQ(g.status, 201) << g.raw;
  EXPECT_EQ(g.str("title"), "Support");

  auto list = c().get("/v1/conversations", at);
  ASSERT_EQ(list.status, 200);
  const auto& convs = list.obj().at("conversations").as_array();
  ASSERT_EQ(convs.size(), 2u);
  EXPECT_EQ(convs[0].at("id").as_string(), g.str("id"));  // most recent activity first
  EXPECT_EQ(convs[1].at("id").as_string(), conv);

  auto hist = c().get("/v1/conversations/" + conv + "/messages?limit=10", at);
  ASSERT_EQ(hist.status, 200) << hist.raw;
  EXPECT_TRUE(hist.obj().at("messages").as_array().empty());
  EXPECT_FALSE(hist.obj().at("has_more").as_bool());

  // Non-members see nothing, as if it did not exist.
  auto hidden = c().get("/v1/conversations/" + conv + "/messages", xt);
  EXPECT_EQ(hidden.status, 404);
  EXPECT_EQ(hidden.error_code(), "not_found");
  EXPECT_EQ(c().get("/v1/conversations", xt).obj().at("conversations").as_array().size(), 0u);
  EXPECT_EQ(c().get("/v1/conversations/" + conv + "/messages?limit=0", at).status, 400);
  EXPECT_EQ(c().get("/v1/conversations/" + conv + "/messages?limit=101", at).status, 400);
  EXPECT_EQ(c().get("/v1/conversations/" + conv + "/messages?before=xyz", at).status, 400);

  // Admins read any conversation and may join it.
  auto admin = admin_token();
  EXPECT_EQ(c().get("/v1/conversations/" + conv + "/messages", admin).status, 200);
  auto me = c().get("/v1/me", admin);
  auto join = c().post("/v1/conversations/" + g.str("id") + "/members", obj({{"participant_id", me.str("id")}}), admin);
  EXPECT_EQ(join.status, 200) << join.raw;
  EXPECT_EQ(join.obj().at("members").as_array().size(), 3u);

  // Bad input.
  EXPECT_EQ(c().post("/v1/conversations", obj({{"kind", "direct"}, {"members", json::array{}}}), at).status, 400);
  EXPECT_EQ(c().post("/v1/conversations", obj({{"kind", "chat"}, {"members", json::array{json::value(b)}}}), at).status,
            400);
  EXPECT_EQ(
      c().post("/v1/conversations", obj({{"kind", "group"}, {"members", json::array{json::value("1")}}}), at).status,
      404);
  EXPECT_EQ(
      c().post("/v1/conversations", obj({{"kind", "group"}, {"members", json::array{json::value(1)}}}), at).status,
      400);
  EXPECT_EQ(c().post("/v1/conversations/" + conv + "/read", obj({{"message_id", "12345"}}), at).status, 404);
  EXPECT_EQ(c().post("/v1/conversations/" + conv + "/read", obj({{"message_id", 12345}}), at).status, 400);
}

// In a group only the creator and admins add members: another member is
// forbidden, someone who cannot see the group gets not_found (membership
// before ownership), and admins still join with their own id.
TEST_F(api_test, group_members_are_added_by_the_creator_and_admins) {
  auto [owner, ot] = make("users", "grp_owner");
  auto [member, mt] = make("shops", "grp_member");
  auto [outsider, xt] = make("users", "grp_outsider");
  auto [n1, n1t] = make("users", "grp_new1");
  auto [n2, n2t] = make("users", "grp_new2");
  auto admin = admin_token();
  auto admin_id = c().get("/v1/me", admin).str("id");
  auto g = c().post("/v1/conversations",
                    obj({{"kind", "group"}, {"members", json::array{json::value(member)}}, {"title", "Team"}}), ot);
  ASSERT_EQ(g.status, 201) << g.raw;
  EXPECT_EQ(g.str("created_by"), owner);
  auto members = "/v1/conversations/" + g.str("id") + "/members";
  auto count = [](const reply& r) { return r.obj().at("members").as_array().size(); };

  auto by_owner = c().post(members, obj({{"participant_id", n1}}), ot);
  ASSERT_EQ(by_owner.status, 200) << by_owner.raw;
  EXPECT_EQ(count(by_owner), 3u);
  EXPECT_EQ(by_owner.str("created_by"), owner);

  auto by_member = c().post(members, obj({{"participant_id", n2}}), mt);
  EXPECT_EQ(by_member.status, 403) << by_member.raw;
  EXPECT_EQ(by_member.error_code(), "forbidden");
  EXPECT_NE(by_member.raw.find("creator"), std::string::npos) << by_member.raw;

  auto by_outsider = c().post(members, obj({{"participant_id", n2}}), xt);
  EXPECT_EQ(by_outsider.status, 404) << by_outsider.raw;
  EXPECT_EQ(by_outsider.error_code(), "not_found");
  EXPECT_EQ(c().post(members, obj({{"id", outsider}}), xt).status, 404);  // nor themselves

  auto by_admin = c().post(members, obj({{"participant_id", n2}}), admin);
  ASSERT_EQ(by_admin.status, 200) << by_admin.raw;
  EXPECT_EQ(count(by_admin), 4u);

  auto admin_joins = c().post(members, obj({{"id", admin_id}}), admin);
  ASSERT_EQ(admin_joins.status, 200) << admin_joins.raw;
  EXPECT_EQ(count(admin_joins), 5u);

  // Refused calls changed nothing: the outsider is still outside.
  auto seen = c().get("/v1/conversations/" + g.str("id"), ot);
  ASSERT_EQ(seen.status, 200) << seen.raw;
  EXPECT_EQ(count(seen), 5u);
  EXPECT_EQ(seen.str("created_by"), owner);
  EXPECT_EQ(c().get("/v1/conversations/" + g.str("id"), xt).status, 404);
}

TEST_F(api_test, http_edge_cases) {
  EXPECT_EQ(c().get("/nope").status, 404);
  EXPECT_EQ(c().get("/nope").error_code(), "not_found");
  auto wrong_method = c().call("DELETE", "/v1/users");
  EXPECT_EQ(wrong_method.status, 405);
  std::string big(2 * 1024 * 1024, 'x');
  auto too_big = c().call("POST", "/v1/users", big);
  EXPECT_EQ(too_big.status, 413);
  EXPECT_EQ(too_big.error_code(), "too_large");
  auto huge_header = c().call("GET", "/healthz", {}, {}, {{"X-Big", std::string(60 * 1024, 'a')}});
  EXPECT_EQ(huge_header.status, 413);
  // Path tricks and hostile ids: a clear 4xx, never a crash or a lookup.
  auto [u, ut] = make("users", "edge_user");
  for (std::string path : {"/v1/participants/../admins", "/v1/participants/%2e%2e", "/v1/participants/12abc",
                           "/v1/participants/99999999999999999999999", "/v1/participants/-1", "/v1/participants/%00",
                           "/v1/conversations/1%2F2/messages", "//v1/me"}) {
    auto r = c().get(path, ut);
    EXPECT_GE(r.status, 400) << path;
    EXPECT_LT(r.status, 500) << path;
  }
  // Deep nesting, huge numbers, duplicate keys.
  std::string deep = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_EQ(c().call("POST", "/v1/users", deep).status, 400);
  EXPECT_EQ(
      c().call("POST", "/v1/users", R"({"username":"okname2","password":"password123","display_name":1e999})").status,
      400);
  EXPECT_EQ(c().call("POST", "/v1/users",
                     R"({"username":"okname2","username":"okname3","password":"password123","display_name":"x"})")
                .status,
            400);
  // The server is still fine.
  EXPECT_EQ(c().get("/healthz").status, 200);
  EXPECT_EQ(c().get("/readyz").status, 200);
}

TEST_F(api_test, metrics_count_routes) {
  c().get("/healthz");
  auto m = c().get("/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.raw.find("# TYPE chatd_http_requests_total counter"), std::string::npos) << m.raw;
  EXPECT_NE(m.raw.find("chatd_http_request_duration_seconds_bucket{"), std::string::npos);
  EXPECT_NE(m.raw.find("route=\"/healthz\""), std::string::npos);
}

TEST(api_process, login_rate_limit_per_ip) {
  chatd_process p(std::vector<std::pair<std::string, std::string>>{{"rate_limits.login_per_minute", "3"}});
  p.start();
  api a(p.gateway());
  int limited = 0;
  for (int i = 0; i < 6; ++i) {
    auto r =
        a.post("/v1/auth/login", json::object{{"kind", "user"}, {"username", "whoever"}, {"password", "password123"}});
    if (r.status == 429) {
      ++limited;
      EXPECT_EQ(r.error_code(), "rate_limited");
    } else {
      EXPECT_EQ(r.status, 401);
    }
  }
  EXPECT_EQ(limited, 3);
}

// One bucket per participant and kind, whatever path the request takes: a
// client that spent its burst over WebSocket gets no fresh one over HTTP.
// The rates are so low that no token comes back during the test.
TEST(api_process, rate_limits_are_one_bucket_per_participant_for_websocket_and_http) {
  chatd_process p(std::vector<std::pair<std::string, std::string>>{{"rate_limits.send_per_second", "0.001"},
                                                                   {"rate_limits.send_burst", "6"},
                                                                   {"rate_limits.read_per_second", "0.001"},
                                                                   {"rate_limits.read_burst", "8"},
                                                                   {"rate_limits.typing_per_second", "0.001"},
                                                                   {"rate_limits.typing_burst", "2"}});
  p.start();
  api a(p.gateway());
  ASSERT_EQ(
      a.post("/v1/users", json::object{{"username", "rlx"}, {"password", "password123"}, {"display_name", "R"}}).status,
      201);
  auto token =
      a.post("/v1/auth/login", json::object{{"kind", "user"}, {"username", "rlx"}, {"password", "password123"}})
          .str("access_token");
  auto created = a.post("/v1/conversations", json::object{{"kind", "group"}, {"members", json::array{}}}, token);
  ASSERT_EQ(created.status, 201) << created.raw;  // write 1 of 6
  auto conv = created.str("id");
  chat_client ws;
  ASSERT_TRUE(ws.connect(a, token));  // GET /v1/discovery: read 1 of 8

  auto code_of = [](const json::value& frame) -> std::string {
    if (!frame.is_object()) return "no answer";
    const auto& o = frame.as_object();
    if (o.at("type").as_string() == "error") return std::string(o.at("code").as_string());
    return std::string(o.at("type").as_string());
  };

  // With every role in its own process the gateway and the chat server keep
  // their own buckets: the conversation and the discovery call were spent
  // at the gateway, and the chat server's buckets are still full.
  const bool shared = !p.is_cluster();

  // Writes: WebSocket frames of three kinds until the bucket is empty (5 in
  // one process, where the conversation took the first), then it is empty
  // on both paths.
  std::string mid;
  for (int i = 0; i < (shared ? 3 : 4); ++i) {
    auto ack = ws.send_message(conv, "m" + std::to_string(i));
    ASSERT_EQ(code_of(ack), "ack") << ack;
    mid = std::string(ack.as_object().at("message").as_object().at("id").as_string());
  }
  EXPECT_EQ(code_of(ws.request({{"type", "edit"}, {"message_id", mid}, {"body", "edited"}})), "ack");
  EXPECT_EQ(code_of(ws.request({{"type", "read"}, {"conversation_id", conv}, {"message_id", mid}})), "ok");
  EXPECT_EQ(code_of(ws.send_message(conv, "one more")), "rate_limited");
  if (shared) {
    auto http_send = a.post("/v1/conversations/" + conv + "/messages", json::object{{"body", "over http"}}, token);
    EXPECT_EQ(http_send.status, 429) << http_send.raw;
    EXPECT_EQ(http_send.error_code(), "rate_limited");
  }

  // Reads: history frames until the bucket is empty, then neither a history
  // frame nor (in one process) a GET passes.
  for (int i = 0; i < (shared ? 7 : 8); ++i) {
    EXPECT_EQ(code_of(ws.request({{"type", "history"}, {"conversation_id", conv}})), "history") << i;
  }
  EXPECT_EQ(code_of(ws.request({{"type", "history"}, {"conversation_id", conv}})), "rate_limited");
  if (shared) {
    auto list = a.get("/v1/conversations/" + conv + "/messages", token);
    EXPECT_EQ(list.status, 429) << list.raw;
  }

  // Typing has its own bucket: the write and read buckets being empty does
  // not stop it, and its own burst does.
  EXPECT_EQ(code_of(ws.request({{"type", "typing"}, {"conversation_id", conv}})), "ok");
  EXPECT_EQ(code_of(ws.request({{"type", "typing"}, {"conversation_id", conv}})), "ok");
  EXPECT_EQ(code_of(ws.request({{"type", "typing"}, {"conversation_id", conv}})), "rate_limited");
  // Pings spend nothing, and the connection stays open through all of it.
  EXPECT_EQ(code_of(ws.request({{"type", "ping"}})), "pong");
}

TEST(api_process, data_survives_restart_and_sigterm_exits_cleanly) {
  std::string dir;
  {
    chatd_process p;
    p.start();
    dir = p.data_dir();
    api a(p.gateway());
    ASSERT_EQ(
        a.post("/v1/users", json::object{{"username", "keeper"}, {"password", "password123"}, {"display_name", "K"}})
            .status,
        201);
    EXPECT_EQ(p.stop(), 0);
    chatd_process again({}, "all", dir);
    again.start();
    api b(again.gateway());
    auto l =
        b.post("/v1/auth/login", json::object{{"kind", "user"}, {"username", "keeper"}, {"password", "password123"}});
    EXPECT_EQ(l.status, 200) << l.raw;
    EXPECT_EQ(again.stop(), 0);
  }
  std::filesystem::remove_all(dir);
}

// Runs the binary with arguments and returns {exit code, stdout+stderr}.
std::pair<int, std::string> run(const std::string& args, const std::string& env = {}) {
  std::string cmd = env + " " + chatd_binary() + " " + args + " 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int st = ::pclose(f);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST(cli, help_version_and_config_errors) {
  auto [hc, help] = run("--help");
  EXPECT_EQ(hc, 0);
  for (const char* role :
       {"all", "gateway", "discovery", "chat-server", "presence", "main-chat", "notification", "admin"}) {
    EXPECT_NE(help.find(role), std::string::npos) << role;
  }
  auto [vc, version] = run("--version");
  EXPECT_EQ(vc, 0);
  EXPECT_NE(version.find("chatd"), std::string::npos);
  auto [uc, unknown] = run("all --set gateway.listn=127.0.0.1:0");
  EXPECT_NE(uc, 0);
  EXPECT_NE(unknown.find("gateway.listn"), std::string::npos) << unknown;
  auto [ec, env_out] = run("all --set storage.path=/tmp/chatd-cli-none", "CHATD_GATEWAY_LISTN=127.0.0.1:0");
  EXPECT_NE(ec, 0);
  EXPECT_NE(env_out.find("CHATD_GATEWAY_LISTN"), std::string::npos) << env_out;
  auto [nc, norole] = run("");
  EXPECT_NE(nc, 0);
}

TEST(cli, admin_create_then_login) {
  auto dir = std::filesystem::temp_directory_path() / ("chatd-admin-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  // The one-shot commands must use the backends the server below uses
  // (CHATD_TEST_SET, e.g. storage.backend=scylla with a keyspace per dir).
  std::string sets;
  for (const auto& [k, v] : extra_sets_from_env(dir.string())) sets += " --set " + k + "=" + v;
  auto [rc, out] =
      run("admin create --username boss --password bosspassword --set auth.password_cost=fast "
          "--set storage.path=" +
          dir.string() + sets);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"kind\":\"admin\""), std::string::npos) << out;
  auto [rc2, out2] =
      run("admin create --username boss --password bosspassword --set auth.password_cost=fast "
          "--set storage.path=" +
          dir.string() + sets);
  EXPECT_EQ(rc2, 0) << out2;
  EXPECT_NE(out2.find("exists"), std::string::npos);
  auto [rc3, out3] = run("admin create --username B --password bosspassword --set storage.path=" + dir.string() + sets);
  EXPECT_NE(rc3, 0);
  {
    chatd_process p({}, "all", dir.string());
    p.start();
    api a(p.gateway());
    auto l =
        a.post("/v1/auth/login", json::object{{"kind", "admin"}, {"username", "boss"}, {"password", "bosspassword"}});
    EXPECT_EQ(l.status, 200) << l.raw;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chatd::testing
