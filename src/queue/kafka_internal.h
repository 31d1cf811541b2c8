// What the Kafka backend's files share: errors, configuration and handle
// helpers, metadata lookups, and the factories of the producer and the
// consumer. Private to chatd_queue_kafka: it includes librdkafka's header,
// which kafka_queue.h must not.
#pragma once

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "queue/kafka_queue.h"

namespace chatd::queue::kafka {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t max_record_bytes = 1024 * 1024;  // key + value, as the embedded log

inline int to_ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::clamp<std::int64_t>(d.count(), 0, 24LL * 3600 * 1000));
}

error kafka_error(rd_kafka_resp_err_t err, const std::string& what);

// ---- configuration -----------------------------------------------------------

enum class client_kind { producer, consumer, admin };

struct conf_deleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;

// chatd's defaults, then the user's settings, then the enforced ones.
// Throws config_error (start-up) for a bad or conflicting setting.
conf_ptr make_conf(const kafka_queue_options& o, client_kind kind,
                   const std::vector<std::pair<std::string, std::string>>& extra);

// Takes ownership of conf (also on failure, as rd_kafka_new does on success).
rd_kafka_t* new_handle(rd_kafka_type_t type, conf_ptr conf, std::string& why);

struct partition_list {
  rd_kafka_topic_partition_list_t* p;
  explicit partition_list(int n = 1) : p(rd_kafka_topic_partition_list_new(n)) {}
  ~partition_list() { rd_kafka_topic_partition_list_destroy(p); }
  partition_list(const partition_list&) = delete;
  partition_list& operator=(const partition_list&) = delete;
};

// ---- metadata helpers (any handle) -------------------------------------------------

struct topic_info {
  std::int32_t partitions = 0;
  bool all_have_leaders = true;
};
result<topic_info> describe_topic(rd_kafka_t* rk, const std::string& topic, std::chrono::milliseconds timeout);
result<watermarks> query_watermarks(rd_kafka_t* rk, const std::string& topic, std::int32_t partition,
                                    std::chrono::milliseconds timeout);

// A consumed message (not an error event) as a record.
record to_record(const rd_kafka_message_t* m);

// ---- producer ------------------------------------------------------------------

struct kafka_metrics {
  histogram& produce_latency;
  counter& delivery_errors;
  metrics_registry& registry;
};

// A producer of its own handle (kafka_producer.cpp); throws
// std::runtime_error when librdkafka refuses to make one. The topics in
// `known_topics` are looked up at once.
std::unique_ptr<producer> make_kafka_producer(kafka_metrics m, const kafka_queue_options& o,
                                              const std::vector<std::string>& known_topics);

// A member of `group` (prefix included) subscribed to `topics`
// (kafka_consumer.cpp); `admin` answers its metadata requests.
result<std::unique_ptr<consumer>> make_kafka_consumer(std::string group, std::vector<std::string> topics,
                                                      start_position where, kafka_metrics m,
                                                      const kafka_queue_options& o, rd_kafka_t* admin);

}  // namespace chatd::queue::kafka
