// queue_crash_helper <path> <first> <count> <fsync 0|1>
//
// Opens the embedded log at <path> and produces records first..first+count-1
// to topic "crash" (4 partitions; key "k<i % 7>", value "v<i>"), keeping up to
// 64 in flight so that group commits form. For each acknowledged record it
// writes one line "<i> <partition> <offset>" to stdout with one write(2), so
// a line is either wholly there or not at all when the process is killed.
// embedded_log_test kills it with SIGKILL in mid-stream.
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "queue/embedded_log.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <path> <first> <count> <fsync 0|1>\n", argv[0]);
    return 2;
  }
  chatd::queue::embedded_log_options opt;
  opt.path = argv[1];
  opt.partitions = 4;
  opt.fsync = std::string(argv[4]) == "1";
  const long first = std::atol(argv[2]);
  const long count = std::atol(argv[3]);

  auto log = chatd::queue::open_embedded_log(opt);
  if (!log->ensure_topic("crash", 4).ok()) return 1;
  auto producer = log->make_producer();

  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  bool failed = false;
  for (long i = first; i < first + count; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < 64; });
      if (failed) std::_Exit(1);  // callbacks in flight still use this frame
      ++in_flight;
    }
    producer->produce_async("crash", "k" + std::to_string(i % 7), "v" + std::to_string(i),
                            [&, i](chatd::result<chatd::queue::record_position> r) {
                              if (r.ok()) {
                                char line[64];
                                const int n = std::snprintf(line, sizeof line, "%ld %d %lld\n", i, r->partition,
                                                            static_cast<long long>(r->offset));
                                if (::write(STDOUT_FILENO, line, static_cast<std::size_t>(n)) != n) std::abort();
                              }
                              std::lock_guard lock(mu);
                              failed = failed || !r.ok();
                              --in_flight;
                              cv.notify_all();
                            });
  }
  if (!producer->flush(std::chrono::seconds(60)).ok()) return 1;
  return failed ? 1 : 0;
}
