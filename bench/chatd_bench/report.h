// What a run produced, independent of the scenario: rows (steps, group
// sizes) of named numbers and latency summaries, and a summary of the run.
// Printed as a table, written as JSON and CSV, plotted with gnuplot.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "histogram.h"

namespace chatd_bench {

struct result_row {
  std::string label;   // "step 3", "unloaded", "group 100 step 2", ...
  std::string series;  // rows of one series form one line in the plot
  std::vector<std::pair<std::string, double>> fields;
  std::vector<std::pair<std::string, latency_summary>> latencies;  // µs
  std::map<std::string, std::uint64_t> errors;

  void set(const std::string& k, double v);
  double get(const std::string& k, double otherwise = 0) const;
  const latency_summary* latency(const std::string& k) const;
};

struct report {
  std::string scenario, target;
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<result_row> rows;
  std::vector<std::pair<std::string, double>> summary;
  std::vector<std::string> notes;
  // The table's columns: a header and a field name, or "<latency>.p50"
  // (p90, p99, p999, max) for a latency in milliseconds.
  std::vector<std::pair<std::string, std::string>> columns;
};

void print_table(const report& r, std::FILE* out);
void write_json(const report& r, const std::string& path);
void write_csv(const report& r, const std::string& path);
// Latency (p50 and p99 send->deliver) against delivered/s; false (with a
// message on stderr) when gnuplot is missing or fails.
bool write_plot(const report& r, const std::string& path);

}  // namespace chatd_bench
