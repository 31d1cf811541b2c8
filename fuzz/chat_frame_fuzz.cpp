// WebSocket text frames from a client (src/chatserver): each input is one
// frame, handed to a live chat-server session the way the HTTP server hands
// it over after Beast has checked the frame (text, valid UTF-8, at most 64
// KiB). The session runs on the services of fuzz/stack.h.
//
// Each input is followed by a `ping` frame; its `pong` means the input was
// handled (a session handles its frames in order). A frame that crashes,
// hangs the session or makes it send something that is not a JSON object, or
// an `internal` error, is a bug.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "chatserver/chat_server.h"
#include "common/json.h"
#include "stack.h"

namespace {

constexpr std::string_view sync_id = "fuzz-sync";

class fake_connection : public chatd::net::ws_connection {
 public:
  bool send_text(std::string text) override {
    auto o = chatd::parse_json_object(text);
    if (!o) __builtin_trap();
    if (auto* code = o->if_contains("code"); code && code->is_string() && code->get_string() == "internal") {
      __builtin_trap();
    }
    std::lock_guard lock(mu_);
    if (auto* type = o->if_contains("type"); type && type->is_string() && type->get_string() == "ready") ready_ = true;
    if (auto* id = o->if_contains("id"); id && id->is_string() && id->get_string() == sync_id) synced_ = true;
    cv_.notify_all();
    return !closed_;
  }
  void close(std::uint16_t, std::string) override {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  const std::string& remote_addr() const override { return addr_; }
  void pause_reading() override {}
  void resume_reading() override {}

  // False when the session closed the connection instead.
  bool wait_ready() {
    return wait([this] { return ready_; });
  }
  bool wait_synced() {
    bool ok = wait([this] { return synced_; });
    std::lock_guard lock(mu_);
    synced_ = false;
    return ok;
  }
  bool closed() {
    std::lock_guard lock(mu_);
    return closed_;
  }

 private:
  template <class F>
  bool wait(F done) {
    std::unique_lock lock(mu_);
    // Generous: a slow shared machine under ASan is not a hang.
    if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return done() || closed_; })) __builtin_trap();
    return !closed_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false, synced_ = false, closed_ = false;
  std::string addr_ = "127.0.0.1";
};

struct server {
  chatd::fuzz::stack s;
  chatd::chatserver::chat_server chat{chatd::chatserver::deps{*s.db, s.participants, s.conversations, s.messages,
                                                              s.presence, s.limits, s.metrics, s.workers},
                                      [] {
                                        chatd::chatserver::options o;
                                        o.bad_frames_per_minute = 1'000'000'000;  // most inputs are bad frames
                                        return o;
                                      }()};
  std::shared_ptr<chatd::net::ws_handler> session;
  std::shared_ptr<fake_connection> conn;

  // A session that is open and past `ready`: the one before, unless the
  // server closed it.
  void ensure_session() {
    if (session && !conn->closed()) return;
    if (session) session->on_close();
    session.reset();
    chatd::net::http_request req;
    req.method = "GET";
    req.target = "/v1/ws";
    req.path = "/v1/ws";
    req.headers.emplace_back("authorization", "Bearer " + s.alice_token);
    auto r = chat.upgrade(req);
    auto* h = std::get_if<std::shared_ptr<chatd::net::ws_handler>>(&r);
    if (!h || !*h) __builtin_trap();
    session = *h;
    conn = std::make_shared<fake_connection>();
    session->on_open(conn);
    if (!conn->wait_ready()) __builtin_trap();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string frame(reinterpret_cast<const char*>(data), size);
  // Beast closes the connection (1007) before such a frame reaches a handler.
  if (size > 64 * 1024 || !chatd::valid_utf8(frame)) return 0;
  static server srv;
  srv.ensure_session();
  srv.session->on_text(std::move(frame));
  srv.session->on_text(R"({"type":"ping","id":"fuzz-sync"})");
  (void)srv.conn->wait_synced();
  return 0;
}
