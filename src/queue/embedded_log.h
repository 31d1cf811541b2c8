// The embedded backend of the queue port: a durable, partitioned log with
// consumer groups, on its own RocksDB instance (docs/adr/004-embedded-log.md).
//
// Durability of an acknowledged produce (the callback ran with a position):
//  - fsync = false: the record is in RocksDB's write-ahead log, handed to the
//    operating system before the acknowledgement. It survives a crash or
//    `kill -9` of the process, not a crash of the machine or a power loss.
//  - fsync = true: the WAL was also fsync'd (one fsync per group commit), so
//    the record survives power loss too.
// Committed offsets are written the same way.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "queue/queue.h"

namespace chatd::queue {

struct embedded_log_options {
  std::string path;              // directory of the RocksDB instance; created if missing
  std::int32_t partitions = 12;  // for topics created implicitly (produce to an unknown topic)
  bool fsync = false;            // fsync the WAL on every group commit
  // Retention, per partition, deleting regardless of consumers as Kafka does
  // (see README). 0 disables each rule. The newest record of a partition is
  // always kept, because it is what carries the partition's next offset.
  std::chrono::milliseconds retention_time = std::chrono::hours(24 * 7);
  std::int64_t retention_records = 0;
  std::chrono::milliseconds retention_check_interval = std::chrono::minutes(1);
  // Upper bound of one group commit (records); more waiting producers are
  // written by the next one.
  std::size_t max_batch_records = 4096;
  // With fsync only: how long the writer may wait for producers to refill a
  // group commit to the size of the previous one (a lone producer never
  // waits). Trades this much latency for fewer fsyncs under concurrency.
  std::chrono::microseconds group_commit_linger{500};
};

// Counters of the group commit, for tests and benchmarks.
struct embedded_log_stats {
  std::uint64_t records = 0;        // records written
  std::uint64_t group_commits = 0;  // WriteBatches written (one WAL write, and fsync if on, each)
  std::uint64_t commits = 0;        // consumer offset commits written
};

class embedded_log : public queue {
 public:
  virtual embedded_log_stats stats() const = 0;
  // Runs one retention pass now (it also runs every retention_check_interval).
  virtual status enforce_retention() = 0;
};

// Opens (creating if needed) the log at options.path. Throws
// std::runtime_error if it cannot be opened (start-up error). Closing: destroy
// the returned object; pending produces are written first, consumers and
// producers still held fail with errc::unavailable from then on.
std::unique_ptr<embedded_log> open_embedded_log(const embedded_log_options& options);

}  // namespace chatd::queue
