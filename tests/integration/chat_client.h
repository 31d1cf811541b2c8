// A participant for pipeline tests: registers, logs in, finds a chat server
// through discovery and talks the WebSocket protocol.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "common/json.h"
#include "integration/api_client.h"
#include "net/client.h"

namespace chatd::testing {

struct participant_handle {
  std::string id;
  std::string token;
  std::string username;
  std::string kind;
};

inline participant_handle make_participant(const api& a, const std::string& kind, const std::string& username) {
  std::string path = kind == "user" ? "/v1/users" : kind == "shop" ? "/v1/shops" : "/v1/admins";
  auto r = a.post(path, json::object{{"username", username}, {"password", "password123"}, {"display_name", username}});
  EXPECT_EQ(r.status, 201) << r.raw;
  auto l = a.post("/v1/auth/login", json::object{{"kind", kind}, {"username", username}, {"password", "password123"}});
  EXPECT_EQ(l.status, 200) << l.raw;
  return {r.str("id"), l.str("access_token"), username, kind};
}

inline std::string login(const api& a, const std::string& kind, const std::string& username,
                         const std::string& password = "password123") {
  auto l = a.post("/v1/auth/login", json::object{{"kind", kind}, {"username", username}, {"password", password}});
  EXPECT_EQ(l.status, 200) << l.raw;
  return l.str("access_token");
}

inline std::string create_conversation(const api& a, const participant_handle& who, const std::string& kind,
                                       const std::vector<std::string>& members, const std::string& title = "") {
  json::array m;
  for (auto& id : members) m.push_back(json::value(id));
  json::object body{{"kind", kind}, {"members", m}};
  if (!title.empty()) body["title"] = title;
  auto r = a.post("/v1/conversations", body, who.token);
  EXPECT_TRUE(r.status == 201 || r.status == 200) << r.raw;
  return r.str("id");
}

class chat_client {
 public:
  chat_client() = default;

  // Connects to the chat server discovery names first.
  ::testing::AssertionResult connect(const api& a, const std::string& token, const std::string& since = "",
                                     bool token_in_query = true) {
    auto d = a.get("/v1/discovery", token);
    if (d.status != 200) return ::testing::AssertionFailure() << "discovery: " << d.raw;
    const auto& servers = d.obj().at("servers").as_array();
    if (servers.empty()) return ::testing::AssertionFailure() << "no chat servers";
    // In turn over every server discovery offers, so that the participants
    // of a test sit on different chat servers when there are several.
    static std::atomic<std::size_t> next_server{0};
    std::string url(servers[next_server++ % servers.size()].at("url").as_string());
    return connect_url(url, token, since, token_in_query);
  }

  ::testing::AssertionResult connect_url(const std::string& url, const std::string& token,
                                         const std::string& since = "", bool token_in_query = true) {
    std::string full = url;
    net::header_list headers;
    std::string sep = full.find('?') == std::string::npos ? "?" : "&";
    if (token_in_query) {
      full += sep + "access_token=" + token;
      sep = "&";
    } else {
      headers.emplace_back("Authorization", "Bearer " + token);
    }
    if (!since.empty()) full += sep + "since=" + since;
    ws_ = std::make_unique<net::ws_client>();
    auto s = ws_->connect(full, headers);
    if (!s) return ::testing::AssertionFailure() << "connect: " << s.err().message;
    auto ready = next(std::chrono::seconds(10));
    if (!ready || ready->as_object().at("type").as_string() != "ready") {
      return ::testing::AssertionFailure() << "no ready frame";
    }
    ready_ = *ready;
    return ::testing::AssertionSuccess();
  }

  const json::value& ready() const { return ready_; }
  net::ws_client& raw() { return *ws_; }

  void send_json(const json::value& v) { ASSERT_TRUE(ws_->send_text(json::serialize(v))); }

  // The next frame (held-back ones first), or nullopt on timeout/close.
  std::optional<json::value> next(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    if (!held_.empty()) {
      auto v = std::move(held_.front());
      held_.pop_front();
      return v;
    }
    auto f = ws_->read(timeout);
    if (!f || f->closed) {
      if (f && f->closed) close_code_ = f->close_code ? f->close_code : 1006;
      if (!f && f.err().message != "timeout") close_code_ = 1006;  // the connection broke
      return std::nullopt;
    }
    std::error_code ec;
    auto v = json::parse(f->text, ec);
    if (ec) return std::nullopt;
    return v;
  }

  // Waits for a frame matching `pred`, keeping the others for later.
  std::optional<json::value> wait_for(const std::function<bool(const json::object&)>& pred,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (it->is_object() && pred(it->as_object())) {
        auto v = *it;
        held_.erase(it);
        return v;
      }
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      auto f = ws_->read(left);
      if (!f) continue;
      if (f->closed) {
        close_code_ = f->close_code;
        return std::nullopt;
      }
      std::error_code ec;
      auto v = json::parse(f->text, ec);
      if (ec || !v.is_object()) continue;
      if (pred(v.as_object())) return v;
      held_.push_back(std::move(v));
    }
    return std::nullopt;
  }

  std::optional<json::value> wait_type(const std::string& type, const std::string& id = "",
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return wait_for(
        [&](const json::object& o) {
          if (o.at("type").as_string() != type) return false;
          if (id.empty()) return true;
          auto* i = o.if_contains("id");
          return i && i->is_string() && i->as_string() == id;
        },
        timeout);
  }

  // Sends and waits for the ack (or error) with the request id.
  json::value send_message(const std::string& conv, const std::string& body, const std::string& cmid = "") {
    std::string rid = "r" + std::to_string(++seq_);
    json::object f{{"type", "send"}, {"id", rid}, {"conversation_id", conv}, {"body", body}};
    f["client_msg_id"] = cmid.empty() ? rid + "-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) : cmid;
    send_json(f);
    auto r = wait_for([&](const json::object& o) {
      auto* i = o.if_contains("id");
      return i && i->is_string() && i->as_string() == rid;
    });
    return r ? *r : json::value(nullptr);
  }

  // Sends a request with an id and returns its answer.
  json::value request(json::object frame) {
    std::string rid = "q" + std::to_string(++seq_);
    frame["id"] = rid;
    send_json(frame);
    auto r = wait_for([&](const json::object& o) {
      auto* i = o.if_contains("id");
      return i && i->is_string() && i->as_string() == rid;
    });
    return r ? *r : json::value(nullptr);
  }

  // Waits until the server closes; returns the close code (0 on timeout).
  std::uint16_t wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (close_code_) return close_code_;
      auto f = ws_->read(std::chrono::milliseconds(200));
      if (f && f->closed) {
        close_code_ = f->close_code ? f->close_code : 1006;
        return close_code_;
      }
      if (!f && f.err().message != "timeout") {
        close_code_ = 1006;
        return close_code_;
      }
    }
    return 0;
  }

  void close() {
    if (ws_) ws_->close();
  }
  // Nonzero once the server closed the connection or it broke.
  std::uint16_t close_code() const { return close_code_; }

 private:
  std::unique_ptr<net::ws_client> ws_;
  json::value ready_;
  std::deque<json::value> held_;
  std::uint16_t close_code_ = 0;
  int seq_ = 0;
};

}  // namespace chatd::testing
