// chat::publisher over the queue port: messages to <prefix>messages (durable,
// acknowledged from the queue's callback), everything else to <prefix>events.
#pragma once

#include <string>

#include "chat/publisher.h"
#include "queue/queue.h"

namespace chatd {
class counter;
class histogram;
class metrics_registry;
}  // namespace chatd

namespace chatd::app {

struct topics {
  std::string messages;
  std::string events;
  std::string dead_letter;  // records a consumer group gave up on (ADR 013)
};

class queue_publisher : public chat::publisher {
 public:
  queue_publisher(queue::producer& producer, topics t, metrics_registry& metrics);
  void publish_durable(const chat::event& e, std::function<void(status)> done) override;
  void publish_ephemeral(const chat::event& e) override;

 private:
  queue::producer& producer_;
  topics topics_;
  histogram& produce_latency_;
  counter& produce_errors_;
};

}  // namespace chatd::app
