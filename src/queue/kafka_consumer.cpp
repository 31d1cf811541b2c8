// The Kafka backend's consumer: one librdkafka consumer handle per
// subscribe(), polled by the caller's consume loop, which is also where
// librdkafka runs the rebalance callback.
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "common/config.h"
#include "common/log.h"
#include "queue/kafka_internal.h"

namespace chatd::queue::kafka {

namespace {

class kafka_consumer final : public consumer {
 public:
  kafka_consumer(std::string group, std::vector<std::string> topics, start_position where, kafka_metrics m,
                 std::chrono::milliseconds request_timeout)
      : group_(std::move(group)),
        topics_(std::move(topics)),
        start_(where),
        metrics_(m),
        request_timeout_(request_timeout) {}

  ~kafka_consumer() override {
    close();
    if (queue_ != nullptr) rd_kafka_queue_destroy(queue_);
    if (rk_ != nullptr) rd_kafka_destroy(rk_);
  }

  // `latest` in the port means "what is produced after subscribe()", but a
  // Kafka group gets its partitions seconds later. So the high watermarks are
  // taken now and a partition without a committed offset starts there.
  status init(const kafka_queue_options& o, rd_kafka_t* admin) {
    if (start_ == start_position::latest) {
      for (const auto& topic : topics_) {
        auto info = describe_topic(admin, topic, request_timeout_);
        if (!info) continue;  // not there yet: starts at its end once assigned
        for (std::int32_t p = 0; p < info->partitions; ++p) {
          if (auto w = query_watermarks(admin, topic, p, request_timeout_)) latest_start_[{topic, p}] = w->high;
        }
      }
    }
    conf_ptr conf;
    try {
      conf = make_conf(
          o, client_kind::consumer,
          {{"group.id", group_}, {"auto.offset.reset", start_ == start_position::earliest ? "earliest" : "latest"}});
    } catch (const config_error& e) {
      return make_error(errc::bad_request, e.what());
    }
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_rebalance_cb(conf.get(), &kafka_consumer::on_rebalance);
    std::string why;
    rk_ = new_handle(RD_KAFKA_CONSUMER, std::move(conf), why);
    if (rk_ == nullptr) return make_error(errc::unavailable, "kafka consumer: " + why);
    rd_kafka_poll_set_consumer(rk_);
    queue_ = rd_kafka_queue_get_consumer(rk_);
    partition_list subs(static_cast<int>(topics_.size()));
    for (const auto& t : topics_) rd_kafka_topic_partition_list_add(subs.p, t.c_str(), RD_KAFKA_PARTITION_UA);
    if (auto err = rd_kafka_subscribe(rk_, subs.p); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(err, "kafka subscribe");
    }
    // Joining a group takes Kafka a few round trips; the embedded log's
    // member reads at once. Waiting here for the first assignment (bounded)
    // keeps the difference away from callers: a service that subscribed is
    // reading when it says it is ready. Records that arrive meanwhile are
    // kept for the first poll(). A second member of a group whose other
    // members are not polling waits the whole subscribe_wait (they must
    // rejoin first); it is assigned later, inside poll(), as Kafka does.
    const auto deadline = clock_type::now() + o.subscribe_wait;
    std::lock_guard lock(poll_mu_);
    while (!assigned_once_ && clock_type::now() < deadline) {
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 100)) {
        if (auto r = take(m)) buffered_.push_back(std::move(*r));
      }
    }
    if (!assigned_once_) {
      spdlog::info("kafka consumer {}: no partitions assigned within {} ms; continuing (assigned while polling)",
                   group_, o.subscribe_wait.count());
    }
    return {};
  }

  result<std::vector<record>> poll(std::chrono::milliseconds timeout, std::size_t max_records) override {
    std::lock_guard lock(poll_mu_);
    if (closed_) return closed_error();
    if (max_records == 0) max_records = 1;
    std::vector<record> out;
    while (!buffered_.empty() && out.size() < max_records) {
      record r = std::move(buffered_.front());
      buffered_.pop_front();
      next_offset_[{r.topic, r.partition}] = r.offset + 1;
      out.push_back(std::move(r));
    }
    if (!out.empty()) return out;
    if (wakeup_.exchange(false)) return out;
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
      // Waits in slices so that close()/wakeup() are seen promptly even if a
      // queue yield is missed; after the first record, only takes what is
      // already there.
      int wait_ms = 0;
      if (out.empty()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        wait_ms = std::min(to_ms(left), 250);
      }
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, wait_ms);
      if (closed_) {
        if (m != nullptr) rd_kafka_message_destroy(m);
        return closed_error();
      }
      if (m == nullptr) {
        if (!out.empty() || wakeup_.exchange(false) || clock_type::now() >= deadline) break;
        continue;
      }
      if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        const std::string what = rd_kafka_message_errstr(m);
        rd_kafka_message_destroy(m);
        return make_error(errc::unavailable, "kafka consumer: " + what);
      }
      auto taken = take(m);
      if (!taken) continue;
      record r = std::move(*taken);
      next_offset_[{r.topic, r.partition}] = r.offset + 1;
      out.push_back(std::move(r));
      if (out.size() >= max_records) break;
    }
    update_lag_gauges();
    return out;
  }

  status commit(const record& r) override {
    std::lock_guard lock(poll_mu_);
    if (closed_) return closed_error();
    if (!assigned({r.topic, r.partition})) {
      return make_error(errc::conflict,
                        "partition " + r.topic + "/" + std::to_string(r.partition) + " is not assigned to this member");
    }
    partition_list list;
    rd_kafka_topic_partition_list_add(list.p, r.topic.c_str(), r.partition)->offset = r.offset + 1;
    return commit_list(list.p);
  }

  status commit_polled() override {
    std::lock_guard lock(poll_mu_);
    if (closed_) return closed_error();
    partition_list list(static_cast<int>(next_offset_.size()));
    for (const auto& [tp, next] : next_offset_) {
      if (assigned(tp)) rd_kafka_topic_partition_list_add(list.p, tp.topic.c_str(), tp.partition)->offset = next;
    }
    if (list.p->cnt == 0) return {};
    return commit_list(list.p);
  }

  std::vector<topic_partition> assignment() override {
    std::lock_guard lock(assign_mu_);
    return {assignment_.begin(), assignment_.end()};
  }

  void wakeup() override {
    wakeup_ = true;
    if (queue_ != nullptr) rd_kafka_queue_yield(queue_);
  }

  void close() override {
    if (rk_ == nullptr) return;
    closed_ = true;
    if (queue_ != nullptr) rd_kafka_queue_yield(queue_);
    std::lock_guard lock(poll_mu_);  // the poll in progress has seen closed_ and returned
    if (left_group_) return;
    left_group_ = true;
    // Leaves the group now: its partitions go to the other members at once
    // instead of after the session timeout.
    if (auto err = rd_kafka_consumer_close(rk_); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka consumer {}: close: {}", group_, rd_kafka_err2str(err));
    }
    std::lock_guard assign_lock(assign_mu_);
    assignment_.clear();
  }

 private:
  static error closed_error() { return make_error(errc::unavailable, "kafka consumer is closed"); }

  // The record in a consumed message (destroyed here), or nothing for an
  // error event, which is logged: librdkafka retries transient errors itself.
  std::optional<record> take(rd_kafka_message_t* m) {
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const auto err = m->err;
      const std::string what = rd_kafka_message_errstr(m);
      rd_kafka_message_destroy(m);
      // A subscribed topic that does not exist yet is assigned once it is
      // created (the port's rule).
      if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        spdlog::debug("kafka consumer {}: {}", group_, what);
      } else {
        spdlog::warn("kafka consumer {}: {}", group_, what);
      }
      return std::nullopt;
    }
    record r = to_record(m);
    rd_kafka_message_destroy(m);
    return r;
  }

  bool assigned(const topic_partition& tp) {
    std::lock_guard lock(assign_mu_);
    return assignment_.contains(tp);
  }

  status commit_list(rd_kafka_topic_partition_list_t* list) {
    auto err = rd_kafka_commit(rk_, list, 0 /* synchronous: durable when it returns */);
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) err = list->elems[i].err;
    switch (err) {
      case RD_KAFKA_RESP_ERR_NO_ERROR:
        return {};
      // The group moved on (a rebalance): the partition's new owner reads
      // from the last committed offset.
      case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
      case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
      case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
      case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
        return make_error(errc::conflict, std::string("kafka commit: ") + rd_kafka_err2str(err));
      default:
        return make_error(errc::unavailable, std::string("kafka commit: ") + rd_kafka_err2str(err));
    }
  }

  // Runs inside rd_kafka_consumer_poll / consumer close, on the thread that
  // holds poll_mu_.
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
    auto* self = static_cast<kafka_consumer*>(opaque);
    const bool cooperative = std::string_view(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      self->choose_start_offsets(rk, parts);
      if (cooperative) {
        if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts)) {
          spdlog::warn("kafka consumer {}: assign: {}", self->group_, rd_kafka_error_string(e));
          rd_kafka_error_destroy(e);
        }
      } else {
        rd_kafka_assign(rk, parts);
      }
      self->assigned_once_ = true;
      std::lock_guard lock(self->assign_mu_);
      if (!cooperative) self->assignment_.clear();
      for (int i = 0; i < parts->cnt; ++i) self->assignment_.insert({parts->elems[i].topic, parts->elems[i].partition});
      spdlog::debug("kafka consumer {}: assigned {} partitions", self->group_, self->assignment_.size());
    } else {
      // Revoked (or an error, which librdkafka wants answered by giving up
      // everything). Nothing is committed here: what was polled but not
      // committed by the user comes again to the new owner (at-least-once).
      if (cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts)) rd_kafka_error_destroy(e);
      } else {
        rd_kafka_assign(rk, nullptr);
      }
      std::lock_guard lock(self->assign_mu_);
      if (cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        for (int i = 0; i < parts->cnt; ++i) {
          topic_partition tp{parts->elems[i].topic, parts->elems[i].partition};
          self->assignment_.erase(tp);
          self->next_offset_.erase(tp);
          std::erase_if(self->buffered_,
                        [&](const record& r) { return r.topic == tp.topic && r.partition == tp.partition; });
          self->set_lag(tp, 0);
        }
      } else {
        for (const auto& tp : self->assignment_) self->set_lag(tp, 0);
        self->assignment_.clear();
        self->next_offset_.clear();
        self->buffered_.clear();
      }
    }
  }

  // Earliest: the committed offset, else auto.offset.reset=earliest: nothing
  // to do. Latest: the committed offset, else the watermark taken at
  // subscribe (or now, for a partition unknown then).
  void choose_start_offsets(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts) {
    if (start_ != start_position::latest || parts->cnt == 0) return;
    if (auto err = rd_kafka_committed(rk, parts, to_ms(request_timeout_)); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka consumer {}: committed offsets: {}; starting at the end", group_, rd_kafka_err2str(err));
      for (int i = 0; i < parts->cnt; ++i) parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
      return;
    }
    for (int i = 0; i < parts->cnt; ++i) {
      auto& e = parts->elems[i];
      e.err = RD_KAFKA_RESP_ERR_NO_ERROR;
      if (e.offset >= 0) continue;
      if (auto it = latest_start_.find({e.topic, e.partition}); it != latest_start_.end()) {
        e.offset = it->second;
      } else if (auto w = query_watermarks(rk, e.topic, e.partition, request_timeout_)) {
        e.offset = w->high;
      } else {
        e.offset = RD_KAFKA_OFFSET_INVALID;  // auto.offset.reset=latest
      }
    }
  }

  gauge& lag_gauge(const topic_partition& tp) {
    auto it = lag_gauges_.find(tp);
    if (it == lag_gauges_.end()) {
      it = lag_gauges_
               .emplace(tp, &metrics_.registry.gauge(
                                "chatd_kafka_consumer_lag", "Records of a partition this member has not read yet",
                                {{"group", group_}, {"topic", tp.topic}, {"partition", std::to_string(tp.partition)}}))
               .first;
    }
    return *it->second;
  }
  void set_lag(const topic_partition& tp, double v) {
    if (auto it = lag_gauges_.find(tp); it != lag_gauges_.end()) it->second->set(v);
  }

  // From librdkafka's cached high watermarks (no request): at most once a
  // second.
  void update_lag_gauges() {
    const auto now = clock_type::now();
    if (now < next_lag_update_) return;
    next_lag_update_ = now + 1s;
    std::vector<topic_partition> parts = assignment();
    if (parts.empty()) return;
    partition_list list(static_cast<int>(parts.size()));
    for (const auto& tp : parts) rd_kafka_topic_partition_list_add(list.p, tp.topic.c_str(), tp.partition);
    if (rd_kafka_position(rk_, list.p) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    for (int i = 0; i < list.p->cnt; ++i) {
      const auto& e = list.p->elems[i];
      std::int64_t low = 0, high = 0;
      if (e.offset < 0 || rd_kafka_get_watermark_offsets(rk_, e.topic, e.partition, &low, &high) != 0 || high < 0) {
        continue;
      }
      lag_gauge({e.topic, e.partition}).set(static_cast<double>(std::max<std::int64_t>(0, high - e.offset)));
    }
  }

  std::string group_;
  std::vector<std::string> topics_;
  start_position start_;
  kafka_metrics metrics_;
  std::chrono::milliseconds request_timeout_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;  // the consumer queue, for yield
  std::map<topic_partition, std::int64_t> latest_start_;

  std::mutex poll_mu_;  // poll/commit against close
  std::atomic<bool> closed_{false};
  bool left_group_ = false;
  std::atomic<bool> wakeup_{false};

  // Poll thread only (the rebalance callback runs there too).
  std::map<topic_partition, std::int64_t> next_offset_;
  std::map<topic_partition, gauge*> lag_gauges_;
  std::deque<record> buffered_;  // polled while subscribe() waited
  bool assigned_once_ = false;
  clock_type::time_point next_lag_update_{};

  std::mutex assign_mu_;
  std::set<topic_partition> assignment_;
};

}  // namespace

result<std::unique_ptr<consumer>> make_kafka_consumer(std::string group, std::vector<std::string> topics,
                                                      start_position where, kafka_metrics m,
                                                      const kafka_queue_options& o, rd_kafka_t* admin) {
  auto c = std::make_unique<kafka_consumer>(std::move(group), std::move(topics), where, m, o.request_timeout);
  if (auto s = c->init(o, admin); !s) return std::move(s).err();
  return std::unique_ptr<consumer>(std::move(c));
}

}  // namespace chatd::queue::kafka
