// chatd-latency-bench: unloaded send -> deliver latency and the message rate
// one sender / one receiver pair sustains, through a running chatd.
//
//   chatd-latency-bench <gateway host:port> [messages=2000] [rate_messages=20000] [window=64]
//
// Two fresh users, one direct conversation, one WebSocket each (from
// discovery). Phase 1 sends one message at a time and waits until the
// receiver has it: send->ack and send->deliver percentiles. Phase 2 keeps
// `window` sends in flight and counts how fast the receiver gets them.
// Start chatd with rate limits off (rate_limits.send_per_second=0).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "net/client.h"

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;
using namespace chatd;

namespace {

std::string base;

json::object call(const std::string& method, const std::string& path, const json::value& body,
                  const std::string& token = {}) {
  net::header_list h;
  if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
  std::string b = body.is_null() ? std::string{} : json::serialize(body);
  auto r = net::http_request_sync(method, base + path, b, h);
  if (!r) throw std::runtime_error(method + " " + path + ": " + r.err().message);
  if (r->status >= 300)
    throw std::runtime_error(method + " " + path + ": " + std::to_string(r->status) + " " + r->body);
  if (r->body.empty()) return {};
  return json::parse(r->body).as_object();
}

struct person {
  std::string id, token;
  net::ws_client ws;
};

void make(person& p, const std::string& name) {
  auto r =
      call("POST", "/v1/users", json::object{{"username", name}, {"password", "password123"}, {"display_name", name}});
  p.id = std::string(r.at("id").as_string());
  auto l =
      call("POST", "/v1/auth/login", json::object{{"kind", "user"}, {"username", name}, {"password", "password123"}});
  p.token = std::string(l.at("access_token").as_string());
  auto d = call("GET", "/v1/discovery", nullptr, p.token);
  std::string url(d.at("servers").as_array().at(0).at("url").as_string());
  if (auto s = p.ws.connect(url + "?access_token=" + p.token); !s)
    throw std::runtime_error("connect: " + s.err().message);
  for (;;) {  // until ready
    auto f = p.ws.read(std::chrono::seconds(10));
    if (!f) throw std::runtime_error("no ready frame");
    if (json::parse(f->text).as_object().at("type").as_string() == "ready") break;
  }
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string send_frame(const std::string& conv, std::size_t seq) {
  json::object f{{"type", "send"},
                 {"id", "r" + std::to_string(seq)},
                 {"conversation_id", conv},
                 {"client_msg_id", "c" + std::to_string(seq)},
                 {"body", "m" + std::to_string(seq)}};
  return json::serialize(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <gateway host:port> [messages] [rate_messages] [window]\n", argv[0]);
    return 2;
  }
  base = std::string("http://") + argv[1];
  std::size_t n = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 2000;
  std::size_t m = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 20000;
  std::size_t window = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 64;
  try {
    std::string tag = std::to_string(std::random_device{}() % 1000000);
    person a, b;
    make(a, "bench_a" + tag);
    make(b, "bench_b" + tag);
    auto conv = call("POST", "/v1/conversations",
                     json::object{{"kind", "direct"}, {"members", json::array{json::value(b.id)}}}, a.token);
    std::string cid(conv.at("id").as_string());

    // The receiver records when each message arrives, keyed by its sequence.
    std::mutex mu;
    std::condition_variable cv;
    std::vector<clock_type::time_point> arrived(n + m, clock_type::time_point{});
    std::size_t received = 0;
    std::atomic<bool> stop{false};
    std::thread reader([&] {
      while (!stop) {
        auto f = b.ws.read(std::chrono::milliseconds(200));
        if (!f) continue;
        if (f->closed) break;
        auto o = json::parse(f->text).as_object();
        if (o.at("type").as_string() != "message") continue;
        auto body = o.at("message").at("body").as_string();
        std::size_t seq = std::strtoul(body.c_str() + 1, nullptr, 10);
        std::lock_guard lock(mu);
        if (seq < arrived.size()) arrived[seq] = clock_type::now();
        ++received;
        cv.notify_all();
      }
    });

    auto read_ack = [&] {
      for (;;) {
        auto f = a.ws.read(std::chrono::seconds(10));
        if (!f || f->closed) throw std::runtime_error("sender connection lost");
        auto o = json::parse(f->text).as_object();
        auto t = o.at("type").as_string();
        if (t == "ack") return;
        if (t == "error") throw std::runtime_error("error frame: " + f->text);
      }
    };

    // Phase 1: unloaded, one at a time.
    std::vector<double> ack_us, deliver_us;
    for (std::size_t i = 0; i < n; ++i) {
      auto t0 = clock_type::now();
      if (auto s = a.ws.send_text(send_frame(cid, i)); !s) throw std::runtime_error("send failed");
      read_ack();
      ack_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
      std::unique_lock lock(mu);
      if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return arrived[i] != clock_type::time_point{}; })) {
        throw std::runtime_error("message " + std::to_string(i) + " never arrived");
      }
      deliver_us.push_back(std::chrono::duration<double, std::micro>(arrived[i] - t0).count());
    }
    std::printf("unloaded (%zu messages, one at a time)\n", n);
    std::printf("  send->ack      p50 %8.0f us  p99 %8.0f us  max %8.0f us\n", pct(ack_us, .5), pct(ack_us, .99),
                pct(ack_us, 1));
    std::printf("  send->deliver  p50 %8.0f us  p99 %8.0f us  max %8.0f us\n", pct(deliver_us, .5),
                pct(deliver_us, .99), pct(deliver_us, 1));

    // Phase 2: `window` sends in flight.
    auto t0 = clock_type::now();
    std::size_t sent = 0, acked = 0;
    while (acked < m) {
      while (sent < m && sent - acked < window) {
        if (auto s = a.ws.send_text(send_frame(cid, n + sent)); !s) throw std::runtime_error("send failed");
        ++sent;
      }
      read_ack();
      ++acked;
    }
    {
      std::unique_lock lock(mu);
      if (!cv.wait_for(lock, std::chrono::seconds(60), [&] { return received >= n + m; })) {
        throw std::runtime_error("only " + std::to_string(received - n) + " of " + std::to_string(m) + " arrived");
      }
    }
    double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    std::printf("sustained (%zu messages, %zu in flight)\n", m, window);
    std::printf("  %.0f messages/s delivered (%.2f s)\n", static_cast<double>(m) / secs, secs);
    stop = true;
    reader.join();
    a.ws.close();
    b.ws.close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chatd-latency-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
