// Role wiring: builds the services a role needs from the configuration,
// starts them, waits for SIGINT/SIGTERM and stops them in reverse order.
#pragma once

#include <string>

#include "common/config.h"

namespace chatd::app {

// Runs until a termination signal; returns the process exit code.
int run_role(const std::string& role, const config& cfg);

// `chatd admin create`: creates the admin (or says it exists). Exit code.
int admin_create(const config& cfg, const std::string& username, const std::string& password,
                 const std::string& display_name);

}  // namespace chatd::app
