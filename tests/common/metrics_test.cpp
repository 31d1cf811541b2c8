#include "common/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace chatd {
namespace {

TEST(Metrics, RenderExactFormat) {
  metrics_registry r;
  r.counter("b_total", "Bs", {{"method", "POST"}}).inc();
  r.counter("b_total", "Bs", {{"method", "GET"}}).inc(3);
  r.gauge("a_gauge", "An \\ gauge\nline2").set(1.5);
  auto& h = r.histogram("c_seconds", "C", {}, {1, 0.1});
  h.observe(0.25);
  h.observe(0.5);
  h.observe(2);
  r.gauge_fn("d_open", "D", {{"role", "x"}}, [] { return 7.0; });
  EXPECT_EQ(r.render(),
            "# HELP a_gauge An \\\\ gauge\\nline2\n"
            "# TYPE a_gauge gauge\n"
            "a_gauge 1.5\n"
            "# HELP b_total Bs\n"
            "# TYPE b_total counter\n"
            "b_total{method=\"GET\"} 3\n"
            "b_total{method=\"POST\"} 1\n"
            "# HELP c_seconds C\n"
            "# TYPE c_seconds histogram\n"
            "c_seconds_bucket{le=\"0.1\"} 0\n"
            "c_seconds_bucket{le=\"1\"} 2\n"
            "c_seconds_bucket{le=\"+Inf\"} 3\n"
            "c_seconds_sum 2.75\n"
            "c_seconds_count 3\n"
            "# HELP d_open D\n"
            "# TYPE d_open gauge\n"
            "d_open{role=\"x\"} 7\n");
}

TEST(Metrics, EmptyRegistryRendersNothing) {
  metrics_registry r;
  EXPECT_EQ(r.render(), "");
}

TEST(Metrics, SameNameAndLabelsSameObject) {
  metrics_registry r;
  auto& a = r.counter("x_total", "X", {{"a", "1"}, {"b", "2"}});
  auto& b = r.counter("x_total", "other help is ignored", {{"b", "2"}, {"a", "1"}});
  auto& c = r.counter("x_total", "X", {{"a", "1"}, {"b", "3"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  // References stay valid while many more series are added.
  for (int i = 0; i < 1000; ++i) r.counter("x_total", "X", {{"a", std::to_string(i)}});
  a.inc(5);
  EXPECT_EQ(r.counter("x_total", "X", {{"b", "2"}, {"a", "1"}}).value(), 5u);
  EXPECT_EQ(&r.gauge("g", "G"), &r.gauge("g", "G"));
  EXPECT_EQ(&r.histogram("h", "H"), &r.histogram("h", "H"));
  EXPECT_NE(r.render().find("# HELP x_total X\n"), std::string::npos);
}

TEST(Metrics, LabelEscaping) {
  metrics_registry r;
  r.counter("e_total", "E", {{"path", "a\\b\"c\nd"}}).inc();
  EXPECT_EQ(r.render(),
            "# HELP e_total E\n"
            "# TYPE e_total counter\n"
            "e_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(Metrics, LabelsRenderSortedByName) {
  metrics_registry r;
  r.gauge("g", "G", {{"zone", "z"}, {"app", "a"}}).set(-2);
  EXPECT_EQ(r.render(), "# HELP g G\n# TYPE g gauge\ng{app=\"a\",zone=\"z\"} -2\n");
}

TEST(Metrics, HistogramCumulativeBuckets) {
  metrics_registry r;
  auto& h = r.histogram("lat_seconds", "L", {{"route", "/x"}}, {0.01, 0.1, 1});
  for (double v : {0.001, 0.01, 0.05, 0.1, 0.2, 0.7, 1.0, 5.0, 100.0}) h.observe(v);
  h.observe(std::nan(""));  // dropped
  auto s = h.snap();
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], 2u);  // 0.001, 0.01 (le is inclusive)
  EXPECT_EQ(s.cumulative[1], 4u);  // + 0.05, 0.1
  EXPECT_EQ(s.cumulative[2], 7u);  // + 0.2, 0.7, 1.0
  EXPECT_EQ(s.cumulative[3], 9u);  // + 5, 100
  EXPECT_EQ(s.count, 9u);
  EXPECT_DOUBLE_EQ(s.sum, 0.001 + 0.01 + 0.05 + 0.1 + 0.2 + 0.7 + 1.0 + 5.0 + 100.0);
  std::string text = r.render();
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/x\",le=\"0.01\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/x\",le=\"1\"} 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/x\",le=\"+Inf\"} 9\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_count{route=\"/x\"} 9\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_sum{route=\"/x\"} "), std::string::npos) << text;
}

TEST(Metrics, DefaultLatencyBuckets) {
  metrics_registry r;
  auto& h = r.histogram("d_seconds", "D");
  ASSERT_FALSE(h.bounds().empty());
  EXPECT_DOUBLE_EQ(h.bounds().front(), 0.0005);
  EXPECT_DOUBLE_EQ(h.bounds().back(), 10);
  std::string text = r.render();
  EXPECT_NE(text.find("d_seconds_bucket{le=\"0.0005\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{le=\"2.5\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{le=\"10\"} 0\n"), std::string::npos) << text;
}

TEST(Metrics, SpecialValues) {
  metrics_registry r;
  r.gauge("p", "P").set(std::numeric_limits<double>::infinity());
  r.gauge("q", "Q").set(std::nan(""));
  r.gauge_fn("t", "T", {}, []() -> double { throw std::runtime_error("probe failed"); });
  r.gauge("v1", "V").set(0.1);
  r.gauge("v2", "V").set(123456789);
  r.gauge("v3", "V").set(1e-9);
  r.gauge("v4", "V").set(-1e20);
  std::string text = r.render();
  EXPECT_NE(text.find("\nv1 0.1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nv2 123456789\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nv3 1e-09\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nv4 -1e+20\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\np +Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nq NaN\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nt NaN\n"), std::string::npos) << text;
}

TEST(Metrics, GaugeFnReplacedAndReadAtRender) {
  metrics_registry r;
  std::atomic<int> open{3};
  r.gauge_fn("conns", "C", {}, [&] { return static_cast<double>(open.load()); });
  EXPECT_NE(r.render().find("\nconns 3\n"), std::string::npos);
  open = 4;
  EXPECT_NE(r.render().find("\nconns 4\n"), std::string::npos);
  r.gauge_fn("conns", "C", {}, [] { return 9.0; });
  EXPECT_NE(r.render().find("\nconns 9\n"), std::string::npos);
  // A callback may use the registry: render does not hold its lock meanwhile.
  r.gauge_fn("reentrant", "R", {}, [&r] { return static_cast<double>(r.counter("inner_total", "I").value()); });
  EXPECT_NE(r.render().find("\nreentrant 0\n"), std::string::npos);
}

TEST(Metrics, RemoveGaugeFn) {
  metrics_registry r;
  r.gauge_fn("open", "O", {{"role", "a"}}, [] { return 1.0; });
  r.gauge_fn("open", "O", {{"role", "b"}}, [] { return 2.0; });
  r.remove_gauge_fn("open", {{"role", "a"}});
  EXPECT_EQ(r.render(), "# HELP open O\n# TYPE open gauge\nopen{role=\"b\"} 2\n");
  r.remove_gauge_fn("open", {{"role", "b"}});
  r.remove_gauge_fn("open", {{"role", "b"}});  // no-op
  r.remove_gauge_fn("never", {});              // no-op
  EXPECT_EQ(r.render(), "");
  // A plain gauge is not removed by it.
  r.gauge("plain", "P").set(1);
  r.remove_gauge_fn("plain", {});
  EXPECT_NE(r.render().find("\nplain 1\n"), std::string::npos);
}

TEST(Metrics, RemovedCallbackNeverRunsAfterRemoval) {
  // Renders race with callbacks whose state is freed right after removal;
  // under AddressSanitizer a late call would be a use-after-free.
  metrics_registry r;
  std::atomic<bool> stop{false};
  std::thread renderer([&] {
    while (!stop) (void)r.render();
  });
  for (int i = 0; i < 2000; ++i) {
    auto state = std::make_unique<int>(i);
    int* p = state.get();
    r.gauge_fn("live", "L", {}, [p] { return static_cast<double>(*p); });
    r.remove_gauge_fn("live", {});
    state.reset();
  }
  stop = true;
  renderer.join();
  EXPECT_EQ(r.render(), "");
}

TEST(Metrics, MisuseThrows) {
  metrics_registry r;
  r.counter("m_total", "M");
  EXPECT_THROW(r.gauge("m_total", "M"), std::invalid_argument);
  EXPECT_THROW(r.histogram("m_total", "M"), std::invalid_argument);
  EXPECT_THROW(r.counter("bad name", "B"), std::invalid_argument);
  EXPECT_THROW(r.counter("0abc", "B"), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "B", {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "B", {{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "B", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h_seconds", "H", {{"le", "1"}}), std::invalid_argument);
  r.gauge("g", "G");
  EXPECT_THROW(r.gauge_fn("g", "G", {}, [] { return 1.0; }), std::invalid_argument);
  // Failed registrations leave nothing behind.
  EXPECT_EQ(r.render().find("ok_total"), std::string::npos);
}

TEST(Metrics, ConcurrentUpdatesAddUpExactly) {
  metrics_registry r;
  constexpr int threads = 4, per_thread = 100000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&r] {
      // Looked up concurrently too: registration races must yield one object.
      auto& c = r.counter("hits_total", "H", {{"k", "v"}});
      auto& g = r.gauge("level", "L");
      auto& h = r.histogram("obs_seconds", "O", {}, {0.5});
      for (int i = 0; i < per_thread; ++i) {
        c.inc();
        g.add(1);
        h.observe((i % 2) ? 1.0 : 0.25);
        if (i % 1000 == 0) (void)r.render();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(r.counter("hits_total", "H", {{"k", "v"}}).value(), std::uint64_t{threads} * per_thread);
  EXPECT_DOUBLE_EQ(r.gauge("level", "L").value(), double{threads} * per_thread);
  auto s = r.histogram("obs_seconds", "O", {}, {0.5}).snap();
  EXPECT_EQ(s.count, std::uint64_t{threads} * per_thread);
  EXPECT_EQ(s.cumulative[0], std::uint64_t{threads} * per_thread / 2);
  EXPECT_DOUBLE_EQ(s.sum, threads * (per_thread / 2) * 1.25);
}

TEST(Metrics, DefaultRegistryIsOneObject) { EXPECT_EQ(&default_registry(), &default_registry()); }

}  // namespace
}  // namespace chatd
