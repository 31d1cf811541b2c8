// `chatd all` on Kafka while the broker is stopped and started again under
// load (scripts/kafka.sh stop / start on the broker CI runs): a send in the
// outage is acknowledged late or fails with `unavailable`, never anything
// else; every acknowledged message is stored and delivered; sends succeed
// again within 10 s of the broker's return. Runs alone (RUN_SERIAL): other
// tests using the broker would fail during the outage.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "integration/chat_client.h"
#include "integration/chatd_process.h"

namespace chatd::testing {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

int kafka_sh(const std::string& what) {
  const std::string cmd = std::string("'") + CHATD_SOURCE_DIR + "/scripts/kafka.sh' " + what + " >&2";
  return std::system(cmd.c_str());
}

struct outcome {
  clock_type::time_point sent, answered;
  std::string type;  // "ack", "error", or "" (no answer)
  std::string code;
  std::string message_id;
};

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

TEST(kafka_restart, broker_restart_under_load_loses_no_acknowledged_message) {
  ASSERT_EQ(kafka_sh("status"), 0) << "no broker started by scripts/kafka.sh is running: this test restarts it, "
                                      "so start it first (scripts/kafka.sh start)";
  std::random_device rd;
  const std::string prefix = "restart" + std::to_string(rd()) + ".";
  chatd_process p({{"queue.backend", "kafka"},
                   {"queue.topic_prefix", prefix},
                   {"queue.partitions", "3"},
                   {"rate_limits.send_per_second", "0"},
                   {"rate_limits.login_per_minute", "0"},
                   {"rate_limits.read_per_second", "0"}});
  p.start();
  api a(p.gateway());
  auto user = make_participant(a, "user", "restarter");
  auto shop = make_participant(a, "shop", "restartshop");
  const auto conv = create_conversation(a, user, "direct", {shop.id});
  chat_client sender, receiver;
  ASSERT_TRUE(sender.connect(a, user.token));
  ASSERT_TRUE(receiver.connect(a, shop.token));

  // Sending stops before the deliveries are checked; receiving only after.
  std::atomic<bool> stop{false};
  std::atomic<bool> stop_receiving{false};
  std::mutex mu;
  std::vector<outcome> outcomes;
  std::set<std::string> delivered;
  std::thread receiving([&] {
    while (!stop_receiving) {
      auto f = receiver.next(200ms);
      if (!f || !f->is_object()) continue;
      const auto& o = f->as_object();
      if (o.at("type").as_string() != "message") continue;
      std::lock_guard lock(mu);
      delivered.insert(std::string(o.at("message").as_object().at("id").as_string()));
    }
  });
  std::thread sending([&] {
    for (int i = 0; !stop; ++i) {
      const std::string rid = "s" + std::to_string(i);
      outcome out;
      out.sent = clock_type::now();
      sender.send_json(json::object{{"type", "send"},
                                    {"id", rid},
                                    {"conversation_id", conv},
                                    {"client_msg_id", "restart-" + rid},
                                    {"body", "message " + std::to_string(i)}});
      // Longer than the producer's message.timeout.ms (15 s): every send
      // gets its answer, late or not.
      auto r = sender.wait_for(
          [&](const json::object& o) {
            auto* id = o.if_contains("id");
            return id != nullptr && id->is_string() && id->as_string() == rid;
          },
          40s);
      out.answered = clock_type::now();
      if (r) {
        const auto& o = r->as_object();
        out.type = std::string(o.at("type").as_string());
        if (out.type == "ack") out.message_id = std::string(o.at("message").as_object().at("id").as_string());
        if (auto* c = o.if_contains("code"); c != nullptr && c->is_string()) out.code = std::string(c->as_string());
      }
      {
        std::lock_guard lock(mu);
        outcomes.push_back(out);
      }
      std::this_thread::sleep_for(10ms);
    }
  });

  std::this_thread::sleep_for(3s);
  const auto stopping_at = clock_type::now();
  ASSERT_EQ(kafka_sh("stop"), 0);
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(kafka_sh("start"), 0);
  const auto back_at = clock_type::now();
  std::fprintf(stderr, "broker down for %.1f s\n", seconds_between(stopping_at, back_at));
  // Keep sending until well past the recovery deadline.
  std::this_thread::sleep_for(15s);
  stop = true;
  sending.join();

  std::vector<outcome> got;
  {
    std::lock_guard lock(mu);
    got = outcomes;
  }
  std::set<std::string> acked;
  int late = 0, failed = 0;
  std::optional<clock_type::time_point> first_ack_after_return;
  for (const auto& o : got) {
    ASSERT_TRUE(o.type == "ack" || (o.type == "error" && o.code == "unavailable"))
        << "a send got '" << o.type << "' " << o.code << " after " << seconds_between(o.sent, o.answered) << " s";
    if (o.type == "ack") {
      acked.insert(o.message_id);
      if (seconds_between(o.sent, o.answered) > 1.0) ++late;
      if (o.answered >= back_at && (!first_ack_after_return || o.answered < *first_ack_after_return)) {
        first_ack_after_return = o.answered;
      }
    } else {
      ++failed;
    }
    // Started 10 s after the broker was back: chatd has recovered.
    if (o.sent >= back_at + 10s) {
      EXPECT_EQ(o.type, "ack") << "a send " << seconds_between(back_at, o.sent) << " s after the broker's return";
    }
  }
  std::fprintf(stderr, "%zu sends: %zu acknowledged (%d late), %d unavailable\n", got.size(), acked.size(), late,
               failed);
  ASSERT_TRUE(first_ack_after_return.has_value()) << "no send was acknowledged after the broker came back";
  EXPECT_LE(seconds_between(back_at, *first_ack_after_return), 10.0) << "chatd recovered too slowly";
  EXPECT_GT(acked.size(), 100u);

  // Every acknowledged message is stored ...
  std::set<std::string> stored;
  const auto deadline = clock_type::now() + 60s;
  while (clock_type::now() < deadline) {
    stored.clear();
    std::string before;
    for (;;) {
      auto page =
          a.get("/v1/conversations/" + conv + "/messages?limit=100" + (before.empty() ? "" : "&before=" + before),
                user.token);
      if (page.status != 200) break;
      const auto& msgs = page.obj().at("messages").as_array();
      for (const auto& m : msgs) stored.emplace(m.at("id").as_string());
      if (!page.obj().at("has_more").as_bool() || msgs.empty()) break;
      before = std::string(msgs.back().at("id").as_string());
    }
    if (std::includes(stored.begin(), stored.end(), acked.begin(), acked.end())) break;
    std::this_thread::sleep_for(200ms);
  }
  std::vector<std::string> missing;
  std::set_difference(acked.begin(), acked.end(), stored.begin(), stored.end(), std::back_inserter(missing));
  EXPECT_TRUE(missing.empty()) << missing.size() << " acknowledged messages not stored, e.g. " << missing.front();

  // ... and delivered to the other member, live.
  const auto delivery_deadline = clock_type::now() + 30s;
  std::vector<std::string> undelivered;
  while (clock_type::now() < delivery_deadline) {
    undelivered.clear();
    {
      std::lock_guard lock(mu);
      std::set_difference(acked.begin(), acked.end(), delivered.begin(), delivered.end(),
                          std::back_inserter(undelivered));
    }
    if (undelivered.empty()) break;
    std::this_thread::sleep_for(200ms);
  }
  stop_receiving = true;
  receiving.join();
  EXPECT_TRUE(undelivered.empty()) << undelivered.size() << " acknowledged messages not delivered, e.g. "
                                   << undelivered.front();
  EXPECT_TRUE(p.running());
  EXPECT_EQ(p.stop(), 0) << p.log();
}

}  // namespace
}  // namespace chatd::testing
