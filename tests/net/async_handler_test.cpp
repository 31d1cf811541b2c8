// Async HTTP handlers (router::add_async): the answer comes later, from any
// thread, and the worker that ran the handler is free meanwhile.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/worker_pool.h"
#include "net/client.h"
#include "net/server.h"

namespace chatd::net {
namespace {

using namespace std::chrono_literals;

// Where the /held route leaves its responder, and a marker that it did.
struct held_slot {
  std::mutex mu;
  std::optional<http_responder> responder;
  std::promise<void> stored;

  void put(http_responder r) {
    {
      std::lock_guard lock(mu);
      responder = std::move(r);
    }
    stored.set_value();
  }
  http_responder take() {
    std::lock_guard lock(mu);
    auto r = std::move(*responder);
    responder.reset();
    return r;
  }
};

http_response text(int status, std::string body) {
  http_response r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

class async_handlers : public ::testing::Test {
 protected:
  void SetUp() override {
    // One worker: if an async handler held it, /hello could not be answered.
    routes_.add("GET", "/hello", [](http_request&) { return text(200, "hello"); });
    routes_.add_async("POST", "/held", [this](http_request& req, http_responder respond) {
      respond_body_ = req.body;  // req is valid during the call
      slot_.put(std::move(respond));
    });
    routes_.add_async("GET", "/dropped", [](http_request&, http_responder) {});
    routes_.add_async("GET", "/throws", [](http_request&, http_responder) { throw std::runtime_error("boom"); });
    routes_.add_async("GET", "/twice", [](http_request&, http_responder respond) {
      respond(text(200, "first"));
      respond(text(200, "second"));
    });
    io_.start();
    server_options o;
    o.listen = "127.0.0.1:0";
    server_ = std::make_unique<http_server>(io_, workers_, routes_, o);
    base_ = "http://" + server_->start();
  }
  void TearDown() override {
    server_->stop(2000ms);
    workers_.stop();
    io_.stop();
  }

  io_pool io_{1};
  worker_pool workers_{1, "async-worker"};
  router routes_;
  std::unique_ptr<http_server> server_;
  std::string base_;
  held_slot slot_;
  std::string respond_body_;
};

TEST_F(async_handlers, the_worker_is_free_while_an_answer_is_pending_and_the_answer_arrives_later) {
  auto pending =
      std::async(std::launch::async, [this] { return http_request_sync("POST", base_ + "/held", "payload", {}, 10s); });
  ASSERT_EQ(slot_.stored.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_EQ(respond_body_, "payload");
  // The single worker answers another request while /held waits.
  auto hello = http_request_sync("GET", base_ + "/hello", "", {}, 5s);
  ASSERT_TRUE(hello) << hello.err().message;
  EXPECT_EQ(hello->body, "hello");
  EXPECT_NE(pending.wait_for(0s), std::future_status::ready);
  // Answered from a thread of the test's own.
  std::thread([r = slot_.take()] { r(text(201, "stored")); }).join();
  auto res = pending.get();
  ASSERT_TRUE(res) << res.err().message;
  EXPECT_EQ(res->status, 201);
  EXPECT_EQ(res->body, "stored");
}

TEST_F(async_handlers, a_responder_dropped_unanswered_or_a_throwing_handler_answers_500) {
  for (const char* path : {"/dropped", "/throws"}) {
    auto r = http_request_sync("GET", base_ + path, "", {}, 5s);
    ASSERT_TRUE(r) << path << ": " << r.err().message;
    EXPECT_EQ(r->status, 500) << path;
    EXPECT_NE(r->body.find("internal"), std::string::npos) << r->body;
  }
}

TEST_F(async_handlers, only_the_first_answer_counts) {
  auto r = http_request_sync("GET", base_ + "/twice", "", {}, 5s);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->body, "first");
  // The connection and server are fine afterwards.
  auto hello = http_request_sync("GET", base_ + "/hello", "", {}, 5s);
  ASSERT_TRUE(hello) << hello.err().message;
  EXPECT_EQ(hello->status, 200);
}

TEST_F(async_handlers, routing_treats_async_routes_like_the_others) {
  auto wrong_method = http_request_sync("GET", base_ + "/held", "", {}, 5s);
  ASSERT_TRUE(wrong_method) << wrong_method.err().message;
  EXPECT_EQ(wrong_method->status, 405);
  ASSERT_TRUE(wrong_method->header("allow"));
  EXPECT_EQ(*wrong_method->header("allow"), "POST");
}

}  // namespace
}  // namespace chatd::net
