// A small Prometheus registry (text exposition format 0.0.4) without external
// dependencies. Registration and rendering take a lock; updating a metric is
// a few relaxed atomic operations, so hot paths keep a reference:
//
//   static auto& sent = default_registry().counter("chatd_messages_sent_total", "Messages sent", {});
//   sent.inc();
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace chatd {

using metric_labels = std::vector<std::pair<std::string, std::string>>;

class counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class gauge {
 public:
  void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
  void inc() noexcept { add(1); }
  void dec() noexcept { add(-1); }
  double value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class histogram {
 public:
  // `bounds` are the finite upper bounds ("le"), sorted and de-duplicated
  // here; +Inf is implicit.
  explicit histogram(std::vector<double> bounds);
  // NaN observations are dropped (they would poison _sum for ever).
  void observe(double v) noexcept;

  struct snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;  // == cumulative.back()
  };
  snapshot snap() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0};
};

// 0.5 ms to 10 s, for request and delivery latencies in seconds.
const std::vector<double>& default_latency_buckets();

class metrics_registry {
 public:
  metrics_registry();
  ~metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  // The same (name, labels) always returns the same object, which lives as
  // long as the registry. Label order does not matter. The first `help` of a
  // family is kept. Throws std::invalid_argument for an invalid metric or
  // label name, or a name already registered with another type (programming
  // errors, found at the first call).
  chatd::counter& counter(const std::string& name, const std::string& help, const metric_labels& labels = {});
  chatd::gauge& gauge(const std::string& name, const std::string& help, const metric_labels& labels = {});
  // Buckets are fixed by the first registration of (name, labels).
  chatd::histogram& histogram(const std::string& name, const std::string& help, const metric_labels& labels = {},
                              std::vector<double> buckets = default_latency_buckets());
  // A gauge read at render time, e.g. open connections. Registering the same
  // (name, labels) again replaces the callback. Callbacks run on the
  // rendering thread without the registry's main lock, so they may read other
  // metrics, but must not call gauge_fn/remove_gauge_fn/render themselves.
  void gauge_fn(const std::string& name, const std::string& help, const metric_labels& labels,
                std::function<double()> fn);
  // Unregisters a callback gauge; once it returns, the old callback is not
  // running and will not run again, so what it reads may be destroyed.
  // Unknown (name, labels) is a no-op.
  void remove_gauge_fn(const std::string& name, const metric_labels& labels);

  // Families sorted by name, series by their (sorted) labels.
  std::string render() const;

 private:
  struct family;
  family& family_for(const std::string& name, const std::string& help, int type);

  // Held by render() from its snapshot until its callbacks have run, and by
  // whoever replaces or removes a callback: so removal waits for a render in
  // progress. Always taken before mu_.
  mutable std::mutex callbacks_mu_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<family>> families_;
};

// The process-wide registry that /metrics renders.
metrics_registry& default_registry();

}  // namespace chatd
