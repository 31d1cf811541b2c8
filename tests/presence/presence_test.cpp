#include "presence/presence.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "temp_store.h"

namespace chatd::presence {
namespace {

using store::presence_state;

struct recorder {
  std::mutex mu;
  std::vector<store::presence> changes;
  change_listener listener() {
    return [this](const store::presence& p) {
      std::lock_guard lock(mu);
      changes.push_back(p);
    };
  }
  std::vector<presence_state> states() {
    std::lock_guard lock(mu);
    std::vector<presence_state> out;
    for (auto& c : changes) out.push_back(c.state);
    return out;
  }
};

TEST(presence, aggregates_connections) {
  testing::temp_store db;
  recorder rec;
  presence_config cfg;
  cfg.timeout_ms = 1000;
  service p(*db, cfg, rec.listener());
  EXPECT_EQ(p.get(7)->state, presence_state::offline);
  p.connection_state("s1", 1, 7, presence_state::active);
  EXPECT_EQ(p.get(7)->state, presence_state::active);
  p.connection_state("s1", 2, 7, presence_state::inactive);  // a second tab, hidden
  EXPECT_EQ(p.get(7)->state, presence_state::active);        // any active connection wins
  p.connection_state("s1", 1, 7, presence_state::inactive);
  EXPECT_EQ(p.get(7)->state, presence_state::inactive);
  p.connection_closed("s1", 1, 7);
  EXPECT_EQ(p.get(7)->state, presence_state::inactive);
  p.connection_closed("s1", 2, 7);
  auto off = p.get(7);
  EXPECT_EQ(off->state, presence_state::offline);
  EXPECT_GT(off->last_seen_at, 0);
  EXPECT_EQ(rec.states(),
            (std::vector<presence_state>{presence_state::active, presence_state::inactive, presence_state::offline}));
  // Stored in the database too.
  auto stored = db->get_presence(7);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->state, presence_state::offline);
  EXPECT_EQ(stored->last_seen_at, off->last_seen_at);
}

TEST(presence, a_server_that_stops_refreshing_loses_its_connections) {
  testing::temp_store db;
  recorder rec;
  presence_config cfg;
  cfg.timeout_ms = 1000;
  service p(*db, cfg, rec.listener());
  p.connection_state("dead", 1, 1, presence_state::active);
  p.connection_state("alive", 2, 2, presence_state::active);
  auto now = now_ms();
  EXPECT_EQ(p.sweep(now + 500), 0u);
  p.refresh_at("alive", now + 1200);
  EXPECT_EQ(p.sweep(now + 1500), 1u);
  EXPECT_EQ(p.get(1)->state, presence_state::offline);
  EXPECT_EQ(p.get(2)->state, presence_state::active);
}

TEST(presence, a_snapshot_closes_what_the_server_no_longer_holds_and_renews_its_lease) {
  testing::temp_store db;
  recorder rec;
  presence_config cfg;
  cfg.timeout_ms = 1000;
  service p(*db, cfg, rec.listener());
  auto now = now_ms();
  p.sync("s1", {{1, 7, presence_state::active}, {2, 8, presence_state::inactive}}, now);
  EXPECT_EQ(p.get(7)->state, presence_state::active);
  EXPECT_EQ(p.get(8)->state, presence_state::inactive);
  EXPECT_EQ(p.connection_count(), 2u);
  // Connection 1 closed and the report was lost: the next snapshot repairs it,
  // and changes the state of 2 that it carries.
  p.sync("s1", {{2, 8, presence_state::active}}, now + 600);
  EXPECT_EQ(p.get(7)->state, presence_state::offline);
  EXPECT_EQ(p.get(8)->state, presence_state::active);
  EXPECT_EQ(p.connection_count(), 1u);
  // The snapshot renewed the lease: still counted after the first deadline.
  EXPECT_EQ(p.sweep(now + 1300), 0u);
  EXPECT_EQ(p.get(8)->state, presence_state::active);
  // Another server's snapshot leaves s1's connections alone.
  p.sync("s2", {{3, 8, presence_state::inactive}}, now + 1300);
  EXPECT_EQ(p.connection_count(), 2u);
  EXPECT_EQ(p.sweep(now + 1700), 1u);  // s1 stopped reporting
  EXPECT_EQ(p.get(8)->state, presence_state::inactive);
}

TEST(presence, the_route_table_names_the_servers_holding_each_participant) {
  testing::temp_store db;
  presence_config cfg;
  cfg.timeout_ms = 1000;
  service p(*db, cfg, {});
  p.connection_state("s2", 1, 7, presence_state::active);
  p.connection_state("s1", 2, 7, presence_state::inactive);
  p.connection_state("s1", 3, 7, presence_state::active);  // two tabs on s1: named once
  p.connection_state("s3", 4, 8, presence_state::active);
  auto r = p.routes_of({7, 8, 9});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->complete);  // never started: nothing to wait for
  ASSERT_EQ(r->servers.size(), 3u);
  EXPECT_EQ(r->servers[0], (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(r->servers[1], (std::vector<std::string>{"s3"}));
  EXPECT_TRUE(r->servers[2].empty());
  // A closed connection and an expired server leave the table.
  p.connection_closed("s2", 1, 7);
  auto now = now_ms();
  p.refresh_at("s1", now + 900);
  EXPECT_EQ(p.sweep(now + 1500), 1u);  // s3 stopped refreshing
  r = p.routes_of({8, 7});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->servers[0].empty());
  EXPECT_EQ(r->servers[1], (std::vector<std::string>{"s1"}));
}

TEST(presence, the_route_table_is_incomplete_for_a_snapshot_period_after_start) {
  testing::temp_store db;
  presence_config cfg;
  cfg.timeout_ms = 3000;
  service p(*db, cfg, {});
  auto before = now_ms();
  p.start();
  // Chat servers that held connections before the start report them with
  // their next snapshot, within timeout/3; until then routing must not trust
  // the table.
  auto r = p.routes_at({1}, before);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->complete);
  EXPECT_FALSE(p.routes_at({1}, before + 1000)->complete);
  EXPECT_TRUE(p.routes_at({1}, now_ms() + 1000 + 1000)->complete);
  p.stop();
}

TEST(presence, sweeper_thread_starts_and_stops) {
  testing::temp_store db;
  presence_config cfg;
  cfg.timeout_ms = 150;
  service p(*db, cfg, {});
  p.start();
  p.connection_state("gone", 1, 5, presence_state::active);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (p.get(5)->state != presence_state::offline && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(p.get(5)->state, presence_state::offline);
  p.stop();
  p.stop();
}

}  // namespace
}  // namespace chatd::presence
