#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <mutex>
#include <set>
#include <stdexcept>

namespace chatd {

namespace {

enum metric_type { type_counter, type_gauge, type_histogram };

const char* type_name(int t) {
  switch (t) {
    case type_counter:
      return "counter";
    case type_gauge:
      return "gauge";
    default:
      return "histogram";
  }
}

bool valid_metric_name(const std::string& s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(const std::string& s) {
  if (s.empty() || s.rfind("__", 0) == 0) return false;  // "__" is reserved for Prometheus itself
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Label order is not part of a series' identity: {a,b} and {b,a} are one.
metric_labels canonical(const metric_labels& labels) {
  metric_labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

void check_labels(const std::string& name, const metric_labels& sorted, bool histogram) {
  if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name: " + name);
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const std::string& l = sorted[i].first;
    if (!valid_label_name(l)) throw std::invalid_argument("invalid label name for " + name + ": " + l);
    if (histogram && l == "le") throw std::invalid_argument("histogram " + name + " cannot use the label le");
    if (i > 0 && sorted[i - 1].first == l) throw std::invalid_argument("duplicate label " + l + " for " + name);
  }
}

std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Shortest round-trip digits; plain decimals in the usual range because
  // "0.0005" reads better in bucket labels than the shorter "5e-04".
  char buf[400];
  const double a = std::fabs(v);
  const bool plain = a == 0 || (a >= 1e-6 && a < 1e15);
  auto [end, ec] = plain ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                         : std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

void escape_into(std::string& out, const std::string& s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
}

// `{a="x",b="y"}`, with an optional extra label last (le for buckets).
void labels_into(std::string& out, const metric_labels& labels, const char* extra_name = nullptr,
                 const std::string& extra_value = {}) {
  if (labels.empty() && extra_name == nullptr) return;
  out.push_back('{');
  bool first = true;
  auto one = [&](const std::string& k, const std::string& v) {
    if (!first) out.push_back(',');
    first = false;
    out += k;
    out += "=\"";
    escape_into(out, v, true);
    out.push_back('"');
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (extra_name != nullptr) one(extra_name, extra_value);
  out.push_back('}');
}

}  // namespace

// ---- histogram ----

histogram::histogram(std::vector<double> bounds) {
  // +Inf is always the implicit last bucket; NaN bounds are meaningless.
  std::erase_if(bounds, [](double b) { return !std::isfinite(b); });
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  bounds_ = std::move(bounds);
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void histogram::observe(double v) noexcept {
  if (std::isnan(v)) return;
  // First bound >= v: Prometheus buckets are "less than or equal".
  std::size_t i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

histogram::snapshot histogram::snap() const {
  snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  // _count is derived from the buckets so that it always equals the +Inf
  // bucket, even while other threads observe.
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& default_latency_buckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return b;
}

// ---- registry ----

struct metrics_registry::family {
  std::string help;
  int type = type_counter;
  struct series {
    std::unique_ptr<chatd::counter> c;
    std::unique_ptr<chatd::gauge> g;
    std::unique_ptr<chatd::histogram> h;
    std::shared_ptr<const std::function<double()>> fn;
  };
  std::map<metric_labels, series> members;
};

metrics_registry::metrics_registry() = default;
metrics_registry::~metrics_registry() = default;

metrics_registry::family& metrics_registry::family_for(const std::string& name, const std::string& help, int type) {
  // Caller holds mu_ exclusively.
  auto it = families_.find(name);
  if (it == families_.end()) {
    auto f = std::make_unique<family>();
    f->help = help;
    f->type = type;
    it = families_.emplace(name, std::move(f)).first;
  } else if (it->second->type != type) {
    throw std::invalid_argument("metric " + name + " is already registered as a " + type_name(it->second->type));
  }
  return *it->second;
}

chatd::counter& metrics_registry::counter(const std::string& name, const std::string& help,
                                          const metric_labels& labels) {
  metric_labels key = canonical(labels);
  {
    std::shared_lock lock(mu_);
    auto f = families_.find(name);
    if (f != families_.end() && f->second->type == type_counter) {
      auto s = f->second->members.find(key);
      if (s != f->second->members.end()) return *s->second.c;
    }
  }
  check_labels(name, key, false);
  std::unique_lock lock(mu_);
  auto& s = family_for(name, help, type_counter).members[std::move(key)];
  if (!s.c) s.c = std::make_unique<chatd::counter>();
  return *s.c;
}

chatd::gauge& metrics_registry::gauge(const std::string& name, const std::string& help, const metric_labels& labels) {
  metric_labels key = canonical(labels);
  {
    std::shared_lock lock(mu_);
    auto f = families_.find(name);
    if (f != families_.end() && f->second->type == type_gauge) {
      auto s = f->second->members.find(key);
      if (s != f->second->members.end() && s->second.g) return *s->second.g;
    }
  }
  check_labels(name, key, false);
  std::unique_lock lock(mu_);
  auto& s = family_for(name, help, type_gauge).members[key];
  if (s.fn) throw std::invalid_argument("metric " + name + " has a callback gauge with the same labels");
  if (!s.g) s.g = std::make_unique<chatd::gauge>();
  return *s.g;
}

chatd::histogram& metrics_registry::histogram(const std::string& name, const std::string& help,
                                              const metric_labels& labels, std::vector<double> buckets) {
  metric_labels key = canonical(labels);
  {
    std::shared_lock lock(mu_);
    auto f = families_.find(name);
    if (f != families_.end() && f->second->type == type_histogram) {
      auto s = f->second->members.find(key);
      if (s != f->second->members.end()) return *s->second.h;
    }
  }
  check_labels(name, key, true);
  std::unique_lock lock(mu_);
  auto& s = family_for(name, help, type_histogram).members[std::move(key)];
  if (!s.h) s.h = std::make_unique<chatd::histogram>(std::move(buckets));
  return *s.h;
}

void metrics_registry::gauge_fn(const std::string& name, const std::string& help, const metric_labels& labels,
                                std::function<double()> fn) {
  metric_labels key = canonical(labels);
  check_labels(name, key, false);
  auto shared = std::make_shared<const std::function<double()>>(std::move(fn));
  std::lock_guard callbacks(callbacks_mu_);
  std::unique_lock lock(mu_);
  auto& s = family_for(name, help, type_gauge).members[key];
  if (s.g) throw std::invalid_argument("metric " + name + " has a plain gauge with the same labels");
  s.fn = std::move(shared);
}

void metrics_registry::remove_gauge_fn(const std::string& name, const metric_labels& labels) {
  const metric_labels key = canonical(labels);
  std::lock_guard callbacks(callbacks_mu_);
  std::unique_lock lock(mu_);
  auto f = families_.find(name);
  if (f == families_.end()) return;
  auto s = f->second->members.find(key);
  if (s == f->second->members.end() || !s->second.fn) return;
  f->second->members.erase(s);
  if (f->second->members.empty()) families_.erase(f);
}

std::string metrics_registry::render() const {
  // Copy the values under the lock, then format (and run callbacks) without
  // it, so a slow callback cannot block registration or updates.
  struct row {
    metric_labels labels;
    double value = 0;
    std::uint64_t int_value = 0;
    chatd::histogram::snapshot hist;
    std::shared_ptr<const std::function<double()>> fn;
  };
  struct fam {
    std::string name, help;
    int type;
    std::vector<row> rows;
  };
  std::vector<fam> fams;
  std::lock_guard callbacks(callbacks_mu_);
  {
    std::shared_lock lock(mu_);
    fams.reserve(families_.size());
    for (const auto& [name, f] : families_) {  // std::map: sorted by name
      if (f->members.empty()) continue;
      fam out{name, f->help, f->type, {}};
      out.rows.reserve(f->members.size());
      for (const auto& [labels, s] : f->members) {
        row r;
        r.labels = labels;
        if (s.c) r.int_value = s.c->value();
        if (s.g) r.value = s.g->value();
        if (s.h) r.hist = s.h->snap();
        r.fn = s.fn;
        out.rows.push_back(std::move(r));
      }
      fams.push_back(std::move(out));
    }
  }

  std::string out;
  for (auto& f : fams) {
    out += "# HELP ";
    out += f.name;
    out.push_back(' ');
    escape_into(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out.push_back(' ');
    out += type_name(f.type);
    out.push_back('\n');
    for (auto& r : f.rows) {
      if (f.type == type_histogram) {
        const auto& h = r.hist;
        for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
          out += f.name;
          out += "_bucket";
          labels_into(out, r.labels, "le", i < h.bounds.size() ? format_double(h.bounds[i]) : "+Inf");
          out.push_back(' ');
          out += std::to_string(h.cumulative[i]);
          out.push_back('\n');
        }
        out += f.name;
        out += "_sum";
        labels_into(out, r.labels);
        out.push_back(' ');
        out += format_double(h.sum);
        out.push_back('\n');
        out += f.name;
        out += "_count";
        labels_into(out, r.labels);
        out.push_back(' ');
        out += std::to_string(h.count);
        out.push_back('\n');
        continue;
      }
      out += f.name;
      labels_into(out, r.labels);
      out.push_back(' ');
      if (f.type == type_counter) {
        out += std::to_string(r.int_value);
      } else {
        double v = r.value;
        if (r.fn && *r.fn) {
          try {
            v = (*r.fn)();
          } catch (...) {
            v = std::nan("");  // a failing probe shows as NaN instead of breaking /metrics
          }
        }
        out += format_double(v);
      }
      out.push_back('\n');
    }
  }
  return out;
}

metrics_registry& default_registry() {
  static metrics_registry r;
  return r;
}

}  // namespace chatd
