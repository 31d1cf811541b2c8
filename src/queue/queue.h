// The message queue port, shaped like Kafka so that the embedded log
// (embedded_log.h) and a librdkafka implementation are interchangeable and pass
// one conformance suite (tests/queue/queue_conformance.h).
//
// Model: a topic has a fixed number of partitions; a record goes to partition
// partition_for_key(key) and gets the next offset of that partition. Consumers
// join a group; the group's partitions are split among its live members and
// each partition is read in offset order by exactly one member at a time. A
// group remembers, per partition, the committed offset = the next offset to
// read. Nothing is committed automatically: what was polled but not committed
// is delivered again after a restart or a rebalance (at-least-once).
//
// Every call is blocking and thread-safe unless said otherwise; call them from
// worker threads, never from network threads. Engine failures come back as
// errc::unavailable; misuse (bad names, sizes) as errc::bad_request.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace chatd::queue {

// Where a record landed.
struct record_position {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

struct record {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
  std::int64_t timestamp_ms = 0;  // producer-side wall clock (Kafka CreateTime)
};

struct topic_partition {
  std::string topic;
  std::int32_t partition = 0;
  friend auto operator<=>(const topic_partition&, const topic_partition&) = default;
};

// Offsets a partition holds: [low, high). high is the offset the next record
// will get (Kafka's high watermark); low moves up when retention deletes.
struct watermarks {
  std::int64_t low = 0;
  std::int64_t high = 0;
};

// Where a group starts reading a partition it has no committed offset for
// (Kafka's auto.offset.reset).
enum class start_position {
  earliest,  // the oldest record still held
  latest,    // only records produced after the partition was assigned
};

// Kafka's Utils.murmur2 (seed 0x9747b28c), bit for bit, over the key bytes.
std::int32_t murmur2(std::string_view data) noexcept;
// The partition of a key, as Kafka's Java default partitioner and librdkafka's
// "murmur2_random" partitioner place keyed records:
// (murmur2(key) & 0x7fffffff) % partitions. An empty key is hashed like any
// other key (it is not "no key"). partitions must be > 0.
std::int32_t partition_for_key(std::string_view key, std::int32_t partitions) noexcept;

// Kafka's rule for topic names: 1..249 characters of [a-zA-Z0-9._-], not "."
// or "..". Both backends refuse other names with errc::bad_request.
bool valid_topic_name(std::string_view topic) noexcept;

class producer {
 public:
  using callback = std::function<void(result<record_position>)>;

  virtual ~producer() = default;

  // Queues a record and returns at once; `done` runs exactly once, when the
  // record is durable (the backend says what durable means) or has failed:
  // errc::unavailable (engine down, I/O error, queue closed), or, possibly
  // before produce_async returns, errc::bad_request (invalid topic name) or
  // errc::too_large (key + value over 1 MiB). Records produced one after
  // another (the first call returned before the second was made) to one
  // partition get increasing offsets in that order: per-key order holds with
  // many records in flight. A topic that does not exist is created with the
  // backend's default partition count.
  //
  // `done` runs on an internal thread: keep it short, and never call the
  // blocking produce() or flush() from it (it would wait for itself; the
  // embedded log fails them with errc::internal).
  virtual void produce_async(std::string_view topic, std::string_view key, std::string_view value, callback done) = 0;

  // produce_async and wait for `done`.
  virtual result<record_position> produce(std::string_view topic, std::string_view key, std::string_view value);

  // Waits until every record this producer queued so far has run its
  // callback; errc::unavailable on timeout.
  virtual status flush(std::chrono::milliseconds timeout) = 0;
};

// One member of a consumer group. poll() and commit*() are meant for one
// thread (the consume loop); wakeup(), close() and assignment() may be called
// from any thread.
class consumer {
 public:
  virtual ~consumer() = default;  // implies close()

  // Waits up to `timeout` for records of the assigned partitions and returns
  // at most max_records (0 is taken as 1), each partition's records in offset
  // order with nothing skipped. Returns promptly when records arrive; returns
  // an empty batch on timeout or when wakeup() was called. After close(),
  // including for a poll blocked when close() was called, returns
  // errc::unavailable. Polling is also what keeps the member in the group and
  // applies rebalances (for Kafka), so call it regularly.
  virtual result<std::vector<record>> poll(std::chrono::milliseconds timeout, std::size_t max_records) = 0;

  // Commits offset r.offset + 1 for r's partition: "everything up to r is
  // done". Durable when it returns. errc::conflict if the partition is not
  // assigned to this member any more (a rebalance moved it; its new owner
  // reads from the last committed offset, so nothing is lost).
  virtual status commit(const record& r) = 0;
  // Commits, for every assigned partition, the offset after the last record
  // poll() returned.
  virtual status commit_polled() = 0;

  // The partitions this member reads now. For Kafka it changes inside poll();
  // the embedded log rebalances at once when members join or leave.
  virtual std::vector<topic_partition> assignment() = 0;

  // Makes a blocked poll (or the next one) return an empty batch at once.
  virtual void wakeup() = 0;
  // Leaves the group (its partitions go to the other members) and unblocks a
  // blocked poll. Nothing is committed. Idempotent.
  virtual void close() = 0;
};

class queue {
 public:
  virtual ~queue() = default;

  // Creates the topic with `partitions` partitions (1..4096) if it does not
  // exist. An existing topic keeps its partition count (ask partition_count).
  virtual status ensure_topic(std::string_view topic, std::int32_t partitions) = 0;
  // errc::not_found if the topic does not exist.
  virtual result<std::int32_t> partition_count(std::string_view topic) = 0;

  // A producer; one per process is the intended use (it is thread-safe and
  // batches concurrent produces). It may outlive the queue, failing with
  // errc::unavailable from then on.
  virtual std::unique_ptr<producer> make_producer() = 0;

  // Joins `group` (non-empty) as a new member reading `topics`. Topics that do
  // not exist yet are assigned once they are created. `where_no_commit`
  // applies to partitions the group has no committed offset for.
  virtual result<std::unique_ptr<consumer>> subscribe(std::string group, std::vector<std::string> topics,
                                                      start_position where_no_commit) = 0;

  // Reads up to max_records (0 is taken as 1) of one partition from offset
  // `from` on, in offset order, outside any consumer group (nothing is
  // committed, no member joins): for tools that look at a topic, such as
  // the dead-letter listing. Offsets below the low watermark start at the
  // oldest record held; from the high watermark on the answer is empty.
  // errc::not_found if the topic or partition does not exist.
  virtual result<std::vector<record>> read(std::string_view topic, std::int32_t partition, std::int64_t from,
                                           std::size_t max_records) = 0;

  // errc::not_found if the topic or partition does not exist.
  virtual result<watermarks> watermark_offsets(std::string_view topic, std::int32_t partition) = 0;
  // Sum over the topic's partitions of (high watermark - committed offset of
  // `group`); a partition without a committed offset counts from its low
  // watermark. For /metrics.
  virtual result<std::int64_t> lag(std::string_view group, std::string_view topic) = 0;
};

}  // namespace chatd::queue
