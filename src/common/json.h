// Strict JSON input at the edge: every request body is checked for shape,
// types, lengths and unknown fields before any work is done.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace chatd {

namespace json = boost::json;

// Invalid JSON (including invalid UTF-8 and nesting deeper than 32) and
// non-objects are bad_request.
result<json::object> parse_json_object(std::string_view text);

// Reads fields of one object; the first problem is kept and reported by
// finish(), which also rejects fields nobody asked for.
class json_fields {
 public:
  explicit json_fields(const json::object& o) : o_(o) {}

  std::optional<std::string_view> str(std::string_view key, bool required);
  // A decimal-string id (the wire form of every id).
  std::optional<std::uint64_t> id(std::string_view key, bool required);
  std::optional<std::int64_t> integer(std::string_view key, bool required, std::int64_t min, std::int64_t max);
  std::optional<bool> boolean(std::string_view key, bool required);
  std::optional<std::vector<std::uint64_t>> id_array(std::string_view key, bool required, std::size_t max_items);
  // Present and null counts as absent.
  bool has(std::string_view key) const;
  void ignore(std::string_view key) { seen(key); }

  status finish();
  bool failed() const { return failed_; }

 private:
  const json::value* get(std::string_view key, bool required);
  void fail(std::string msg);
  void seen(std::string_view key);

  const json::object& o_;
  std::vector<std::string> seen_;
  bool failed_ = false;
  std::string error_;
};

std::string to_json(const json::value& v);

bool valid_utf8(std::string_view s);
// Number of code points; counts bytes that are not lead bytes as one each.
std::size_t utf8_length(std::string_view s);
// The first `max_chars` code points of a valid UTF-8 string.
std::string utf8_prefix(std::string_view s, std::size_t max_chars);

}  // namespace chatd
