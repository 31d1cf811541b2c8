// The TOML configuration file (common/config.h): load_config on the file's
// text. A bad file must end in config_error (start-up fails with one line),
// never in another exception, a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  chatd::config_sources s;
  s.file = "fuzz.toml";
  s.file_text = std::string(reinterpret_cast<const char*>(data), size);
  s.env.emplace();  // not the process environment
  try {
    auto c = chatd::load_config(s);
    (void)chatd::describe_config(c);
  } catch (const chatd::config_error&) {
  }
  return 0;
}
