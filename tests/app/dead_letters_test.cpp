// The dead-letter topic against the real embedded log: a dead letter keeps
// the original record and the error, pages in order, and a replay puts the
// original back into its topic.
#include "app/dead_letters.h"

#include <gtest/gtest.h>

#include "common/json.h"
#include "common/metrics.h"
#include "net/http.h"
#include "queue/embedded_log.h"
#include "queue/temp_dir.h"

namespace chatd::app {
namespace {

class dead_letters_test : public ::testing::Test {
 protected:
  void SetUp() override {
    queue::embedded_log_options o;
    o.path = dir_.path();
    o.partitions = 4;
    log_ = queue::open_embedded_log(o);
    producer_ = log_->make_producer();
    box_ = std::make_unique<dead_letters>(*log_, *producer_, "chatd-dead-letter", metrics_);
    box_->ensure();
  }

  queue::record original(int i) {
    queue::record r;
    r.topic = "chatd-messages";
    r.partition = 2;
    r.offset = 100 + i;
    r.key = "conv-" + std::to_string(i);
    r.value = R"({"kind":"message","n":)" + std::to_string(i) + "}";
    r.timestamp_ms = 1700000000000 + i;
    return r;
  }

  queue::testing::temp_dir dir_;
  std::unique_ptr<queue::embedded_log> log_;
  std::unique_ptr<queue::producer> producer_;
  metrics_registry metrics_;
  std::unique_ptr<dead_letters> box_;
};

TEST(dead_letter_codec, keeps_the_record_and_the_error_including_binary_values) {
  dead_letter d;
  d.group = "main-chat";
  d.original.topic = "t";
  d.original.partition = 3;
  d.original.offset = 42;
  d.original.key = "k";
  d.original.value = std::string("\xff\x00\x80 not utf-8", 14);
  d.original.timestamp_ms = 7;
  d.why = make_error(errc::forbidden, "webhook said 403");
  d.attempts = 2;
  d.failed_at_ms = 9;
  auto text = encode_dead_letter(d);
  EXPECT_NE(text.find("value_base64url"), std::string::npos);
  auto back = decode_dead_letter(text);
  ASSERT_TRUE(back) << back.err().message;
  EXPECT_EQ(back->group, "main-chat");
  EXPECT_EQ(back->original.topic, "t");
  EXPECT_EQ(back->original.partition, 3);
  EXPECT_EQ(back->original.offset, 42);
  EXPECT_EQ(back->original.key, "k");
  EXPECT_EQ(back->original.value, d.original.value);
  EXPECT_EQ(back->original.timestamp_ms, 7);
  EXPECT_EQ(back->why.code, errc::forbidden);
  EXPECT_EQ(back->why.message, "webhook said 403");
  EXPECT_EQ(back->attempts, 2);
  EXPECT_EQ(back->failed_at_ms, 9);

  EXPECT_FALSE(decode_dead_letter("{}"));
  EXPECT_FALSE(decode_dead_letter("not json"));
}

TEST_F(dead_letters_test, pages_in_order_and_counts_per_group) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(box_->put("main-chat", original(i), make_error(errc::bad_request, "bad " + std::to_string(i)), 1));
  }
  auto first = box_->list(-1, 3);
  ASSERT_TRUE(first) << first.err().message;
  ASSERT_EQ(first->items.size(), 3u);
  EXPECT_TRUE(first->has_more);
  EXPECT_EQ(first->items[0].original.value, original(0).value);
  EXPECT_EQ(first->items[0].why.message, "bad 0");
  auto rest = box_->list(first->items.back().id, 3);
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->items.size(), 2u);
  EXPECT_FALSE(rest->has_more);
  EXPECT_EQ(rest->items[1].original.key, "conv-4");
  EXPECT_EQ(metrics_.counter("chatd_dead_letters_total", "", {{"group", "main-chat"}}).value(), 5u);
}

TEST_F(dead_letters_test, a_replay_puts_the_original_back_into_its_topic) {
  ASSERT_TRUE(log_->ensure_topic("chatd-messages", 4));
  ASSERT_TRUE(box_->put("router", original(7), make_error(errc::internal, "a bug"), 5));
  auto page = box_->list(-1, 10);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 1u);
  auto at = box_->replay(page->items[0].id);
  ASSERT_TRUE(at) << at.err().message;
  EXPECT_EQ(at->partition, queue::partition_for_key("conv-7", 4));
  auto back = log_->read("chatd-messages", at->partition, at->offset, 1);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ(back->front().key, "conv-7");
  EXPECT_EQ(back->front().value, original(7).value);

  auto missing = box_->replay(page->items[0].id + 1);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::not_found);
}

TEST_F(dead_letters_test, the_http_answers_check_their_input) {
  ASSERT_TRUE(box_->put("main-chat", original(1), make_error(errc::not_found, "gone"), 1));
  net::http_request list;
  list.query = {{"limit", "1"}};
  auto ok = box_->list_reply(list);
  EXPECT_EQ(ok.status, 200);
  auto o = parse_json_object(ok.body);
  ASSERT_TRUE(o);
  const auto& items = o->at("dead_letters").as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("id").as_string(), "0");
  EXPECT_EQ(items[0].at("error").at("code").as_string(), "not_found");
  EXPECT_EQ(items[0].at("value").as_string(), original(1).value);

  net::http_request bad_limit;
  bad_limit.query = {{"limit", "0"}};
  EXPECT_EQ(box_->list_reply(bad_limit).status, 400);

  net::http_request replay;
  replay.params = {{"id", "abc"}};
  EXPECT_EQ(box_->replay_reply(replay).status, 404);
  replay.params = {{"id", "0"}};
  EXPECT_EQ(box_->replay_reply(replay).status, 200);
}

}  // namespace
}  // namespace chatd::app
