// The conformance suite against a real Kafka broker (scripts/kafka.sh start;
// CHATD_TEST_KAFKA_BROKERS, default 127.0.0.1:9092). Each test runs under a
// group prefix of its own, and the suite's topic and group names are random,
// so runs against a shared broker do not see each other. open() again is a
// restart: a new client on the same cluster data. A broker that does not
// answer fails every test with the reason: CI starts it, so silence would
// hide a broken set-up.
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "queue/kafka_queue.h"
#include "queue/queue_conformance.h"

namespace chatd::queue::testing {
namespace {

std::string brokers() {
  const char* b = std::getenv("CHATD_TEST_KAFKA_BROKERS");
  return b != nullptr && *b != '\0' ? b : "127.0.0.1:9092";
}

// Checked once: after the first failure every test fails at once instead of
// waiting for the connect timeout again.
const std::string& unreachable_reason() {
  static const std::string reason = [] {
    try {
      kafka_queue_options o;
      o.brokers = brokers();
      o.request_timeout = std::chrono::seconds(10);
      (void)open_kafka_queue(o);
      return std::string();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  }();
  return reason;
}

class kafka_env final : public queue_env {
 public:
  kafka_env() {
    std::random_device rd;
    prefix_ = "chatd-conf-" + std::to_string(rd()) + "-";
  }

  std::unique_ptr<queue> open() override {
    if (const auto& why = unreachable_reason(); !why.empty()) {
      ADD_FAILURE() << "Kafka broker at " << brokers() << " is not reachable (start it with scripts/kafka.sh start, "
                    << "or point CHATD_TEST_KAFKA_BROKERS at one): " << why;
      return nullptr;
    }
    kafka_queue_options o;
    o.brokers = brokers();
    o.group_prefix = prefix_;
    return open_kafka_queue(o);
  }

 private:
  std::string prefix_;
};

// Kafka only: librdkafka's idempotent producer can enter a fatal state (a
// broker restart that lost acknowledged records, a forgotten producer id)
// in which it refuses every record for good. The producer replaces its
// handle at the next produce: sends work again without restarting the
// process, and nothing produced after the fatal error is lost.
TEST(kafka_producer, a_fatal_idempotence_error_is_survived_with_a_new_producer) {
  if (const auto& why = unreachable_reason(); !why.empty()) FAIL() << "Kafka broker not reachable: " << why;
  kafka_queue_options o;
  o.brokers = brokers();
  auto q = open_kafka_queue(o);
  std::random_device rd;
  const std::string topic = "chatd-fatal-" + std::to_string(rd());
  ASSERT_TRUE(q->ensure_topic(topic, 1));
  auto p = q->make_producer();
  ASSERT_TRUE(p->produce(topic, "k", "before"));
  ASSERT_TRUE(inject_fatal_error_for_testing(*p));
  for (const char* v : {"after-1", "after-2"}) {
    auto r = p->produce(topic, "k", v);
    ASSERT_TRUE(r) << v << ": " << r.err().message;
  }
  auto c = q->subscribe("chatd-fatal-" + std::to_string(rd()), {topic}, start_position::earliest);
  ASSERT_TRUE(c);
  std::vector<std::string> got;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       got.size() < 3 && std::chrono::steady_clock::now() < until;) {
    auto batch = (*c)->poll(std::chrono::milliseconds(200), 10);
    ASSERT_TRUE(batch);
    for (const auto& r : *batch) got.push_back(r.value);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"before", "after-1", "after-2"}));
}

INSTANTIATE_TEST_SUITE_P(kafka, queue_conformance,
                         ::testing::Values(conformance_backend{"kafka", [] { return std::make_unique<kafka_env>(); }}),
                         conformance_backend_name);

}  // namespace
}  // namespace chatd::queue::testing
