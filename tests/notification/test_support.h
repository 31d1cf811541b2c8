// Shared helpers of the notification tests: a fresh RocksDB store per test,
// messages and participants, bounded waiting, and a webhook receiver on a real
// HTTP server.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "common/worker_pool.h"
#include "net/http.h"
#include "net/server.h"
#include "store/rocksdb_store.h"
#include "store/store.h"

namespace chatd::notification::testing {

// A directory under the system temp dir, removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "chatd-notif-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::unique_ptr<store::chat_store> open_store(const temp_dir& dir) {
  store::rocksdb_options o;
  o.path = (dir.path() / "db").string();
  return store::open_rocksdb_store(o);
}

// Polls `pred` every few milliseconds until it holds or `timeout` passes.
inline bool wait_for(const std::function<bool()>& pred,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds{5000}) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return true;
}

inline store::participant make_participant(store::chat_store& s, id_generator& ids, const std::string& name,
                                           store::participant_kind kind = store::participant_kind::user) {
  store::participant p;
  p.id = ids.next();
  p.kind = kind;
  p.username = name;
  p.display_name = "Display " + name;
  p.password_hash = "x";
  p.created_at = now_ms();
  auto st = s.create_participant(p);
  if (!st) throw std::runtime_error("create_participant: " + st.err().message);
  return p;
}

inline store::message make_message(id_generator& ids, store::id_t conversation, const store::participant& sender,
                                   std::string body) {
  store::message m;
  m.id = ids.next();
  m.conversation_id = conversation;
  m.sender_id = sender.id;
  m.sender_kind = sender.kind;
  m.body = std::move(body);
  m.client_msg_id = "c" + std::to_string(m.id);
  m.created_at = now_ms();
  return m;
}

// A webhook receiver: a real HTTP server on 127.0.0.1 whose POST /hook
// answers with the status `respond` picks and records every call.
class webhook_receiver {
 public:
  struct call {
    std::string body;
    net::header_list headers;
    std::chrono::steady_clock::time_point at;
    int answered = 0;
    std::optional<std::string> header(std::string_view name) const {
      for (const auto& [k, v] : headers) {
        if (k == name) return v;
      }
      return std::nullopt;
    }
  };
  // Given the 0-based call number, the status to answer.
  using responder = std::function<int(std::size_t)>;

  // listen "127.0.0.1:0" picks a port; a fixed one re-binds a port used before.
  explicit webhook_receiver(
      responder respond = [](std::size_t) { return 200; }, std::string listen = "127.0.0.1:0")
      : respond_(std::move(respond)), io_(1), workers_(2, "hook") {
    routes_.add("POST", "/hook", [this](net::http_request& req) {
      std::lock_guard lock(mu_);
      call c;
      c.body = req.body;
      c.headers = req.headers;
      c.at = std::chrono::steady_clock::now();
      c.answered = respond_(calls_.size());
      calls_.push_back(c);
      net::http_response r;
      r.status = c.answered;
      r.body = "{}";
      return r;
    });
    net::server_options o;
    o.listen = std::move(listen);
    server_ = std::make_unique<net::http_server>(io_, workers_, routes_, o);
    io_.start();
    address_ = server_->start();
  }
  ~webhook_receiver() {
    server_->stop(std::chrono::milliseconds{500});
    io_.stop();
    workers_.stop();
  }

  std::string url() const { return "http://" + address_ + "/hook"; }
  const std::string& address() const { return address_; }
  std::vector<call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return calls_.size();
  }
  std::size_t successes() const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& c : calls_) n += (c.answered >= 200 && c.answered < 300) ? 1 : 0;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<call> calls_;
  responder respond_;
  net::io_pool io_;
  worker_pool workers_;
  net::router routes_;
  std::unique_ptr<net::http_server> server_;
  std::string address_;
};

}  // namespace chatd::notification::testing
