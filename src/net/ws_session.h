// One accepted WebSocket, over plain TCP or TLS: a reader coroutine (which
// also delivers the ws_handler events) and a writer coroutine (one write in
// flight, fed by a bounded queue that send_text fills from any thread), both
// on the connection's strand. Private to src/net; only http_session.cpp
// includes it.
#pragma once

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <mutex>

#include "common/log.h"
#include "net/server_internal.h"

namespace chatd::net::ws_detail {

namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using boost::system::error_code;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

inline std::uint16_t sanitize_close_code(std::uint16_t code) {
  bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
  return valid ? code : ws_close_normal;
}

// At most 123 bytes (the frame limit), cut on a UTF-8 boundary.
inline std::string sanitize_close_reason(std::string reason) {
  if (reason.size() <= 123) return reason;
  std::size_t n = 123;
  while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  reason.resize(n);
  return reason;
}

// What services get as their ws_connection: a weak reference, so that a
// service holding on to it (or leaking it) neither keeps the socket and its
// buffers alive after the connection ended nor outlives the io_context with
// an I/O object inside.
class ws_connection_ref final : public ws_connection {
 public:
  ws_connection_ref(std::weak_ptr<ws_connection> s, std::string remote)
      : session_(std::move(s)), remote_(std::move(remote)) {}
  bool send_text(std::string text) override {
    auto s = session_.lock();
    return s && s->send_text(std::move(text));
  }
  void close(std::uint16_t code, std::string reason) override {
    if (auto s = session_.lock()) s->close(code, std::move(reason));
  }
  const std::string& remote_addr() const override { return remote_; }
  void pause_reading() override {
    if (auto s = session_.lock()) s->pause_reading();
  }
  void resume_reading() override {
    if (auto s = session_.lock()) s->resume_reading();
  }

 private:
  std::weak_ptr<ws_connection> session_;
  const std::string remote_;
};

template <class Stream>
class ws_session final : public ws_connection, public std::enable_shared_from_this<ws_session<Stream>> {
 public:
  ws_session(Stream&& stream, std::string remote, const server_options& opt, std::shared_ptr<ws_handler> handler)
      : ws_(std::move(stream)),
        wake_(ws_.get_executor()),
        read_gate_(ws_.get_executor()),
        deadline_(ws_.get_executor()),
        handler_(std::move(handler)),
        remote_(std::move(remote)),
        max_frames_(std::max<std::size_t>(1, opt.ws_max_queued_frames)),
        max_bytes_(opt.ws_max_queued_bytes),
        // A peer that has not finished the close handshake within this is
        // dead anyway; its socket is then closed hard.
        close_timeout_(opt.ws_idle_timeout.count() > 0 ? std::clamp(opt.ws_idle_timeout, std::chrono::milliseconds{100},
                                                                    std::chrono::milliseconds{5000})
                                                       : std::chrono::milliseconds{5000}) {}

  bool send_text(std::string text) override {
    bool overflow = false;
    bool notify = false;
    {
      std::lock_guard lock(mu_);
      if (ended_ || close_requested_) return false;
      if (queue_.size() >= max_frames_ || text.size() > max_bytes_ - queued_bytes_) {
        // The peer does not keep up: drop what is queued rather than grow,
        // and close so that the client reconnects and catches up (?since=).
        queue_.clear();
        queued_bytes_ = 0;
        close_requested_ = true;
        close_code_ = ws_close_policy;
        close_reason_ = "too slow";
        overflow = true;
        notify = true;
      } else {
        notify = queue_.empty();
        queued_bytes_ += text.size();
        queue_.push_back(std::move(text));
      }
    }
    if (notify) poke(overflow);
    return !overflow;
  }

  void close(std::uint16_t code, std::string reason) override {
    {
      std::lock_guard lock(mu_);
      if (ended_ || close_requested_) return;
      close_requested_ = true;
      close_code_ = sanitize_close_code(code);
      close_reason_ = sanitize_close_reason(std::move(reason));
    }
    poke(true);
  }

  const std::string& remote_addr() const override { return remote_; }

  void pause_reading() override { read_paused_ = true; }
  void resume_reading() override {
    if (!read_paused_.exchange(false)) return;
    asio::post(ws_.get_executor(), [self = this->shared_from_this()] { self->read_gate_.cancel(); });
  }

  // Closes the socket without a handshake (stop() after its grace period).
  void force_close() {
    asio::post(ws_.get_executor(), [self = this->shared_from_this()] {
      if (!self->is_ended()) beast::get_lowest_layer(self->ws_).close();
    });
  }

  // The reader: accepts, delivers events, and ends the session.
  // The arguments belong to the awaiting connection frame.
  static asio::awaitable<void> run(const std::shared_ptr<ws_session>& self, const std::shared_ptr<server_state>& srv,
                                   bhttp::request<bhttp::string_body>& upgrade, const http_request& req,
                                   clock_type::time_point start) {
    auto& ws = self->ws_;
    const auto& opt = srv->opt;
    beast::get_lowest_layer(ws).expires_never();  // the websocket's own timeouts take over
    websocket::stream_base::timeout t{};
    t.handshake_timeout = self->close_timeout_;
    if (opt.ws_idle_timeout.count() > 0) {
      t.idle_timeout = opt.ws_idle_timeout;
      t.keep_alive_pings = true;
    } else {
      t.idle_timeout = websocket::stream_base::none();
      t.keep_alive_pings = false;
    }
    ws.set_option(t);
    ws.read_message_max(opt.ws_max_message_bytes);
    ws.auto_fragment(false);
    // Beast otherwise announces itself and its version in the 101.
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(bhttp::field::server, "chatd"); }));

    auto [aec] = co_await ws.async_accept(upgrade, use_tuple);
    if (aec) {
      self->mark_ended();
      co_return;
    }
    srv->observe(req, 101, start);
    srv->websockets.fetch_add(1);
    asio::co_spawn(ws.get_executor(), writer(self), log_task_failure);

    auto conn = std::make_shared<ws_connection_ref>(self, self->remote_);
    self->deliver([&] { self->handler_->on_open(conn); });
    beast::flat_buffer buffer;
    for (;;) {
      // Paused: wait for resume_reading, which cancels the gate on this
      // strand. A close still reads on, to see the peer's close frame.
      if (self->read_paused_ && !self->closing()) {
        // Not reading is this server's choice, not the peer's silence: the
        // idle timeout (which counts only what a read sees) is off until
        // reading goes on, when the next read arms it afresh.
        auto idle_off = t;
        idle_off.idle_timeout = websocket::stream_base::none();
        idle_off.keep_alive_pings = false;
        ws.set_option(idle_off);
        while (self->read_paused_ && !self->closing()) {
          self->read_gate_.expires_at(asio::steady_timer::time_point::max());
          co_await self->read_gate_.async_wait(use_tuple);
        }
        ws.set_option(t);
      }
      auto [ec, n] = co_await ws.async_read(buffer, use_tuple);
      if (ec) break;
      if (!ws.got_text()) {
        self->close(1003, "binary frames are not supported");
      } else if (!self->closing()) {
        std::string text = beast::buffers_to_string(buffer.data());
        self->deliver([&] { self->handler_->on_text(std::move(text)); });
      }
      buffer.consume(buffer.size());
    }
    self->mark_ended();
    self->deliver([&] { self->handler_->on_close(); });
    // The handler usually holds this connection: dropping it breaks the cycle.
    self->handler_.reset();
    srv->websockets.fetch_sub(1);
  }

 private:
  // One write in flight: a frame from the queue, or at last the close frame.
  static asio::awaitable<void> writer(std::shared_ptr<ws_session> self) {
    auto& ws = self->ws_;
    for (;;) {
      std::string msg;
      bool have = false;
      bool do_close = false;
      websocket::close_reason cr;
      {
        std::lock_guard lock(self->mu_);
        if (self->ended_) break;
        if (!self->queue_.empty()) {
          msg = std::move(self->queue_.front());
          self->queue_.pop_front();
          self->queued_bytes_ -= msg.size();
          have = true;
        } else if (self->close_requested_) {
          do_close = true;
          cr.code = self->close_code_;
          cr.reason = self->close_reason_;
        }
      }
      if (have) {
        ws.text(true);
        auto [ec, n] = co_await ws.async_write(asio::buffer(msg), use_tuple);
        if (ec) {
          if (ec != websocket::error::closed && ec != asio::error::operation_aborted && !self->is_ended()) {
            beast::get_lowest_layer(ws).close();  // make the reader end too
          }
          break;
        }
        continue;
      }
      if (do_close) {
        co_await ws.async_close(cr, use_tuple);
        break;
      }
      self->wake_.expires_at(asio::steady_timer::time_point::max());
      co_await self->wake_.async_wait(use_tuple);
    }
  }

  // Wakes the writer (and, when closing, arms the hard-close deadline) on the
  // strand: the timers are not thread-safe.
  void poke(bool closing) {
    asio::post(ws_.get_executor(), [self = this->shared_from_this(), closing] {
      self->wake_.cancel();
      if (closing) {
        self->read_gate_.cancel();
        self->arm_deadline();
      }
    });
  }

  void arm_deadline() {
    if (deadline_armed_ || is_ended()) return;
    deadline_armed_ = true;
    deadline_.expires_after(close_timeout_);
    deadline_.async_wait([self = this->shared_from_this()](error_code ec) {
      if (ec || self->is_ended()) return;
      // The close frame could not be sent (a write is stuck behind a peer
      // that does not read) or was not answered.
      beast::get_lowest_layer(self->ws_).close();
    });
  }

  template <class F>
  void deliver(F&& f) {
    if (!handler_) return;
    try {
      f();
    } catch (const std::exception& e) {
      spdlog::error("net: websocket handler threw: {}", e.what());
      close(ws_close_internal, "internal error");
    } catch (...) {
      spdlog::error("net: websocket handler threw");
      close(ws_close_internal, "internal error");
    }
  }

  bool is_ended() {
    std::lock_guard lock(mu_);
    return ended_;
  }

  bool closing() {
    std::lock_guard lock(mu_);
    return close_requested_ || ended_;
  }

  void mark_ended() {
    {
      std::lock_guard lock(mu_);
      ended_ = true;
      queue_.clear();
      queued_bytes_ = 0;
    }
    wake_.cancel();
    read_gate_.cancel();
    deadline_.cancel();
  }

  websocket::stream<Stream> ws_;
  asio::steady_timer wake_;       // the idle writer waits on it; cancel() wakes it
  asio::steady_timer read_gate_;  // a paused reader waits on it
  std::atomic<bool> read_paused_{false};
  asio::steady_timer deadline_;          // hard close when a close does not complete
  std::shared_ptr<ws_handler> handler_;  // strand only
  std::string remote_;
  const std::size_t max_frames_;
  const std::size_t max_bytes_;
  const std::chrono::milliseconds close_timeout_;
  bool deadline_armed_ = false;  // strand only

  std::mutex mu_;  // guards what send_text/close touch from other threads
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  bool close_requested_ = false;
  bool ended_ = false;
  std::uint16_t close_code_ = ws_close_normal;
  std::string close_reason_;
};

}  // namespace chatd::net::ws_detail
