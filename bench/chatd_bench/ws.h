// One WebSocket client connection: connect (optionally from a given local
// address), upgrade, run the target's handshake until the connection is
// usable, then read frames and queue writes. The only part of the tool that
// includes Beast's WebSocket headers (ws.cpp), so the scenarios compile fast.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "target.h"

namespace chatd_bench {

class ws_connection : public std::enable_shared_from_this<ws_connection> {
 public:
  explicit ws_connection(boost::asio::io_context& ioc);
  ~ws_connection();
  ws_connection(const ws_connection&) = delete;
  ws_connection& operator=(const ws_connection&) = delete;

  // Connects to a.host:a.port, upgrades at `path` and runs `h` until ready.
  // Empty on success, else what went wrong. `local` unspecified: the
  // kernel's choice of source address.
  boost::asio::awaitable<std::string> open(const account& a, std::string_view path, boost::asio::ip::address local,
                                           handshake& h, std::chrono::milliseconds timeout);
  // The next frame, valid until the next call; false once the connection
  // is closed (why in error()).
  boost::asio::awaitable<bool> read(std::string_view& frame);
  // Queues a frame; frames go out in order, one write at a time.
  void send(std::string frame);
  // Drops the TCP connection at once (a client that vanishes).
  void close();
  bool is_open() const;
  const std::string& error() const;
  std::size_t queued() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  void write_next();
};

}  // namespace chatd_bench
