#include "queue/queue_conformance.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace chatd::queue::testing {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// Upper bound for anything eventual: a rebalance, a delivery. Generous for
// Kafka; the embedded log needs milliseconds. Tests never wait for it unless
// something is wrong.
constexpr auto settle = 30s;
// How long "and nothing more arrives" is watched.
constexpr auto quiet = 500ms;

std::unique_ptr<consumer> subscribe(queue& q, const std::string& group, const std::string& topic,
                                    start_position where) {
  auto c = q.subscribe(group, {topic}, where);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.err().message);
  return c.ok() ? std::move(c).value() : nullptr;
}

// Polls until `into` holds at least n records or `timeout` passes.
void poll_until(consumer& c, std::vector<record>& into, std::size_t n, clock_type::duration timeout = settle) {
  const auto deadline = clock_type::now() + timeout;
  while (into.size() < n && clock_type::now() < deadline) {
    auto r = c.poll(100ms, 500);
    if (!r.ok()) {
      ADD_FAILURE() << "poll: " << r.err().message;
      return;
    }
    for (auto& rec : *r) into.push_back(std::move(rec));
  }
}

// Polls for `period`, collecting whatever arrives.
void poll_for(consumer& c, std::vector<record>& into, clock_type::duration period) {
  poll_until(c, into, static_cast<std::size_t>(-1), period);
}

// Polls every consumer (Kafka needs each member to poll for a rebalance to
// finish) until their assignments are disjoint, each is non-empty and they
// cover `partitions` partitions. Records polled meanwhile go to got[i].
void wait_for_assignment(const std::vector<consumer*>& cs, std::size_t partitions,
                         std::vector<std::vector<record>>& got) {
  got.resize(cs.size());
  const auto deadline = clock_type::now() + settle;
  while (clock_type::now() < deadline) {
    std::set<topic_partition> all;
    std::size_t total = 0;
    bool each = true;
    for (auto* c : cs) {
      auto a = c->assignment();
      each = each && !a.empty();
      total += a.size();
      all.insert(a.begin(), a.end());
    }
    if (each && total == partitions && all.size() == partitions) return;
    for (std::size_t i = 0; i < cs.size(); ++i) {
      auto r = cs[i]->poll(50ms, 500);
      ASSERT_TRUE(r.ok()) << r.err().message;
      for (auto& rec : *r) got[i].push_back(std::move(rec));
    }
  }
  FAIL() << "the group's partitions were not assigned within " << settle.count() << " s";
}

void wait_for_assignment(consumer& c, std::size_t partitions) {
  std::vector<std::vector<record>> got;
  wait_for_assignment({&c}, partitions, got);
  EXPECT_TRUE(got[0].empty());
}

std::string value_of(int i) { return "v" + std::to_string(i); }

// Produces n records with keys k0..k<keys-1> (record i has key k<i % keys>
// and value v<i>), waiting for each.
std::vector<record_position> produce_n(producer& p, const std::string& topic, int n, int keys, int first = 0) {
  std::vector<record_position> out;
  for (int i = first; i < first + n; ++i) {
    auto r = p.produce(topic, "k" + std::to_string(i % keys), value_of(i));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    if (!r.ok()) break;
    out.push_back(*r);
  }
  return out;
}

std::multiset<std::string> values(const std::vector<record>& rs) {
  std::multiset<std::string> out;
  for (auto& r : rs) out.insert(r.value);
  return out;
}

std::multiset<std::string> expected_values(int first, int n) {
  std::multiset<std::string> out;
  for (int i = first; i < first + n; ++i) out.insert(value_of(i));
  return out;
}

// Offsets strictly increase within each partition, in the order given.
void expect_partition_order(const std::vector<record>& rs) {
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> last;
  for (auto& r : rs) {
    auto [it, fresh] = last.try_emplace({r.topic, r.partition}, r.offset);
    if (!fresh) {
      EXPECT_GT(r.offset, it->second) << r.topic << "/" << r.partition;
      it->second = r.offset;
    }
  }
}

}  // namespace

void queue_conformance::SetUp() {
  env_ = GetParam().make_env();
  ASSERT_TRUE(env_);
  queue_ = env_->open();
  ASSERT_TRUE(queue_);
}

void queue_conformance::TearDown() {
  queue_.reset();
  env_.reset();
}

void queue_conformance::restart() {
  queue_.reset();
  queue_ = env_->open();
  ASSERT_TRUE(queue_);
}

std::string queue_conformance::unique_name(const std::string& what) {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mu;
  std::lock_guard lock(mu);
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  return "chatd-conf-" + what + "-" + suffix;
}

// ---- topics ----------------------------------------------------------------

TEST_P(queue_conformance, ensure_topic_and_partition_count) {
  const auto topic = unique_name("topic");
  ASSERT_TRUE(q().ensure_topic(topic, 5).ok());
  ASSERT_TRUE(q().ensure_topic(topic, 5).ok()) << "ensure_topic is idempotent";
  auto n = q().partition_count(topic);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5);

  auto missing = q().partition_count(unique_name("missing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::not_found);
}

TEST_P(queue_conformance, invalid_topic_names_are_refused) {
  for (const std::string& bad : std::vector<std::string>{"", "has space", "slash/ed", "..", std::string(250, 'a')}) {
    auto s = q().ensure_topic(bad, 1);
    ASSERT_FALSE(s.ok()) << "'" << bad << "'";
    EXPECT_EQ(s.err().code, errc::bad_request);
  }
  auto p = q().make_producer();
  auto r = p->produce("no spaces please", "k", "v");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::bad_request);
}

// ---- producing ------------------------------------------------------------

TEST_P(queue_conformance, produce_returns_increasing_offsets_per_partition) {
  const auto topic = unique_name("offsets");
  ASSERT_TRUE(q().ensure_topic(topic, 4).ok());
  auto p = q().make_producer();
  auto positions = produce_n(*p, topic, 100, 10);
  ASSERT_EQ(positions.size(), 100u);
  std::map<std::int32_t, std::int64_t> last;
  for (auto& pos : positions) {
    ASSERT_GE(pos.partition, 0);
    ASSERT_LT(pos.partition, 4);
    auto [it, fresh] = last.try_emplace(pos.partition, pos.offset);
    if (!fresh) {
      EXPECT_GT(pos.offset, it->second);
      it->second = pos.offset;
    }
  }
  for (auto& [partition, offset] : last) {
    auto w = q().watermark_offsets(topic, partition);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->high, offset + 1) << "partition " << partition;
  }
}

TEST_P(queue_conformance, same_key_goes_to_the_same_partition_as_kafka_places_it) {
  const auto topic = unique_name("keys");
  ASSERT_TRUE(q().ensure_topic(topic, 6).ok());
  auto p = q().make_producer();
  for (int i = 0; i < 20; ++i) {
    auto r = p->produce(topic, "conversation-42", value_of(i));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->partition, partition_for_key("conversation-42", 6));
  }
  std::set<std::int32_t> used;
  for (int k = 0; k < 40; ++k) {
    const auto key = std::to_string(1000000 + k * 7919);
    auto r = p->produce(topic, key, "x");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->partition, partition_for_key(key, 6)) << key;
    used.insert(r->partition);
  }
  EXPECT_GT(used.size(), 3u) << "keys spread over the partitions";
}

TEST_P(queue_conformance, produce_async_keeps_per_partition_order_for_1000_records) {
  const auto topic = unique_name("order");
  ASSERT_TRUE(q().ensure_topic(topic, 4).ok());
  auto p = q().make_producer();
  constexpr int n = 1000, keys = 7;
  std::mutex mu;
  std::map<std::string, record_position> acked;  // value -> position
  int failed = 0;
  for (int i = 0; i < n; ++i) {
    p->produce_async(topic, "k" + std::to_string(i % keys), value_of(i),
                     [&, v = value_of(i)](result<record_position> r) {
                       std::lock_guard lock(mu);
                       if (r.ok()) {
                         acked[v] = *r;
                       } else {
                         ++failed;
                       }
                     });
  }
  ASSERT_TRUE(p->flush(settle).ok());
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(failed, 0);
    ASSERT_EQ(acked.size(), static_cast<std::size_t>(n));
    // Produced one after another, so the offsets follow the produce order.
    for (int i = keys; i < n; ++i) {
      const auto& before = acked[value_of(i - keys)];
      const auto& now = acked[value_of(i)];
      ASSERT_EQ(before.partition, now.partition);
      EXPECT_LT(before.offset, now.offset) << value_of(i);
    }
  }

  auto c = subscribe(q(), unique_name("group"), topic, start_position::earliest);
  ASSERT_TRUE(c);
  std::vector<record> got;
  poll_until(*c, got, n);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
  expect_partition_order(got);
  std::map<std::string, int> last_seq;  // per key, the last i seen
  for (auto& r : got) {
    EXPECT_EQ(r.topic, topic);
    const int i = std::stoi(r.value.substr(1));
    EXPECT_EQ(r.key, "k" + std::to_string(i % keys));
    auto it = last_seq.find(r.key);
    if (it != last_seq.end()) {
      EXPECT_EQ(i, it->second + keys) << "per-key order, nothing skipped";
    }
    last_seq[r.key] = i;
    const auto& pos = acked.at(r.value);
    EXPECT_EQ(r.partition, pos.partition);
    EXPECT_EQ(r.offset, pos.offset);
    EXPECT_GT(r.timestamp_ms, 0);
  }
}

TEST_P(queue_conformance, concurrent_producers_lose_nothing_and_keep_per_key_order) {
  const auto topic = unique_name("concurrent");
  ASSERT_TRUE(q().ensure_topic(topic, 4).ok());
  auto p = q().make_producer();
  constexpr int threads = 4, each = 500;
  std::atomic<int> failures{0};
  std::mutex acked_mu;
  std::map<std::string, record_position> acked;  // value -> where its ack put it
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < each; ++i) {
        // Three keys per thread; the value says who and in which order.
        const std::string value = std::to_string(t) + ":" + std::to_string(i);
        // A refused record is sent again, as chatd's senders do (Kafka:
        // a delivery report without an offset is a refusal).
        auto r = p->produce(topic, "t" + std::to_string(t) + "-" + std::to_string(i % 3), value);
        for (int retry = 0; !r.ok() && retry < 3; ++retry) {
          r = p->produce(topic, "t" + std::to_string(t) + "-" + std::to_string(i % 3), value);
        }
        if (!r.ok()) {
          ++failures;
          continue;
        }
        std::lock_guard lock(acked_mu);
        acked.emplace(value, *r);
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(failures.load(), 0);

  auto c = subscribe(q(), unique_name("group"), topic, start_position::earliest);
  ASSERT_TRUE(c);
  std::vector<record> got;
  poll_until(*c, got, threads * each);
  poll_for(*c, got, quiet);
  if (got.size() != static_cast<std::size_t>(threads * each)) {
    // Where the missing ones were acked, and what the partition holds now.
    std::set<std::string> seen;
    for (const auto& r : got) seen.insert(r.value);
    for (const auto& [value, pos] : acked) {
      if (seen.count(value)) continue;
      auto w = q().watermark_offsets(topic, pos.partition);
      ADD_FAILURE() << "acked, never consumed: " << value << " at " << pos.partition << "@" << pos.offset
                    << "; the partition now holds [" << (w ? std::to_string(w->low) : "?") << ", "
                    << (w ? std::to_string(w->high) : "?") << ")";
    }
  }
  ASSERT_EQ(got.size(), static_cast<std::size_t>(threads * each));
  expect_partition_order(got);
  std::set<std::string> distinct;
  std::map<std::string, int> last;  // key -> last i
  for (auto& r : got) {
    distinct.insert(r.value);
    const int i = std::stoi(r.value.substr(r.value.find(':') + 1));
    auto it = last.find(r.key);
    if (it != last.end()) {
      EXPECT_EQ(i, it->second + 3) << r.key;
    }
    last[r.key] = i;
  }
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(threads * each));
}

// ---- consuming --------------------------------------------------------------

TEST_P(queue_conformance, a_group_gets_everything_produced) {
  const auto topic = unique_name("all");
  ASSERT_TRUE(q().ensure_topic(topic, 4).ok());
  auto p = q().make_producer();
  produce_n(*p, topic, 300, 13);
  auto c = subscribe(q(), unique_name("group"), topic, start_position::earliest);
  ASSERT_TRUE(c);
  std::vector<record> got;
  poll_until(*c, got, 300);
  poll_for(*c, got, quiet);
  EXPECT_EQ(values(got), expected_values(0, 300));
  expect_partition_order(got);

  // And what is produced while it is subscribed.
  produce_n(*p, topic, 50, 13, 300);
  std::vector<record> more;
  poll_until(*c, more, 50);
  EXPECT_EQ(values(more), expected_values(300, 50));
}

TEST_P(queue_conformance, two_groups_each_get_everything) {
  const auto topic = unique_name("groups");
  ASSERT_TRUE(q().ensure_topic(topic, 4).ok());
  auto p = q().make_producer();
  produce_n(*p, topic, 200, 9);
  const auto group_a = unique_name("group-a");
  const auto group_b = unique_name("group-b");
  auto a = subscribe(q(), group_a, topic, start_position::earliest);
  auto b = subscribe(q(), group_b, topic, start_position::earliest);
  ASSERT_TRUE(a && b);
  std::vector<record> got_a, got_b;
  poll_until(*a, got_a, 200);
  poll_until(*b, got_b, 200);
  EXPECT_EQ(values(got_a), expected_values(0, 200));
  EXPECT_EQ(values(got_b), expected_values(0, 200));

  // One group committing changes nothing for the other.
  ASSERT_TRUE(a->commit_polled().ok());
  a->close();
  b->close();
  auto b2 = subscribe(q(), group_b, topic, start_position::earliest);
  ASSERT_TRUE(b2);
  std::vector<record> again_b;
  poll_until(*b2, again_b, 200);
  EXPECT_EQ(values(again_b), expected_values(0, 200));
  auto a2 = subscribe(q(), group_a, topic, start_position::earliest);
  ASSERT_TRUE(a2);
  std::vector<record> again_a;
  poll_for(*a2, again_a, quiet);
  EXPECT_TRUE(again_a.empty());
}

TEST_P(queue_conformance, two_consumers_in_one_group_split_the_partitions) {
  const auto topic = unique_name("split");
  const auto group = unique_name("group");
  ASSERT_TRUE(q().ensure_topic(topic, 4).ok());
  auto c1 = subscribe(q(), group, topic, start_position::earliest);
  auto c2 = subscribe(q(), group, topic, start_position::earliest);
  ASSERT_TRUE(c1 && c2);
  std::vector<std::vector<record>> got;
  wait_for_assignment({c1.get(), c2.get()}, 4, got);
  ASSERT_TRUE(got[0].empty() && got[1].empty());
  const auto a1 = c1->assignment();
  const auto a2 = c2->assignment();
  std::set<std::int32_t> p1, p2;
  for (auto& tp : a1) p1.insert(tp.partition);
  for (auto& tp : a2) p2.insert(tp.partition);

  // Produced after the group settled, so no rebalance can cause redelivery:
  // each record is delivered exactly once, by the owner of its partition.
  auto p = q().make_producer();
  produce_n(*p, topic, 400, 23);
  const auto deadline = clock_type::now() + settle;
  while (got[0].size() + got[1].size() < 400 && clock_type::now() < deadline) {
    for (int i = 0; i < 2; ++i) {
      auto r = (i == 0 ? c1 : c2)->poll(50ms, 100);
      ASSERT_TRUE(r.ok());
      for (auto& rec : *r) got[i].push_back(std::move(rec));
    }
  }
  poll_for(*c1, got[0], quiet / 2);
  poll_for(*c2, got[1], quiet / 2);
  EXPECT_FALSE(got[0].empty());
  EXPECT_FALSE(got[1].empty());
  for (auto& r : got[0]) EXPECT_TRUE(p1.contains(r.partition)) << "c1 got a record of partition " << r.partition;
  for (auto& r : got[1]) EXPECT_TRUE(p2.contains(r.partition)) << "c2 got a record of partition " << r.partition;
  std::vector<record> both = got[0];
  both.insert(both.end(), got[1].begin(), got[1].end());
  EXPECT_EQ(values(both), expected_values(0, 400)) << "each record exactly once";
}

TEST_P(queue_conformance, a_member_leaving_hands_its_partitions_over) {
  const auto topic = unique_name("handover");
  const auto group = unique_name("group");
  ASSERT_TRUE(q().ensure_topic(topic, 4).ok());
  auto c1 = subscribe(q(), group, topic, start_position::earliest);
  auto c2 = subscribe(q(), group, topic, start_position::earliest);
  ASSERT_TRUE(c1 && c2);
  std::vector<std::vector<record>> got;
  wait_for_assignment({c1.get(), c2.get()}, 4, got);

  auto p = q().make_producer();
  produce_n(*p, topic, 200, 11);
  // c2 reads some of its share and leaves without committing: the remaining
  // member must get c2's partitions from the start (nothing committed).
  std::vector<record> c2_got;
  poll_until(*c2, c2_got, 1);
  c2->close();
  std::vector<record> c1_got;
  const auto deadline = clock_type::now() + settle;
  std::set<std::string> seen;
  while (seen.size() < 200 && clock_type::now() < deadline) {
    const std::size_t before = c1_got.size();
    poll_for(*c1, c1_got, 100ms);
    for (std::size_t i = before; i < c1_got.size(); ++i) seen.insert(c1_got[i].value);
  }
  const auto all = values(c1_got);
  const std::set<std::string> distinct(all.begin(), all.end());
  EXPECT_EQ(distinct.size(), 200u) << "every record reached the group's remaining member";
  EXPECT_EQ(c1->assignment().size(), 4u);
}

TEST_P(queue_conformance, commit_then_restart_resumes_after_the_commit) {
  const auto topic = unique_name("resume");
  const auto group = unique_name("group");
  ASSERT_TRUE(q().ensure_topic(topic, 3).ok());
  {
    auto p = q().make_producer();
    produce_n(*p, topic, 60, 6);
  }
  std::multiset<std::string> expect_after;
  {
    auto c = subscribe(q(), group, topic, start_position::earliest);
    ASSERT_TRUE(c);
    std::vector<record> got;
    poll_until(*c, got, 60);
    ASSERT_EQ(got.size(), 60u);
    // Per partition, commit the record at its middle: the ones after it are
    // what the group still has to read.
    std::map<std::int32_t, std::vector<const record*>> by_partition;
    for (auto& r : got) by_partition[r.partition].push_back(&r);
    for (auto& [partition, rs] : by_partition) {
      const std::size_t mid = rs.size() / 2;
      ASSERT_TRUE(c->commit(*rs[mid]).ok());
      for (std::size_t i = mid + 1; i < rs.size(); ++i) expect_after.insert(rs[i]->value);
    }
    c->close();
  }
  restart();
  auto lag = q().lag(group, topic);
  ASSERT_TRUE(lag.ok());
  EXPECT_EQ(*lag, static_cast<std::int64_t>(expect_after.size()));

  auto c = subscribe(q(), group, topic, start_position::earliest);
  ASSERT_TRUE(c);
  std::vector<record> got;
  poll_until(*c, got, expect_after.size());
  poll_for(*c, got, quiet);
  EXPECT_EQ(values(got), expect_after);
}

TEST_P(queue_conformance, no_commit_then_restart_redelivers_everything) {
  const auto topic = unique_name("redeliver");
  const auto group = unique_name("group");
  ASSERT_TRUE(q().ensure_topic(topic, 3).ok());
  {
    auto p = q().make_producer();
    produce_n(*p, topic, 40, 5);
    auto c = subscribe(q(), group, topic, start_position::earliest);
    ASSERT_TRUE(c);
    std::vector<record> got;
    poll_until(*c, got, 40);
    ASSERT_EQ(got.size(), 40u);
  }
  restart();
  auto c = subscribe(q(), group, topic, start_position::earliest);
  ASSERT_TRUE(c);
  std::vector<record> got;
  poll_until(*c, got, 40);
  EXPECT_EQ(values(got), expected_values(0, 40)) << "at-least-once: uncommitted records come again";
}

TEST_P(queue_conformance, close_and_subscribe_again_resumes_from_commit_polled) {
  const auto topic = unique_name("resubscribe");
  const auto group = unique_name("group");
  ASSERT_TRUE(q().ensure_topic(topic, 4).ok());
  auto p = q().make_producer();
  produce_n(*p, topic, 30, 7);
  {
    auto c = subscribe(q(), group, topic, start_position::earliest);
    ASSERT_TRUE(c);
    std::vector<record> got;
    poll_until(*c, got, 30);
    ASSERT_EQ(got.size(), 30u);
    ASSERT_TRUE(c->commit_polled().ok());
    c->close();
  }
  produce_n(*p, topic, 5, 7, 30);
  // `latest` is ignored where the group has committed offsets.
  auto c = subscribe(q(), group, topic, start_position::latest);
  ASSERT_TRUE(c);
  std::vector<record> got;
  poll_until(*c, got, 5);
  poll_for(*c, got, quiet);
  EXPECT_EQ(values(got), expected_values(30, 5));
}

TEST_P(queue_conformance, latest_start_sees_only_new_records) {
  const auto topic = unique_name("latest");
  ASSERT_TRUE(q().ensure_topic(topic, 4).ok());
  auto p = q().make_producer();
  produce_n(*p, topic, 20, 5);
  auto c = subscribe(q(), unique_name("group"), topic, start_position::latest);
  ASSERT_TRUE(c);
  wait_for_assignment(*c, 4);
  produce_n(*p, topic, 10, 5, 20);
  std::vector<record> got;
  poll_until(*c, got, 10);
  poll_for(*c, got, quiet);
  EXPECT_EQ(values(got), expected_values(20, 10));
}

TEST_P(queue_conformance, poll_times_out_empty_and_promptly) {
  const auto topic = unique_name("timeout");
  ASSERT_TRUE(q().ensure_topic(topic, 2).ok());
  auto c = subscribe(q(), unique_name("group"), topic, start_position::earliest);
  ASSERT_TRUE(c);
  wait_for_assignment(*c, 2);
  const auto start = clock_type::now();
  auto r = c->poll(300ms, 10);
  const auto took = clock_type::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_LT(took, 300ms + 1500ms);
}

TEST_P(queue_conformance, a_blocked_poll_wakes_when_a_record_arrives) {
  const auto topic = unique_name("wake");
  ASSERT_TRUE(q().ensure_topic(topic, 2).ok());
  auto c = subscribe(q(), unique_name("group"), topic, start_position::earliest);
  ASSERT_TRUE(c);
  wait_for_assignment(*c, 2);
  std::atomic<bool> produced{false};
  clock_type::time_point produced_at;
  std::thread producer_thread([&] {
    std::this_thread::sleep_for(200ms);
    auto p = q().make_producer();
    produced_at = clock_type::now();
    produced = true;
    EXPECT_TRUE(p->produce(topic, "k", "hello").ok());
  });
  auto r = c->poll(20s, 10);
  const auto returned_at = clock_type::now();
  producer_thread.join();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].value, "hello");
  ASSERT_TRUE(produced);
  EXPECT_LT(returned_at - produced_at, 5s) << "poll did not wake for the record";
}

TEST_P(queue_conformance, wakeup_unblocks_a_blocked_poll) {
  const auto topic = unique_name("wakeup");
  ASSERT_TRUE(q().ensure_topic(topic, 1).ok());
  auto c = subscribe(q(), unique_name("group"), topic, start_position::earliest);
  ASSERT_TRUE(c);
  wait_for_assignment(*c, 1);
  std::thread waker([&] {
    std::this_thread::sleep_for(200ms);
    c->wakeup();
  });
  const auto start = clock_type::now();
  auto r = c->poll(30s, 10);
  waker.join();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_LT(clock_type::now() - start, 10s);
  // The consumer still works afterwards.
  auto again = c->poll(10ms, 10);
  EXPECT_TRUE(again.ok());
}

TEST_P(queue_conformance, close_unblocks_a_blocked_poll) {
  const auto topic = unique_name("close");
  ASSERT_TRUE(q().ensure_topic(topic, 1).ok());
  auto c = subscribe(q(), unique_name("group"), topic, start_position::earliest);
  ASSERT_TRUE(c);
  wait_for_assignment(*c, 1);
  std::thread closer([&] {
    std::this_thread::sleep_for(200ms);
    c->close();
  });
  const auto start = clock_type::now();
  auto r = c->poll(30s, 10);
  closer.join();
  EXPECT_LT(clock_type::now() - start, 10s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::unavailable);
  auto after = c->poll(10ms, 10);
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.err().code, errc::unavailable);
  c->close();  // idempotent
}

TEST_P(queue_conformance, lag_decreases_as_the_group_commits) {
  const auto topic = unique_name("lag");
  const auto group = unique_name("group");
  ASSERT_TRUE(q().ensure_topic(topic, 2).ok());
  auto p = q().make_producer();
  produce_n(*p, topic, 20, 4);
  auto lag = q().lag(group, topic);
  ASSERT_TRUE(lag.ok());
  EXPECT_EQ(*lag, 20) << "no commit yet: counted from the start";

  auto c = subscribe(q(), group, topic, start_position::earliest);
  ASSERT_TRUE(c);
  std::vector<record> got;
  poll_until(*c, got, 20);
  ASSERT_EQ(got.size(), 20u);
  // Commit each partition's first record: one record done per partition.
  std::set<std::int32_t> seen;
  std::int64_t done = 0;
  for (auto& r : got) {
    if (seen.insert(r.partition).second) {
      ASSERT_TRUE(c->commit(r).ok());
      done += r.offset + 1;
    }
  }
  lag = q().lag(group, topic);
  ASSERT_TRUE(lag.ok());
  EXPECT_EQ(*lag, 20 - done);
  ASSERT_TRUE(c->commit_polled().ok());
  lag = q().lag(group, topic);
  ASSERT_TRUE(lag.ok());
  EXPECT_EQ(*lag, 0);
}

TEST_P(queue_conformance, committing_a_partition_not_assigned_is_a_conflict) {
  const auto topic = unique_name("mine");
  const auto other = unique_name("other");
  ASSERT_TRUE(q().ensure_topic(topic, 1).ok());
  ASSERT_TRUE(q().ensure_topic(other, 1).ok());
  auto p = q().make_producer();
  auto pos = p->produce(other, "k", "v");
  ASSERT_TRUE(pos.ok());
  auto c = subscribe(q(), unique_name("group"), topic, start_position::earliest);
  ASSERT_TRUE(c);
  wait_for_assignment(*c, 1);
  record foreign{other, pos->partition, pos->offset, "k", "v", 0};
  auto s = c->commit(foreign);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::conflict);
}

// ---- reading outside a group --------------------------------------------------

TEST_P(queue_conformance, read_returns_a_partition_from_an_offset_without_a_group) {
  const auto topic = unique_name("read");
  ASSERT_TRUE(q().ensure_topic(topic, 1).ok());
  auto p = q().make_producer();
  auto positions = produce_n(*p, topic, 10, 3);
  ASSERT_EQ(positions.size(), 10u);

  auto all = q().read(topic, 0, 0, 100);
  ASSERT_TRUE(all.ok()) << all.err().message;
  ASSERT_EQ(all->size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ((*all)[i].value, value_of(i));
    EXPECT_EQ((*all)[i].key, "k" + std::to_string(i % 3));
    EXPECT_EQ((*all)[i].offset, positions[i].offset);
    EXPECT_EQ((*all)[i].topic, topic);
  }

  auto page = q().read(topic, 0, positions[4].offset, 3);
  ASSERT_TRUE(page.ok()) << page.err().message;
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ(page->front().value, value_of(4));
  EXPECT_EQ(page->back().value, value_of(6));

  auto past = q().read(topic, 0, positions.back().offset + 1, 10);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->empty());

  // Reading commits nothing: a group that joins now still gets everything.
  auto c = subscribe(q(), unique_name("group"), topic, start_position::earliest);
  ASSERT_TRUE(c);
  std::vector<record> got;
  poll_until(*c, got, 10);
  EXPECT_EQ(values(got), expected_values(0, 10));

  auto missing = q().read(unique_name("missing"), 0, 0, 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::not_found);
  auto no_partition = q().read(topic, 7, 0, 1);
  ASSERT_FALSE(no_partition.ok());
  EXPECT_EQ(no_partition.err().code, errc::not_found);
}

}  // namespace chatd::queue::testing
