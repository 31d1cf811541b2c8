#include "histogram.h"

#include <algorithm>
#include <cmath>

namespace chatd_bench {

void histogram::merge(const histogram& o) {
  for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += o.counts_[i];
  total_ += o.total_;
  sum_ += o.sum_;
  max_ = std::max(max_, o.max_);
  min_ = std::min(min_, o.min_);
}

void histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

std::uint64_t histogram::percentile(double q) const {
  if (total_ == 0) return 0;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
  rank = std::clamp<std::uint64_t>(rank, 1, total_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_of(i), max_);
  }
  return max_;
}

latency_summary summarize(const histogram& h) {
  latency_summary s;
  s.count = h.count();
  s.mean = h.mean();
  s.p50 = h.percentile(0.50);
  s.p90 = h.percentile(0.90);
  s.p99 = h.percentile(0.99);
  s.p999 = h.percentile(0.999);
  s.max = h.max();
  return s;
}

}  // namespace chatd_bench
