// The authorization matrix, written from the contract (api-v1.md, "who may
// call" and the precise rules): every kind of caller against every route and
// WebSocket request that touches someone's data, each answered as the
// contract says. Callers: no token, a customer who is a member (and the
// sender of the message), a shop that is the other member, an admin who is
// not a member, a customer who is a stranger to the conversation, and a
// banned customer.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "integration/chat_client.h"
#include "integration/chatd_process.h"

namespace chatd::testing {
namespace {

enum actor { none, user, shop, admin, stranger, banned, actor_count };
constexpr std::array<const char*, actor_count> actor_names{
    "no token", "member user", "member shop", "admin (not a member)", "stranger", "banned"};

// What a route is called with for one actor: placeholders {conv}, {msg},
// {self}, {victim}, {u}, {unique} are replaced by the fixture.
struct http_case {
  std::string method;
  std::string path;
  std::string body;  // JSON text, placeholders allowed
  std::array<int, actor_count> want;
  // A fresh conversation/message/victim per actor: the call changes them.
  bool fresh = false;
};

class authorization_matrix : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    proc_ = new chatd_process({{"rate_limits.login_per_minute", "0"},
                               {"rate_limits.send_per_second", "0"},
                               {"rate_limits.read_per_second", "0"},
                               {"rate_limits.typing_per_second", "0"},
                               {"admin.username", "root"},
                               {"admin.password", "rootpassword"}});
    proc_->start();
    api a(proc_->gateway());
    auto u = make_participant(a, "user", "matrix_user");
    auto s = make_participant(a, "shop", "matrix_shop");
    auto x = make_participant(a, "user", "matrix_stranger");
    auto b = make_participant(a, "user", "matrix_banned");
    ids_ = {"", u.id, s.id, "", x.id, b.id};
    tokens_ = {"", u.token, s.token, login(a, "admin", "root", "rootpassword"), x.token, b.token};
    ids_[admin] = a.get("/v1/me", tokens_[admin]).str("id");
    // The banned customer was a member of a conversation before the ban.
    auto with_banned = create_conversation(a, b, "group", {u.id});
    ASSERT_FALSE(with_banned.empty());
    EXPECT_EQ(a.post("/v1/participants/" + b.id + "/ban", json::object{}, tokens_[admin]).status, 204);
  }
  static void TearDownTestSuite() { delete proc_; }

  api c() const { return api(proc_->gateway()); }

  // A direct conversation of the member user and shop, with one message of
  // the user's in it.
  std::pair<std::string, std::string> conversation_with_message() {
    auto a = c();
    participant_handle u{ids_[user], tokens_[user], "matrix_user", "user"};
    auto conv = create_conversation(a, u, "direct", {ids_[shop]});
    // The pair's direct conversation is created once; later calls return it.
    EXPECT_FALSE(conv.empty());
    auto sent = a.post("/v1/conversations/" + conv + "/messages",
                       json::object{{"client_msg_id", unique("m")}, {"body", "hello"}}, tokens_[user]);
    EXPECT_TRUE(sent.status == 201) << sent.raw;
    return {conv, sent.status == 201 ? sent.str("id") : ""};
  }

  // A group of the member user and shop (the user created it).
  std::string fresh_group() {
    participant_handle u{ids_[user], tokens_[user], "matrix_user", "user"};
    return create_conversation(c(), u, "group", {ids_[shop]});
  }

  std::string unique(const std::string& base) { return base + std::to_string(counter_++); }

  std::string fill(std::string text, actor who, const std::map<std::string, std::string>& vars) {
    std::map<std::string, std::string> all = vars;
    all["{self}"] = ids_[who];
    all["{u}"] = ids_[user];
    all["{unique}"] = unique("n");
    for (const auto& [k, v] : all) {
      for (auto at = text.find(k); at != std::string::npos; at = text.find(k, at + v.size()))
        text.replace(at, k.size(), v);
    }
    return text;
  }

  void check(const http_case& hc) {
    auto [conv, msg] = conversation_with_message();
    for (int who = 0; who < actor_count; ++who) {
      std::map<std::string, std::string> vars{{"{conv}", conv}, {"{msg}", msg}};
      if (hc.fresh) {
        vars["{conv}"] = fresh_group();
        vars["{msg}"] = conversation_with_message().second;
        vars["{victim}"] = make_participant(c(), "user", unique("victim")).id;
      }
      const auto path = fill(hc.path, static_cast<actor>(who), vars);
      const auto body = fill(hc.body, static_cast<actor>(who), vars);
      auto r = c().call(hc.method, path, body, tokens_[who]);
      EXPECT_EQ(r.status, hc.want[who]) << hc.method << " " << hc.path << " as " << actor_names[who] << ": " << r.raw;
      // Every refusal carries the contract's code for its status.
      static const std::map<int, std::string> codes{
          {400, "bad_request"}, {401, "unauthorized"}, {403, "forbidden"}, {404, "not_found"}};
      if (auto code = codes.find(r.status); code != codes.end()) {
        EXPECT_EQ(r.error_code(), code->second) << r.raw;
      }
    }
  }

  static chatd_process* proc_;
  static inline std::array<std::string, actor_count> ids_;
  static inline std::array<std::string, actor_count> tokens_;
  static inline std::atomic<int> counter_{0};
};
chatd_process* authorization_matrix::proc_ = nullptr;

//                                   none user shop admin stranger banned
TEST_F(authorization_matrix, participants) {
  check({"GET", "/v1/me", "", {401, 200, 200, 200, 200, 403}});
  check({"GET", "/v1/participants/{u}", "", {401, 200, 200, 200, 200, 403}});
  check({"GET", "/v1/participants?kind=shop&q=matrix", "", {401, 200, 200, 200, 200, 403}});
  check({"POST",
         "/v1/admins",
         R"({"username":"{unique}","password":"password123","display_name":"A"})",
         {401, 403, 403, 201, 403, 403}});
  check({"POST", "/v1/participants/{victim}/ban", "{}", {401, 403, 403, 204, 403, 403}, true});
  check({"POST", "/v1/participants/{victim}/unban", "{}", {401, 403, 403, 204, 403, 403}, true});
}

TEST_F(authorization_matrix, conversations) {
  check({"GET", "/v1/conversations", "", {401, 200, 200, 200, 200, 403}});
  check({"POST",
         "/v1/conversations",
         R"({"kind":"group","members":["{victim}"],"title":"t"})",
         {401, 201, 201, 201, 201, 403},
         true});
  // Admins may read any conversation; strangers do not learn it exists.
  check({"GET", "/v1/conversations/{conv}/messages", "", {401, 200, 200, 200, 404, 403}});
  // Admins read, but do not write into conversations they are not in.
  check({"POST", "/v1/conversations/{conv}/read", R"({"message_id":"{msg}"})", {401, 204, 204, 403, 404, 403}});
  check({"POST",
         "/v1/conversations/{conv}/messages",
         R"({"client_msg_id":"{unique}","body":"hi"})",
         {401, 201, 201, 403, 404, 403}});
  // Adding someone to a group: its creator (the user) and admins; the shop
  // is a member but not the creator; strangers do not see the group.
  check({"POST",
         "/v1/conversations/{conv}/members",
         R"({"participant_id":"{victim}"})",
         {401, 200, 403, 200, 404, 403},
         true});
}

TEST_F(authorization_matrix, messages) {
  // Membership before ownership: a stranger gets not_found, a member who is
  // not the sender forbidden. Editing is the sender's alone.
  check({"PATCH", "/v1/messages/{msg}", R"({"body":"edited"})", {401, 200, 403, 403, 404, 403}});
  // Deleting: the sender or an admin.
  check({"DELETE", "/v1/messages/{msg}", "", {401, 200, 403, 200, 404, 403}, true});
}

TEST_F(authorization_matrix, presence_discovery_notifications_operations) {
  // Presence: oneself, conversation partners and admins.
  check({"GET", "/v1/presence/{u}", "", {401, 200, 200, 200, 404, 403}});
  check({"GET", "/v1/discovery", "", {401, 200, 200, 200, 200, 403}});
  check({"GET", "/v1/notifications", "", {401, 200, 200, 200, 200, 403}});
  check({"GET", "/v1/admin/dead-letters", "", {401, 403, 403, 200, 403, 403}});
  check({"POST", "/v1/admin/dead-letters/424242/replay", "{}", {401, 403, 403, 404, 403, 403}});
}

TEST_F(authorization_matrix, login_and_websocket_upgrade) {
  auto a = c();
  auto l = a.post("/v1/auth/login",
                  json::object{{"kind", "user"}, {"username", "matrix_banned"}, {"password", "password123"}});
  EXPECT_EQ(l.status, 403) << l.raw;
  auto d = a.get("/v1/discovery", tokens_[user]);
  ASSERT_EQ(d.status, 200);
  const std::string url(d.obj().at("servers").as_array().at(0).at("url").as_string());
  for (auto [who, want] : {std::pair{none, 401}, std::pair{banned, 403}}) {
    net::ws_client ws;
    auto s = ws.connect(url + (who == none ? "" : "?access_token=" + tokens_[who]));
    EXPECT_FALSE(s) << actor_names[who];
    EXPECT_EQ(ws.http_status(), want) << actor_names[who];
  }
}

// Each WebSocket request that names a conversation or a message, per actor
// who can connect: the answer's type, or the error code.
TEST_F(authorization_matrix, websocket_requests) {
  struct ws_case {
    std::string name;
    std::function<json::object(const std::string& conv, const std::string& msg)> frame;
    std::array<std::string, actor_count> want;  // by actor; none and banned cannot connect
    bool fresh = false;
  };
  const std::vector<ws_case> cases{
      {"send",
       [this](const std::string& conv, const std::string&) {
         return json::object{
             {"type", "send"}, {"conversation_id", conv}, {"client_msg_id", unique("w")}, {"body", "x"}};
       },
       {"", "ack", "ack", "forbidden", "not_found", ""}},
      {"history",
       [](const std::string& conv, const std::string&) {
         return json::object{{"type", "history"}, {"conversation_id", conv}};
       },
       {"", "history", "history", "history", "not_found", ""}},
      {"read",
       [](const std::string& conv, const std::string& msg) {
         return json::object{{"type", "read"}, {"conversation_id", conv}, {"message_id", msg}};
       },
       {"", "ok", "ok", "forbidden", "not_found", ""}},
      {"typing",
       [](const std::string& conv, const std::string&) {
         return json::object{{"type", "typing"}, {"conversation_id", conv}};
       },
       {"", "ok", "ok", "forbidden", "not_found", ""}},
      {"edit",
       [](const std::string&, const std::string& msg) {
         return json::object{{"type", "edit"}, {"message_id", msg}, {"body", "edited"}};
       },
       {"", "ack", "forbidden", "forbidden", "not_found", ""}},
      {"delete",
       [](const std::string&, const std::string& msg) {
         return json::object{{"type", "delete"}, {"message_id", msg}};
       },
       {"", "ack", "forbidden", "ack", "not_found", ""},
       true},
  };
  std::array<chat_client, actor_count> clients;
  for (int who : {user, shop, admin, stranger})
    ASSERT_TRUE(clients[who].connect(c(), tokens_[who])) << actor_names[who];
  auto [conv, msg] = conversation_with_message();
  for (const auto& wc : cases) {
    for (int who : {user, shop, admin, stranger}) {
      std::string m = msg;
      if (wc.fresh) m = conversation_with_message().second;
      auto answer = clients[who].request(wc.frame(conv, m));
      const auto& o = answer.as_object();
      std::string got(o.at("type").as_string());
      if (got == "error") got = std::string(o.at("code").as_string());
      EXPECT_EQ(got, wc.want[who]) << wc.name << " as " << actor_names[who] << ": " << json::serialize(answer);
    }
  }
}

}  // namespace
}  // namespace chatd::testing
