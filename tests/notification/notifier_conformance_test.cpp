// The notifier port's conformance suite. The tests see only notifier.h and the
// store (to observe what was recorded); each backend is a harness below:
// the in-process service, and http_notifier talking to a service behind a
// real HTTP server. Both must pass unchanged.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/worker_pool.h"
#include "net/server.h"
#include "notification/internal_api.h"
#include "notification/notifier.h"
#include "notification/service.h"
#include "test_support.h"

namespace chatd::notification {
namespace {

using testing::make_message;
using testing::make_participant;

// What a backend gives the suite: the notifier under test.
class harness {
 public:
  virtual ~harness() = default;
  virtual notifier& target() = 0;
};

class inprocess_harness : public harness {
 public:
  inprocess_harness(store::chat_store& s, id_generator& ids, const notifications_config& cfg)
      : svc_(s, ids, cfg, metrics_) {
    svc_.start();
  }
  ~inprocess_harness() override { svc_.stop(); }
  notifier& target() override { return svc_; }

 private:
  metrics_registry metrics_;
  service svc_;
};

class http_harness : public harness {
 public:
  http_harness(store::chat_store& s, id_generator& ids, const notifications_config& cfg)
      : svc_(s, ids, cfg, metrics_), io_(1), workers_(2, "notify-http") {
    svc_.add_internal_routes(routes_, "conformance-secret");
    server_ = std::make_unique<net::http_server>(io_, workers_, routes_, net::server_options{});
    io_.start();
    const std::string address = server_->start();
    client_ = std::make_unique<http_notifier>("http://" + address + "/", "conformance-secret", metrics_);
    svc_.start();
  }
  ~http_harness() override {
    server_->stop(std::chrono::milliseconds{1000});
    io_.stop();
    workers_.stop();
    svc_.stop();
  }
  notifier& target() override { return *client_; }

 private:
  metrics_registry metrics_;
  service svc_;
  net::io_pool io_;
  worker_pool workers_;
  net::router routes_;
  std::unique_ptr<net::http_server> server_;
  std::unique_ptr<http_notifier> client_;
};

using harness_factory =
    std::function<std::unique_ptr<harness>(store::chat_store&, id_generator&, const notifications_config&)>;

struct backend {
  std::string name;
  harness_factory make;
};
// Names the parameter in test listings (instead of its bytes).
inline void PrintTo(const backend& b, std::ostream* os) { *os << b.name; }

class notifier_conformance : public ::testing::TestWithParam<backend> {
 protected:
  void SetUp() override {
    store_ = testing::open_store(dir_);
    ASSERT_TRUE(store_);
    alice_ = make_participant(*store_, ids_, "alice");
    bob_ = make_participant(*store_, ids_, "bob");
    shop_ = make_participant(*store_, ids_, "shop", store::participant_kind::shop);
  }
  void TearDown() override {
    h_.reset();
    store_.reset();
  }

  // Webhooks stay off: the port's promise is the stored notification.
  notifier& start(std::int64_t coalesce_ms) {
    notifications_config cfg;
    cfg.coalesce_ms = coalesce_ms;
    h_ = GetParam().make(*store_, ids_, cfg);
    return h_->target();
  }

  std::vector<store::notification> stored(store::id_t recipient) {
    auto r = store_->list_notifications(recipient, 100);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<store::notification>{};
  }

  testing::temp_dir dir_;
  std::unique_ptr<store::chat_store> store_;
  id_generator ids_{7};
  store::participant alice_, bob_, shop_;
  std::unique_ptr<harness> h_;
};

TEST_P(notifier_conformance, NotifyStoresANotification) {
  notifier& n = start(5000);
  const store::id_t conv = ids_.next();
  auto m = make_message(ids_, conv, alice_, "hello bob");
  ASSERT_TRUE(n.notify({bob_.id, m}).ok());

  auto rows = stored(bob_.id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_NE(rows[0].id, 0u);
  EXPECT_EQ(rows[0].recipient_id, bob_.id);
  EXPECT_EQ(rows[0].conversation_id, conv);
  EXPECT_EQ(rows[0].message_id, m.id);
  EXPECT_EQ(rows[0].sender_id, alice_.id);
  EXPECT_EQ(rows[0].sender_kind, store::participant_kind::user);
  EXPECT_EQ(rows[0].preview, "hello bob");
  EXPECT_EQ(rows[0].count, 1u);
  EXPECT_GT(rows[0].created_at, 0);
  EXPECT_TRUE(stored(alice_.id).empty());
}

TEST_P(notifier_conformance, SameMessageTwiceIsOneNotification) {
  for (std::int64_t coalesce : {5000, 0}) {
    SCOPED_TRACE("coalesce_ms=" + std::to_string(coalesce));
    notifier& n = start(coalesce);
    const store::id_t conv = ids_.next();
    auto m = make_message(ids_, conv, shop_, "your order shipped");
    ASSERT_TRUE(n.notify({alice_.id, m}).ok());
    ASSERT_TRUE(n.notify({alice_.id, m}).ok());
    ASSERT_TRUE(n.notify({alice_.id, m}).ok());

    std::size_t in_conv = 0;
    for (const auto& row : stored(alice_.id)) {
      if (row.conversation_id != conv) continue;
      ++in_conv;
      EXPECT_EQ(row.count, 1u);
      EXPECT_EQ(row.message_id, m.id);
    }
    EXPECT_EQ(in_conv, 1u);
  }
}

TEST_P(notifier_conformance, MessagesWithinTheWindowCoalesce) {
  notifier& n = start(5000);
  const store::id_t conv = ids_.next();
  auto m1 = make_message(ids_, conv, alice_, "one");
  auto m2 = make_message(ids_, conv, shop_, "two");
  auto m3 = make_message(ids_, conv, alice_, "three");
  for (const auto& m : {m1, m2, m3}) ASSERT_TRUE(n.notify({bob_.id, m}).ok());

  auto rows = stored(bob_.id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].count, 3u);
  EXPECT_EQ(rows[0].message_id, m3.id);
  EXPECT_EQ(rows[0].preview, "three");
  EXPECT_EQ(rows[0].sender_id, alice_.id);
}

TEST_P(notifier_conformance, RedeliveredOlderMessageAfterCoalescingChangesNothing) {
  notifier& n = start(5000);
  const store::id_t conv = ids_.next();
  auto m1 = make_message(ids_, conv, alice_, "one");
  auto m2 = make_message(ids_, conv, alice_, "two");
  auto m3 = make_message(ids_, conv, alice_, "three");
  for (const auto& m : {m1, m2, m3}) ASSERT_TRUE(n.notify({bob_.id, m}).ok());
  // The queue redelivers the whole batch.
  for (const auto& m : {m1, m2, m3}) ASSERT_TRUE(n.notify({bob_.id, m}).ok());

  auto rows = stored(bob_.id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].count, 3u);
  EXPECT_EQ(rows[0].message_id, m3.id);
}

TEST_P(notifier_conformance, MessagesOutsideTheWindowAreSeparate) {
  notifier& n = start(5000);
  const store::id_t conv = ids_.next();
  auto m1 = make_message(ids_, conv, alice_, "morning");
  auto m2 = make_message(ids_, conv, alice_, "evening");
  m2.created_at = m1.created_at + 6000;  // written later than the window
  ASSERT_TRUE(n.notify({bob_.id, m1}).ok());
  ASSERT_TRUE(n.notify({bob_.id, m2}).ok());

  auto rows = stored(bob_.id);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].message_id, m2.id);  // newest first
  EXPECT_EQ(rows[1].message_id, m1.id);
  EXPECT_EQ(rows[0].count, 1u);
  EXPECT_EQ(rows[1].count, 1u);
}

TEST_P(notifier_conformance, SeparateConversationsAreSeparateNotifications) {
  notifier& n = start(5000);
  const store::id_t c1 = ids_.next();
  const store::id_t c2 = ids_.next();
  auto a = make_message(ids_, c1, alice_, "in c1");
  auto b = make_message(ids_, c2, alice_, "in c2");
  auto c = make_message(ids_, c1, alice_, "in c1 again");
  for (const auto& m : {a, b, c}) ASSERT_TRUE(n.notify({bob_.id, m}).ok());

  auto rows = stored(bob_.id);
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    if (row.conversation_id == c1) {
      EXPECT_EQ(row.count, 2u);
      EXPECT_EQ(row.message_id, c.id);
    } else {
      EXPECT_EQ(row.conversation_id, c2);
      EXPECT_EQ(row.count, 1u);
      EXPECT_EQ(row.message_id, b.id);
    }
  }
}

TEST_P(notifier_conformance, SeparateRecipientsAreSeparateNotifications) {
  notifier& n = start(5000);
  const store::id_t conv = ids_.next();
  auto m = make_message(ids_, conv, shop_, "sale");
  ASSERT_TRUE(n.notify({alice_.id, m}).ok());
  ASSERT_TRUE(n.notify({bob_.id, m}).ok());
  ASSERT_EQ(stored(alice_.id).size(), 1u);
  ASSERT_EQ(stored(bob_.id).size(), 1u);
  EXPECT_NE(stored(alice_.id)[0].id, stored(bob_.id)[0].id);
}

TEST_P(notifier_conformance, CoalesceZeroMeansOnePerMessage) {
  notifier& n = start(0);
  const store::id_t conv = ids_.next();
  std::vector<store::message> ms;
  for (int i = 0; i < 3; ++i) ms.push_back(make_message(ids_, conv, alice_, "m" + std::to_string(i)));
  for (const auto& m : ms) ASSERT_TRUE(n.notify({bob_.id, m}).ok());

  auto rows = stored(bob_.id);
  ASSERT_EQ(rows.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rows[i].message_id, ms[2 - i].id);  // newest first
    EXPECT_EQ(rows[i].count, 1u);
  }
}

TEST_P(notifier_conformance, PreviewIsTheFirst140CodePoints) {
  notifier& n = start(0);
  std::string body;
  for (int i = 0; i < 200; ++i) body += "\xC3\xA9";  // U+00E9, two bytes each
  auto m = make_message(ids_, ids_.next(), alice_, body);
  ASSERT_TRUE(n.notify({bob_.id, m}).ok());
  auto rows = stored(bob_.id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].preview, body.substr(0, 280));
}

TEST_P(notifier_conformance, SenderIsNeverNotifiedOfTheirOwnMessage) {
  notifier& n = start(0);
  auto m = make_message(ids_, ids_.next(), alice_, "mine");
  ASSERT_TRUE(n.notify({alice_.id, m}).ok());
  EXPECT_TRUE(stored(alice_.id).empty());
}

TEST_P(notifier_conformance, AnInvalidRequestIsBadRequest) {
  notifier& n = start(0);
  auto m = make_message(ids_, ids_.next(), alice_, "to nobody");
  auto st = n.notify({0, m});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::bad_request);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, notifier_conformance,
    ::testing::Values(backend{"in_process",
                              [](store::chat_store& s, id_generator& ids, const notifications_config& cfg) {
                                return std::unique_ptr<harness>(new inprocess_harness(s, ids, cfg));
                              }},
                      backend{"http",
                              [](store::chat_store& s, id_generator& ids, const notifications_config& cfg) {
                                return std::unique_ptr<harness>(new http_harness(s, ids, cfg));
                              }}),
    [](const ::testing::TestParamInfo<backend>& info) { return info.param.name; });

}  // namespace
}  // namespace chatd::notification
