// The CQL bridge (src/store/scylla/cql.h over the Rust driver) on a real CQL
// server: typed values round-trip, paging walks every row once, batches
// apply, and failures map to the right errc. Server from CHATD_TEST_CQL_HOSTS
// (default 127.0.0.1:9042, scripts/cassandra.sh start); fails without one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>

#include "store/scylla/cql.h"
#include "store/scylla_store.h"

namespace chatd::store::cql {
namespace {

std::string hosts() {
  const char* h = std::getenv("CHATD_TEST_CQL_HOSTS");
  return h != nullptr && *h != '\0' ? h : "127.0.0.1:9042";
}

class CqlBridge : public ::testing::Test {
 protected:
  void SetUp() override {
    session_options o;
    o.contact_points = hosts();
    o.level = consistency::one;
    auto s = session::connect(o);
    ASSERT_TRUE(s.ok()) << "no CQL server at " << o.contact_points
                        << " (scripts/cassandra.sh start): " << s.err().message;
    s_ = std::move(s).value();
    ks_ = "cqltest_" + std::to_string(::getpid());
    ASSERT_TRUE(s_->query("CREATE KEYSPACE IF NOT EXISTS " + ks_ +
                          " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
                    .wait()
                    .ok());
    ASSERT_TRUE(s_->query("CREATE TABLE IF NOT EXISTS " + ks_ +
                          ".t (p bigint, c int, s text, b blob, d double, f boolean, PRIMARY KEY ((p), c))")
                    .wait()
                    .ok());
  }
  void TearDown() override {
    if (s_) (void)s_->query("DROP KEYSPACE IF EXISTS " + ks_).wait();
  }
  prepared must_prepare(const std::string& cql) {
    auto p = s_->prepare(cql, true);
    if (!p) throw std::runtime_error(p.err().message);
    return std::move(p).value();
  }

  std::unique_ptr<session> s_;
  std::string ks_;
};

TEST_F(CqlBridge, TypedValuesRoundTripAndNullsReadAsNull) {
  auto ins = must_prepare("INSERT INTO " + ks_ + ".t (p, c, s, b, d, f) VALUES (?, ?, ?, ?, ?, ?)");
  std::string blob("\0\x01\xff", 3);
  ASSERT_TRUE(s_->run(ins, values().i64(-5).i32(7).text("héllo ✓").blob(blob).dbl(0.25).boolean(true)).ok());
  ASSERT_TRUE(s_->run(ins, values().i64(-5).i32(8).null().null().null().null()).ok());
  auto sel = must_prepare("SELECT p, c, s, b, d, f FROM " + ks_ + ".t WHERE p = ?");
  auto r = s_->run(sel, values().i64(-5));
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(r->i64(0, 0), -5);
  EXPECT_EQ(r->i64(0, 1), 7);
  EXPECT_EQ(r->text(0, 2), "héllo ✓");
  EXPECT_EQ(r->text(0, 3), blob);
  EXPECT_EQ(r->dbl(0, 4), 0.25);
  EXPECT_TRUE(r->boolean(0, 5));
  EXPECT_EQ(r->column("d"), 4);
  EXPECT_EQ(r->column("nope"), -1);
  for (std::size_t col = 2; col < 6; ++col) EXPECT_TRUE(r->is_null(1, col)) << col;
  EXPECT_FALSE(r->is_null(1, 1));
}

TEST_F(CqlBridge, PagingWalksEveryRowOnceAndBatchesApply) {
  auto ins = must_prepare("INSERT INTO " + ks_ + ".t (p, c, s) VALUES (?, ?, ?)");
  batch b(false);  // one partition
  for (int i = 0; i < 25; ++i) b.add(ins, values().i64(1).i32(i).text("v" + std::to_string(i)));
  ASSERT_TRUE(s_->execute(std::move(b), true).wait().ok());

  auto sel = must_prepare("SELECT c FROM " + ks_ + ".t WHERE p = ?");
  std::set<std::int64_t> seen;
  std::vector<std::size_t> sizes;
  std::string state;
  for (int pages = 0; pages < 10; ++pages) {
    auto r = s_->execute(sel, values().i64(1), 10, state).wait();
    ASSERT_TRUE(r.ok()) << r.err().message;
    sizes.push_back(r->size());
    for (std::size_t i = 0; i < r->size(); ++i) EXPECT_TRUE(seen.insert(r->i64(i, 0)).second);
    auto next = r->paging_state();
    if (!next) break;
    state = std::move(*next);
  }
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(sizes.front(), 10u);
  EXPECT_LE(sizes.size(), 4u);  // 10 + 10 + 5 (+ possibly an empty last page)
}

TEST_F(CqlBridge, RefusedStatementsAreInternalErrors) {
  auto bad = s_->prepare("SELEC nothing FROM nowhere", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::internal) << bad.err().message;
  auto unknown = s_->prepare("SELECT x FROM " + ks_ + ".no_such_table", true);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.err().code, errc::internal);
  // A value of the wrong type is refused before it is sent.
  auto sel = must_prepare("SELECT c FROM " + ks_ + ".t WHERE p = ?");
  auto r = s_->run(sel, values().text("not a bigint"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::internal);
}

// A keyspace made by a chatd from before conversations kept their creator:
// opening the store adds the column, the old row reads creator 0, and a
// second open (the column there now) changes nothing.
TEST_F(CqlBridge, StoreAddsTheCreatorColumnToAnOlderKeyspace) {
  std::string ks = "cqlmig_" + std::to_string(::getpid());
  struct dropper {
    session& s;
    std::string ks;
    ~dropper() { (void)s.query("DROP KEYSPACE IF EXISTS " + ks).wait(); }
  } drop_at_end{*s_, ks};
  ASSERT_TRUE(
      s_->query("CREATE KEYSPACE " + ks + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
          .wait()
          .ok());
  ASSERT_TRUE(s_->query("CREATE TABLE " + ks +
                        ".conversations (id bigint PRIMARY KEY, kind int, title text, created_at bigint, "
                        "updated_at bigint, last_message_id bigint)")
                  .wait()
                  .ok());
  ASSERT_TRUE(s_->query("INSERT INTO " + ks +
                        ".conversations (id, kind, title, created_at, updated_at, last_message_id) "
                        "VALUES (900, 1, 'old', 1720000000000, 1720000000000, 0)")
                  .wait()
                  .ok());
  scylla_options o;
  o.hosts = hosts();
  o.keyspace = ks;
  o.consistency = "one";
  {
    auto db = open_scylla_store(o);
    auto old = db->get_conversation(900);
    ASSERT_TRUE(old.ok()) << old.err().message;
    EXPECT_EQ(old->title, "old");
    EXPECT_EQ(old->creator_id, 0u);
    ASSERT_TRUE(db->add_member(900, 5).ok());
    EXPECT_TRUE(db->is_member(900, 5).value());
    conversation fresh;
    fresh.id = 901;
    fresh.title = "new";
    fresh.created_at = 1720000000001;
    fresh.creator_id = 5;
    ASSERT_TRUE(db->create_conversation(fresh, {5}).ok());
  }
  auto again = open_scylla_store(o);
  EXPECT_EQ(again->get_conversation(901).value().creator_id, 5u);
  EXPECT_EQ(again->get_conversation(900).value().creator_id, 0u);
}

TEST(CqlBridgeOffline, NoServerIsUnavailable) {
  session_options o;
  o.contact_points = "127.0.0.1:1";  // nothing listens on port 1
  o.connect_timeout_ms = 1000;
  auto s = session::connect(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::unavailable) << s.err().message;
}

TEST(CqlBridgeOffline, StoreRefusesBadConfigurationAtOpen) {
  scylla_options o;
  o.hosts = hosts();
  o.keyspace = "bad-name";
  EXPECT_THROW(open_scylla_store(o), std::runtime_error);
  o.keyspace = "fine";
  o.consistency = "most";
  EXPECT_THROW(open_scylla_store(o), std::runtime_error);
}

}  // namespace
}  // namespace chatd::store::cql
