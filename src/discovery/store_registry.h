// The registry of the distributed layout: one row per chat server in the chat
// database (store::chat_store's chat-server table), with an absolute expiry
// that each heartbeat pushes forward. Every discovery instance reading the
// same database sees the same servers, so discovery itself is stateless.
//
// Expiry uses the wall clock (expires_at = now_ms() + ttl) because the row is
// shared between machines; their clocks must agree to well within the ttl.
#pragma once

#include <cstdint>
#include <functional>

#include "discovery/registry.h"

namespace chatd::store {
class chat_store;
}

namespace chatd::discovery {

class store_registry final : public registry {
 public:
  // Wall-clock milliseconds since the Unix epoch; empty: chatd::now_ms().
  using clock_fn = std::function<std::int64_t()>;
  // `db` must outlive the registry.
  explicit store_registry(store::chat_store& db, clock_fn now = {});

  status heartbeat(const server_info& s, std::chrono::milliseconds ttl) override;
  status remove(const std::string& id) override;
  result<std::vector<server_info>> healthy() override;

 private:
  std::int64_t now() const;

  store::chat_store& db_;
  clock_fn clock_;
};

}  // namespace chatd::discovery
