#include "chatserver/recent_messages.h"

#include <gtest/gtest.h>

namespace chatd::chatserver {
namespace {

store::message msg(std::uint64_t conv, std::uint64_t id, std::string body = "x") {
  store::message m;
  m.conversation_id = conv;
  m.id = id;
  m.body = std::move(body);
  return m;
}

std::vector<std::uint64_t> ids(const std::vector<store::message>& ms) {
  std::vector<std::uint64_t> out;
  for (const auto& m : ms) out.push_back(m.id);
  return out;
}

TEST(recent_messages, keeps_each_conversation_in_id_order_and_replaces_edits) {
  recent_messages r({});
  r.remember(msg(1, 10), 0);
  r.remember(msg(1, 30), 0);
  r.remember(msg(1, 20), 0);  // late
  r.remember(msg(2, 15), 0);
  r.remember(msg(1, 20, "edited"), 0);
  EXPECT_EQ(ids(r.after(1, 0)), (std::vector<std::uint64_t>{10, 20, 30}));
  EXPECT_EQ(ids(r.after(1, 10)), (std::vector<std::uint64_t>{20, 30}));
  EXPECT_EQ(r.after(1, 10).front().body, "edited");
  EXPECT_EQ(ids(r.after(2, 0)), (std::vector<std::uint64_t>{15}));
  EXPECT_TRUE(r.after(3, 0).empty());
  EXPECT_EQ(r.size(), 4u);
}

TEST(recent_messages, a_conversation_keeps_only_its_newest) {
  recent_messages r({.per_conversation = 3, .max_total = 100, .window_ms = 1000});
  for (std::uint64_t id = 1; id <= 10; ++id) r.remember(msg(1, id), 0);
  EXPECT_EQ(ids(r.after(1, 0)), (std::vector<std::uint64_t>{8, 9, 10}));
  EXPECT_EQ(r.size(), 3u);
}

// A server sees many conversations once each; none of them may stay forever.
TEST(recent_messages, conversations_seen_once_are_forgotten_at_the_total_bound) {
  recent_messages r({.per_conversation = 256, .max_total = 50, .window_ms = 1'000'000});
  for (std::uint64_t conv = 1; conv <= 1000; ++conv) r.remember(msg(conv, conv), 0);
  EXPECT_EQ(r.size(), 50u);
  EXPECT_EQ(r.conversations(), 50u);
  EXPECT_TRUE(r.after(1, 0).empty());
  EXPECT_EQ(ids(r.after(1000, 0)), (std::vector<std::uint64_t>{1000}));
  EXPECT_EQ(ids(r.after(951, 0)), (std::vector<std::uint64_t>{951}));
  EXPECT_TRUE(r.after(950, 0).empty());
}

TEST(recent_messages, messages_older_than_the_window_are_forgotten_by_later_arrivals) {
  recent_messages r({.per_conversation = 256, .max_total = 1000, .window_ms = 100});
  for (std::uint64_t conv = 1; conv <= 20; ++conv) r.remember(msg(conv, conv), 0);
  r.remember(msg(99, 500), 50);
  EXPECT_EQ(r.size(), 21u);
  r.remember(msg(99, 501), 101);  // everything that arrived at 0 is past the window
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.conversations(), 1u);
  EXPECT_EQ(ids(r.after(99, 0)), (std::vector<std::uint64_t>{500, 501}));
}

// The per-conversation bound leaves arrivals behind whose message is gone;
// the total still counts messages, and nothing kept is lost by them.
TEST(recent_messages, evicting_an_arrival_whose_message_is_gone_loses_nothing_kept) {
  recent_messages r({.per_conversation = 2, .max_total = 4, .window_ms = 1'000'000});
  for (std::uint64_t id = 1; id <= 4; ++id) r.remember(msg(1, id), 0);  // keeps 3, 4
  r.remember(msg(2, 100), 0);                                           // arrival 1 goes; its message was already gone
  EXPECT_EQ(ids(r.after(1, 0)), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(ids(r.after(2, 0)), (std::vector<std::uint64_t>{100}));
  EXPECT_EQ(r.size(), 3u);
}

}  // namespace
}  // namespace chatd::chatserver
