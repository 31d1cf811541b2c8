// A log-linear histogram in the manner of HdrHistogram: values up to 2047 are
// counted exactly, above that each power of two is split into 1024 equal
// buckets, so any recorded value is known to within 0.1 % (3 significant
// digits). Fixed memory (about 230 KB), no allocation when recording, and two
// histograms merge by adding their counts, so every thread keeps its own and
// the report adds them up.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace chatd_bench {

class histogram {
 public:
  static constexpr int sub_bits = 11;  // 2048 exact values, then 1024 per power of two
  static constexpr std::uint64_t sub_count = 1u << sub_bits;
  static constexpr std::uint64_t half = sub_count / 2;
  static constexpr int max_bits = 40;  // values up to 2^40 µs (12 days) are kept; larger ones are clamped
  static constexpr std::size_t bucket_count = sub_count + (max_bits - sub_bits) * half;

  histogram() : counts_(bucket_count, 0) {}

  void record(std::int64_t value) {
    std::uint64_t v = value < 0 ? 0 : static_cast<std::uint64_t>(value);
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
    ++counts_[index_of(v)];
    ++total_;
    sum_ += v;
  }
  void merge(const histogram& o);
  void reset();

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return total_ ? max_ : 0; }
  std::uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0; }
  // The value at quantile q (0..1): the highest value of the bucket holding
  // it, so a reported percentile is never lower than the true one.
  std::uint64_t percentile(double q) const;

  static std::size_t index_of(std::uint64_t v) {
    if (v < sub_count) return static_cast<std::size_t>(v);
    int bits = 64 - __builtin_clzll(v);  // v in [2^(bits-1), 2^bits)
    if (bits > max_bits) return bucket_count - 1;
    int shift = bits - sub_bits;  // v >> shift in [1024, 2047]
    return static_cast<std::size_t>(sub_count + (shift - 1) * half + ((v >> shift) - half));
  }
  static std::uint64_t highest_of(std::size_t i) {
    if (i < sub_count) return i;
    std::size_t k = i - sub_count;
    int shift = static_cast<int>(k / half) + 1;
    std::uint64_t mantissa = half + k % half;
    return ((mantissa + 1) << shift) - 1;
  }

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
};

// What the report prints of a histogram, in microseconds.
struct latency_summary {
  std::uint64_t count = 0;
  double mean = 0;
  std::uint64_t p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};
latency_summary summarize(const histogram& h);

}  // namespace chatd_bench
