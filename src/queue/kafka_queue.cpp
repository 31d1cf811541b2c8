// The queue port on librdkafka's C API. Three kinds of client handle:
//  - one "admin" handle per queue (a group-less consumer handle, so that a
//    metadata request never auto-creates a topic): topics, metadata,
//    watermarks, committed offsets of any group;
//  - one producer handle per make_producer(), polled by its own thread that
//    runs the delivery reports, i.e. the port's callbacks;
//  - one consumer handle per subscribe(), polled by the caller's consume
//    loop, which is also where librdkafka runs our rebalance callback.
//
// This file is the queue itself, on the admin handle (topics, metadata,
// watermarks, lag); the configuration, the producer and the consumer are in
// kafka_config.cpp, kafka_producer.cpp and kafka_consumer.cpp.
#include "queue/kafka_queue.h"

#include <pthread.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "common/log.h"
#include "queue/kafka_internal.h"

namespace chatd::queue::kafka {

// ---- metadata helpers (any handle) -------------------------------------------------

result<topic_info> describe_topic(rd_kafka_t* rk, const std::string& topic, std::chrono::milliseconds timeout) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  if (rkt == nullptr) return make_error(errc::unavailable, "kafka: topic handle for " + topic);
  const rd_kafka_metadata_t* md = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, rkt, &md, to_ms(timeout));
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_error(err, "kafka metadata of " + topic);
  result<topic_info> out = make_error(errc::not_found, "kafka: no topic " + topic);
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || t.partition_cnt == 0) {
      out = make_error(errc::not_found, "kafka: no topic " + topic);
    } else {
      topic_info info;
      info.partitions = t.partition_cnt;
      for (int p = 0; p < t.partition_cnt; ++p)
        info.all_have_leaders = info.all_have_leaders && t.partitions[p].leader >= 0;
      out = info;
    }
  }
  rd_kafka_metadata_destroy(md);
  return out;
}

result<watermarks> query_watermarks(rd_kafka_t* rk, const std::string& topic, std::int32_t partition,
                                    std::chrono::milliseconds timeout) {
  std::int64_t low = 0, high = 0;
  const auto err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, to_ms(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return kafka_error(err, "kafka watermarks of " + topic + "/" + std::to_string(partition));
  }
  return watermarks{low, high};
}

// A consumed message (not an error event) as a record.
record to_record(const rd_kafka_message_t* m) {
  record r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_timestamp_type_t ts_type;
  r.timestamp_ms = rd_kafka_message_timestamp(m, &ts_type);
  return r;
}

namespace {

// ---- the queue -----------------------------------------------------------------

class kafka_queue final : public queue {
 public:
  explicit kafka_queue(const kafka_queue_options& o)
      : options_(o),
        registry_(o.metrics != nullptr ? *o.metrics : default_registry()),
        metrics_{
            registry_.histogram("chatd_kafka_produce_seconds", "From produce to Kafka's delivery report (acks=all)"),
            registry_.counter("chatd_kafka_delivery_errors_total",
                              "Records Kafka did not accept (reported to the caller as unavailable)"),
            registry_} {
    // Every kind of client's configuration is checked now, at start-up.
    (void)make_conf(o, client_kind::producer, {});
    (void)make_conf(o, client_kind::consumer, {{"group.id", "chatd-config-check"}});
    std::string why;
    admin_ = new_handle(RD_KAFKA_CONSUMER, make_conf(o, client_kind::admin, {}), why);
    if (admin_ == nullptr) throw std::runtime_error("kafka: " + why);
    // Serves the admin handle's error events (logs come through log_cb).
    poller_ = std::thread([this] {
      while (!stop_.load(std::memory_order_acquire)) rd_kafka_poll(admin_, 200);
    });
    pthread_setname_np(poller_.native_handle(), "kafka-admin");
    const rd_kafka_metadata_t* md = nullptr;
    const auto err = rd_kafka_metadata(admin_, 0, nullptr, &md, to_ms(o.request_timeout));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      shutdown();
      throw std::runtime_error("kafka: no broker of '" + o.brokers + "' answered within " +
                               std::to_string(o.request_timeout.count()) + " ms: " + rd_kafka_err2str(err));
    }
    spdlog::info("kafka: connected to {} ({} brokers known)", o.brokers, md->broker_cnt);
    rd_kafka_metadata_destroy(md);
  }

  ~kafka_queue() override { shutdown(); }

  status ensure_topic(std::string_view topic, std::int32_t partitions) override {
    if (!valid_topic_name(topic))
      return make_error(errc::bad_request, "invalid topic name '" + std::string(topic) + "'");
    if (partitions < 1 || partitions > 4096) return make_error(errc::bad_request, "partitions must be 1..4096");
    const std::string name(topic);
    if (auto info = describe_topic(admin_, name, options_.request_timeout); info && info->all_have_leaders) {
      remember(name);
      return {};
    }

    char errstr[512];
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(name.c_str(), partitions, options_.replication_factor, errstr, sizeof errstr);
    if (nt == nullptr) return make_error(errc::bad_request, std::string("kafka new topic: ") + errstr);
    rd_kafka_AdminOptions_t* ao = rd_kafka_AdminOptions_new(admin_, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, to_ms(options_.request_timeout), errstr, sizeof errstr);
    rd_kafka_AdminOptions_set_request_timeout(ao, to_ms(options_.request_timeout), errstr, sizeof errstr);
    rd_kafka_queue_t* q = rd_kafka_queue_new(admin_);
    rd_kafka_CreateTopics(admin_, &nt, 1, ao, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, to_ms(options_.request_timeout + 5s));
    status out;
    if (ev == nullptr) {
      out = make_error(errc::unavailable, "kafka: creating topic " + name + " timed out");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      out = kafka_error(rd_kafka_event_error(ev), "kafka create topic " + name);
    } else {
      std::size_t n = 0;
      const auto** results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
      for (std::size_t i = 0; i < n; ++i) {
        const auto e = rd_kafka_topic_result_error(results[i]);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          const char* msg = rd_kafka_topic_result_error_string(results[i]);
          out = kafka_error(e, "kafka create topic " + name + (msg != nullptr ? std::string(" (") + msg + ")" : ""));
        }
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    if (!out) return out;
    // Created by the controller; wait until the metadata shows it with a
    // leader for every partition, so that what follows can use it at once.
    // Leader election for a new topic on a broker that just started, on a
    // busy machine, took longer than one request timeout (a process then
    // failed its start): the wait is at least 30 s.
    const auto deadline = clock_type::now() + std::max<std::chrono::milliseconds>(options_.request_timeout, 30s);
    for (;;) {
      auto info = describe_topic(admin_, name, options_.request_timeout);
      if (info && info->all_have_leaders) {
        remember(name);
        return {};
      }
      if (clock_type::now() >= deadline) {
        return make_error(errc::unavailable, "kafka: topic " + name + " created but not ready in time");
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  result<std::int32_t> partition_count(std::string_view topic) override {
    if (!valid_topic_name(topic))
      return make_error(errc::bad_request, "invalid topic name '" + std::string(topic) + "'");
    auto info = describe_topic(admin_, std::string(topic), options_.request_timeout);
    if (!info) return std::move(info).err();
    return info->partitions;
  }

  std::unique_ptr<producer> make_producer() override {
    std::vector<std::string> known;
    {
      std::lock_guard lock(known_mu_);
      known.assign(known_topics_.begin(), known_topics_.end());
    }
    return make_kafka_producer(metrics_, options_, known);
  }

  result<std::unique_ptr<consumer>> subscribe(std::string group, std::vector<std::string> topics,
                                              start_position where_no_commit) override {
    if (group.empty()) return make_error(errc::bad_request, "empty consumer group");
    if (topics.empty()) return make_error(errc::bad_request, "no topic to subscribe to");
    for (const auto& t : topics) {
      if (!valid_topic_name(t)) return make_error(errc::bad_request, "invalid topic name '" + t + "'");
    }
    return make_kafka_consumer(options_.group_prefix + group, std::move(topics), where_no_commit, metrics_, options_,
                               admin_);
  }

  result<watermarks> watermark_offsets(std::string_view topic, std::int32_t partition) override {
    auto n = partition_count(topic);
    if (!n) return std::move(n).err();
    if (partition < 0 || partition >= *n) {
      return make_error(errc::not_found, "no partition " + std::to_string(partition) + " in " + std::string(topic));
    }
    return query_watermarks(admin_, std::string(topic), partition, options_.request_timeout);
  }

  result<std::vector<record>> read(std::string_view topic, std::int32_t partition, std::int64_t from,
                                   std::size_t max_records) override {
    max_records = std::max<std::size_t>(1, max_records);
    auto w = watermark_offsets(topic, partition);
    if (!w) return std::move(w).err();
    from = std::max(from, w->low);
    std::vector<record> out;
    if (from >= w->high) return out;
    // A consumer of its own, assigned the one partition: no group is joined
    // and nothing committed (the group id is only a librdkafka requirement).
    std::string why;
    rd_kafka_t* rk =
        new_handle(RD_KAFKA_CONSUMER,
                   make_conf(options_, client_kind::consumer, {{"group.id", options_.group_prefix + "reader"}}), why);
    if (rk == nullptr) return make_error(errc::unavailable, "kafka reader: " + why);
    const std::string name(topic);
    partition_list list;
    rd_kafka_topic_partition_list_add(list.p, name.c_str(), partition)->offset = from;
    status failed;
    if (auto err = rd_kafka_assign(rk, list.p); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failed = kafka_error(err, "kafka reader assign " + name);
    }
    const auto until = std::min<std::int64_t>(w->high, from + static_cast<std::int64_t>(max_records));
    const auto deadline = clock_type::now() + options_.request_timeout;
    std::int64_t next = from;
    while (failed && next < until) {
      if (clock_type::now() >= deadline) {
        if (out.empty()) failed = make_error(errc::unavailable, "kafka reader: " + name + " not read in time");
        break;
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
      if (m == nullptr) continue;
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        spdlog::debug("kafka reader {}: {}", name, rd_kafka_message_errstr(m));
      } else {
        out.push_back(to_record(m));
        next = out.back().offset + 1;
      }
      rd_kafka_message_destroy(m);
    }
    (void)rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (!failed) return std::move(failed).err();
    return out;
  }

  result<std::int64_t> lag(std::string_view group, std::string_view topic) override {
    auto n = partition_count(topic);
    if (!n) return std::move(n).err();
    const std::string name(topic);
    const std::string full_group = options_.group_prefix + std::string(group);
    partition_list parts(*n);
    for (std::int32_t p = 0; p < *n; ++p) rd_kafka_topic_partition_list_add(parts.p, name.c_str(), p);

    std::map<std::int32_t, std::int64_t> committed;
    char errstr[512];
    rd_kafka_ListConsumerGroupOffsets_t* req = rd_kafka_ListConsumerGroupOffsets_new(full_group.c_str(), parts.p);
    rd_kafka_AdminOptions_t* ao = rd_kafka_AdminOptions_new(admin_, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_AdminOptions_set_request_timeout(ao, to_ms(options_.request_timeout), errstr, sizeof errstr);
    rd_kafka_queue_t* q = rd_kafka_queue_new(admin_);
    rd_kafka_ListConsumerGroupOffsets(admin_, &req, 1, ao, q);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, to_ms(options_.request_timeout + 5s));
    status s;
    if (ev == nullptr) {
      s = make_error(errc::unavailable, "kafka: committed offsets of " + full_group + " timed out");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      s = kafka_error(rd_kafka_event_error(ev), "kafka committed offsets of " + full_group);
    } else {
      std::size_t cnt = 0;
      const auto** groups =
          rd_kafka_ListConsumerGroupOffsets_result_groups(rd_kafka_event_ListConsumerGroupOffsets_result(ev), &cnt);
      for (std::size_t i = 0; i < cnt; ++i) {
        if (const rd_kafka_error_t* e = rd_kafka_group_result_error(groups[i])) {
          // A group that never committed is simply "nothing committed".
          if (rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
            s = make_error(errc::unavailable,
                           "kafka committed offsets of " + full_group + ": " + rd_kafka_error_string(e));
          }
          continue;
        }
        const auto* got = rd_kafka_group_result_partitions(groups[i]);
        for (int j = 0; got != nullptr && j < got->cnt; ++j) {
          if (got->elems[j].err == RD_KAFKA_RESP_ERR_NO_ERROR && got->elems[j].offset >= 0) {
            committed[got->elems[j].partition] = got->elems[j].offset;
          }
        }
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    if (!s) return std::move(s).err();

    std::int64_t total = 0;
    for (std::int32_t p = 0; p < *n; ++p) {
      auto w = query_watermarks(admin_, name, p, options_.request_timeout);
      if (!w) return std::move(w).err();
      auto it = committed.find(p);
      const std::int64_t from = it != committed.end() ? std::max(it->second, w->low) : w->low;
      total += std::max<std::int64_t>(0, w->high - from);
    }
    return total;
  }

 private:
  // Topics ensured through this queue: producers made later look them up at
  // once (see kafka_producer::topic_handle).
  void remember(const std::string& topic) {
    std::lock_guard lock(known_mu_);
    known_topics_.insert(topic);
  }

  void shutdown() {
    if (admin_ == nullptr) return;
    stop_.store(true, std::memory_order_release);
    if (poller_.joinable()) poller_.join();
    rd_kafka_destroy_flags(admin_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    admin_ = nullptr;
  }

  kafka_queue_options options_;
  metrics_registry& registry_;
  kafka_metrics metrics_;
  rd_kafka_t* admin_ = nullptr;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::mutex known_mu_;
  std::set<std::string> known_topics_;
};

}  // namespace

}  // namespace chatd::queue::kafka

namespace chatd::queue {

std::unique_ptr<queue> open_kafka_queue(const kafka_queue_options& options) {
  return std::make_unique<kafka::kafka_queue>(options);
}

}  // namespace chatd::queue
