// A real discovery service (memory_registry behind service's internal
// routes) on a real HTTP server, and an http_registry client for it.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/worker_pool.h"
#include "discovery/http_registry.h"
#include "discovery/memory_registry.h"
#include "discovery/service.h"
#include "net/server.h"
#include "registry_conformance.h"

namespace chatd::discovery::testing {

// A discovery service on 127.0.0.1:<free port> with its internal routes, and
// an http_registry pointing at it.
class http_env final : public registry_env {
 public:
  static constexpr const char* secret = "conformance-secret";

  http_env() : svc_(backend_, discovery_config{}), io_(1), workers_(4, "discovery-test") {
    svc_.add_internal_routes(routes_, secret);
    server_ = std::make_unique<net::http_server>(io_, workers_, routes_, net::server_options{});
    io_.start();
    address_ = server_->start();
    client_ = std::make_unique<http_registry>("http://" + address_, secret);
  }
  ~http_env() override {
    server_->stop(std::chrono::milliseconds{1000});
    workers_.stop();
    io_.stop();
  }
  registry& get() override { return *client_; }
  registry& backend() { return backend_; }
  const std::string& address() const { return address_; }

 private:
  memory_registry backend_;
  service svc_;
  net::router routes_;
  net::io_pool io_;
  worker_pool workers_;
  std::unique_ptr<net::http_server> server_;
  std::string address_;
  std::unique_ptr<http_registry> client_;
};

}  // namespace chatd::discovery::testing
