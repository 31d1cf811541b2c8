// The notification service against real webhook receivers (HTTP servers on
// 127.0.0.1): body shape, signatures, retries with backoff, never a second
// successful delivery, coalescing, stopping, and resuming after a restart.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "common/config.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/metrics.h"
#include "net/client.h"
#include "net/http.h"
#include "notification/internal_api.h"
#include "notification/notification_json.h"
#include "notification/retry.h"
#include "notification/service.h"
#include "test_support.h"

namespace chatd::notification {
namespace {

using namespace std::chrono_literals;
using testing::make_message;
using testing::make_participant;
using testing::wait_for;
using testing::webhook_receiver;

constexpr const char* kSecret = "whsec-test-secret";

// Computed here with OpenSSL directly, not with the code under test: the
// contract signs "<X-Chatd-Timestamp>.<raw body>".
std::string expected_signature(std::string_view timestamp, std::string_view body) {
  std::string text = std::string(timestamp) + "." + std::string(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret, static_cast<int>(std::strlen(kSecret)),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 0xF];
  }
  return out;
}

std::set<std::string> keys_of(const json::object& o) {
  std::set<std::string> out;
  for (const auto& kv : o) out.emplace(kv.key());
  return out;
}

// Whether the receiver got a call for `recipient`: the marker calls the
// checks that something did not happen wait for.
bool has_call_for(const webhook_receiver& hook, store::id_t recipient) {
  for (const auto& c : hook.calls()) {
    auto body = parse_json_object(c.body);
    if (body.ok() && body->at("recipient_id").as_string() == format_id(recipient)) return true;
  }
  return false;
}

class notification_webhook : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = testing::open_store(dir_);
    ASSERT_TRUE(store_);
    alice_ = make_participant(*store_, ids_, "alice");
    bob_ = make_participant(*store_, ids_, "bob");
    cfg_.webhook_secret = kSecret;
    cfg_.coalesce_ms = 0;
    cfg_.retry_initial_ms = 20;
    cfg_.retry_max_ms = 1000;
    cfg_.max_attempts = 12;
  }
  void TearDown() override {
    if (svc_) svc_->stop();
    svc_.reset();
    store_.reset();
  }

  service& start(const std::string& url) {
    cfg_.webhook_url = url;
    svc_ = std::make_unique<service>(*store_, ids_, cfg_, metrics_);
    svc_->start();
    return *svc_;
  }

  std::uint64_t metric(const char* name) { return metrics_.counter(name, "").value(); }

  testing::temp_dir dir_;
  std::unique_ptr<store::chat_store> store_;
  id_generator ids_{3};
  store::participant alice_, bob_;
  notifications_config cfg_;
  metrics_registry metrics_;
  std::unique_ptr<service> svc_;
};

TEST_F(notification_webhook, WebhookBodyIsTheStoredNotificationSigned) {
  webhook_receiver hook;
  service& s = start(hook.url());
  const store::id_t conv = ids_.next();
  auto m = make_message(ids_, conv, alice_, "hi bob, \"quoted\" \xE2\x9C\x93");
  ASSERT_TRUE(s.notify({bob_.id, m}).ok());
  ASSERT_TRUE(wait_for([&] { return hook.count() == 1; }));

  auto call = hook.calls()[0];
  EXPECT_EQ(call.header("content-type").value_or(""), "application/json");
  ASSERT_TRUE(call.header("x-chatd-signature"));
  ASSERT_TRUE(call.header("x-chatd-timestamp"));
  // Unix seconds, taken when the attempt was signed: a receiver refuses
  // attempts older than five minutes.
  auto ts = std::stoll(*call.header("x-chatd-timestamp"));
  auto now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(std::llabs(now_s - ts), 5);
  EXPECT_EQ(*call.header("x-chatd-signature"), expected_signature(*call.header("x-chatd-timestamp"), call.body));
  // The body alone (the old scheme) is not what is signed.
  EXPECT_NE(*call.header("x-chatd-signature"), expected_signature("", call.body));

  auto body = parse_json_object(call.body);
  ASSERT_TRUE(body.ok()) << call.body;
  EXPECT_EQ(keys_of(*body), (std::set<std::string>{"id", "recipient_id", "conversation_id", "message_id", "sender",
                                                   "preview", "count", "created_at"}));
  auto rows = store_->list_notifications(bob_.id, 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  const auto& n = (*rows)[0];
  EXPECT_EQ(body->at("id").as_string(), format_id(n.id));
  EXPECT_EQ(body->at("recipient_id").as_string(), format_id(bob_.id));
  EXPECT_EQ(body->at("conversation_id").as_string(), format_id(conv));
  EXPECT_EQ(body->at("message_id").as_string(), format_id(m.id));
  EXPECT_EQ(body->at("preview").as_string(), m.body);
  EXPECT_EQ(body->at("count").as_int64(), 1);
  EXPECT_EQ(body->at("created_at").as_int64(), n.created_at);
  const auto& sender = body->at("sender").as_object();
  EXPECT_EQ(keys_of(sender), (std::set<std::string>{"id", "kind", "display_name"}));
  EXPECT_EQ(sender.at("id").as_string(), format_id(alice_.id));
  EXPECT_EQ(sender.at("kind").as_string(), "user");
  EXPECT_EQ(sender.at("display_name").as_string(), alice_.display_name);

  // The same object is what GET /v1/notifications lists.
  net::http_request req;
  req.method = "GET";
  req.target = "/v1/notifications?limit=10";
  req.path = "/v1/notifications";
  req.query = {{"limit", "10"}};
  auto resp = s.handle_list(req, bob_.id);
  ASSERT_EQ(resp.status, 200);
  auto listed = parse_json_object(resp.body);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->at("notifications").as_array().size(), 1u);
  EXPECT_EQ(json::serialize(listed->at("notifications").as_array()[0]), call.body);

  EXPECT_TRUE(wait_for([&] { return s.pending() == 0; }));
  EXPECT_EQ(metric("chatd_notifications_total"), 1u);
  EXPECT_EQ(metric("chatd_notification_attempts_total"), 1u);
  EXPECT_EQ(metric("chatd_notification_deliveries_total"), 1u);
  EXPECT_EQ(metric("chatd_notification_failures_total"), 0u);
  auto delivered = store_->is_delivered(bob_.id, m.id);
  ASSERT_TRUE(delivered.ok());
  EXPECT_TRUE(*delivered);
}

TEST_F(notification_webhook, MissingSenderGivesAnEmptyDisplayName) {
  store::notification n;
  n.id = ids_.next();
  n.recipient_id = bob_.id;
  n.conversation_id = ids_.next();
  n.message_id = ids_.next();
  n.sender_id = ids_.next();  // nobody
  n.sender_kind = store::participant_kind::shop;
  n.preview = "p";
  n.created_at = 5;
  auto o = notification_json(n, *store_);
  const auto& sender = o.at("sender").as_object();
  EXPECT_EQ(sender.at("id").as_string(), format_id(n.sender_id));
  EXPECT_EQ(sender.at("kind").as_string(), "shop");
  EXPECT_EQ(sender.at("display_name").as_string(), "");
}

TEST_F(notification_webhook, ListValidatesLimit) {
  service& s = start("");
  net::http_request req;
  req.method = "GET";
  req.query = {{"limit", "0"}};
  EXPECT_EQ(s.handle_list(req, bob_.id).status, 400);
  req.query = {{"limit", "101"}};
  EXPECT_EQ(s.handle_list(req, bob_.id).status, 400);
  req.query = {{"limit", "abc"}};
  EXPECT_EQ(s.handle_list(req, bob_.id).status, 400);
  req.query.clear();
  auto r = s.handle_list(req, bob_.id);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"notifications":[]})");
}

TEST_F(notification_webhook, ListIsNewestFirstAndLimited) {
  service& s = start("");  // stored only
  std::vector<store::message> ms;
  for (int i = 0; i < 5; ++i) {
    ms.push_back(make_message(ids_, ids_.next(), alice_, "m" + std::to_string(i)));
    ASSERT_TRUE(s.notify({bob_.id, ms.back()}).ok());
  }
  net::http_request req;
  req.query = {{"limit", "3"}};
  auto r = s.handle_list(req, bob_.id);
  ASSERT_EQ(r.status, 200);
  auto o = parse_json_object(r.body);
  ASSERT_TRUE(o.ok());
  const auto& items = o->at("notifications").as_array();
  ASSERT_EQ(items.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(items[i].as_object().at("message_id").as_string(), format_id(ms[4 - i].id));
  }
  EXPECT_EQ(metric("chatd_notification_attempts_total"), 0u);  // no webhook configured
}

TEST_F(notification_webhook, FailingReceiverIsRetriedWithBackoffUntilOneSuccess) {
  webhook_receiver hook([](std::size_t i) { return i < 3 ? 500 : 200; });
  service& s = start(hook.url());
  auto m = make_message(ids_, ids_.next(), alice_, "retry me");
  ASSERT_TRUE(s.notify({bob_.id, m}).ok());
  ASSERT_TRUE(wait_for([&] { return hook.successes() == 1; }, 10s));
  ASSERT_TRUE(wait_for([&] { return s.pending() == 0; }));

  auto calls = hook.calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(hook.successes(), 1u);
  // Waits of 20, 40, 80 ms, each at least 80% of that (the jitter's floor).
  for (std::size_t i = 1; i < calls.size(); ++i) {
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(calls[i].at - calls[i - 1].at);
    const auto nominal = 20 << (i - 1);
    EXPECT_GE(gap.count(), nominal * 8 / 10 - 2) << "gap before call " << i;
  }
  // Every attempt carries the same notification, freshly signed.
  for (const auto& c : calls) {
    EXPECT_EQ(c.body, calls[0].body);
    EXPECT_EQ(c.header("x-chatd-signature").value_or(""),
              expected_signature(c.header("x-chatd-timestamp").value_or("?"), c.body));
  }
  EXPECT_EQ(metric("chatd_notification_attempts_total"), 4u);
  EXPECT_EQ(metric("chatd_notification_failures_total"), 3u);
  EXPECT_EQ(metric("chatd_notification_deliveries_total"), 1u);

  // Nothing more comes later. pending() == 0 means the service holds no
  // entry for the notification, and a timer whose entry is gone does
  // nothing, so a further call could only be one a delivery thread had
  // already started. A notification for another recipient is the marker: its
  // call reaches the receiver (the 5th call, answered 200), and stop() joins
  // the delivery threads, so a call still in flight on the other one has
  // arrived too.
  auto carol = make_participant(*store_, ids_, "carol");
  auto marker = make_message(ids_, ids_.next(), alice_, "marker");
  ASSERT_TRUE(s.notify({carol.id, marker}).ok());
  ASSERT_TRUE(wait_for([&] { return has_call_for(hook, carol.id); }));
  s.stop();
  calls = hook.calls();
  ASSERT_EQ(calls.size(), 5u);
  auto last = parse_json_object(calls[4].body);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->at("recipient_id").as_string(), format_id(carol.id));
}

TEST_F(notification_webhook, ReceiverDownThenUp) {
  std::string address;
  {
    webhook_receiver probe;  // learn a free port, then close it: connection refused
    address = probe.address();
  }
  service& s = start("http://" + address + "/hook");
  auto m = make_message(ids_, ids_.next(), alice_, "anyone there?");
  ASSERT_TRUE(s.notify({bob_.id, m}).ok());
  ASSERT_TRUE(wait_for([&] { return metric("chatd_notification_failures_total") >= 2; }, 5s));
  EXPECT_EQ(metric("chatd_notification_deliveries_total"), 0u);

  webhook_receiver hook([](std::size_t) { return 200; }, address);
  ASSERT_TRUE(wait_for([&] { return hook.count() >= 1; }, 10s));
  ASSERT_TRUE(wait_for([&] { return s.pending() == 0; }));
  EXPECT_EQ(hook.count(), 1u);
  EXPECT_EQ(metric("chatd_notification_deliveries_total"), 1u);
  auto body = parse_json_object(hook.calls()[0].body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->at("message_id").as_string(), format_id(m.id));
}

TEST_F(notification_webhook, NeverASecondSuccessfulDelivery) {
  webhook_receiver hook;
  service& s = start(hook.url());
  auto m = make_message(ids_, ids_.next(), alice_, "once");
  ASSERT_TRUE(s.notify({bob_.id, m}).ok());
  ASSERT_TRUE(wait_for([&] { return hook.count() == 1 && s.pending() == 0; }));

  // Queue redelivery to the same process...
  ASSERT_TRUE(s.notify({bob_.id, m}).ok());
  // ... and to a restarted one (nothing of the first lives in memory).
  svc_->stop();
  svc_.reset();
  metrics_registry other;
  service restarted(*store_, ids_, cfg_, other);
  restarted.start();
  ASSERT_TRUE(restarted.notify({bob_.id, m}).ok());
  EXPECT_TRUE(wait_for([&] { return restarted.pending() == 0; }));
  // A wrong second call for bob would have been made before pending() came
  // to 0 (an entry is removed only after its call) or be in flight on a
  // delivery thread. The marker, a notification for another recipient
  // through the restarted service, comes after it; stop() joins the threads,
  // so a call in flight on the other one has arrived too.
  auto carol = make_participant(*store_, ids_, "carol");
  ASSERT_TRUE(restarted.notify({carol.id, make_message(ids_, ids_.next(), alice_, "marker")}).ok());
  ASSERT_TRUE(wait_for([&] { return has_call_for(hook, carol.id); }));
  restarted.stop();
  auto calls = hook.calls();
  ASSERT_EQ(calls.size(), 2u);
  auto marker = parse_json_object(calls[1].body);
  ASSERT_TRUE(marker.ok());
  EXPECT_EQ(marker->at("recipient_id").as_string(), format_id(carol.id));
  auto rows = store_->list_notifications(bob_.id, 10);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 1u);
}

TEST_F(notification_webhook, AlreadyDeliveredPairIsNotAttempted) {
  webhook_receiver hook;
  // Another process delivered it (or this one, before a crash lost the row).
  auto m = make_message(ids_, ids_.next(), alice_, "elsewhere");
  auto n = make_message(ids_, ids_.next(), alice_, "fresh");
  ASSERT_TRUE(store_->mark_delivered(bob_.id, m.id).ok());
  service& s = start(hook.url());
  ASSERT_TRUE(s.notify({bob_.id, m}).ok());
  ASSERT_TRUE(s.notify({bob_.id, n}).ok());
  ASSERT_TRUE(wait_for([&] { return hook.count() == 1 && s.pending() == 0; }));
  auto body = parse_json_object(hook.calls()[0].body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->at("message_id").as_string(), format_id(n.id));
}

TEST_F(notification_webhook, CoalescedBurstIsOneWebhookCall) {
  webhook_receiver hook;
  cfg_.coalesce_ms = 300;
  service& s = start(hook.url());
  const store::id_t conv = ids_.next();
  std::vector<store::message> ms;
  for (int i = 0; i < 3; ++i) {
    ms.push_back(make_message(ids_, conv, alice_, "burst " + std::to_string(i)));
    ASSERT_TRUE(s.notify({bob_.id, ms.back()}).ok());
  }
  EXPECT_EQ(hook.count(), 0u);  // held for the window
  ASSERT_TRUE(wait_for([&] { return hook.count() >= 1; }, 5s));
  ASSERT_TRUE(wait_for([&] { return s.pending() == 0; }));
  auto body = parse_json_object(hook.calls()[0].body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->at("count").as_int64(), 3);
  EXPECT_EQ(body->at("message_id").as_string(), format_id(ms[2].id));
  EXPECT_EQ(body->at("preview").as_string(), "burst 2");
  EXPECT_EQ(metric("chatd_notifications_total"), 1u);

  // After delivery a new message starts a new notification. It is also the
  // marker for "no second call for the burst": a wrong second notification
  // would have been created during the burst, so it falls due (300 ms after
  // its creation) before this one and is taken for delivery first; stop()
  // joins the delivery threads, so its call has arrived when we look.
  auto late = make_message(ids_, conv, alice_, "later");
  ASSERT_TRUE(s.notify({bob_.id, late}).ok());
  ASSERT_TRUE(wait_for([&] { return hook.count() >= 2; }, 5s));
  s.stop();
  ASSERT_EQ(hook.count(), 2u);
  EXPECT_EQ(metric("chatd_notifications_total"), 2u);
  auto second = parse_json_object(hook.calls()[1].body);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->at("count").as_int64(), 1);
  EXPECT_EQ(second->at("message_id").as_string(), format_id(late.id));
  EXPECT_NE(second->at("id").as_string(), body->at("id").as_string());
}

TEST_F(notification_webhook, GivesUpAfterMaxAttempts) {
  webhook_receiver hook([](std::size_t) { return 503; });
  cfg_.max_attempts = 3;
  service& s = start(hook.url());
  ASSERT_TRUE(s.notify({bob_.id, make_message(ids_, ids_.next(), alice_, "doomed")}).ok());
  ASSERT_TRUE(wait_for([&] { return s.pending() == 0; }, 5s));
  EXPECT_EQ(hook.count(), 3u);
  EXPECT_EQ(metric("chatd_notification_abandoned_total"), 1u);
  EXPECT_EQ(metric("chatd_notification_failures_total"), 3u);
  // A restart does not start a given-up notification over.
  s.stop();
  metrics_registry other;
  service restarted(*store_, ids_, cfg_, other);
  restarted.start();
  EXPECT_EQ(restarted.pending(), 0u);
  restarted.stop();
}

TEST_F(notification_webhook, StopWithPendingRetriesReturnsPromptly) {
  webhook_receiver hook([](std::size_t) { return 500; });
  cfg_.retry_initial_ms = 2000;
  cfg_.retry_max_ms = 30000;
  service& s = start(hook.url());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.notify({bob_.id, make_message(ids_, ids_.next(), alice_, "x" + std::to_string(i))}).ok());
  }
  ASSERT_TRUE(wait_for([&] { return hook.count() >= 3; }));
  const auto t0 = std::chrono::steady_clock::now();
  s.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(s.pending(), 3u);  // kept for a later start (and in the journal)
}

TEST_F(notification_webhook, UndeliveredNotificationsResumeAfterARestart) {
  std::atomic<bool> healthy{false};
  webhook_receiver hook([&](std::size_t) { return healthy ? 200 : 500; });
  cfg_.retry_initial_ms = 5000;  // the first service never gets to its retry
  const store::id_t conv = ids_.next();
  auto m = make_message(ids_, conv, alice_, "survive me");
  {
    service& s = start(hook.url());
    ASSERT_TRUE(s.notify({bob_.id, m}).ok());
    ASSERT_TRUE(wait_for([&] { return hook.count() == 1; }));
    s.stop();
    svc_.reset();  // the process "dies" with the retry pending
  }
  healthy = true;
  cfg_.retry_initial_ms = 20;
  metrics_registry other;
  service restarted(*store_, ids_, cfg_, other);
  restarted.start();
  ASSERT_TRUE(wait_for([&] { return hook.successes() == 1; }));
  ASSERT_TRUE(wait_for([&] { return restarted.pending() == 0; }));
  auto body = parse_json_object(hook.calls().back().body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->at("message_id").as_string(), format_id(m.id));
  EXPECT_EQ(body->at("recipient_id").as_string(), format_id(bob_.id));
  EXPECT_EQ(body->at("preview").as_string(), "survive me");

  // A further restart finds nothing left to do, and GET never shows the journal.
  restarted.stop();
  service third(*store_, ids_, cfg_, other);
  third.start();
  EXPECT_EQ(third.pending(), 0u);
  third.stop();
  auto rows = store_->list_notifications(bob_.id, 10);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 1u);
  EXPECT_EQ(hook.successes(), 1u);
}

TEST_F(notification_webhook, StoredOnlyWhenNoWebhook) {
  cfg_.coalesce_ms = 200;
  service& s = start("");
  const store::id_t conv = ids_.next();
  auto m1 = make_message(ids_, conv, alice_, "a");
  auto m2 = make_message(ids_, conv, alice_, "b");
  ASSERT_TRUE(s.notify({bob_.id, m1}).ok());
  ASSERT_TRUE(s.notify({bob_.id, m2}).ok());
  ASSERT_TRUE(wait_for([&] { return s.pending() == 0; }));
  auto m3 = make_message(ids_, conv, alice_, "c");  // the window has closed
  ASSERT_TRUE(s.notify({bob_.id, m3}).ok());
  auto rows = store_->list_notifications(bob_.id, 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].count, 1u);
  EXPECT_EQ((*rows)[1].count, 2u);
  EXPECT_EQ(metric("chatd_notification_attempts_total"), 0u);
}

// --- the internal endpoint's signature check -------------------------------

class notification_internal_route : public notification_webhook {};

TEST_F(notification_internal_route, SignatureIsRequired) {
  service& s = start("");
  net::io_pool io(1);
  worker_pool workers(2, "internal");
  net::router routes;
  s.add_internal_routes(routes, "shared");
  net::http_server server(io, workers, routes, net::server_options{});
  io.start();
  const std::string address = server.start();
  const std::string url = "http://" + address + std::string(internal_notify_path);

  auto m = make_message(ids_, ids_.next(), alice_, "signed");
  const std::string body = internal_notify_body({bob_.id, m});
  auto unsigned_r = net::http_request_sync("POST", url, body);
  ASSERT_TRUE(unsigned_r.ok());
  EXPECT_EQ(unsigned_r->status, 401);
  const std::string path(internal_notify_path);
  auto wrong = net::http_request_sync("POST", url, body, rpc::signed_headers("other", "POST", path, body));
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401);
  auto bad_json = net::http_request_sync("POST", url, "{}", rpc::signed_headers("shared", "POST", path, "{}"));
  ASSERT_TRUE(bad_json.ok());
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_TRUE(store_->list_notifications(bob_.id, 10)->empty());

  // Signed for another path: refused.
  auto other_path = net::http_request_sync("POST", url, body, rpc::signed_headers("shared", "POST", "/v1/x", body));
  ASSERT_TRUE(other_path.ok());
  EXPECT_EQ(other_path->status, 401);
  auto good = net::http_request_sync("POST", url, body, rpc::signed_headers("shared", "POST", path, body));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->status, 204);
  EXPECT_EQ(store_->list_notifications(bob_.id, 10)->size(), 1u);

  // The client maps a wrong secret to the server's code.
  http_notifier client("http://" + address, "wrong", default_registry());
  auto st = client.notify({bob_.id, m});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::unauthorized);

  server.stop(1s);
  io.stop();
  workers.stop();
  EXPECT_THROW(s.add_internal_routes(routes, ""), std::invalid_argument);
}

TEST(notification_http_notifier, UnreachableServiceIsUnavailable) {
  std::string address;
  {
    webhook_receiver probe;
    address = probe.address();
  }
  http_notifier client("http://" + address, "s", default_registry(), rpc::client_options{2s, 2, 10ms});
  store::message m;
  m.id = 1;
  m.conversation_id = 2;
  m.sender_id = 3;
  m.body = "b";
  auto st = client.notify({4, m});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::unavailable);
}

TEST(notification_message_wire, RoundTrips) {
  store::message m;
  m.id = 11;
  m.conversation_id = 22;
  m.sender_id = 33;
  m.sender_kind = store::participant_kind::admin;
  m.body = "body \xE2\x9C\x93";
  m.client_msg_id = "c-1";
  m.created_at = 1700000000000;
  m.edited_at = 1700000000500;
  m.deleted = false;
  auto parsed = parse_internal_notify_body(internal_notify_body({44, m}));
  ASSERT_TRUE(parsed.ok()) << parsed.err().message;
  EXPECT_EQ(parsed->recipient_id, 44u);
  EXPECT_EQ(parsed->message.id, m.id);
  EXPECT_EQ(parsed->message.conversation_id, m.conversation_id);
  EXPECT_EQ(parsed->message.sender_id, m.sender_id);
  EXPECT_EQ(parsed->message.sender_kind, m.sender_kind);
  EXPECT_EQ(parsed->message.body, m.body);
  EXPECT_EQ(parsed->message.client_msg_id, m.client_msg_id);
  EXPECT_EQ(parsed->message.created_at, m.created_at);
  EXPECT_EQ(parsed->message.edited_at, m.edited_at);
  EXPECT_FALSE(parsed->message.deleted);

  EXPECT_FALSE(parse_internal_notify_body(R"({"recipient_id":"1","message":{},"extra":1})").ok());
  EXPECT_FALSE(parse_internal_notify_body(R"({"recipient_id":"1"})").ok());
  EXPECT_FALSE(parse_internal_notify_body("not json").ok());
}

TEST(notification_retry_delay, DoublesCapsAndJitters) {
  notifications_config cfg;
  cfg.retry_initial_ms = 200;
  cfg.retry_max_ms = 1000;
  EXPECT_EQ(retry_delay(cfg, 1, 0).count(), 200);
  EXPECT_EQ(retry_delay(cfg, 2, 0).count(), 400);
  EXPECT_EQ(retry_delay(cfg, 3, 0).count(), 800);
  EXPECT_EQ(retry_delay(cfg, 4, 0).count(), 1000);
  EXPECT_EQ(retry_delay(cfg, 1000, 0).count(), 1000);
  EXPECT_EQ(retry_delay(cfg, 1, 0.2).count(), 240);
  EXPECT_EQ(retry_delay(cfg, 1, -0.2).count(), 160);
  EXPECT_EQ(retry_delay(cfg, 1, 5.0).count(), 240);  // clamped
  for (int i = 0; i < 1000; ++i) {
    double j = random_jitter();
    EXPECT_GE(j, -0.2);
    EXPECT_LE(j, 0.2);
  }
}

}  // namespace
}  // namespace chatd::notification
