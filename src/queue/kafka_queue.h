// The Apache Kafka backend of the queue port, on librdkafka (docs/queue.md).
//
// Durability of an acknowledged produce: the idempotent producer's delivery
// report said the record is written with acks=all, i.e. on every in-sync
// replica (min.insync.replicas of the topic). Consumer groups are Kafka's own;
// offsets are committed synchronously and only by commit()/commit_polled().
//
// No librdkafka header here: users of the port do not compile against it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "queue/queue.h"

namespace chatd {
class metrics_registry;
}

namespace chatd::queue {

struct kafka_queue_options {
  std::string brokers = "127.0.0.1:9092";  // bootstrap.servers
  // For topics ensure_topic() creates.
  std::int16_t replication_factor = 1;
  // Prepended to every consumer group id (and to the group lag() asks
  // about), so that several deployments or test runs can share a cluster
  // without joining each other's groups. chatd passes queue.topic_prefix.
  std::string group_prefix;
  // librdkafka properties (queue.kafka.<key> in chatd's config), applied to
  // every client after chatd's defaults. A key starting with "producer.",
  // "consumer." or "admin." goes only to that kind of client (prefix
  // removed). The few settings the port's guarantees rest on
  // (enable.idempotence, acks, enable.auto.commit, enable.auto.offset.store)
  // cannot be changed: open_kafka_queue refuses other values.
  std::map<std::string, std::string> settings;
  // Upper bound of one metadata or admin request (ensure_topic, lag, ...),
  // and of the reachability check at open.
  std::chrono::milliseconds request_timeout{10000};
  // subscribe() returns once the new member has its first assignment, or
  // after this long (it is then assigned later, inside poll()).
  std::chrono::milliseconds subscribe_wait{5000};
  // How long the producer's destructor waits for records in flight before
  // failing them with errc::unavailable.
  std::chrono::milliseconds close_flush_timeout{10000};
  metrics_registry* metrics = nullptr;  // nullptr: default_registry()
};

// Connects to the cluster and checks that a broker answers within
// request_timeout. Throws chatd::config_error for a bad setting (naming
// queue.kafka.<key>) and std::runtime_error when no broker answers: both are
// start-up errors. Topics are used as named (chatd adds queue.topic_prefix
// itself).
std::unique_ptr<queue> open_kafka_queue(const kafka_queue_options& options);

// For tests: puts a producer of a Kafka queue in librdkafka's fatal state,
// as a broker that lost acknowledged records or forgot the producer does.
// errc::bad_request for any other producer.
status inject_fatal_error_for_testing(producer& p);

}  // namespace chatd::queue
