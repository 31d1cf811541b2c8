// A registry that lives in another process: the client side of a discovery
// service's internal endpoints (wire.h), used by chat servers and gateways of
// the distributed layout (`discovery.url`).
//
// Errors: the discovery service unreachable, timing out, refusing the
// signature or answering anything unexpected -> errc::unavailable; a 400
// (the heartbeat itself is invalid, retrying cannot help) -> bad_request with
// the service's message, which is what the other registries answer too.
#pragma once

#include <chrono>
#include <string>

#include "discovery/registry.h"
#include "rpc/internal.h"

namespace chatd::discovery {

class http_registry final : public registry {
 public:
  // `base_url` is "http://host:port" with an optional path prefix; `secret`
  // is the shared internal secret. Throws std::invalid_argument for a url
  // that is not http:// or an empty secret (start-up configuration errors).
  // Calls count in the default metrics registry (service "discovery").
  http_registry(std::string base_url, std::string secret, rpc::client_options o = {});

  status heartbeat(const server_info& s, std::chrono::milliseconds ttl) override;
  status remove(const std::string& id) override;
  result<std::vector<server_info>> healthy() override;

 private:
  result<std::string> call(std::string_view method, std::string_view path, std::string body);

  rpc::client client_;
};

}  // namespace chatd::discovery
