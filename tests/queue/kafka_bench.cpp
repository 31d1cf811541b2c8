// queue_bench_kafka [seconds per case, default 5] [brokers, default
// $CHATD_TEST_KAFKA_BROKERS or 127.0.0.1:9092]
//
// The Kafka backend through the port, as chatd uses it: idempotent producer,
// acks=all, 200-byte values, conversation-id keys over 12 partitions of a
// fresh topic. Prints the first produce of a new producer (PID and metadata
// included), produce -> delivery report latency p50/p99/max for 1 and 8
// blocking producer threads, the sustained rate of one thread pipelining
// produce_async (up to 1024 in flight), and produce -> poll latency.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "queue/kafka_queue.h"

namespace {

using namespace chatd::queue;
using clock_type = std::chrono::steady_clock;

double us_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
}

struct stats {
  std::size_t n = 0;
  double p50 = 0, p99 = 0, max = 0;
};
stats summarize(std::vector<double> v) {
  stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.p50 = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  s.max = v.back();
  return s;
}

std::string fresh_topic(queue& q, const std::string& what) {
  std::random_device rd;
  auto t = "chatd-bench-" + what + "-" + std::to_string(rd());
  if (auto s = q.ensure_topic(t, 12); !s) {
    std::fprintf(stderr, "ensure_topic: %s\n", s.err().message.c_str());
    std::exit(1);
  }
  return t;
}

void blocking(queue& q, int threads, double seconds) {
  const auto topic = fresh_topic(q, "blocking");
  auto p = q.make_producer();
  const std::string value(200, 'x');
  const auto t0 = clock_type::now();
  if (auto r = p->produce(topic, "warm-up", value); !r) std::exit(1);
  const double first = us_since(t0);
  std::vector<std::vector<double>> lat(threads);
  std::atomic<bool> stop{false};
  const auto start = clock_type::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto key = std::to_string(rng() % 10000);
        const auto t1 = clock_type::now();
        auto r = p->produce(topic, key, value);
        if (!r) {
          std::fprintf(stderr, "produce: %s\n", r.err().message.c_str());
          std::exit(1);
        }
        lat[t].push_back(us_since(t1));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  const auto s = summarize(all);
  std::printf("%-26s %9zu %10.0f %10.0f %10.0f %10.0f %12.0f\n", (std::to_string(threads) + " x blocking").c_str(), s.n,
              s.n / secs, s.p50, s.p99, s.max, first);
}

void pipelined(queue& q, double seconds) {
  const auto topic = fresh_topic(q, "async");
  auto p = q.make_producer();
  const std::string value(200, 'x');
  (void)p->produce(topic, "warm-up", value);
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::uint64_t done = 0, failed = 0;
  std::mt19937_64 rng(1);
  const auto start = clock_type::now();
  const auto end = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  while (clock_type::now() < end) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < 1024; });
      ++in_flight;
    }
    p->produce_async(topic, std::to_string(rng() % 10000), value, [&](chatd::result<record_position> r) {
      std::lock_guard lock(mu);
      --in_flight;
      ++(r ? done : failed);
      cv.notify_one();
    });
  }
  (void)p->flush(std::chrono::seconds(60));
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::printf("%-26s %9llu %10.0f %10s %10s %10s %12s%s\n", "1 x async (1024 window)",
              static_cast<unsigned long long>(done), done / secs, "-", "-", "-", "-", failed ? "  FAILURES" : "");
}

// One record at a time: produce, then the blocked poll of a consumer that
// is already assigned returns it.
void end_to_end(queue& q, int n) {
  const auto topic = fresh_topic(q, "e2e");
  auto p = q.make_producer();
  std::random_device rd;
  auto c = q.subscribe("bench-" + std::to_string(rd()), {topic}, start_position::latest);
  if (!c) std::exit(1);
  const auto deadline = clock_type::now() + std::chrono::seconds(30);
  while ((*c)->assignment().size() < 12 && clock_type::now() < deadline)
    (void)(*c)->poll(std::chrono::milliseconds(50), 10);
  std::vector<double> lat;
  for (int i = 0; i < n; ++i) {
    const auto t0 = clock_type::now();
    const auto key = std::to_string(i);
    p->produce_async(topic, key, "x", [](chatd::result<record_position>) {});
    bool got = false;
    while (!got) {
      auto r = (*c)->poll(std::chrono::seconds(10), 10);
      if (!r) std::exit(1);
      if (r->empty()) {
        std::fprintf(stderr, "record %d not polled within 10 s\n", i);
        std::exit(1);
      }
      for (const auto& rec : *r) {
        if (rec.key == key) {
          got = true;
        } else {
          std::fprintf(stderr, "unexpected record %s while waiting for %d\n", rec.key.c_str(), i);
        }
      }
    }
    lat.push_back(us_since(t0));
  }
  const auto s = summarize(lat);
  std::printf("%-26s %9zu %10s %10.0f %10.0f %10.0f %12s\n", "produce -> poll", s.n, "-", s.p50, s.p99, s.max, "-");
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
  kafka_queue_options o;
  const char* env = std::getenv("CHATD_TEST_KAFKA_BROKERS");
  o.brokers = argc > 2 ? argv[2] : (env != nullptr && *env != '\0' ? env : "127.0.0.1:9092");
  auto q = open_kafka_queue(o);
  std::printf("%-26s %9s %10s %10s %10s %10s %12s\n", "case", "records", "records/s", "p50 us", "p99 us", "max us",
              "first us");
  blocking(*q, 1, seconds);
  blocking(*q, 8, seconds);
  pipelined(*q, seconds);
  end_to_end(*q, 500);
  return 0;
}
