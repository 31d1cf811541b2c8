// Logging goes to standard error through spdlog (stdout is reserved for the
// `listening <role> <host:port>` lines the contract promises).
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace chatd {

// Sets up the process-wide stderr logger; level is trace|debug|info|warn|error|off.
void init_logging(std::string_view level);

}  // namespace chatd
