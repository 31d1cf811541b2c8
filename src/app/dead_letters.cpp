#include "app/dead_letters.h"

#include <charconv>
#include <chrono>
#include <stdexcept>

#include "auth/token.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "net/reply.h"

namespace chatd::app {
namespace {

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

json::object to_json(const dead_letter& d) {
  json::object o;
  o["id"] = std::to_string(d.id);
  o["group"] = d.group;
  o["topic"] = d.original.topic;
  o["partition"] = d.original.partition;
  o["offset"] = d.original.offset;
  o["key"] = d.original.key;
  if (valid_utf8(d.original.value)) {
    o["value"] = d.original.value;
  } else {
    o["value_base64url"] = auth::base64url_encode(d.original.value);
  }
  o["timestamp"] = d.original.timestamp_ms;
  o["error"] = json::object{{"code", code_name(d.why.code)}, {"message", d.why.message}};
  o["attempts"] = d.attempts;
  o["failed_at"] = d.failed_at_ms;
  return o;
}

}  // namespace

std::string encode_dead_letter(const dead_letter& d) {
  auto o = to_json(d);
  o.erase("id");  // the id is where it lands
  return json::serialize(o);
}

result<dead_letter> decode_dead_letter(std::string_view value) {
  auto o = parse_json_object(value);
  if (!o) return std::move(o).err();
  json_fields f(*o);
  dead_letter d;
  auto group = f.str("group", true);
  auto topic = f.str("topic", true);
  auto partition = f.integer("partition", true, 0, 4095);
  auto offset = f.integer("offset", true, 0, INT64_MAX);
  auto key = f.str("key", true);
  auto text = f.str("value", false);
  auto b64 = f.str("value_base64url", false);
  auto ts = f.integer("timestamp", true, INT64_MIN, INT64_MAX);
  auto attempts = f.integer("attempts", true, 0, INT32_MAX);
  auto failed_at = f.integer("failed_at", true, 0, INT64_MAX);
  f.ignore("error");
  if (auto s = f.finish(); !s) return std::move(s).err();
  const auto* err = o->if_contains("error");
  const auto* eo = err != nullptr ? err->if_object() : nullptr;
  const auto* code = eo != nullptr ? eo->if_contains("code") : nullptr;
  const auto* message = eo != nullptr ? eo->if_contains("message") : nullptr;
  if (code == nullptr || !code->is_string() || message == nullptr || !message->is_string()) {
    return make_error(errc::bad_request, "dead letter: error must be {code, message}");
  }
  d.group = std::string(*group);
  d.original.topic = std::string(*topic);
  d.original.partition = static_cast<std::int32_t>(*partition);
  d.original.offset = *offset;
  d.original.key = std::string(*key);
  if (text) {
    d.original.value = std::string(*text);
  } else if (b64) {
    auto bytes = auth::base64url_decode(*b64);
    if (!bytes) return make_error(errc::bad_request, "dead letter: value_base64url is not base64url");
    d.original.value = std::move(*bytes);
  } else {
    return make_error(errc::bad_request, "dead letter: no value");
  }
  d.original.timestamp_ms = *ts;
  d.why = make_error(code_from_name(code->as_string()), std::string(message->as_string()));
  d.attempts = static_cast<int>(*attempts);
  d.failed_at_ms = *failed_at;
  return d;
}

dead_letters::dead_letters(queue::queue& q, queue::producer& p, std::string topic, metrics_registry& metrics)
    : q_(q),
      producer_(p),
      topic_(std::move(topic)),
      metrics_(metrics),
      replayed_(metrics.counter("chatd_dead_letter_replays_total", "Dead letters produced again to their topic")) {}

void dead_letters::ensure() {
  if (auto s = q_.ensure_topic(topic_, 1); !s) {
    throw std::runtime_error("cannot create topic " + topic_ + ": " + s.err().message);
  }
}

status dead_letters::put(const std::string& group, const queue::record& r, const error& why, int attempts) {
  dead_letter d;
  d.group = group;
  d.original = r;
  d.why = why;
  d.attempts = attempts;
  d.failed_at_ms = now_ms();
  auto at = producer_.produce(topic_, r.key, encode_dead_letter(d));
  if (!at) return std::move(at).err();
  // Counted per group: the counter is created on first use, so a group that
  // never gave up has no series.
  metrics_
      .counter("chatd_dead_letters_total", "Records a consumer group gave up on and moved to the dead-letter topic",
               {{"group", group}})
      .inc();
  spdlog::error("{}: moved {}/{}@{} to {} as {} after {} attempts: {}", group, r.topic, r.partition, r.offset, topic_,
                at->offset, attempts, why.message);
  return {};
}

result<dead_letters::page> dead_letters::list(std::int64_t after, std::size_t limit) {
  auto rs = q_.read(topic_, 0, after + 1, limit + 1);
  if (!rs) return std::move(rs).err();
  page out;
  for (const auto& r : *rs) {
    if (out.items.size() == limit) {
      out.has_more = true;
      break;
    }
    auto d = decode_dead_letter(r.value);
    if (!d) {
      // Not ours (someone produced to the topic by hand): shown as such
      // rather than hiding it or failing the whole page.
      dead_letter bad;
      bad.original = r;
      bad.why = make_error(errc::bad_request, "undecodable dead letter: " + d.err().message);
      d = std::move(bad);
    }
    d->id = r.offset;
    out.items.push_back(std::move(*d));
  }
  return out;
}

result<queue::record_position> dead_letters::replay(std::int64_t id) {
  auto rs = q_.read(topic_, 0, id, 1);
  if (!rs) return std::move(rs).err();
  if (rs->empty() || rs->front().offset != id)
    return make_error(errc::not_found, "no dead letter " + std::to_string(id));
  auto d = decode_dead_letter(rs->front().value);
  if (!d)
    return make_error(errc::conflict, "dead letter " + std::to_string(id) + " cannot be replayed: " + d.err().message);
  auto at = producer_.produce(d->original.topic, d->original.key, d->original.value);
  if (!at) return std::move(at).err();
  replayed_.inc();
  spdlog::info("dead letter {} replayed to {}/{}@{}", id, d->original.topic, at->partition, at->offset);
  return at;
}

net::http_response dead_letters::list_reply(const net::http_request& req) {
  auto after = net::int_query(req, "after", -1, -1, INT64_MAX - 1);
  if (!after) return net::error_reply(after.err());
  auto limit = net::int_query(req, "limit", 50, 1, 100);
  if (!limit) return net::error_reply(limit.err());
  auto p = list(*after, static_cast<std::size_t>(*limit));
  if (!p) return net::error_reply(p.err());
  json::array items;
  items.reserve(p->items.size());
  for (const auto& d : p->items) items.emplace_back(to_json(d));
  json::object o;
  o["dead_letters"] = std::move(items);
  o["has_more"] = p->has_more;
  return net::json_reply(200, o);
}

net::http_response dead_letters::replay_reply(const net::http_request& req) {
  const auto text = req.param("id");
  std::int64_t id = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || id < 0) {
    return net::error_reply(errc::not_found, "no dead letter " + std::string(text));
  }
  auto at = replay(id);
  if (!at) return net::error_reply(at.err());
  json::object o;
  o["id"] = std::to_string(id);
  json::object to;
  to["partition"] = at->partition;
  to["offset"] = at->offset;
  o["replayed_to"] = std::move(to);
  return net::json_reply(200, o);
}

}  // namespace chatd::app
