// chatd-bench: a load generator for chat servers (chatd, and through the
// same code every server a target_*.cpp teaches it). docs/benchmarks.md,
// "Load tool: chatd-bench", describes the scenarios and what they report.
//
//   chatd-bench <pairs|fanout|idle|history|reconnect> --target chatd --address 127.0.0.1:8080 [options]
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "engine.h"
#include "target.h"

using namespace chatd_bench;

namespace {

// Every connection is a descriptor; idle wants tens of thousands.
rlim_t raise_fd_limit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) != 0) return 0;
  if (l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
  getrlimit(RLIMIT_NOFILE, &l);
  return l.rlim_cur;
}

template <class T>
std::string join(const std::vector<T>& v) {
  std::ostringstream s;
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"chatd-bench: load generator for chatd and peer chat servers"};
  app.require_subcommand(1, 1);
  options o;
  target_options to;
  std::string target_name = "chatd";
  std::vector<std::string> target_opts;
  std::string json_path, csv_path, plot_path;
  bool list_targets = false;

  auto common = [&](CLI::App* s) {
    s->add_option("--target", target_name, "server kind")->capture_default_str();
    s->add_option("--address", to.address, "host:port of the server's entry point (chatd: the gateway)")->required();
    s->add_option("--server-pid", to.server_pid, "server process, for CPU seconds and RSS from /proc");
    s->add_option("--target-opt", target_opts, "key=value for the target (repeatable)");
    s->add_option("--threads", o.threads, "event loops (one io_context each)")->capture_default_str();
    s->add_option("--payload", o.payload, "message body bytes")->capture_default_str();
    s->add_option("--connect-timeout-ms", o.connect_timeout_ms)->capture_default_str();
    s->add_option("--connect-concurrency", o.connect_concurrency, "handshakes in flight")->capture_default_str();
    s->add_option("--json", json_path, "write the results as JSON");
    s->add_option("--csv", csv_path, "write the rows as CSV");
    s->add_option("--plot", plot_path, "PNG of send->deliver p50/p99 against delivered/s (gnuplot)");
  };
  auto stepping = [&](CLI::App* s) {
    s->add_option("--rates", o.rates, "explicit rates, comma-separated")->delimiter(',');
    s->add_option("--start", o.start_rate, "first rate when stepping");
    s->add_option("--step-factor", o.step_factor, "each step's rate is the last one times this");
    s->add_option("--max", o.max_rate, "last rate when stepping");
    s->add_option("--step-seconds", o.step_seconds)->capture_default_str();
    s->add_option("--drain-seconds", o.drain_seconds, "after a step, wait this long for stragglers")
        ->capture_default_str();
    s->add_option("--slo-ms", o.slo_ms, "p99 latency a step must stay under")->capture_default_str();
    s->add_option("--min-delivered", o.min_delivered, "fraction a step must deliver")->capture_default_str();
    s->add_flag("--keep-stepping", o.keep_stepping, "run every step even after one failed the SLO");
  };

  auto* pairs = app.add_subcommand("pairs", "N sender->receiver pairs, open loop, stepping the rate to the knee");
  common(pairs);
  stepping(pairs);
  pairs->add_option("--pairs", o.pairs)->capture_default_str();
  pairs->add_flag("--unloaded", o.unloaded, "first a step at --unloaded-rate: latency with one message in flight");
  pairs->add_option("--unloaded-rate", o.unloaded_rate)->capture_default_str();
  pairs->add_option("--unloaded-seconds", o.unloaded_seconds)->capture_default_str();

  auto* fanout = app.add_subcommand("fanout", "one sender into groups; rates are deliveries/s");
  common(fanout);
  stepping(fanout);
  fanout->add_option("--groups", o.groups, "group sizes (members, sender included)")->delimiter(',');

  auto* idle = app.add_subcommand("idle", "as many idle authenticated connections as possible");
  common(idle);
  idle->add_option("--connections", o.connections)->capture_default_str();
  idle->add_option("--accounts", o.accounts, "accounts the connections share")->capture_default_str();
  idle->add_option("--source-ips", o.source_ips, "source addresses 127.0.0.2.. (0: as needed)");
  idle->add_option("--hold-seconds", o.hold_seconds)->capture_default_str();

  auto* history = app.add_subcommand("history", "newest-page reads under a background pairs load");
  common(history);
  stepping(history);
  history->add_option("--pairs", o.pairs)->capture_default_str();
  history->add_option("--rate", o.rate, "background messages/s")->capture_default_str();
  history->add_option("--readers", o.readers, "receivers that read history")->capture_default_str();

  auto* reconnect = app.add_subcommand("reconnect", "receivers reconnect with since= in waves while senders send");
  common(reconnect);
  reconnect->add_option("--pairs", o.pairs)->capture_default_str();
  reconnect->add_option("--rate", o.rate, "messages/s")->capture_default_str();
  reconnect->add_option("--seconds", o.seconds)->capture_default_str();
  reconnect->add_option("--drain-seconds", o.drain_seconds)->capture_default_str();
  reconnect->add_option("--every", o.reconnect_every, "seconds between waves")->capture_default_str();
  reconnect->add_option("--fraction", o.reconnect_fraction, "receivers reconnecting per wave")->capture_default_str();

  auto* targets = app.add_subcommand("targets", "list the servers this build can load");
  targets->add_flag("--list", list_targets);

  CLI11_PARSE(app, argc, argv);
  if (targets->parsed()) {
    for (auto& n : target_names()) std::printf("%s\n", n.c_str());
    return 0;
  }
  o.scenario = app.get_subcommands().front()->get_name();

  for (auto& kv : target_opts) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "--target-opt wants key=value, got %s\n", kv.c_str());
      return 2;
    }
    to.extra.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  auto fds = raise_fd_limit();

  try {
    auto t = make_target(target_name, to);
    std::fprintf(stderr, "chatd-bench %s against %s at %s\n", o.scenario.c_str(), t->name().c_str(),
                 to.address.c_str());
    auto rep = run_scenario(*t, o);
    utsname u{};
    uname(&u);
    char when[32];
    std::time_t now = std::time(nullptr);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    rep.settings = {{"address", to.address},
                    {"server_pid", std::to_string(t->server_pid())},
                    {"threads", std::to_string(o.threads)},
                    {"payload", std::to_string(o.payload)},
                    {"step_seconds", std::to_string(o.step_seconds)},
                    {"drain_seconds", std::to_string(o.drain_seconds)},
                    {"slo_ms", std::to_string(o.slo_ms)},
                    {"min_delivered", std::to_string(o.min_delivered)},
                    {"pairs", std::to_string(o.pairs)},
                    {"groups", join(o.groups)},
                    {"connections", std::to_string(o.connections)},
                    {"rate", std::to_string(o.rate)},
                    {"fd_limit", std::to_string(fds)},
                    {"cores", std::to_string(sysconf(_SC_NPROCESSORS_ONLN))},
                    {"kernel", std::string(u.release)},
                    {"finished_at", when}};
    for (auto& [k, v] : to.extra) rep.settings.emplace_back("target_opt." + k, v);
    print_table(rep, stdout);
    if (!json_path.empty()) write_json(rep, json_path);
    if (!csv_path.empty()) write_csv(rep, csv_path);
    if (!plot_path.empty() && write_plot(rep, plot_path))
      std::fprintf(stderr, "plot written to %s\n", plot_path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chatd-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
