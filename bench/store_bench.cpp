// chatd-store-bench: how fast the chat database takes and serves messages,
// on RocksDB (embedded, the default) or on a CQL server (ScyllaDB or
// Cassandra, --backend scylla). Inserts N messages round-robin across M
// conversations (spread over 30 days of ids, so pages cross buckets) with one
// thread, then another N with two threads (and, on CQL, another N with
// --threads threads: a networked store is latency-bound per caller, so it
// scales with callers), reopens a RocksDB store so reads come from SST files
// through the block cache, and reads newest pages (limit 50) and older pages
// of random conversations.
//
//   chatd-store-bench [--backend rocksdb|scylla] [--path DIR] [--hosts H]
//                     [--keyspace K] [--consistency C] [--messages N]
//                     [--conversations M] [--reads R] [--threads T]
//                     [--sync] [--keep]
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
#include "store/scylla_store.h"

namespace {

using clock_type = std::chrono::steady_clock;
using chatd::store::id_t;

struct options {
  std::string backend = "rocksdb";
  std::string path;
  std::string hosts = "127.0.0.1:9042";
  std::string keyspace;
  std::string consistency = "local_quorum";
  std::size_t messages = 0;  // 0: the backend's default
  std::size_t conversations = 100;
  std::size_t reads = 0;
  std::size_t threads = 8;
  bool sync = false;
  bool keep = false;
};

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--backend rocksdb|scylla] [--path DIR] [--hosts H] [--keyspace K] [--consistency C]\n"
               "          [--messages N] [--conversations M] [--reads R] [--threads T] [--sync] [--keep]\n"
               "  --backend B         rocksdb (default) or scylla (a CQL server: ScyllaDB or Cassandra)\n"
               "  --path DIR          rocksdb: database directory (default: a new one under $TMPDIR, removed at exit)\n"
               "  --hosts H           scylla: contact points (default 127.0.0.1:9042)\n"
               "  --keyspace K        scylla: keyspace (default chatd_bench_<pid>, dropped at exit)\n"
               "  --consistency C     scylla: consistency level (default local_quorum)\n"
               "  --messages N        messages per insert phase (default 200000 rocksdb, 20000 scylla)\n"
               "  --conversations M   conversations per insert phase (default 100)\n"
               "  --reads R           page reads per read phase (default 20000 rocksdb, 5000 scylla)\n"
               "  --threads T         scylla: callers of the extra insert phase (default 8)\n"
               "  --sync              rocksdb: fsync the WAL on every write\n"
               "  --keep              keep the database directory or keyspace\n",
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
    } else if (a == "--backend" && (v = value()) && (std::string(v) == "rocksdb" || std::string(v) == "scylla")) {
      o.backend = v;
    } else if (a == "--hosts" && (v = value())) {
      o.hosts = v;
    } else if (a == "--keyspace" && (v = value())) {
      o.keyspace = v;
    } else if (a == "--consistency" && (v = value())) {
      o.consistency = v;
    } else if (a == "--threads" && (v = value()) && parse_count(v, o.threads)) {
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
  const bool scylla = o.backend == "scylla";
  if (o.messages == 0) o.messages = scylla ? 20000 : 200000;
  if (o.reads == 0) o.reads = scylla ? 5000 : 20000;
  bool temporary = scylla ? o.keyspace.empty() : o.path.empty();
  if (temporary && !scylla) {
    o.path = (std::filesystem::temp_directory_path() / ("chatd-store-bench-" + std::to_string(::getpid()))).string();
  }
  if (temporary && scylla) o.keyspace = "chatd_bench_" + std::to_string(::getpid());
  auto open = [&]() -> std::unique_ptr<chatd::store::chat_store> {
    if (scylla) {
      chatd::store::scylla_options so;
      so.hosts = o.hosts;
      so.keyspace = o.keyspace;
      so.consistency = o.consistency;
      so.drop_keyspace_on_close = temporary && !o.keep;
      return chatd::store::open_scylla_store(so);
    }
    chatd::store::rocksdb_options ro;
    ro.path = o.path;
    ro.sync_writes = o.sync;
    return chatd::store::open_rocksdb_store(ro);
  };

  std::vector<stats> rows;
  try {
    auto db = open();
    if (scylla) {
      std::printf(
          "chatd-store-bench: CQL at %s, keyspace %s, consistency %s, %zu messages x 3 phases, %zu "
          "conversations, %u cores\n",
          o.hosts.c_str(), o.keyspace.c_str(), o.consistency.c_str(), o.messages, o.conversations,
          std::thread::hardware_concurrency());
    } else {
      std::printf("chatd-store-bench: RocksDB at %s, %zu messages x 2 phases, %zu conversations, sync %s, %u cores\n",
                  o.path.c_str(), o.messages, o.conversations, o.sync ? "on" : "off",
                  std::thread::hardware_concurrency());
    }
    rows.push_back(insert_phase(*db, "put_message, 1 thread", o.messages, 1000, o.conversations, 1, 1));
    rows.push_back(
        insert_phase(*db, "put_message, 2 threads", o.messages, 1000 + o.conversations, o.conversations, 2, 2));
    if (scylla) {
      auto t = static_cast<unsigned>(std::min<std::size_t>(o.threads, 1000));
      rows.push_back(insert_phase(*db, "put_message, " + std::to_string(t) + " threads", o.messages,
                                  1000 + 2 * o.conversations, o.conversations, t, 4));
    } else {
      db.reset();
      db = open();  // reads now come from SST files through the block cache
    }
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
