// The queue port's conformance suite: what "the backends behave the same"
// means (docs/adr/004-embedded-log.md). It is written only against
// queue/queue.h, uses a unique topic and group name in every test (so it can
// run against a shared Kafka broker), and waits with generous deadlines
// (Kafka rebalances take seconds) but never sleeps for them.
//
// A backend instantiates it with a factory of environments:
//
//   INSTANTIATE_TEST_SUITE_P(kafka, queue_conformance,
//       ::testing::Values(conformance_backend{"kafka", [] { return make_kafka_env(); }}),
//       conformance_backend_name);
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "queue/queue.h"

namespace chatd::queue::testing {

// The data of one test. open() returns a queue on it; called again after the
// previous queue was destroyed, it returns a queue on the same data, which is
// how the suite simulates a process restart.
class queue_env {
 public:
  virtual ~queue_env() = default;
  virtual std::unique_ptr<queue> open() = 0;
};

struct conformance_backend {
  std::string name;                                      // the instantiation's test name suffix
  std::function<std::unique_ptr<queue_env>()> make_env;  // fresh data for each test
};

inline void PrintTo(const conformance_backend& b, std::ostream* os) { *os << b.name; }
inline std::string conformance_backend_name(const ::testing::TestParamInfo<conformance_backend>& info) {
  return info.param.name;
}

class queue_conformance : public ::testing::TestWithParam<conformance_backend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  queue& q() { return *queue_; }
  // Destroys the queue (and must be called with no consumer or producer of it
  // still held) and opens it again on the same data.
  void restart();
  // A name no other test (or earlier run on a shared broker) uses.
  static std::string unique_name(const std::string& what);

 private:
  std::unique_ptr<queue_env> env_;
  std::unique_ptr<queue> queue_;
};

}  // namespace chatd::queue::testing
