// The scenarios: who connects, who sends what at which rate, and what is
// counted. Everything that touches the network runs on the tool's own
// event loops (one io_context per --threads), the command line and the
// reporting on the main thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "report.h"
#include "target.h"

namespace chatd_bench {

struct options {
  std::string scenario;
  std::size_t threads = 1;
  std::size_t payload = 100;
  int connect_timeout_ms = 15000;
  std::size_t connect_concurrency = 256;

  // Stepping (pairs, fanout, history): an explicit list, else start *
  // step_factor^k up to max.
  std::vector<double> rates;
  double start_rate = 0, step_factor = 0, max_rate = 0;
  double step_seconds = 15;
  double drain_seconds = 5;
  double slo_ms = 50;
  double min_delivered = 0.99;
  bool keep_stepping = false;  // run every step even after one failed the SLO

  std::size_t pairs = 50;
  bool unloaded = false;
  double unloaded_rate = 20;
  double unloaded_seconds = 5;

  std::vector<std::size_t> groups{10, 100, 1000};

  std::size_t connections = 10000;
  std::size_t accounts = 100;
  std::size_t source_ips = 0;  // 0: as many as the connection count needs
  double hold_seconds = 5;

  double rate = 1000;  // background messages/s (history, reconnect)
  std::size_t readers = 10;
  double seconds = 15;  // reconnect's run
  double reconnect_every = 2;
  double reconnect_fraction = 1.0;
};

report run_scenario(target& t, const options& o);

}  // namespace chatd_bench
