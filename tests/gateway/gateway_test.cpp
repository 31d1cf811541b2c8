// The gateway's routing and permissions, in process: a request goes through
// the real router to the real handler on a RocksDB store, with the queue and
// presence replaced by the fakes of tests/fakes.h. What the HTTP server does
// around it (parsing, limits, TLS) is tested in tests/net; the whole stack
// over sockets in tests/integration.
#include "gateway/gateway.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "auth/password.h"
#include "auth/token.h"
#include "chat/conversations.h"
#include "chat/messages.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/metrics.h"
#include "common/rate_limiter.h"
#include "fakes.h"
#include "net/http_internal.h"
#include "net/reply.h"
#include "participants/service.h"
#include "temp_store.h"

namespace chatd::gateway {
namespace {

using net::http_request;
using net::http_response;

class gateway_test : public ::testing::Test {
 protected:
  gateway_test() {
    alice = db.add_participant(ids.next(), store::participant_kind::user, "alice");
    hats = db.add_participant(ids.next(), store::participant_kind::shop, "hats");
    eve = db.add_participant(ids.next(), store::participant_kind::user, "eve");
    admin = db.add_participant(ids.next(), store::participant_kind::admin, "root");
    conv = conversations.create(alice, store::conversation_kind::direct, {hats.id}, "")->first.conv.id;
    deps d{*db, participants, conversations, metrics, limits, &messages, &presence, nullptr, {}};
    d.dead_letters_list = [](const http_request&) {
      return net::json_reply(200, json::object{{"dead_letters", json::array()}});
    };
    d.dead_letter_replay = [](const http_request&) { return net::json_reply(200, json::object{}); };
    gw.emplace(std::move(d), cfg);
    gw->add_routes(routes);
  }

  std::string token_for(const store::participant& p) const {
    auth::token_claims c;
    c.sub = p.id;
    c.kind = std::string(store::kind_name(p.kind));
    c.iat = now_ms() / 1000;
    c.exp = c.iat + 3600;
    return tokens.sign(c);
  }

  http_request request(std::string method, std::string target, std::string body = {}) {
    http_request req;
    req.method = std::move(method);
    req.target = std::move(target);
    net::detail::parse_target(req.target, req);
    req.body = std::move(body);
    req.remote_addr = "127.0.0.1";
    req.headers.emplace_back("content-type", "application/json");
    return req;
  }

  // Runs the request as the server would; nullopt while an asynchronous
  // handler has not answered (the held answer lands in `late`).
  std::optional<http_response> call(http_request& req, const store::participant* as) {
    if (as) req.headers.emplace_back("authorization", "Bearer " + token_for(*as));
    auto m = routes.find(req, false);
    if (m.handler) return (*m.handler)(req);
    if (m.async) {
      // The responder may be called after this returns: what it needs lives
      // in `answered`, shared with it.
      struct answered_state {
        bool returned = false;
        std::optional<http_response> now;
      };
      auto answered = std::make_shared<answered_state>();
      (*m.async)(req, [this, answered](http_response r) {
        if (answered->returned) {
          late = std::move(r);
        } else {
          answered->now = std::move(r);
        }
      });
      answered->returned = true;
      return answered->now;
    }
    http_response none;
    none.status = m.path_known ? 405 : 404;
    return none;
  }
  http_response answer(std::string method, std::string target, const store::participant* as, std::string body = {}) {
    auto req = request(std::move(method), std::move(target), std::move(body));
    auto r = call(req, as);
    EXPECT_TRUE(r.has_value()) << "no answer yet";
    return r.value_or(http_response{});
  }
  static std::string code_of(const http_response& r) {
    auto o = parse_json_object(r.body);
    if (!o) return "(not JSON: " + r.body + ")";
    return std::string(o->at("error").at("code").as_string());
  }
  std::string conv_path() const { return "/v1/conversations/" + format_id(conv); }

  testing::temp_store db;
  id_generator ids{1};
  auth::token_signer tokens{"gateway-test-secret-gateway-test"};
  participants::service participants{*db, tokens, auth::fast_password_params(), ids, 3600};
  chat::conversation_service conversations{*db, ids};
  testing::recording_publisher pub;
  chat::message_service messages{*db, ids, conversations, pub};
  testing::fixed_presence presence{store::presence_state::active};
  metrics_registry metrics;
  config cfg;
  participant_limits limits{cfg.rate_limits};
  std::optional<gateway> gw;
  net::router routes;
  std::optional<http_response> late;
  store::participant alice, hats, eve, admin;
  std::uint64_t conv = 0;
};

TEST_F(gateway_test, unknown_api_paths_are_json_404s_and_known_paths_list_their_methods) {
  auto r = answer("GET", "/v1/no-such-thing", &alice);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code_of(r), "not_found");

  auto req = request("PUT", "/v1/messages/1");
  auto m = routes.find(req, false);
  EXPECT_FALSE(m.handler || m.async);
  EXPECT_TRUE(m.path_known);
  EXPECT_NE(m.allow.find("PATCH"), std::string::npos) << m.allow;
  EXPECT_NE(m.allow.find("DELETE"), std::string::npos) << m.allow;
}

TEST_F(gateway_test, every_authenticated_route_wants_a_valid_token) {
  EXPECT_EQ(answer("GET", "/v1/conversations", nullptr).status, 401);
  auto req = request("GET", "/v1/conversations");
  req.headers.emplace_back("authorization", "Bearer not-a-token");
  auto r = call(req, nullptr);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(code_of(*r), "unauthorized");
  // The async routes check the token before any work.
  auto send = answer("POST", conv_path() + "/messages", nullptr, R"({"client_msg_id":"k","body":"hi"})");
  EXPECT_EQ(send.status, 401);
  EXPECT_TRUE(pub.durable.empty());
}

TEST_F(gateway_test, dead_letters_are_for_admins_only) {
  EXPECT_EQ(answer("GET", "/v1/admin/dead-letters", &alice).status, 403);
  EXPECT_EQ(answer("GET", "/v1/admin/dead-letters", &hats).status, 403);
  EXPECT_EQ(answer("POST", "/v1/admin/dead-letters/1/replay", &alice).status, 403);
  EXPECT_EQ(answer("GET", "/v1/admin/dead-letters", &admin).status, 200);
}

// Outsiders learn nothing (404, as for a conversation that does not exist);
// an admin may read but must join to write.
TEST_F(gateway_test, who_may_read_and_write_a_conversation) {
  EXPECT_EQ(answer("GET", conv_path() + "/messages", &eve).status, 404);
  EXPECT_EQ(answer("GET", conv_path() + "/messages", &admin).status, 200);
  EXPECT_EQ(answer("GET", conv_path() + "/messages", &hats).status, 200);
  auto outsider = answer("POST", conv_path() + "/messages", &eve, R"({"client_msg_id":"e","body":"hi"})");
  EXPECT_EQ(outsider.status, 404);
  auto not_joined = answer("POST", conv_path() + "/messages", &admin, R"({"client_msg_id":"a","body":"hi"})");
  EXPECT_EQ(not_joined.status, 403);
  EXPECT_EQ(code_of(not_joined), "forbidden");
  EXPECT_TRUE(pub.durable.empty()) << "nothing refused reached the queue";
}

TEST_F(gateway_test, presence_is_visible_only_to_conversation_partners_and_admins) {
  const auto path = "/v1/presence/" + format_id(alice.id);
  EXPECT_EQ(answer("GET", path, &hats).status, 200);
  EXPECT_EQ(answer("GET", path, &admin).status, 200);
  EXPECT_EQ(answer("GET", path, &alice).status, 200);
  auto stranger = answer("GET", path, &eve);
  EXPECT_EQ(stranger.status, 404);
  EXPECT_EQ(code_of(stranger), "not_found");
}

// Sends, edits and deletes answer from the queue's confirmation: the handler
// returns without an answer while the queue holds it, so no worker waits.
TEST_F(gateway_test, writes_answer_when_the_queue_confirms_not_before) {
  pub.hold = true;
  auto send = request("POST", conv_path() + "/messages", R"({"client_msg_id":"k1","body":"hello"})");
  EXPECT_FALSE(call(send, &alice).has_value()) << "answered before the queue confirmed";
  ASSERT_EQ(pub.held_count(), 1u);
  pub.release();
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 201) << late->body;
  const auto id = std::string(parse_json_object(late->body)->at("id").as_string());
  late.reset();

  pub.hold = true;
  auto edit = request("PATCH", "/v1/messages/" + id, R"({"body":"hello again"})");
  EXPECT_FALSE(call(edit, &alice).has_value());
  pub.release();
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 200) << late->body;
  EXPECT_EQ(parse_json_object(late->body)->at("body").as_string(), "hello again");
  late.reset();

  pub.hold = true;
  auto del = request("DELETE", "/v1/messages/" + id);
  EXPECT_FALSE(call(del, &alice).has_value());
  pub.release();
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 200) << late->body;
  EXPECT_TRUE(parse_json_object(late->body)->at("deleted").as_bool());
}

TEST_F(gateway_test, a_queue_that_refuses_is_a_503_and_the_edit_is_kept_for_the_retry) {
  auto sent = answer("POST", conv_path() + "/messages", &alice, R"({"client_msg_id":"k2","body":"first"})");
  ASSERT_EQ(sent.status, 201) << sent.body;
  const auto id = std::string(parse_json_object(sent.body)->at("id").as_string());
  pub.fail = true;
  auto refused = answer("PATCH", "/v1/messages/" + id, &alice, R"({"body":"second"})");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(code_of(refused), "unavailable");
  EXPECT_EQ(answer("PATCH", "/v1/messages/" + id, &hats, R"({"body":"hijack"})").status, 403);
  pub.fail = false;
  auto retried = answer("PATCH", "/v1/messages/" + id, &alice, R"({"body":"second"})");
  EXPECT_EQ(retried.status, 200) << retried.body;
  auto page = answer("GET", conv_path() + "/messages", &hats);
  EXPECT_EQ(parse_json_object(page.body)->at("messages").as_array().at(0).at("body").as_string(), "second");
}

}  // namespace
}  // namespace chatd::gateway
