// The queue port on librdkafka's C API. Three kinds of client handle:
//  - one "admin" handle per queue (a group-less consumer handle, so that a
//    metadata request never auto-creates a topic): topics, metadata,
//    watermarks, committed offsets of any group;
//  - one producer handle per make_producer(), polled by its own thread that
//    runs the delivery reports, i.e. the port's callbacks;
//  - one consumer handle per subscribe(), polled by the caller's consume
//    loop, which is also where librdkafka runs our rebalance callback.
#include "queue/kafka_queue.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"

namespace chatd::queue {
namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t max_record_bytes = 1024 * 1024;  // key + value, as the embedded log

int to_ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::clamp<std::int64_t>(d.count(), 0, 24LL * 3600 * 1000));
}

error kafka_error(rd_kafka_resp_err_t err, const std::string& what) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return make_error(errc::not_found, what + ": " + rd_kafka_err2str(err));
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return make_error(errc::too_large, what + ": " + rd_kafka_err2str(err));
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
      return make_error(errc::bad_request, what + ": " + rd_kafka_err2str(err));
    default:
      return make_error(errc::unavailable, what + ": " + rd_kafka_err2str(err));
  }
}

// ---- configuration -----------------------------------------------------------

enum class client_kind { producer, consumer, admin };

struct conf_deleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;

// librdkafka's log lines go to spdlog (it calls this from its own threads).
void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  const char* name = rd_kafka_name(rk);
  if (level <= 3) {
    spdlog::error("kafka {} {}: {}", name, fac, buf);
  } else if (level == 4) {
    spdlog::warn("kafka {} {}: {}", name, fac, buf);
  } else if (level <= 6) {
    spdlog::info("kafka {} {}: {}", name, fac, buf);
  } else {
    spdlog::debug("kafka {} {}: {}", name, fac, buf);
  }
}

void error_cb(rd_kafka_t* rk, int err, const char* reason, void* /*opaque*/) {
  const auto e = static_cast<rd_kafka_resp_err_t>(err);
  if (e == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    rd_kafka_fatal_error(rk, why, sizeof why);
    spdlog::error("kafka {}: fatal error: {}", rd_kafka_name(rk), why);
    return;
  }
  // Brokers going away and coming back are reported here; librdkafka
  // reconnects by itself, so this is a warning, not an error.
  spdlog::warn("kafka {}: {} ({})", rd_kafka_name(rk), reason, rd_kafka_err2name(e));
}

// Settings the port's guarantees rest on: a user value must agree.
const std::map<std::string, std::set<std::string>>& enforced(client_kind kind) {
  static const std::map<std::string, std::set<std::string>> producer{
      {"enable.idempotence", {"true"}},
      {"acks", {"all", "-1"}},
      {"request.required.acks", {"all", "-1"}},
  };
  static const std::map<std::string, std::set<std::string>> consumer{
      {"enable.auto.commit", {"false"}},
      {"enable.auto.offset.store", {"false"}},
  };
  static const std::map<std::string, std::set<std::string>> none;
  return kind == client_kind::producer ? producer : kind == client_kind::consumer ? consumer : none;
}

void set_or_throw(rd_kafka_conf_t* conf, const std::string& key, const std::string& value, const std::string& origin) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    throw config_error(origin + ": " + errstr);
  }
}

// chatd's defaults, then the user's settings, then the enforced ones.
// Throws config_error (start-up) for a bad or conflicting setting.
conf_ptr make_conf(const kafka_queue_options& o, client_kind kind,
                   const std::vector<std::pair<std::string, std::string>>& extra) {
  conf_ptr conf(rd_kafka_conf_new());
  std::vector<std::pair<std::string, std::string>> defaults{
      {"bootstrap.servers", o.brokers},
      {"client.id", "chatd"},
      // A broker that comes back is found within a second, not the default
      // 10 s backoff: chatd must recover quickly after a broker restart.
      {"reconnect.backoff.ms", "100"},
      {"reconnect.backoff.max.ms", "1000"},
      {"log.connection.close", "false"},
  };
  if (kind == client_kind::producer) {
    defaults.insert(defaults.end(), {
                                        {"enable.idempotence", "true"},
                                        {"acks", "all"},
                                        // Where Kafka's Java client puts a keyed record: the
                                        // partition partition_for_key() computes.
                                        {"partitioner", "murmur2_random"},
                                        // A chat send waits for its ack: batch for 1 ms, not 5.
                                        {"linger.ms", "1"},
                                        // A send fails (unavailable) after 15 s without a
                                        // durable write rather than hanging for 5 minutes.
                                        {"message.timeout.ms", "15000"},
                                    });
  } else if (kind == client_kind::consumer) {
    defaults.insert(defaults.end(), {
                                        {"enable.auto.commit", "false"},
                                        {"enable.auto.offset.store", "false"},
                                        {"enable.partition.eof", "false"},
                                        {"allow.auto.create.topics", "false"},
                                        // A member that died (kill -9) holds its partitions
                                        // until this passes: 6 s, Kafka's minimum by default,
                                        // instead of 45 s.
                                        {"session.timeout.ms", "6000"},
                                        {"heartbeat.interval.ms", "1500"},
                                        // An idle partition's fetch waits this long at the
                                        // broker; a record can occasionally sit out the whole
                                        // wait (measured: up to 0.5 s with the default 500).
                                        {"fetch.wait.max.ms", "100"},
                                        // Pre-fetch per consumer: 64 MiB by default is a lot for
                                        // a process with several groups.
                                        {"queued.max.messages.kbytes", "16384"},
                                    });
  } else {
    defaults.emplace_back("allow.auto.create.topics", "false");
  }
  for (const auto& [k, v] : defaults) set_or_throw(conf.get(), k, v, "kafka default " + k);

  static const std::vector<std::pair<std::string, client_kind>> scoped{
      {"producer.", client_kind::producer}, {"consumer.", client_kind::consumer}, {"admin.", client_kind::admin}};
  const auto& must = enforced(kind);
  for (const auto& [key, value] : o.settings) {
    std::string k = key;
    bool applies = true;
    for (const auto& [prefix, which] : scoped) {
      if (k.rfind(prefix, 0) == 0) {
        applies = which == kind;
        k = k.substr(prefix.size());
        break;
      }
    }
    if (!applies) continue;
    if (auto it = must.find(k); it != must.end() && !it->second.contains(value)) {
      throw config_error("queue.kafka." + key + "=" + value + ": chatd's delivery guarantees need it to be " +
                         *it->second.begin());
    }
    if (k == "group.id") {
      throw config_error("queue.kafka." + key + ": group ids come from chatd (see queue.topic_prefix)");
    }
    set_or_throw(conf.get(), k, value, "queue.kafka." + key);
  }
  for (const auto& [k, v] : extra) set_or_throw(conf.get(), k, v, "kafka " + k);
  rd_kafka_conf_set_log_cb(conf.get(), log_cb);
  rd_kafka_conf_set_error_cb(conf.get(), error_cb);
  return conf;
}

// Takes ownership of conf (also on failure, as rd_kafka_new does on success).
rd_kafka_t* new_handle(rd_kafka_type_t type, conf_ptr conf, std::string& why) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) {
    why = errstr;
    return nullptr;
  }
  (void)conf.release();  // owned by rk now
  return rk;
}

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

// ---- producer ------------------------------------------------------------------

struct kafka_metrics {
  histogram& produce_latency;
  counter& delivery_errors;
  metrics_registry& registry;
};

class kafka_producer final : public producer {
 public:
  kafka_producer(kafka_metrics m, std::chrono::milliseconds close_flush_timeout)
      : metrics_(m), close_flush_timeout_(close_flush_timeout) {}

  // Second phase, once `this` can be the handle's opaque.
  void init(const kafka_queue_options& o) {
    options_ = o;
    recreated_ = &metrics_.registry.counter("chatd_kafka_producer_recreated_total",
                                            "Producers replaced after librdkafka's fatal idempotence error");
    std::string why;
    if (!open_handle(why)) throw std::runtime_error("kafka producer: " + why);
  }

  // An idempotent producer that hit a fatal error (the broker lost records
  // it had acknowledged, or forgot the producer id after a restart) refuses
  // every record from then on; librdkafka's answer is a new producer. The
  // first produce that sees the fatal state makes one: what the old handle
  // still held is failed (unavailable, so the sender retries it with the
  // same client_msg_id), and the new handle starts a new idempotence
  // session. Returns whether the handle works now.
  bool recreate_if_fatal() {
    std::unique_lock lock(rk_mu_);
    char why[256] = "";
    if (rd_kafka_fatal_error(rk_, why, sizeof why) == RD_KAFKA_RESP_ERR_NO_ERROR) return true;  // done by another
    spdlog::warn("kafka producer: fatal error ({}); replacing the producer", why);
    close_handle();
    std::string err;
    if (!open_handle(err)) {
      spdlog::error("kafka producer: cannot make a new producer: {}", err);
      return false;
    }
    recreated_->inc();
    return true;
  }

  // For tests: the fatal state a broker can cause, on demand.
  status inject_fatal_error() {
    std::shared_lock lock(rk_mu_);
    auto err = rd_kafka_test_fatal_error(rk_, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "injected by a test");
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_error(err, "kafka: injecting a fatal error");
    return {};
  }

  ~kafka_producer() override {
    if (rk_ == nullptr) return;
    // A clean shutdown delivers what is in flight; what still is not
    // delivered after the timeout fails (unavailable), never silently.
    if (!flush(close_flush_timeout_)) spdlog::warn("kafka producer: records still in flight at close are failed");
    std::unique_lock lock(rk_mu_);
    close_handle();
  }

  void produce_async(std::string_view topic, std::string_view key, std::string_view value, callback done) override {
    if (!valid_topic_name(topic)) {
      done(make_error(errc::bad_request, "invalid topic name '" + std::string(topic) + "'"));
      return;
    }
    if (key.size() + value.size() > max_record_bytes) {
      done(make_error(errc::too_large, "record of " + std::to_string(key.size() + value.size()) + " bytes"));
      return;
    }
    const std::string topic_name(topic);
    {
      std::shared_lock lock(rk_mu_);
      if (rd_kafka_fatal_error(rk_, nullptr, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        produce_locked(topic_name, key, value, std::move(done));
        return;
      }
    }
    (void)recreate_if_fatal();  // if it fails, producev refuses below and says why
    std::shared_lock lock(rk_mu_);
    produce_locked(topic_name, key, value, std::move(done));
  }

  // With rk_mu_ held (shared).
  void produce_locked(const std::string& topic_name, std::string_view key, std::string_view value, callback done) {
    rd_kafka_topic_t* rkt = topic_handle(topic_name, 2s);
    auto* job = new in_flight{std::move(done), clock_type::now()};
    pending_.fetch_add(1);
    // A non-NULL key pointer even for an empty key: NULL means "no key" to
    // librdkafka (random partition), and the port hashes empty keys too.
    static const char empty = 0;
    const auto err =
        rd_kafka_producev(rk_, RD_KAFKA_V_RKT(rkt),
                          RD_KAFKA_V_KEY(key.empty() ? static_cast<const void*>(&empty) : key.data(), key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(job), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Not queued (local queue full, fatal producer error): fail now.
      metrics_.delivery_errors.inc();
      auto cb = std::move(job->done);
      delete job;
      finish_one();
      cb(kafka_error(err, "kafka produce to " + topic_name));
    }
  }

  result<record_position> produce(std::string_view topic, std::string_view key, std::string_view value) override {
    if (std::this_thread::get_id() == poller_id_.load()) {
      return make_error(errc::internal, "blocking produce from a produce callback would wait for itself");
    }
    return producer::produce(topic, key, value);
  }

  // The handle of a topic, its metadata fetched the first time: librdkafka
  // 2.0 would otherwise look a new topic up only at its next 1 s metadata
  // scan, which delays the first record to it by up to a second. With
  // rk_mu_ held (shared), or before the producer is shared.
  rd_kafka_topic_t* topic_handle(const std::string& topic, std::chrono::milliseconds timeout) {
    std::lock_guard lock(topics_mu_);
    if (auto it = topics_.find(topic); it != topics_.end()) return it->second;
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk_, 0, rkt, &md, to_ms(timeout)) == RD_KAFKA_RESP_ERR_NO_ERROR)
      rd_kafka_metadata_destroy(md);
    topics_.emplace(topic, rkt);
    return rkt;
  }

  status flush(std::chrono::milliseconds timeout) override {
    if (std::this_thread::get_id() == poller_id_.load()) {
      return make_error(errc::internal, "flush from a produce callback would wait for itself");
    }
    std::unique_lock lock(mu_);
    if (!idle_.wait_for(lock, timeout, [this] { return pending_.load() == 0; })) {
      return make_error(errc::unavailable, "kafka: " + std::to_string(pending_.load()) +
                                               " records not delivered within " + std::to_string(timeout.count()) +
                                               " ms");
    }
    return {};
  }

 private:
  struct in_flight {
    callback done;
    clock_type::time_point start;
  };

  // With rk_mu_ held exclusively, or from init().
  bool open_handle(std::string& why) {
    auto conf = make_conf(options_, client_kind::producer, {});
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &kafka_producer::on_delivery);
    rk_ = new_handle(RD_KAFKA_PRODUCER, std::move(conf), why);
    if (rk_ == nullptr) return false;
    stop_.store(false, std::memory_order_release);
    poller_ = std::thread([this, rk = rk_] {
      while (!stop_.load(std::memory_order_acquire)) rd_kafka_poll(rk, 100);
    });
    poller_id_.store(poller_.get_id());
    pthread_setname_np(poller_.native_handle(), "kafka-producer");
    return true;
  }

  // With rk_mu_ held exclusively: fails what the handle still holds (each
  // gets its callback) and destroys it.
  void close_handle() {
    stop_.store(true, std::memory_order_release);
    if (poller_.joinable()) poller_.join();
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    // Purged records get their delivery report (and so their callback) here;
    // nothing new enters while the lock is held.
    const auto deadline = clock_type::now() + 5s;
    while (pending_.load() > 0 && clock_type::now() < deadline) rd_kafka_poll(rk_, 100);
    {
      std::lock_guard lock(topics_mu_);
      for (auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
      topics_.clear();
    }
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }

  // On the poller thread: the delivery report is what says "durable".
  static void on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<kafka_producer*>(opaque);
    std::unique_ptr<in_flight> job(static_cast<in_flight*>(m->_private));
    self->metrics_.produce_latency.observe(std::chrono::duration<double>(clock_type::now() - job->start).count());
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->metrics_.delivery_errors.inc();
      spdlog::debug("kafka delivery to {} failed: {}", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
      auto e = kafka_error(m->err, "kafka delivery to " + std::string(rd_kafka_topic_name(m->rkt)));
      // Whatever librdkafka says (unknown topic, timeout, purge), a record
      // that was not written is "the queue is not available" to the caller.
      if (e.code != errc::too_large) e.code = errc::unavailable;
      job->done(std::move(e));
    } else if (m->offset < 0) {
      // "Delivered" without an offset: seen from librdkafka 2.0 against a
      // newer broker for a record the partition then did not hold. An ack
      // must mean the record is in the log, so this one is failed and the
      // sender sends it again (idempotent downstream).
      self->metrics_.delivery_errors.inc();
      spdlog::warn("kafka delivery to {} [{}] reported without an offset; failed so that it is sent again",
                   rd_kafka_topic_name(m->rkt), m->partition);
      job->done(make_error(errc::unavailable, "kafka delivery to " + std::string(rd_kafka_topic_name(m->rkt)) +
                                                  ": no offset reported (send it again)"));
    } else {
      job->done(record_position{m->partition, m->offset});
    }
    self->finish_one();
  }

  void finish_one() {
    if (pending_.fetch_sub(1) == 1) {
      std::lock_guard lock(mu_);
      idle_.notify_all();
    }
  }

  kafka_metrics metrics_;
  std::chrono::milliseconds close_flush_timeout_;
  kafka_queue_options options_;
  counter* recreated_ = nullptr;
  // Shared by produces; exclusive while the handle is replaced or closed.
  std::shared_mutex rk_mu_;
  rd_kafka_t* rk_ = nullptr;
  std::thread poller_;
  std::atomic<std::thread::id> poller_id_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> pending_{0};
  std::mutex mu_;
  std::condition_variable idle_;
  std::mutex topics_mu_;
  std::map<std::string, rd_kafka_topic_t*> topics_;
};

// ---- consumer ------------------------------------------------------------------

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
    auto p = std::make_unique<kafka_producer>(metrics_, options_.close_flush_timeout);
    p->init(options_);
    std::vector<std::string> known;
    {
      std::lock_guard lock(known_mu_);
      known.assign(known_topics_.begin(), known_topics_.end());
    }
    for (const auto& t : known) (void)p->topic_handle(t, options_.request_timeout);
    return p;
  }

  result<std::unique_ptr<consumer>> subscribe(std::string group, std::vector<std::string> topics,
                                              start_position where_no_commit) override {
    if (group.empty()) return make_error(errc::bad_request, "empty consumer group");
    if (topics.empty()) return make_error(errc::bad_request, "no topic to subscribe to");
    for (const auto& t : topics) {
      if (!valid_topic_name(t)) return make_error(errc::bad_request, "invalid topic name '" + t + "'");
    }
    auto c = std::make_unique<kafka_consumer>(options_.group_prefix + group, std::move(topics), where_no_commit,
                                              metrics_, options_.request_timeout);
    if (auto s = c->init(options_, admin_); !s) return std::move(s).err();
    return std::unique_ptr<consumer>(std::move(c));
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

std::unique_ptr<queue> open_kafka_queue(const kafka_queue_options& options) {
  return std::make_unique<kafka_queue>(options);
}

status inject_fatal_error_for_testing(producer& p) {
  auto* k = dynamic_cast<kafka_producer*>(&p);
  if (k == nullptr) return make_error(errc::bad_request, "not a Kafka producer");
  return k->inject_fatal_error();
}

}  // namespace chatd::queue
