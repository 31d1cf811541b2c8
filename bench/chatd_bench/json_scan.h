// Reads fields out of a JSON text without building a DOM: the receive path
// sees every frame, and a scan that only skips over what it does not need
// costs a fraction of a parse and allocates nothing. Strings come back raw
// (escapes left in place), which is exact for the ids, codes and bodies the
// tool looks at.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace chatd_bench::json_scan {

inline std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  return i;
}

// The position just past the string starting at s[i] == '"', or npos.
inline std::size_t skip_string(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\')
      ++i;
    else if (s[i] == '"')
      return i + 1;
  }
  return std::string_view::npos;
}

// The position just past the value starting at s[i], or npos.
inline std::size_t skip_value(std::string_view s, std::size_t i) {
  i = skip_ws(s, i);
  if (i >= s.size()) return std::string_view::npos;
  char c = s[i];
  if (c == '"') return skip_string(s, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    for (; i < s.size(); ++i) {
      char d = s[i];
      if (d == '"') {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        --i;
      } else if (d == '{' || d == '[') {
        ++depth;
      } else if (d == '}' || d == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return std::string_view::npos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n') ++i;
  return i;
}

// Calls f(key, raw value) for each member of the object `obj` (which starts
// with '{') until f returns false. Returns false if the text is malformed.
template <class F>
bool for_each_member(std::string_view obj, F&& f) {
  std::size_t i = skip_ws(obj, 0);
  if (i >= obj.size() || obj[i] != '{') return false;
  i = skip_ws(obj, i + 1);
  if (i < obj.size() && obj[i] == '}') return true;
  while (i < obj.size()) {
    if (obj[i] != '"') return false;
    std::size_t kend = skip_string(obj, i);
    if (kend == std::string_view::npos) return false;
    std::string_view key = obj.substr(i + 1, kend - i - 2);
    i = skip_ws(obj, kend);
    if (i >= obj.size() || obj[i] != ':') return false;
    std::size_t vstart = skip_ws(obj, i + 1);
    std::size_t vend = skip_value(obj, vstart);
    if (vend == std::string_view::npos) return false;
    if (!f(key, obj.substr(vstart, vend - vstart))) return true;
    i = skip_ws(obj, vend);
    if (i < obj.size() && obj[i] == ',') {
      i = skip_ws(obj, i + 1);
      continue;
    }
    return i < obj.size() && obj[i] == '}';
  }
  return false;
}

// The raw value of member `key` of `obj`, if present.
inline std::optional<std::string_view> member(std::string_view obj, std::string_view key) {
  std::optional<std::string_view> out;
  for_each_member(obj, [&](std::string_view k, std::string_view v) {
    if (k != key) return true;
    out = v;
    return false;
  });
  return out;
}

// The contents of a raw string value without its quotes (escapes left
// alone); a raw value that is not a string comes back as is.
inline std::string_view unquote(std::string_view raw) {
  if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') return raw.substr(1, raw.size() - 2);
  return raw;
}

// A number, or a decimal string holding one (ids are often strings).
inline bool to_uint(std::string_view raw, std::uint64_t& out) {
  raw = unquote(raw);
  auto r = std::from_chars(raw.data(), raw.data() + raw.size(), out);
  return r.ec == std::errc{} && r.ptr == raw.data() + raw.size();
}

// The string member `key` of `obj` (unquoted), or empty.
inline std::string_view string_member(std::string_view obj, std::string_view key) {
  auto v = member(obj, key);
  return v ? unquote(*v) : std::string_view{};
}

// The number of elements of the array `arr` (which starts with '['), or -1
// if it is malformed.
inline long count_elements(std::string_view arr) {
  std::size_t i = skip_ws(arr, 0);
  if (i >= arr.size() || arr[i] != '[') return -1;
  i = skip_ws(arr, i + 1);
  if (i < arr.size() && arr[i] == ']') return 0;
  long n = 0;
  while (i < arr.size()) {
    i = skip_value(arr, i);
    if (i == std::string_view::npos) return -1;
    ++n;
    i = skip_ws(arr, i);
    if (i < arr.size() && arr[i] == ',') {
      ++i;
      continue;
    }
    return i < arr.size() && arr[i] == ']' ? n : -1;
  }
  return -1;
}

// The first element of the array `arr`, if any.
inline std::optional<std::string_view> first_element(std::string_view arr) {
  std::size_t i = skip_ws(arr, 0);
  if (i >= arr.size() || arr[i] != '[') return std::nullopt;
  i = skip_ws(arr, i + 1);
  if (i >= arr.size() || arr[i] == ']') return std::nullopt;
  std::size_t end = skip_value(arr, i);
  if (end == std::string_view::npos) return std::nullopt;
  return arr.substr(i, end - i);
}

// A JSON string literal of `s` (quotes included), escaping what needs it.
inline std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace chatd_bench::json_scan
