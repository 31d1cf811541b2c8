#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace chatd {

void init_logging(std::string_view level) {
  auto logger = spdlog::get("chatd");
  if (!logger) logger = spdlog::stderr_color_mt("chatd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

}  // namespace chatd
