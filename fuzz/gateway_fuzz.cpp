// The HTTP API (src/gateway): a request goes through the real router to the
// real handler, which decodes the body and query and calls the services on a
// RocksDB store (fuzz/stack.h), as the HTTP server would after parsing it.
//
// Input: "<METHOD> <target>" on the first line, the body after it. The
// request carries a valid bearer token (a user's, or an admin's when the
// method is lower-case) so that the handlers behind the token check run.
//
// A handler must answer every input: an exception or a 500 `internal` is a
// bug (docs/style.md), as is a JSON answer that is not JSON.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/json.h"
#include "gateway/gateway.h"
#include "net/http.h"
#include "net/http_internal.h"
#include "stack.h"

namespace {

struct api {
  chatd::fuzz::stack s;
  chatd::gateway::gateway gw{
      chatd::gateway::deps{
          *s.db, s.participants, s.conversations, s.metrics, s.limits, &s.messages, &s.presence, nullptr, {}},
      s.cfg};
  chatd::net::router routes;
  api() { gw.add_routes(routes); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chatd::net;
  static api a;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view line = in.substr(0, in.find('\n'));
  http_request req;
  auto space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  req.method = std::string(line.substr(0, space));
  bool as_admin = !req.method.empty() && std::islower(static_cast<unsigned char>(req.method[0]));
  for (auto& c : req.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  req.target = std::string(line.substr(space + 1));
  if (req.target.empty()) return 0;
  detail::parse_target(req.target, req);
  req.body = line.size() < in.size() ? std::string(in.substr(line.size() + 1)) : std::string();
  req.headers.emplace_back("authorization", "Bearer " + (as_admin ? a.s.admin_token : a.s.alice_token));
  req.headers.emplace_back("content-type", "application/json");
  req.remote_addr = "127.0.0.1";

  auto m = a.routes.find(req, false);
  http_response res;
  if (m.handler) {
    res = (*m.handler)(req);
  } else if (m.async) {
    // The fuzz publisher confirms at once, so the answer is in before the call returns.
    bool answered = false;
    (*m.async)(req, [&](http_response r) {
      res = std::move(r);
      answered = true;
    });
    if (!answered) __builtin_trap();
  } else {
    return 0;
  }
  if (res.status < 100 || res.status > 599 || res.status == 500) __builtin_trap();
  if (res.content_type == "application/json" && !res.body.empty() && !chatd::parse_json_object(res.body)) {
    __builtin_trap();
  }
  return 0;
}
