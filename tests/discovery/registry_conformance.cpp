#include "registry_conformance.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <thread>
#include <vector>

namespace chatd::discovery::testing {
namespace {

using namespace std::chrono_literals;

server_info make_server(std::string id, double load = 0.25) {
  server_info s;
  s.id = std::move(id);
  s.url = "ws://" + s.id + ".test:9000/v1/ws";
  s.region = "eu-central";
  s.lat = 50.11;
  s.lon = 8.68;
  s.load = load;
  return s;
}

// Coordinates and load may pass through text (JSON, a database): equal to
// well within what they mean, not necessarily to the last bit.
bool near(std::optional<double> a, std::optional<double> b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || std::abs(*a - *b) <= 1e-9;
}

::testing::AssertionResult same(const server_info& got, const server_info& want) {
  if (got.id == want.id && got.url == want.url && got.region == want.region && near(got.lat, want.lat) &&
      near(got.lon, want.lon) && near(got.load, want.load)) {
    return ::testing::AssertionSuccess();
  }
  auto show = [](const server_info& s) {
    auto opt = [](std::optional<double> d) { return d ? std::to_string(*d) : std::string("none"); };
    return "{" + s.id + ", " + s.url + ", " + s.region + ", " + opt(s.lat) + ", " + opt(s.lon) + ", " +
           std::to_string(s.load) + "}";
  };
  return ::testing::AssertionFailure() << "got " << show(got) << ", want " << show(want);
}

std::vector<server_info> healthy_or_fail(registry& r) {
  auto h = r.healthy();
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.err().message);
  return h.ok() ? std::move(h.value()) : std::vector<server_info>{};
}

std::vector<std::string> ids(const std::vector<server_info>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(s.id);
  return out;
}

const server_info* find(const std::vector<server_info>& v, const std::string& id) {
  auto it = std::find_if(v.begin(), v.end(), [&](const server_info& s) { return s.id == id; });
  return it == v.end() ? nullptr : &*it;
}

// Polls every 10 ms for at most `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 2000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST_P(RegistryConformance, StartsEmpty) { EXPECT_TRUE(healthy_or_fail(reg()).empty()); }

TEST_P(RegistryConformance, HeartbeatAppearsInHealthy) {
  auto s = make_server("cs-1");
  ASSERT_TRUE(reg().heartbeat(s, 30s));
  auto h = healthy_or_fail(reg());
  ASSERT_EQ(h.size(), 1u);
  EXPECT_TRUE(same(h[0], s));
}

TEST_P(RegistryConformance, CoordinatesAreOptional) {
  auto s = make_server("cs-nowhere");
  s.lat.reset();
  s.lon.reset();
  ASSERT_TRUE(reg().heartbeat(s, 30s));
  auto h = healthy_or_fail(reg());
  ASSERT_EQ(h.size(), 1u);
  EXPECT_FALSE(h[0].lat);
  EXPECT_FALSE(h[0].lon);
  EXPECT_TRUE(same(h[0], s));
}

TEST_P(RegistryConformance, ValuesSurviveExactly) {
  // Extremes and values that are not exact in binary.
  auto s = make_server("cs-edge", 1.0);
  s.lat = -90;
  s.lon = 179.99999999;
  s.region = std::string(32, 'z');
  s.url = "wss://" + std::string(1000, 'h') + ":443/v1/ws?x=1";
  ASSERT_TRUE(reg().heartbeat(s, 30s));
  auto t = make_server("cs-\xc3\xa9t\xc3\xa9", 0.1);  // UTF-8 id
  t.lat = 0.1;
  t.lon = -0.3;
  ASSERT_TRUE(reg().heartbeat(t, 30s));
  auto h = healthy_or_fail(reg());
  ASSERT_EQ(h.size(), 2u);
  ASSERT_NE(find(h, s.id), nullptr);
  ASSERT_NE(find(h, t.id), nullptr);
  EXPECT_TRUE(same(*find(h, s.id), s));
  EXPECT_TRUE(same(*find(h, t.id), t));
}

TEST_P(RegistryConformance, RefreshReplacesTheEntry) {
  auto s = make_server("cs-1", 0.1);
  ASSERT_TRUE(reg().heartbeat(s, 30s));
  s.load = 0.8;
  s.url = "wss://moved.test/v1/ws";
  s.region = "us-east";
  s.lat.reset();
  s.lon.reset();
  ASSERT_TRUE(reg().heartbeat(s, 30s));
  auto h = healthy_or_fail(reg());
  ASSERT_EQ(h.size(), 1u);
  EXPECT_TRUE(same(h[0], s));
}

TEST_P(RegistryConformance, ExpiresAfterTtl) {
  ASSERT_TRUE(reg().heartbeat(make_server("long"), 60s));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(reg().heartbeat(make_server("short"), 200ms));
  EXPECT_TRUE(eventually([&] { return find(healthy_or_fail(reg()), "short") == nullptr; }))
      << "an entry with a 200 ms ttl is still there after 2 s";
  // Not before its ttl: the heartbeat started after t0, so an entry gone
  // earlier than 200 ms after t0 expired too soon (10 ms of clock slack).
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 190ms);
  EXPECT_EQ(ids(healthy_or_fail(reg())), std::vector<std::string>{"long"});
}

TEST_P(RegistryConformance, HeartbeatsKeepAnEntryAlive) {
  // The ttl counts from the last heartbeat: "kept" is refreshed well within
  // its ttl for more than twice the ttl, "dropped" is not.
  constexpr auto ttl = 500ms;
  ASSERT_TRUE(reg().heartbeat(make_server("kept"), ttl));
  ASSERT_TRUE(reg().heartbeat(make_server("dropped"), ttl));
  auto end = std::chrono::steady_clock::now() + 1200ms;
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(reg().heartbeat(make_server("kept"), ttl));
  }
  auto h = healthy_or_fail(reg());
  EXPECT_NE(find(h, "kept"), nullptr);
  EXPECT_EQ(find(h, "dropped"), nullptr);
}

TEST_P(RegistryConformance, HeartbeatAfterExpiryRegistersAgain) {
  ASSERT_TRUE(reg().heartbeat(make_server("phoenix"), 100ms));
  ASSERT_TRUE(eventually([&] { return healthy_or_fail(reg()).empty(); }));
  ASSERT_TRUE(reg().heartbeat(make_server("phoenix", 0.5), 30s));
  auto h = healthy_or_fail(reg());
  ASSERT_EQ(h.size(), 1u);
  EXPECT_NEAR(h[0].load, 0.5, 1e-9);
}

TEST_P(RegistryConformance, Remove) {
  ASSERT_TRUE(reg().heartbeat(make_server("a"), 30s));
  ASSERT_TRUE(reg().heartbeat(make_server("b"), 30s));
  ASSERT_TRUE(reg().remove("a"));
  EXPECT_EQ(ids(healthy_or_fail(reg())), std::vector<std::string>{"b"});
  // Removing what is not there is fine (a repeated clean shutdown).
  EXPECT_TRUE(reg().remove("a"));
  EXPECT_TRUE(reg().remove("never-registered"));
  // And a removed server can come back.
  ASSERT_TRUE(reg().heartbeat(make_server("a"), 30s));
  EXPECT_EQ(ids(healthy_or_fail(reg())), (std::vector<std::string>{"a", "b"}));
}

TEST_P(RegistryConformance, SeveralServersOrderedById) {
  std::vector<std::string> want;
  for (std::string id : {"cs-3", "cs-1", "cs-10", "cs-2", "a"}) {
    ASSERT_TRUE(reg().heartbeat(make_server(id, 0.1 * static_cast<double>(id.size())), 30s));
    want.push_back(id);
  }
  std::sort(want.begin(), want.end());
  auto h = healthy_or_fail(reg());
  EXPECT_EQ(ids(h), want);
  for (const auto& s : h) EXPECT_TRUE(same(s, make_server(s.id, 0.1 * static_cast<double>(s.id.size()))));
}

TEST_P(RegistryConformance, ConcurrentHeartbeats) {
  constexpr int threads = 4, rounds = 25, own = 3;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int r = 0; r < rounds; ++r) {
        for (int i = 0; i < own; ++i) {
          auto s = make_server("t" + std::to_string(t) + "-s" + std::to_string(i), r / 100.0);
          if (!reg().heartbeat(s, 30s)) ++failures;
        }
        // Everyone also fights over one shared entry.
        if (!reg().heartbeat(make_server("shared", t / 10.0), 30s)) ++failures;
        if (r % 5 == 0 && !reg().healthy()) ++failures;
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(failures.load(), 0);
  auto h = healthy_or_fail(reg());
  EXPECT_EQ(h.size(), static_cast<std::size_t>(threads * own + 1));
  for (int t = 0; t < threads; ++t) {
    for (int i = 0; i < own; ++i) {
      auto* s = find(h, "t" + std::to_string(t) + "-s" + std::to_string(i));
      ASSERT_NE(s, nullptr);
      EXPECT_NEAR(s->load, (rounds - 1) / 100.0, 1e-9);  // the last heartbeat of its own thread
    }
  }
  auto* shared = find(h, "shared");
  ASSERT_NE(shared, nullptr);
  // Some thread's value, whole (never a mix of two heartbeats).
  EXPECT_TRUE(same(*shared, make_server("shared", shared->load)));
  bool one_of = false;
  for (int t = 0; t < threads; ++t) one_of = one_of || near(shared->load, t / 10.0);
  EXPECT_TRUE(one_of) << shared->load;
}

TEST_P(RegistryConformance, InvalidHeartbeatsAreRefused) {
  auto base = make_server("ok");
  std::vector<std::pair<server_info, std::chrono::milliseconds>> bad;
  auto s = base;
  s.id.clear();
  bad.emplace_back(s, 30s);
  s = base;
  s.url = "http://not-a-websocket/v1/ws";
  bad.emplace_back(s, 30s);
  s = base;
  s.region = "Not A Region";
  bad.emplace_back(s, 30s);
  s = base;
  s.lon.reset();
  bad.emplace_back(s, 30s);
  s = base;
  s.lat = 90.5;
  bad.emplace_back(s, 30s);
  s = base;
  s.load = 1.5;
  bad.emplace_back(s, 30s);
  bad.emplace_back(base, 0ms);
  bad.emplace_back(base, -5ms);
  for (const auto& [srv, ttl] : bad) {
    auto st = reg().heartbeat(srv, ttl);
    ASSERT_FALSE(st.ok()) << "accepted id='" << srv.id << "' url=" << srv.url << " ttl=" << ttl.count();
    EXPECT_EQ(st.err().code, errc::bad_request) << st.err().message;
  }
  EXPECT_TRUE(healthy_or_fail(reg()).empty());
}

}  // namespace
}  // namespace chatd::discovery::testing
