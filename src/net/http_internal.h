// Helpers shared by server.cpp and client.cpp (and the unit tests). Private to
// src/net: nothing outside this folder includes it. No Asio/Beast here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "net/http.h"

namespace chatd::net::detail {

// Fills req.path (percent-decoded) and req.query (decoded, '+' is a space)
// from a request target. An absolute-form target ("http://h/p?q") is reduced
// to its path and query.
void parse_target(std::string_view target, http_request& req);

// ASCII lower-case copy (header names).
std::string to_lower(std::string_view s);

// Appends `s` as the inside of a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD so that the output is
// always valid UTF-8.
void append_json_escaped(std::string& out, std::string_view s);

// "http://host:port/path?query" or "ws://..." split into its parts; the port
// defaults to 80. Returns false when the URL is not of that shape.
struct parsed_url {
  std::string scheme;
  std::string host;  // without brackets for IPv6
  std::uint16_t port = 80;
  std::string target;  // "/path?query", at least "/"
};
bool parse_url(std::string_view url, parsed_url& out);

}  // namespace chatd::net::detail
