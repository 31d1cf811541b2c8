#include "common/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/ids.h"

namespace chatd {

namespace {

// Boost.JSON keeps the last of duplicate keys; other parsers keep the first.
// Such a body means different things to different readers, so it is refused.
// Runs only on text Boost.JSON has accepted, so it only tracks strings and
// nesting; sets keep a hostile object with many keys linear.
bool has_duplicate_keys(std::string_view t) {
  struct frame {
    bool object;
    bool expect_key;
    std::unordered_set<std::string> keys;
  };
  std::vector<frame> stack;
  for (std::size_t i = 0; i < t.size(); ++i) {
    switch (t[i]) {
      case '{':
        stack.push_back({true, true, {}});
        break;
      case '[':
        stack.push_back({false, false, {}});
        break;
      case '}':
      case ']':
        if (!stack.empty()) stack.pop_back();
        break;
      case ',':
        if (!stack.empty() && stack.back().object) stack.back().expect_key = true;
        break;
      case '"': {
        std::size_t j = i + 1;
        bool escaped = false;
        for (; j < t.size() && t[j] != '"'; ++j) {
          if (t[j] == '\\') {
            ++j;
            escaped = true;
          }
        }
        if (!stack.empty() && stack.back().object && stack.back().expect_key) {
          std::string key;
          if (escaped) {
            std::error_code ec;
            auto v = json::parse(t.substr(i, j - i + 1), ec);
            if (!ec && v.is_string()) key = v.get_string();
          } else {
            key = std::string(t.substr(i + 1, j - i - 1));
          }
          if (!stack.back().keys.insert(std::move(key)).second) return true;
          stack.back().expect_key = false;
        }
        i = j;
        break;
      }
      default:
        break;
    }
  }
  return false;
}

}  // namespace

result<json::object> parse_json_object(std::string_view text) {
  json::parse_options opt;
  opt.max_depth = 32;
  std::error_code ec;
  json::value v = json::parse(text, ec, {}, opt);
  if (ec) return make_error(errc::bad_request, "request body is not valid JSON");
  if (!v.is_object()) return make_error(errc::bad_request, "request body must be a JSON object");
  if (has_duplicate_keys(text)) return make_error(errc::bad_request, "a JSON object has the same key twice");
  return std::move(v.as_object());
}

void json_fields::fail(std::string msg) {
  if (!failed_) {
    failed_ = true;
    error_ = std::move(msg);
  }
}

void json_fields::seen(std::string_view key) { seen_.emplace_back(key); }

bool json_fields::has(std::string_view key) const {
  auto it = o_.find(key);
  return it != o_.end() && !it->value().is_null();
}

const json::value* json_fields::get(std::string_view key, bool required) {
  seen(key);
  auto it = o_.find(key);
  if (it == o_.end() || it->value().is_null()) {
    if (required) fail("missing field '" + std::string(key) + "'");
    return nullptr;
  }
  return &it->value();
}

std::optional<std::string_view> json_fields::str(std::string_view key, bool required) {
  const auto* v = get(key, required);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail("field '" + std::string(key) + "' must be a string");
    return std::nullopt;
  }
  const auto& s = v->get_string();
  return std::string_view(s.data(), s.size());
}

std::optional<bool> json_fields::boolean(std::string_view key, bool required) {
  const auto* v = get(key, required);
  if (!v) return std::nullopt;
  if (!v->is_bool()) {
    fail("field '" + std::string(key) + "' must be true or false");
    return std::nullopt;
  }
  return v->get_bool();
}

std::optional<std::uint64_t> json_fields::id(std::string_view key, bool required) {
  const auto* v = get(key, required);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail("field '" + std::string(key) + "' must be an id string");
    return std::nullopt;
  }
  auto parsed = parse_id(std::string_view(v->get_string().data(), v->get_string().size()));
  if (!parsed) fail("field '" + std::string(key) + "' is not a valid id");
  return parsed;
}

std::optional<std::int64_t> json_fields::integer(std::string_view key, bool required, std::int64_t min,
                                                 std::int64_t max) {
  const auto* v = get(key, required);
  if (!v) return std::nullopt;
  std::int64_t x = 0;
  if (v->is_int64()) {
    x = v->get_int64();
  } else if (v->is_uint64()) {
    fail("field '" + std::string(key) + "' is out of range");
    return std::nullopt;
  } else {
    fail("field '" + std::string(key) + "' must be an integer");
    return std::nullopt;
  }
  if (x < min || x > max) {
    fail("field '" + std::string(key) + "' must be between " + std::to_string(min) + " and " + std::to_string(max));
    return std::nullopt;
  }
  return x;
}

std::optional<std::vector<std::uint64_t>> json_fields::id_array(std::string_view key, bool required,
                                                                std::size_t max_items) {
  const auto* v = get(key, required);
  if (!v) return std::nullopt;
  if (!v->is_array()) {
    fail("field '" + std::string(key) + "' must be an array of ids");
    return std::nullopt;
  }
  const auto& a = v->get_array();
  if (a.size() > max_items) {
    fail("field '" + std::string(key) + "' has more than " + std::to_string(max_items) + " items");
    return std::nullopt;
  }
  std::vector<std::uint64_t> out;
  out.reserve(a.size());
  for (const auto& item : a) {
    std::optional<std::uint64_t> id;
    if (item.is_string()) id = parse_id(std::string_view(item.get_string().data(), item.get_string().size()));
    if (!id) {
      fail("field '" + std::string(key) + "' must contain only id strings");
      return std::nullopt;
    }
    out.push_back(*id);
  }
  return out;
}

status json_fields::finish() {
  if (failed_) return make_error(errc::bad_request, error_);
  for (const auto& kv : o_) {
    std::string_view k(kv.key().data(), kv.key().size());
    if (std::find(seen_.begin(), seen_.end(), k) == seen_.end()) {
      return make_error(errc::bad_request, "unknown field '" + utf8_prefix(k, 64) + "'");
    }
  }
  return {};
}

namespace {

bool has_double(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return true;
    case json::kind::array:
      return std::any_of(v.get_array().begin(), v.get_array().end(), has_double);
    case json::kind::object:
      return std::any_of(v.get_object().begin(), v.get_object().end(),
                         [](const json::key_value_pair& kv) { return has_double(kv.value()); });
    default:
      return false;
  }
}

void write_plain(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_: {
      // The shortest fixed form that reads back as the same double: 483.4,
      // not Boost.JSON's 4.834E2. JSON has no NaN or infinity; null instead.
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";
        break;
      }
      char buf[400];
      auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
      out.append(buf, r.ptr);
      break;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_plain(out, e);
      }
      out += ']';
      break;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string_view(kv.key()));
        out += ':';
        write_plain(out, kv.value());
      }
      out += '}';
      break;
    }
    default:
      out += json::serialize(v);
  }
}

}  // namespace

// Doubles are written in plain decimal form (483.4, 0), as people write
// them, not as Boost.JSON's 4.834E2.
std::string to_json(const json::value& v) {
  // Most answers hold no double: Boost.JSON's own writer, as fast as it gets.
  if (!has_double(v)) return json::serialize(v);
  std::string out;
  write_plain(out, v);
  return out;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string utf8_prefix(std::string_view s, std::size_t max_chars) {
  std::size_t chars = 0;
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == max_chars) break;
      ++chars;
    }
  }
  return std::string(s.substr(0, i));
}

}  // namespace chatd
