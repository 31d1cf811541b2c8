#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <stdexcept>

#include "json_scan.h"

namespace chatd_bench {

void result_row::set(const std::string& k, double v) {
  for (auto& [key, value] : fields) {
    if (key == k) {
      value = v;
      return;
    }
  }
  fields.emplace_back(k, v);
}

double result_row::get(const std::string& k, double otherwise) const {
  for (auto& [key, value] : fields) {
    if (key == k) return value;
  }
  return otherwise;
}

const latency_summary* result_row::latency(const std::string& k) const {
  for (auto& [key, value] : latencies) {
    if (key == k) return &value;
  }
  return nullptr;
}

namespace {

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// A table cell: latencies in ms, other fields as they come.
std::string cell(const result_row& row, const std::string& key) {
  char buf[64];
  auto dot = key.rfind('.');
  if (dot != std::string::npos) {
    auto* l = row.latency(key.substr(0, dot));
    if (!l) return "-";
    auto which = key.substr(dot + 1);
    std::uint64_t us = which == "p50"    ? l->p50
                       : which == "p90"  ? l->p90
                       : which == "p99"  ? l->p99
                       : which == "p999" ? l->p999
                                         : l->max;
    if (l->count == 0) return "-";
    double ms = static_cast<double>(us) / 1000.0;
    std::snprintf(buf, sizeof buf, ms < 10 ? "%.2f" : ms < 1000 ? "%.1f" : "%.0f", ms);
    return buf;
  }
  bool found = false;
  for (auto& [k, v] : row.fields) {
    if (k == key) found = true;
  }
  if (!found) return "-";
  double v = row.get(key);
  if (key == "pass") return v != 0 ? "yes" : "NO";
  if (v == std::floor(v) && std::fabs(v) < 1e12) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (std::fabs(v) >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (std::fabs(v) >= 1) {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f", v);
  }
  return buf;
}

void write_summary(std::FILE* out, const latency_summary& l) {
  std::fprintf(out, R"({"count":%llu,"mean":%.1f,"p50":%llu,"p90":%llu,"p99":%llu,"p99_9":%llu,"max":%llu})",
               static_cast<unsigned long long>(l.count), l.mean, static_cast<unsigned long long>(l.p50),
               static_cast<unsigned long long>(l.p90), static_cast<unsigned long long>(l.p99),
               static_cast<unsigned long long>(l.p999), static_cast<unsigned long long>(l.max));
}

std::FILE* open_or_throw(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write " + path);
  return f;
}

}  // namespace

void print_table(const report& r, std::FILE* out) {
  std::fprintf(out, "chatd-bench %s against %s\n", r.scenario.c_str(), r.target.c_str());
  std::vector<std::string> headers{""};
  std::vector<std::vector<std::string>> cells;
  for (auto& [h, k] : r.columns) headers.push_back(h);
  for (auto& row : r.rows) {
    std::vector<std::string> line{row.label};
    for (auto& [h, k] : r.columns) line.push_back(cell(row, k));
    cells.push_back(std::move(line));
  }
  std::vector<std::size_t> width(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) {
    width[i] = headers[i].size();
    for (auto& line : cells) width[i] = std::max(width[i], line[i].size());
  }
  auto print_line = [&](const std::vector<std::string>& line) {
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (i == 0)
        std::fprintf(out, "%-*s", static_cast<int>(width[i]), line[i].c_str());
      else
        std::fprintf(out, "  %*s", static_cast<int>(width[i]), line[i].c_str());
    }
    std::fprintf(out, "\n");
  };
  print_line(headers);
  for (auto& line : cells) print_line(line);
  if (r.scenario == "idle")
    std::fprintf(out, "(ready: ms from the TCP connect to the server's ready frame)\n");
  else
    std::fprintf(out, "(latencies in ms, measured from the intended send time; cpu in seconds)\n");
  for (auto& row : r.rows) {
    if (row.errors.empty()) continue;
    std::fprintf(out, "%s errors:", row.label.c_str());
    for (auto& [k, v] : row.errors) std::fprintf(out, " %s=%llu", k.c_str(), static_cast<unsigned long long>(v));
    std::fprintf(out, "\n");
  }
  for (auto& [k, v] : r.summary) std::fprintf(out, "%s: %s\n", k.c_str(), number(v).c_str());
  for (auto& n : r.notes) std::fprintf(out, "note: %s\n", n.c_str());
}

void write_json(const report& r, const std::string& path) {
  std::FILE* f = open_or_throw(path);
  namespace js = json_scan;
  std::fprintf(f, "{\"tool\":\"chatd-bench\",\"scenario\":%s,\"target\":%s,\n\"settings\":{",
               js::quote(r.scenario).c_str(), js::quote(r.target).c_str());
  for (std::size_t i = 0; i < r.settings.size(); ++i) {
    std::fprintf(f, "%s%s:%s", i ? "," : "", js::quote(r.settings[i].first).c_str(),
                 js::quote(r.settings[i].second).c_str());
  }
  std::fprintf(f, "},\n\"summary\":{");
  for (std::size_t i = 0; i < r.summary.size(); ++i) {
    std::fprintf(f, "%s%s:%s", i ? "," : "", js::quote(r.summary[i].first).c_str(),
                 number(r.summary[i].second).c_str());
  }
  std::fprintf(f, "},\n\"rows\":[");
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    auto& row = r.rows[i];
    std::fprintf(f, "%s\n{\"label\":%s,\"series\":%s", i ? "," : "", js::quote(row.label).c_str(),
                 js::quote(row.series).c_str());
    for (auto& [k, v] : row.fields) std::fprintf(f, ",%s:%s", js::quote(k).c_str(), number(v).c_str());
    std::fprintf(f, ",\"latency_us\":{");
    for (std::size_t j = 0; j < row.latencies.size(); ++j) {
      std::fprintf(f, "%s%s:", j ? "," : "", js::quote(row.latencies[j].first).c_str());
      write_summary(f, row.latencies[j].second);
    }
    std::fprintf(f, "},\"errors\":{");
    bool first = true;
    for (auto& [k, v] : row.errors) {
      std::fprintf(f, "%s%s:%llu", first ? "" : ",", js::quote(k).c_str(), static_cast<unsigned long long>(v));
      first = false;
    }
    std::fprintf(f, "}}");
  }
  std::fprintf(f, "\n],\n\"notes\":[");
  for (std::size_t i = 0; i < r.notes.size(); ++i) {
    std::fprintf(f, "%s%s", i ? "," : "", js::quote(r.notes[i]).c_str());
  }
  std::fprintf(f, "]}\n");
  std::fclose(f);
}

void write_csv(const report& r, const std::string& path) {
  // One column per field or latency percentile any row has, in first-seen order.
  std::vector<std::string> fields, lats;
  std::set<std::string> seen;
  for (auto& row : r.rows) {
    for (auto& [k, v] : row.fields) {
      if (seen.insert("f:" + k).second) fields.push_back(k);
    }
    for (auto& [k, v] : row.latencies) {
      if (seen.insert("l:" + k).second) lats.push_back(k);
    }
  }
  std::FILE* f = open_or_throw(path);
  std::fprintf(f, "scenario,target,label,series");
  for (auto& k : fields) std::fprintf(f, ",%s", k.c_str());
  for (auto& k : lats) {
    for (const char* p : {"count", "p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"})
      std::fprintf(f, ",%s_%s", k.c_str(), p);
  }
  std::fprintf(f, ",errors\n");
  for (auto& row : r.rows) {
    std::fprintf(f, "%s,%s,%s,%s", r.scenario.c_str(), r.target.c_str(), row.label.c_str(), row.series.c_str());
    for (auto& k : fields) {
      bool has = false;
      for (auto& [key, v] : row.fields) has = has || key == k;
      std::fprintf(f, ",%s", has ? number(row.get(k)).c_str() : "");
    }
    for (auto& k : lats) {
      auto* l = row.latency(k);
      if (!l) {
        std::fprintf(f, ",,,,,,");
        continue;
      }
      std::fprintf(f, ",%llu,%llu,%llu,%llu,%llu,%llu", static_cast<unsigned long long>(l->count),
                   static_cast<unsigned long long>(l->p50), static_cast<unsigned long long>(l->p90),
                   static_cast<unsigned long long>(l->p99), static_cast<unsigned long long>(l->p999),
                   static_cast<unsigned long long>(l->max));
    }
    std::string errs;
    for (auto& [k, v] : row.errors) errs += (errs.empty() ? "" : " ") + k + "=" + std::to_string(v);
    std::fprintf(f, ",\"%s\"\n", errs.c_str());
  }
  std::fclose(f);
}

bool write_plot(const report& r, const std::string& path) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "no plot: gnuplot is not installed (apt-get install gnuplot-nox)\n");
    return false;
  }
  // Rows with deliveries, grouped by series, one data block per series.
  std::vector<std::string> series;
  for (auto& row : r.rows) {
    auto* l = row.latency("send_to_deliver");
    if (!l || l->count == 0 || row.get("delivered_per_s") <= 0) continue;
    if (std::find(series.begin(), series.end(), row.series) == series.end()) series.push_back(row.series);
  }
  if (series.empty()) {
    std::fprintf(stderr, "no plot: no step delivered messages\n");
    return false;
  }
  std::string data = path + ".dat", script = path + ".gp";
  {
    std::ofstream d(data);
    for (auto& s : series) {
      d << "# " << s << "\n";
      for (auto& row : r.rows) {
        auto* l = row.latency("send_to_deliver");
        if (row.series != s || !l || l->count == 0 || row.get("delivered_per_s") <= 0) continue;
        d << row.get("delivered_per_s") << " " << static_cast<double>(l->p50) / 1000.0 << " "
          << static_cast<double>(l->p99) / 1000.0 << "\n";
      }
      d << "\n\n";
    }
  }
  {
    std::ofstream g(script);
    g << "set terminal pngcairo size 1000,600 noenhanced\n"
      << "set output '" << path << "'\n"
      << "set title 'chatd-bench " << r.scenario << " against " << r.target << ": send to deliver'\n"
      << "set xlabel 'delivered messages/s'\nset ylabel 'latency (ms)'\nset logscale y\nset grid\n"
      << "set key top left\nplot ";
    for (std::size_t i = 0; i < series.size(); ++i) {
      if (i) g << ", ";
      g << "'" << data << "' index " << i << " using 1:2 with linespoints title '" << series[i] << " p50', '" << data
        << "' index " << i << " using 1:3 with linespoints title '" << series[i] << " p99'";
    }
    g << "\n";
  }
  std::string cmd = "gnuplot '" + script + "'";
  if (std::system(cmd.c_str()) != 0) {
    // pngcairo is in gnuplot-nox; older builds may only have the gd png.
    std::string fallback = "sed -i 's/pngcairo/png/' '" + script + "' && gnuplot '" + script + "'";
    if (std::system(fallback.c_str()) != 0) {
      std::fprintf(stderr, "no plot: gnuplot failed (script kept in %s)\n", script.c_str());
      return false;
    }
  }
  std::remove(script.c_str());
  std::remove(data.c_str());
  return true;
}

}  // namespace chatd_bench
