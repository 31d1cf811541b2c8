// The conformance suite of the discovery registry port. It knows only
// registry.h; each backend is plugged in with a factory (see
// registry_backends_test.cpp). Passing it is what "the backends behave the
// same" means.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "discovery/registry.h"

namespace chatd::discovery::testing {

// Owns one fresh, empty registry and whatever it needs (a store, a server).
class registry_env {
 public:
  virtual ~registry_env() = default;
  virtual registry& get() = 0;
};

struct registry_backend {
  std::string name;
  std::function<std::unique_ptr<registry_env>()> make;
};

inline std::ostream& operator<<(std::ostream& os, const registry_backend& b) { return os << b.name; }

class RegistryConformance : public ::testing::TestWithParam<registry_backend> {
 protected:
  void SetUp() override {
    env_ = GetParam().make();
    ASSERT_NE(env_, nullptr);
  }
  void TearDown() override { env_.reset(); }
  registry& reg() { return env_->get(); }

 private:
  std::unique_ptr<registry_env> env_;
};

}  // namespace chatd::discovery::testing
