// The conformance suite against a real Kafka broker (scripts/kafka.sh start;
// CHATD_TEST_KAFKA_BROKERS, default 127.0.0.1:9092). Each test runs under a
// group prefix of its own, and the suite's topic and group names are random,
// so runs against a shared broker do not see each other. open() again is a
// restart: a new client on the same cluster data. A broker that does not
// answer fails every test with the reason: CI starts it, so silence would
// hide a broken set-up.
#include <cstdlib>
#include <random>

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

INSTANTIATE_TEST_SUITE_P(kafka, queue_conformance,
                         ::testing::Values(conformance_backend{"kafka", [] { return std::make_unique<kafka_env>(); }}),
                         conformance_backend_name);

}  // namespace
}  // namespace chatd::queue::testing
