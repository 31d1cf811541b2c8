#include "app/queue_publisher.h"

#include <chrono>

#include "common/log.h"
#include "common/metrics.h"

namespace chatd::app {

queue_publisher::queue_publisher(queue::producer& producer, topics t, metrics_registry& metrics)
    : producer_(producer),
      topics_(std::move(t)),
      produce_latency_(metrics.histogram("chatd_queue_produce_seconds", "From produce to durable in the queue")),
      produce_errors_(metrics.counter("chatd_queue_produce_errors_total", "Produces the queue did not accept")) {}

void queue_publisher::publish_durable(const chat::event& e, std::function<void(status)> done) {
  auto start = std::chrono::steady_clock::now();
  producer_.produce_async(
      topics_.messages, chat::event_key(e), chat::encode_event(e),
      [this, start, done = std::move(done)](result<queue::record_position> r) {
        produce_latency_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        if (!r) {
          produce_errors_.inc();
          done(std::move(r).err());
          return;
        }
        done({});
      });
}

void queue_publisher::publish_ephemeral(const chat::event& e) {
  producer_.produce_async(topics_.events, chat::event_key(e), chat::encode_event(e),
                          [this](result<queue::record_position> r) {
                            if (!r) {
                              produce_errors_.inc();
                              spdlog::debug("event not published: {}", r.err().message);
                            }
                          });
}

}  // namespace chatd::app
