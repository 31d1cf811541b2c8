// chatd-store-bench: how fast the embedded chat database takes and serves
// messages. Inserts N messages round-robin across M conversations (spread
// over 30 days of ids, so pages cross buckets) with one thread, then another
// N with two threads, reopens the store so reads come from SST files through
// the block cache, and reads newest pages (limit 50) and older pages of
// random conversations.
//
//   chatd-store-bench [--path DIR] [--messages N] [--conversations M]
//                     [--reads R] [--sync] [--keep]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "store/rocksdb_store.h"

namespace {

using clock_type = std::chrono::steady_clock;
using chatd::store::id_t;

struct options {
  std::string path;
  std::size_t messages = 200000;
  std::size_t conversations = 100;
  std::size_t reads = 20000;
  bool sync = false;
  bool keep = false;
};

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--path DIR] [--messages N] [--conversations M] [--reads R] [--sync] [--keep]\n"
               "  --path DIR          database directory (default: a new one under $TMPDIR, removed at exit)\n"
               "  --messages N        messages per insert phase (default 200000)\n"
               "  --conversations M   conversations per insert phase (default 100)\n"
               "  --reads R           page reads per read phase (default 20000)\n"
               "  --sync              fsync the WAL on every write\n"
               "  --keep              keep the database directory\n",
               argv0);
}

bool parse_count(const char* s, std::size_t& out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0' || v == 0) return false;
  out = static_cast<std::size_t>(v);
  return true;
}

bool parse_args(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--path" && (v = value())) {
      o.path = v;
    } else if (a == "--messages" && (v = value()) && parse_count(v, o.messages)) {
    } else if (a == "--conversations" && (v = value()) && parse_count(v, o.conversations)) {
    } else if (a == "--reads" && (v = value()) && parse_count(v, o.reads)) {
    } else if (a == "--sync") {
      o.sync = true;
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      return false;
    }
  }
  return true;
}

struct stats {
  std::string name;
  std::size_t count = 0;
  double seconds = 0;
  std::vector<double> latencies_us;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void print_table(std::vector<stats>& rows) {
  std::printf("%-42s %10s %9s %11s %9s %9s\n", "operation", "count", "seconds", "ops/s", "p50 us", "p99 us");
  for (auto& r : rows) {
    double p50 = percentile(r.latencies_us, 0.50);
    double p99 = percentile(r.latencies_us, 0.99);
    std::printf("%-42s %10zu %9.2f %11.0f %9.1f %9.1f\n", r.name.c_str(), r.count, r.seconds,
                static_cast<double>(r.count) / r.seconds, p50, p99);
  }
}

double micros(clock_type::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

constexpr std::int64_t t0 = 1720000000000;  // 2024-07-03
constexpr std::int64_t span_ms = 30LL * 24 * 3600 * 1000;

// Inserts `count` messages round-robin over conversations [first, first + n)
// on `threads` threads; every thread has its own id generator node.
stats insert_phase(chatd::store::chat_store& db, const std::string& name, std::size_t count, id_t first, std::size_t n,
                   unsigned threads, std::uint32_t first_node) {
  stats st;
  st.name = name;
  st.count = count;
  std::vector<std::vector<double>> lat(threads);
  std::vector<std::thread> workers;
  std::string body(100, 'x');
  auto start = clock_type::now();
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      chatd::id_generator gen(first_node + t);  // phases and threads never share a node
      std::size_t mine = count / threads + (t < count % threads ? 1 : 0);
      lat[t].reserve(mine);
      for (std::size_t k = 0; k < mine; ++k) {
        std::size_t i = k * threads + t;  // global position: spreads time evenly
        chatd::store::message m;
        m.id = gen.next_at(t0 + static_cast<std::int64_t>(static_cast<double>(i) / static_cast<double>(count) *
                                                          static_cast<double>(span_ms)));
        m.conversation_id = first + i % n;
        m.sender_id = 1 + i % 7;
        m.body = body;
        m.client_msg_id = std::to_string(i);
        m.created_at = chatd::id_timestamp_ms(m.id);
        auto a = clock_type::now();
        auto s = db.put_message(m);
        lat[t].push_back(micros(clock_type::now() - a));
        if (!s) {
          std::fprintf(stderr, "put_message failed: %s\n", s.err().message.c_str());
          std::exit(1);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  st.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  for (auto& l : lat) st.latencies_us.insert(st.latencies_us.end(), l.begin(), l.end());
  return st;
}

// Reads pages of random conversations in [first, first + n): the newest page,
// or (older) the page before a random point of the 30 days.
stats read_phase(chatd::store::chat_store& db, const std::string& name, std::size_t reads, id_t first, std::size_t n,
                 bool older) {
  stats st;
  st.name = name;
  st.count = reads;
  st.latencies_us.reserve(reads);
  std::mt19937_64 rng(42);
  std::size_t returned = 0;
  auto start = clock_type::now();
  for (std::size_t r = 0; r < reads; ++r) {
    id_t conv = first + rng() % n;
    id_t before = 0;
    if (older) before = chatd::id_floor_for_ms(t0 + static_cast<std::int64_t>(rng() % span_ms));
    auto a = clock_type::now();
    auto page = db.list_messages(conv, before, 50);
    st.latencies_us.push_back(micros(clock_type::now() - a));
    if (!page) {
      std::fprintf(stderr, "list_messages failed: %s\n", page.err().message.c_str());
      std::exit(1);
    }
    returned += page->messages.size();
  }
  st.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  if (returned == 0) std::fprintf(stderr, "warning: %s returned no messages\n", name.c_str());
  return st;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse_args(argc, argv, o)) {
    usage(argv[0]);
    return 2;
  }
  bool temporary = o.path.empty();
  if (temporary) {
    o.path = (std::filesystem::temp_directory_path() / ("chatd-store-bench-" + std::to_string(::getpid()))).string();
  }
  auto open = [&] {
    chatd::store::rocksdb_options ro;
    ro.path = o.path;
    ro.sync_writes = o.sync;
    return chatd::store::open_rocksdb_store(ro);
  };

  std::vector<stats> rows;
  try {
    auto db = open();
    std::printf("chatd-store-bench: RocksDB at %s, %zu messages x 2 phases, %zu conversations, sync %s, %u cores\n",
                o.path.c_str(), o.messages, o.conversations, o.sync ? "on" : "off",
                std::thread::hardware_concurrency());
    rows.push_back(insert_phase(*db, "put_message, 1 thread", o.messages, 1000, o.conversations, 1, 1));
    rows.push_back(
        insert_phase(*db, "put_message, 2 threads", o.messages, 1000 + o.conversations, o.conversations, 2, 2));
    db.reset();
    db = open();  // reads now come from SST files through the block cache
    (void)read_phase(*db, "warm-up", std::min<std::size_t>(o.reads, 1000), 1000, o.conversations, false);
    rows.push_back(read_phase(*db, "list_messages newest 50, 1 thread", o.reads, 1000, o.conversations, false));
    rows.push_back(read_phase(*db, "list_messages before=random 50, 1 thread", o.reads, 1000, o.conversations, true));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chatd-store-bench: %s\n", e.what());
    return 1;
  }
  print_table(rows);
  if (temporary && !o.keep) {
    std::error_code ec;
    std::filesystem::remove_all(o.path, ec);
  }
  return 0;
}
