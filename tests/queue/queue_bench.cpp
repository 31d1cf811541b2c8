// queue_bench [seconds per case, default 3] [directory, default the temp dir]
//
// Produce latency (p50/p99 of the blocking produce) and throughput of the
// embedded log, fsync off/on, 1 and 8 producer threads, 200-byte values and
// conversation-id keys over 12 partitions; plus one thread pipelining with
// produce_async (up to 1024 in flight). Also prints records per group commit.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "queue/embedded_log.h"

namespace {

using namespace chatd::queue;
using clock_type = std::chrono::steady_clock;

struct figures {
  std::uint64_t records = 0;
  double seconds = 0;
  double p50_us = 0;
  double p99_us = 0;
  double per_commit = 0;
};

std::string fresh_dir(const std::string& base) {
  std::string tmpl = base + "/chatd-queue-bench-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return tmpl;
}

figures run_blocking(const std::string& base, bool fsync, int threads, double seconds) {
  const auto dir = fresh_dir(base);
  figures f;
  {
    embedded_log_options opt;
    opt.path = dir;
    opt.fsync = fsync;
    auto log = open_embedded_log(opt);
    (void)log->ensure_topic("bench", 12);
    auto p = log->make_producer();
    const std::string value(200, 'x');
    std::vector<std::vector<double>> lat(threads);
    std::atomic<bool> stop{false};
    const auto start = clock_type::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        std::mt19937_64 rng(t);
        while (!stop.load(std::memory_order_relaxed)) {
          const auto key = std::to_string(rng() % 10000);
          const auto t0 = clock_type::now();
          auto r = p->produce("bench", key, value);
          const auto t1 = clock_type::now();
          if (!r.ok()) {
            std::fprintf(stderr, "produce: %s\n", r.err().message.c_str());
            std::exit(1);
          }
          lat[t].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : ts) t.join();
    f.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    std::vector<double> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    f.records = all.size();
    f.p50_us = all[all.size() / 2];
    f.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
    const auto s = log->stats();
    f.per_commit = static_cast<double>(s.records) / static_cast<double>(std::max<std::uint64_t>(1, s.group_commits));
  }
  std::filesystem::remove_all(dir);
  return f;
}

figures run_pipelined(const std::string& base, bool fsync, double seconds) {
  const auto dir = fresh_dir(base);
  figures f;
  {
    embedded_log_options opt;
    opt.path = dir;
    opt.fsync = fsync;
    auto log = open_embedded_log(opt);
    (void)log->ensure_topic("bench", 12);
    auto p = log->make_producer();
    const std::string value(200, 'x');
    std::mutex mu;
    std::condition_variable cv;
    int in_flight = 0;
    std::uint64_t done = 0;
    std::mt19937_64 rng(1);
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    while (clock_type::now() < end) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return in_flight < 1024; });
        ++in_flight;
      }
      p->produce_async("bench", std::to_string(rng() % 10000), value, [&](chatd::result<record_position> r) {
        if (!r.ok()) std::exit(1);
        std::lock_guard lock(mu);
        --in_flight;
        ++done;
        cv.notify_one();
      });
    }
    (void)p->flush(std::chrono::seconds(60));
    f.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    f.records = done;
    const auto s = log->stats();
    f.per_commit = static_cast<double>(s.records) / static_cast<double>(std::max<std::uint64_t>(1, s.group_commits));
  }
  std::filesystem::remove_all(dir);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  const std::string base = argc > 2 ? argv[2] : std::filesystem::temp_directory_path().string();
  std::printf("%-6s %-22s %10s %12s %10s %10s %12s\n", "fsync", "producers", "records", "records/s", "p50 us", "p99 us",
              "rec/commit");
  for (bool fsync : {false, true}) {
    for (int threads : {1, 8}) {
      const auto f = run_blocking(base, fsync, threads, seconds);
      std::printf("%-6s %-22s %10llu %12.0f %10.1f %10.1f %12.2f\n", fsync ? "on" : "off",
                  (std::to_string(threads) + " x blocking").c_str(), static_cast<unsigned long long>(f.records),
                  static_cast<double>(f.records) / f.seconds, f.p50_us, f.p99_us, f.per_commit);
    }
    const auto f = run_pipelined(base, fsync, seconds);
    std::printf("%-6s %-22s %10llu %12.0f %10s %10s %12.2f\n", fsync ? "on" : "off", "1 x async (1024 window)",
                static_cast<unsigned long long>(f.records), static_cast<double>(f.records) / f.seconds, "-", "-",
                f.per_commit);
  }
  return 0;
}
