// The in-process registry of `chatd all`: a map under a mutex. Expiry is
// checked on read against a monotonic clock, so wall-clock steps never
// resurrect or kill entries.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "discovery/registry.h"

namespace chatd::discovery {

class memory_registry final : public registry {
 public:
  // Milliseconds on any monotonic scale; empty: std::chrono::steady_clock.
  // Tests inject their own to check expiry without sleeping.
  using clock_fn = std::function<std::int64_t()>;
  explicit memory_registry(clock_fn now = {});

  status heartbeat(const server_info& s, std::chrono::milliseconds ttl) override;
  status remove(const std::string& id) override;
  result<std::vector<server_info>> healthy() override;

 private:
  struct entry {
    server_info info;
    std::int64_t expires_at = 0;  // on clock_'s scale
  };
  std::int64_t now() const;

  clock_fn clock_;
  std::mutex mu_;
  std::map<std::string, entry> entries_;  // ordered: healthy() answers by id
};

}  // namespace chatd::discovery
