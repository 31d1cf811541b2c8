// The strict JSON edge (common/json.h) every request body and WebSocket frame
// goes through: parse_json_object, then json_fields as the decoders use it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace chatd;
  std::string_view text(reinterpret_cast<const char*>(data), size);

  // Whatever the bytes, the UTF-8 helpers stay inside the string and agree.
  std::size_t n = utf8_length(text);
  if (valid_utf8(text)) {
    auto prefix = utf8_prefix(text, n / 2);
    if (!valid_utf8(prefix) || utf8_length(prefix) != n / 2) __builtin_trap();
  }

  auto parsed = parse_json_object(text);
  if (!parsed) return 0;
  const json::object& o = *parsed;
  // Every accessor on every key the object has, as a decoder would ask; the
  // first few keys with each type so both the success and the error path run.
  json_fields f(o);
  std::size_t i = 0;
  for (const auto& kv : o) {
    std::string_view key = kv.key();
    switch (i++ % 6) {
      case 0:
        (void)f.str(key, true);
        break;
      case 1:
        (void)f.id(key, true);
        break;
      case 2:
        (void)f.integer(key, false, -100, 100);
        break;
      case 3:
        (void)f.boolean(key, false);
        break;
      case 4:
        (void)f.id_array(key, true, 8);
        break;
      default:
        (void)f.has(key);
        break;
    }
  }
  (void)f.str("absent", true);
  (void)f.finish();
  (void)to_json(o);
  return 0;
}
