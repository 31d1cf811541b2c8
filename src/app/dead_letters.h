// The dead-letter topic (ADR 013): where a consumer group puts a record it
// can never process, with the error, so that the record's partition keeps
// flowing for every other conversation on it. Admins list the dead letters
// and replay one into its original topic once the cause is mended.
//
// One partition: dead letters are rare, and one partition gives each a plain
// number (its offset) and one order to page through.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "queue/queue.h"

namespace chatd {
class counter;
class metrics_registry;
namespace net {
struct http_request;
struct http_response;
}  // namespace net
}  // namespace chatd

namespace chatd::app {

struct dead_letter {
  std::int64_t id = 0;  // its offset in the dead-letter topic
  std::string group;    // the consumer group that gave up
  queue::record original;
  error why;
  int attempts = 0;
  std::int64_t failed_at_ms = 0;
};

// The record value in the dead-letter topic: JSON, the original value as a
// string when it is UTF-8 (every chatd event is) and base64url otherwise.
std::string encode_dead_letter(const dead_letter& d);
// `id` is left 0; bad_request for what encode_dead_letter did not write.
result<dead_letter> decode_dead_letter(std::string_view value);

class dead_letters {
 public:
  dead_letters(queue::queue& q, queue::producer& p, std::string topic, metrics_registry& metrics);

  const std::string& topic() const { return topic_; }
  // Creates the topic; throws (a start-up error) when the queue refuses.
  void ensure();

  // Durably stores the dead letter (blocks until the queue has it).
  status put(const std::string& group, const queue::record& r, const error& why, int attempts);

  struct page {
    std::vector<dead_letter> items;
    bool has_more = false;
  };
  // Oldest first, those with an id greater than `after` (-1: from the start).
  result<page> list(std::int64_t after, std::size_t limit);
  // Produces the original key and value again to the original topic; the
  // handlers are idempotent, so a replay twice does no harm.
  result<queue::record_position> replay(std::int64_t id);

  // GET /v1/admin/dead-letters?after=&limit= and
  // POST /v1/admin/dead-letters/{id}/replay, for the gateway (which checks
  // that the caller is an admin).
  net::http_response list_reply(const net::http_request& req);
  net::http_response replay_reply(const net::http_request& req);

 private:
  queue::queue& q_;
  queue::producer& producer_;
  std::string topic_;
  metrics_registry& metrics_;
  counter& replayed_;
};

}  // namespace chatd::app
