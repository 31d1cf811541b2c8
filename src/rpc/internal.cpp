#include "rpc/internal.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>
#include <thread>

#include "auth/hmac.h"
#include "common/backoff.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/metrics.h"
#include "net/client.h"
#include "net/reply.h"

namespace chatd::rpc {

namespace {

constexpr errc all_codes[] = {errc::bad_request, errc::unauthorized, errc::forbidden,   errc::not_found, errc::conflict,
                              errc::too_large,   errc::rate_limited, errc::unavailable, errc::internal};

std::int64_t unix_seconds_now() { return now_ms() / 1000; }

// The request path as signed: the target without its query string.
std::string_view path_of(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

// Header names compare without case (RFC 9110), whoever built the request.
std::optional<std::string_view> header_of(const net::http_request& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return std::string_view(v);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string sign(std::string_view secret, std::int64_t unix_seconds, std::string_view nonce, std::string_view method,
                 std::string_view path, std::string_view body) {
  std::string text = std::to_string(unix_seconds);
  text.reserve(text.size() + nonce.size() + method.size() + path.size() + body.size() + 4);
  text.append("\n").append(nonce).append("\n").append(method).append("\n").append(path).append("\n").append(body);
  return "sha256=" + auth::hmac_sha256_hex(secret, text);
}

net::header_list signed_headers(std::string_view secret, std::string_view method, std::string_view path,
                                std::string_view body) {
  auto ts = unix_seconds_now();
  auto nonce = auth::random_secret(16);
  auto sig = sign(secret, ts, nonce, method, path_of(path), body);
  return {{std::string(timestamp_header), std::to_string(ts)},
          {std::string(nonce_header), std::move(nonce)},
          {std::string(signature_header), std::move(sig)}};
}

bool replay_guard::admit(std::string_view nonce, std::int64_t now_unix_seconds) {
  std::lock_guard lock(mu_);
  // A nonce accepted at t carries a timestamp of at least t - skew, which
  // verify() refuses from t + 2 * skew on: from then it need not be known.
  while (!order_.empty() && order_.front().first + 2 * max_clock_skew_s < now_unix_seconds) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  if (seen_.contains(nonce)) return false;
  if (order_.size() >= max_) {
    seen_.erase(order_.front().second);
    order_.pop_front();
    ++forgotten_early_;
  }
  seen_.insert(order_.emplace_back(now_unix_seconds, std::string(nonce)).second);
  return true;
}

std::size_t replay_guard::size() const {
  std::lock_guard lock(mu_);
  return order_.size();
}

std::uint64_t replay_guard::forgotten_early() const {
  std::lock_guard lock(mu_);
  return forgotten_early_;
}

replay_guard& process_guard() {
  static replay_guard guard;
  return guard;
}

status verify(std::string_view secret, const net::http_request& req, std::int64_t now_unix_seconds,
              replay_guard* guard) {
  auto sig = header_of(req, signature_header);
  auto ts_text = header_of(req, timestamp_header);
  auto nonce = header_of(req, nonce_header);
  if (!sig || !ts_text || !nonce) return make_error(errc::unauthorized, "missing internal signature");
  if (nonce->size() < 16 || nonce->size() > 64 ||
      !std::all_of(nonce->begin(), nonce->end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
    return make_error(errc::unauthorized, "bad internal nonce");
  }
  std::int64_t ts = 0;
  if (ts_text->empty() || ts_text->size() > 12) return make_error(errc::unauthorized, "bad internal timestamp");
  for (char c : *ts_text) {
    if (c < '0' || c > '9') return make_error(errc::unauthorized, "bad internal timestamp");
    ts = ts * 10 + (c - '0');
  }
  if (ts < now_unix_seconds - max_clock_skew_s || ts > now_unix_seconds + max_clock_skew_s) {
    return make_error(errc::unauthorized, "internal request too old or from the future");
  }
  // Both sides have the same length when the signature is well formed, so
  // the comparison time tells nothing about the expected value.
  if (!auth::constant_time_equal(*sig, sign(secret, ts, *nonce, req.method, req.path, req.body))) {
    return make_error(errc::unauthorized, "invalid internal signature");
  }
  // Only a correctly signed request may take a place in the guard.
  if (guard && !guard->admit(*nonce, now_unix_seconds)) {
    return make_error(errc::unauthorized, "replayed internal request");
  }
  return {};
}

void add_route(net::router& routes, std::string method, std::string pattern, std::string secret,
               net::http_handler handler) {
  if (secret.empty()) throw std::invalid_argument("internal routes need a non-empty secret");
  routes.add(std::move(method), std::move(pattern),
             [secret = std::move(secret), handler = std::move(handler)](net::http_request& req) {
               if (auto s = verify(secret, req, unix_seconds_now(), &process_guard()); !s)
                 return net::error_reply(s.err());
               return handler(req);
             });
}

std::optional<error> error_of(std::string_view body) {
  auto o = parse_json_object(body);
  if (!o) return std::nullopt;
  auto e = o->find("error");
  if (e == o->end() || !e->value().is_object()) return std::nullopt;
  const auto& eo = e->value().get_object();
  auto c = eo.find("code");
  auto m = eo.find("message");
  if (c == eo.end() || !c->value().is_string()) return std::nullopt;
  std::string_view code(c->value().get_string().data(), c->value().get_string().size());
  std::string message = (m != eo.end() && m->value().is_string()) ? std::string(m->value().get_string()) : "";
  for (errc x : all_codes) {
    if (code_name(x) == code) return make_error(x, std::move(message));
  }
  return std::nullopt;
}

client::client(std::string service, std::string base_url, std::string secret, metrics_registry& metrics,
               client_options o)
    : service_(std::move(service)),
      secret_(std::move(secret)),
      opt_(o),
      ok_(metrics.counter("chatd_internal_calls_total", "Calls to other chatd services",
                          {{"service", service_}, {"outcome", "ok"}})),
      failed_(metrics.counter("chatd_internal_calls_total", "Calls to other chatd services",
                              {{"service", service_}, {"outcome", "failed"}})),
      retried_(metrics.counter("chatd_internal_call_retries_total", "Attempts repeated after a failure",
                               {{"service", service_}})),
      latency_(metrics.histogram("chatd_internal_call_seconds", "Latency of calls to other chatd services",
                                 {{"service", service_}})) {
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  base_url_ = std::move(base_url);
}

result<std::string> client::call(std::string_view method, std::string_view path, std::string_view body) {
  const std::string url = base_url_ + std::string(path);
  std::string last_error;
  const int attempts = std::max(opt_.attempts, 1);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) {
      retried_.inc();
      // A worker waits here: never more than a few seconds per retry.
      std::this_thread::sleep_for(
          backoff_delay(opt_.backoff, std::chrono::seconds(2), static_cast<std::uint32_t>(attempt - 1)));
    }
    auto headers = signed_headers(secret_, method, path, body);
    headers.emplace_back("Content-Type", "application/json");
    auto started = std::chrono::steady_clock::now();
    auto r = net::http_request_sync(method, url, body, headers, opt_.timeout);
    latency_.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (!r) {
      last_error = r.err().message;
      continue;
    }
    if (r->status >= 200 && r->status < 300) {
      ok_.inc();
      return std::move(r->body);
    }
    if (r->status >= 400 && r->status < 500) {
      failed_.inc();
      if (auto e = error_of(r->body)) return *e;
      return make_error(errc::unavailable, service_ + " answered HTTP " + std::to_string(r->status));
    }
    last_error = "HTTP " + std::to_string(r->status);
  }
  failed_.inc();
  return make_error(errc::unavailable, service_ + ": " + last_error);
}

}  // namespace chatd::rpc
