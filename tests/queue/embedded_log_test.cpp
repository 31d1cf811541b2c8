// What only the embedded log promises (the conformance suite covers the
// port): acknowledged records survive kill -9, group commit, recovery of
// watermarks and commits, retention, in-process rebalancing, shutdown.
#include "queue/embedded_log.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "queue/temp_dir.h"

extern char** environ;

namespace chatd::queue {
namespace {

using namespace std::chrono_literals;
using testing::temp_dir;
using clock_type = std::chrono::steady_clock;

embedded_log_options options_for(const temp_dir& dir) {
  embedded_log_options opt;
  opt.path = dir.path() + "/log";
  opt.partitions = 4;
  return opt;
}

std::unique_ptr<consumer> subscribe(queue& q, const std::string& group, const std::string& topic,
                                    start_position where = start_position::earliest) {
  auto c = q.subscribe(group, {topic}, where);
  EXPECT_TRUE(c.ok());
  return c.ok() ? std::move(c).value() : nullptr;
}

std::vector<record> poll_n(consumer& c, std::size_t n, std::chrono::milliseconds timeout = 10s) {
  std::vector<record> out;
  const auto deadline = clock_type::now() + timeout;
  while (out.size() < n && clock_type::now() < deadline) {
    auto r = c.poll(50ms, 10000);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) break;
    for (auto& rec : *r) out.push_back(std::move(rec));
  }
  return out;
}

// Every record the log holds for `topic`, read by a throwaway group.
std::map<std::pair<std::int32_t, std::int64_t>, record> read_all(queue& q, const std::string& topic) {
  std::size_t total = 0;
  auto n = q.partition_count(topic);
  EXPECT_TRUE(n.ok());
  for (std::int32_t p = 0; p < (n.ok() ? *n : 0); ++p) {
    auto w = q.watermark_offsets(topic, p);
    EXPECT_TRUE(w.ok());
    total += static_cast<std::size_t>(w->high - w->low);
  }
  static int reader = 0;
  auto c = subscribe(q, "reader-" + std::to_string(reader++), topic);
  std::map<std::pair<std::int32_t, std::int64_t>, record> out;
  for (auto& r : poll_n(*c, total)) {
    EXPECT_TRUE(out.emplace(std::pair{r.partition, r.offset}, r).second) << "duplicate offset";
  }
  EXPECT_EQ(out.size(), total);
  return out;
}

// ---- crash: kill -9 keeps every acknowledged record --------------------------

struct ack {
  long index;
  std::int32_t partition;
  std::int64_t offset;
};

// Runs queue_crash_helper, reads its acknowledgements, kills it with SIGKILL
// after kill_after of them and returns every acknowledgement it printed
// before it died.
std::vector<ack> run_helper_and_kill(const std::string& path, long first, bool fsync, std::size_t kill_after) {
  int fds[2];
  if (::pipe(fds) != 0) {
    ADD_FAILURE() << "pipe";
    return {};
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  std::string first_s = std::to_string(first);
  std::string fsync_s = fsync ? "1" : "0";
  std::string count_s = "100000000";
  std::string helper = QUEUE_CRASH_HELPER;
  char* argv[] = {helper.data(), const_cast<char*>(path.c_str()), first_s.data(), count_s.data(), fsync_s.data(),
                  nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, helper.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    ADD_FAILURE() << "posix_spawn " << helper << ": " << rc;
    return {};
  }

  std::vector<ack> acks;
  FILE* in = ::fdopen(fds[0], "r");
  char* line = nullptr;
  std::size_t cap = 0;
  bool killed = false;
  ssize_t len;
  while ((len = ::getline(&line, &cap, in)) > 0) {
    if (line[len - 1] != '\n') break;  // cannot happen: one write(2) per line
    long i = 0;
    int p = 0;
    long long off = 0;
    if (std::sscanf(line, "%ld %d %lld", &i, &p, &off) != 3) {
      ADD_FAILURE() << "bad line: " << line;
      break;
    }
    acks.push_back({i, p, off});
    if (!killed && acks.size() >= kill_after) {
      ::kill(pid, SIGKILL);  // in mid-stream: records are in flight right now
      killed = true;
    }
  }
  std::free(line);
  std::fclose(in);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
      << "the helper was expected to die of SIGKILL (status " << wstatus << ")";
  return acks;
}

void crash_rounds(bool fsync) {
  temp_dir dir;
  const std::string path = dir.path() + "/log";
  std::map<std::pair<std::int32_t, std::int64_t>, record> before;  // what the previous round found
  long next_index = 0;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const long first = next_index;
    auto acks = run_helper_and_kill(path, first, fsync, 2000 + 1000 * static_cast<std::size_t>(round));
    ASSERT_GE(acks.size(), 2000u);

    embedded_log_options opt;
    opt.path = path;
    opt.partitions = 4;
    auto log = open_embedded_log(opt);
    auto all = read_all(*log, "crash");

    // Offsets of each partition: 0..high-1, no gaps (read_all found
    // high - low records, each offset once; low is 0 without retention).
    for (std::int32_t p = 0; p < 4; ++p) {
      auto w = log->watermark_offsets("crash", p);
      ASSERT_TRUE(w.ok());
      EXPECT_EQ(w->low, 0);
      for (std::int64_t o = 0; o < w->high; ++o) ASSERT_TRUE(all.contains({p, o})) << p << "/" << o;
    }
    // Every acknowledged record is there, with its key and value.
    for (const auto& a : acks) {
      auto it = all.find({a.partition, a.offset});
      ASSERT_NE(it, all.end()) << "acknowledged record " << a.index << " lost";
      EXPECT_EQ(it->second.value, "v" + std::to_string(a.index));
      EXPECT_EQ(it->second.key, "k" + std::to_string(a.index % 7));
    }
    // No record twice; what earlier rounds held is unchanged (offsets
    // continued after the old end instead of being reused).
    std::set<std::string> values;
    long max_index = first;
    for (const auto& [pos, r] : all) {
      EXPECT_TRUE(values.insert(r.value).second) << "duplicate " << r.value;
      max_index = std::max(max_index, std::stol(r.value.substr(1)));
    }
    for (const auto& [pos, r] : before) {
      auto it = all.find(pos);
      ASSERT_NE(it, all.end());
      EXPECT_EQ(it->second.value, r.value);
    }
    for (const auto& a : acks) EXPECT_FALSE(before.contains({a.partition, a.offset}));
    std::printf("[ round %d ] %zu acknowledged before SIGKILL, %zu records in the log after reopen\n", round,
                acks.size(), all.size());
    before = std::move(all);
    next_index = max_index + 1;
  }
}

TEST(queue_embedded_log, kill9_keeps_every_acknowledged_record) { crash_rounds(false); }
TEST(queue_embedded_log, kill9_keeps_every_acknowledged_record_with_fsync) { crash_rounds(true); }

// ---- group commit ----------------------------------------------------------

TEST(queue_embedded_log, concurrent_fsync_produces_share_group_commits) {
  temp_dir dir;
  auto opt = options_for(dir);
  opt.fsync = true;
  auto log = open_embedded_log(opt);
  ASSERT_TRUE(log->ensure_topic("gc", 4).ok());
  auto p = log->make_producer();
  constexpr int threads = 8, each = 250;
  const auto before = log->stats();
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < each; ++i) {
        if (p->produce("gc", std::to_string(t * 1000 + i), "x").ok()) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), threads * each);
  const auto after = log->stats();
  const auto records = after.records - before.records;
  const auto commits = after.group_commits - before.group_commits;
  EXPECT_EQ(records, static_cast<std::uint64_t>(threads * each));
  std::printf("[ group commit ] %llu records in %llu fsync'd writes (%.2f records per write)\n",
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(commits),
              static_cast<double>(records) / static_cast<double>(commits));
  // 8 producers waiting on one writer: batches must form.
  EXPECT_LT(commits * 3, records * 2) << "fewer than 1.5 records per group commit";
}

// ---- recovery ----------------------------------------------------------------

TEST(queue_embedded_log, reopen_recovers_topics_watermarks_and_commits) {
  temp_dir dir;
  {
    auto log = open_embedded_log(options_for(dir));
    ASSERT_TRUE(log->ensure_topic("t", 2).ok());
    auto p = log->make_producer();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(p->produce("t", "k" + std::to_string(i), "v").ok());
    auto c = subscribe(*log, "g", "t");
    auto got = poll_n(*c, 10);
    ASSERT_EQ(got.size(), 10u);
    ASSERT_TRUE(c->commit(got[0]).ok());
  }
  auto log = open_embedded_log(options_for(dir));
  auto n = log->partition_count("t");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  std::int64_t total = 0;
  for (int p = 0; p < 2; ++p) total += log->watermark_offsets("t", p)->high;
  EXPECT_EQ(total, 10);
  EXPECT_EQ(*log->lag("g", "t"), 9);
  // New records continue the offsets.
  auto p = log->make_producer();
  const auto w = *log->watermark_offsets("t", partition_for_key("again", 2));
  auto r = p->produce("t", "again", "v");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, w.high);
}

TEST(queue_embedded_log, offsets_are_contiguous_from_zero) {
  temp_dir dir;
  auto log = open_embedded_log(options_for(dir));
  ASSERT_TRUE(log->ensure_topic("one", 1).ok());
  auto p = log->make_producer();
  for (std::int64_t i = 0; i < 100; ++i) {
    auto r = p->produce("one", std::to_string(i), "v");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->partition, 0);
    EXPECT_EQ(r->offset, i);
  }
}

TEST(queue_embedded_log, closing_writes_what_is_queued) {
  temp_dir dir;
  std::atomic<int> ok{0};
  {
    auto log = open_embedded_log(options_for(dir));
    auto p = log->make_producer();
    for (int i = 0; i < 1000; ++i) {
      p->produce_async("drain", std::to_string(i), "v", [&](result<record_position> r) { ok += r.ok(); });
    }
  }  // destroyed with produces still queued
  EXPECT_EQ(ok.load(), 1000);
  auto log = open_embedded_log(options_for(dir));
  EXPECT_EQ(read_all(*log, "drain").size(), 1000u);
}

// ---- retention ---------------------------------------------------------------

TEST(queue_embedded_log, retention_by_record_count) {
  temp_dir dir;
  auto opt = options_for(dir);
  opt.retention_time = 0ms;
  opt.retention_records = 10;
  {
    auto log = open_embedded_log(opt);
    ASSERT_TRUE(log->ensure_topic("r", 1).ok());
    auto p = log->make_producer();
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(p->produce("r", "k", std::to_string(i)).ok());
    auto slow = subscribe(*log, "slow", "r");
    auto first = slow->poll(10s, 1);  // position 1: behind what retention keeps
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(first->size(), 1u);
    ASSERT_TRUE(log->enforce_retention().ok());
    auto w = log->watermark_offsets("r", 0);
    EXPECT_EQ(w->low, 90);
    EXPECT_EQ(w->high, 100);
    // A consumer behind the low watermark continues at the oldest record held.
    auto rest = poll_n(*slow, 10);
    ASSERT_EQ(rest.size(), 10u);
    EXPECT_EQ(rest.front().offset, 90);
    EXPECT_EQ(rest.front().value, "90");
  }
  auto log = open_embedded_log(opt);
  auto w = log->watermark_offsets("r", 0);
  EXPECT_EQ(w->low, 90);
  EXPECT_EQ(w->high, 100);
  EXPECT_EQ(read_all(*log, "r").size(), 10u);
}

TEST(queue_embedded_log, retention_by_time_keeps_the_newest_record) {
  temp_dir dir;
  auto opt = options_for(dir);
  opt.retention_time = 1ms;
  auto log = open_embedded_log(opt);
  ASSERT_TRUE(log->ensure_topic("old", 1).ok());
  auto p = log->make_producer();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(p->produce("old", "k", std::to_string(i)).ok());
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(log->enforce_retention().ok());
  auto w = log->watermark_offsets("old", 0);
  EXPECT_EQ(w->low, 49) << "the newest record carries the next offset and stays";
  EXPECT_EQ(w->high, 50);
  auto r = p->produce("old", "k", "50");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, 50);
}

// ---- consumers -----------------------------------------------------------------

TEST(queue_embedded_log, poll_wakes_within_milliseconds) {
  temp_dir dir;
  auto log = open_embedded_log(options_for(dir));
  ASSERT_TRUE(log->ensure_topic("fast", 1).ok());
  auto p = log->make_producer();
  auto c = subscribe(*log, "g", "fast");
  std::vector<double> ms;
  for (int i = 0; i < 50; ++i) {
    std::atomic<bool> go{false};
    clock_type::time_point sent;
    std::thread t([&] {
      while (!go) std::this_thread::yield();
      std::this_thread::sleep_for(2ms);  // let the poll block
      sent = clock_type::now();
      ASSERT_TRUE(p->produce("fast", "k", "v").ok());
    });
    go = true;
    auto r = c->poll(10s, 10);
    const auto got = clock_type::now();
    t.join();
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->size(), 1u);
    ms.push_back(std::chrono::duration<double, std::milli>(got - sent).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("[ wake ] produce -> poll returns: p50 %.3f ms, max %.3f ms\n", ms[ms.size() / 2], ms.back());
  EXPECT_LT(ms[ms.size() / 2], 50.0);
}

TEST(queue_embedded_log, joining_and_leaving_rebalance_at_once) {
  temp_dir dir;
  auto log = open_embedded_log(options_for(dir));
  ASSERT_TRUE(log->ensure_topic("rb", 4).ok());
  auto c1 = subscribe(*log, "g", "rb");
  EXPECT_EQ(c1->assignment().size(), 4u);
  auto c2 = subscribe(*log, "g", "rb");
  EXPECT_EQ(c1->assignment().size(), 2u);
  EXPECT_EQ(c2->assignment().size(), 2u);
  auto c3 = subscribe(*log, "g", "rb");
  EXPECT_EQ(c1->assignment().size() + c2->assignment().size() + c3->assignment().size(), 4u);
  c2->close();
  c3.reset();  // destroying closes
  EXPECT_EQ(c1->assignment().size(), 4u);
}

TEST(queue_embedded_log, a_commit_after_losing_the_partition_is_refused) {
  temp_dir dir;
  auto log = open_embedded_log(options_for(dir));
  ASSERT_TRUE(log->ensure_topic("stale", 2).ok());
  auto p = log->make_producer();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(p->produce("stale", std::to_string(i), "v").ok());
  auto c1 = subscribe(*log, "g", "stale");
  auto got = poll_n(*c1, 20);
  ASSERT_EQ(got.size(), 20u);
  auto c2 = subscribe(*log, "g", "stale");
  const auto moved = c2->assignment();
  ASSERT_EQ(moved.size(), 1u);
  auto it = std::find_if(got.begin(), got.end(), [&](auto& r) { return r.partition == moved[0].partition; });
  ASSERT_NE(it, got.end());
  auto s = c1->commit(*it);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::conflict);
  // The new owner reads the partition from the start (nothing committed).
  auto c2_got = poll_n(*c2, 1);
  ASSERT_FALSE(c2_got.empty());
  EXPECT_EQ(c2_got[0].offset, 0);
}

TEST(queue_embedded_log, a_topic_created_after_subscribing_is_assigned) {
  temp_dir dir;
  auto opt = options_for(dir);
  opt.partitions = 3;
  auto log = open_embedded_log(opt);
  auto c = subscribe(*log, "g", "later");
  EXPECT_TRUE(c->assignment().empty());
  auto p = log->make_producer();
  ASSERT_TRUE(p->produce("later", "k", "v").ok());  // creates it with the default 3 partitions
  EXPECT_EQ(c->assignment().size(), 3u);
  auto got = poll_n(*c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "v");
}

// ---- misuse and shutdown ---------------------------------------------------------

TEST(queue_embedded_log, handles_outliving_the_queue_fail_cleanly) {
  temp_dir dir;
  auto log = open_embedded_log(options_for(dir));
  auto p = log->make_producer();
  auto c = subscribe(*log, "g", "t");
  ASSERT_TRUE(p->produce("t", "k", "v").ok());
  log.reset();
  auto r = p->produce("t", "k", "v");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
  auto polled = c->poll(10ms, 10);
  ASSERT_FALSE(polled.ok());
  EXPECT_EQ(polled.err().code, errc::unavailable);
  // The directory is free again even though stale handles exist.
  auto again = open_embedded_log(options_for(dir));
  EXPECT_EQ(again->watermark_offsets("t", partition_for_key("k", 4))->high, 1);
}

TEST(queue_embedded_log, blocking_produce_inside_a_callback_is_refused) {
  temp_dir dir;
  auto log = open_embedded_log(options_for(dir));
  auto p = log->make_producer();
  std::atomic<int> code{-1};
  p->produce_async("t", "k", "v", [&](result<record_position>) {
    auto inner = p->produce("t", "k", "v");
    code = inner.ok() ? -2 : static_cast<int>(inner.err().code);
  });
  ASSERT_TRUE(p->flush(10s).ok());
  EXPECT_EQ(code.load(), static_cast<int>(errc::internal));
}

TEST(queue_embedded_log, oversized_records_are_refused) {
  temp_dir dir;
  auto log = open_embedded_log(options_for(dir));
  auto p = log->make_producer();
  auto r = p->produce("t", "k", std::string(1024 * 1024, 'x'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::too_large);
  EXPECT_TRUE(p->produce("t", "k", std::string(1000 * 1000, 'x')).ok());
}

TEST(queue_embedded_log, open_fails_on_a_locked_directory) {
  temp_dir dir;
  auto log = open_embedded_log(options_for(dir));
  EXPECT_THROW(open_embedded_log(options_for(dir)), std::runtime_error);
}

}  // namespace
}  // namespace chatd::queue
