#include "queue/queue.h"

#include <future>

namespace chatd::queue {

// Kafka's org.apache.kafka.common.utils.Utils.murmur2, transcribed with
// unsigned arithmetic (Java's int wraps; C++ signed overflow would be UB).
std::int32_t murmur2(std::string_view data) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const std::uint32_t length = static_cast<std::uint32_t>(data.size());
  constexpr std::uint32_t seed = 0x9747b28c;
  constexpr std::uint32_t m = 0x5bd1e995;
  constexpr int r = 24;

  std::uint32_t h = seed ^ length;
  const std::uint32_t length4 = length / 4;
  for (std::uint32_t i = 0; i < length4; ++i) {
    const std::uint32_t i4 = i * 4;
    std::uint32_t k = static_cast<std::uint32_t>(bytes[i4]) | (static_cast<std::uint32_t>(bytes[i4 + 1]) << 8) |
                      (static_cast<std::uint32_t>(bytes[i4 + 2]) << 16) |
                      (static_cast<std::uint32_t>(bytes[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;  // Java's >>> on int: logical shift
    k *= m;
    h *= m;
    h ^= k;
  }
  const std::uint32_t tail = length & ~3u;
  switch (length % 4) {
    case 3:
      h ^= static_cast<std::uint32_t>(bytes[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<std::uint32_t>(bytes[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<std::uint32_t>(bytes[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<std::int32_t>(h);
}

std::int32_t partition_for_key(std::string_view key, std::int32_t partitions) noexcept {
  // Utils.toPositive: clear the sign bit (not abs(), which differs for INT_MIN).
  const auto positive = static_cast<std::uint32_t>(murmur2(key)) & 0x7fffffffu;
  return static_cast<std::int32_t>(positive % static_cast<std::uint32_t>(partitions));
}

bool valid_topic_name(std::string_view topic) noexcept {
  if (topic.empty() || topic.size() > 249 || topic == "." || topic == "..") return false;
  for (char c : topic) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

result<record_position> producer::produce(std::string_view topic, std::string_view key, std::string_view value) {
  // Shared with the callback: a backend may still hold (and destroy) the
  // callback after it ran, when this frame is gone.
  auto done = std::make_shared<std::promise<result<record_position>>>();
  auto fut = done->get_future();
  produce_async(topic, key, value, [done](result<record_position> r) { done->set_value(std::move(r)); });
  return fut.get();
}

}  // namespace chatd::queue
