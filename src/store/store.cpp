#include "store/store.h"

#include <algorithm>

#include "common/ids.h"

namespace chatd::store {

void order_inbox(std::vector<inbox_entry>& entries) {
  auto activity = [](const inbox_entry& e) { return e.last_message_id != 0 ? e.last_message_id : e.conversation_id; };
  std::stable_sort(entries.begin(), entries.end(), [&](const inbox_entry& a, const inbox_entry& b) {
    if (a.updated_at != b.updated_at) return a.updated_at > b.updated_at;
    return activity(a) > activity(b);
  });
}

std::uint32_t message_bucket(id_t message_id) {
  std::int64_t since_epoch = id_timestamp_ms(message_id) - id_epoch_ms;
  // 41 bits of milliseconds / 10 days stays far below 2^32.
  return static_cast<std::uint32_t>(since_epoch / bucket_span_ms);
}

namespace {

// Lower case of a code point in the two-byte UTF-8 range, or the code point.
char32_t fold_two_byte(char32_t c) {
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;  // Latin-1
  if (c >= 0x100 && c <= 0x137) return c | 1;                // Latin Extended-A: even upper, odd lower
  if (c >= 0x139 && c <= 0x148) return (c & 1) ? c + 1 : c;  // odd upper, even lower
  if (c >= 0x14A && c <= 0x177) return c | 1;
  if (c == 0x178) return 0xFF;
  if (c >= 0x179 && c <= 0x17E) return (c & 1) ? c + 1 : c;
  if (c == 0x386) return 0x3AC;  // Greek with tonos
  if (c >= 0x388 && c <= 0x38A) return c + 0x25;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 0x3F;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;  // Greek
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;                // Cyrillic
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  return c;
}

}  // namespace

std::string fold_display_name(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b >= 'A' && b <= 'Z') {
      out.push_back(static_cast<char>(b + 32));
    } else if (b >= 0xC2 && b <= 0xDF && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      char32_t c = (static_cast<char32_t>(b & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      c = fold_two_byte(c);  // stays in the two-byte range
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      ++i;
    } else {
      out.push_back(static_cast<char>(b));  // ASCII, longer sequences and stray bytes pass through
    }
  }
  return out;
}

std::string_view kind_name(participant_kind k) {
  switch (k) {
    case participant_kind::user:
      return "user";
    case participant_kind::shop:
      return "shop";
    case participant_kind::admin:
      return "admin";
  }
  return "user";
}

std::optional<participant_kind> parse_kind(std::string_view s) {
  if (s == "user") return participant_kind::user;
  if (s == "shop") return participant_kind::shop;
  if (s == "admin") return participant_kind::admin;
  return std::nullopt;
}

std::string_view presence_name(presence_state s) {
  switch (s) {
    case presence_state::offline:
      return "offline";
    case presence_state::inactive:
      return "inactive";
    case presence_state::active:
      return "active";
  }
  return "offline";
}

}  // namespace chatd::store
