// The Kafka backend's producer: one librdkafka producer handle, polled by
// its own thread, which runs the delivery reports (the port's callbacks).
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>

#include "common/log.h"
#include "queue/kafka_internal.h"

namespace chatd::queue::kafka {

namespace {

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

}  // namespace

std::unique_ptr<producer> make_kafka_producer(kafka_metrics m, const kafka_queue_options& o,
                                              const std::vector<std::string>& known_topics) {
  auto p = std::make_unique<kafka_producer>(m, o.close_flush_timeout);
  p->init(o);
  for (const auto& t : known_topics) (void)p->topic_handle(t, o.request_timeout);
  return p;
}

}  // namespace chatd::queue::kafka

namespace chatd::queue {

status inject_fatal_error_for_testing(producer& p) {
  auto* k = dynamic_cast<kafka::kafka_producer*>(&p);
  if (k == nullptr) return make_error(errc::bad_request, "not a Kafka producer");
  return k->inject_fatal_error();
}

}  // namespace chatd::queue
