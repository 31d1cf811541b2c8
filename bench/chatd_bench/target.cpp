#include "target.h"

#include <map>
#include <stdexcept>

namespace chatd_bench {

namespace {
// A function-local static: registrars in other files run during static
// initialisation, in an order nobody controls.
std::map<std::string, target_factory>& registry() {
  static std::map<std::string, target_factory> r;
  return r;
}
}  // namespace

target_registrar::target_registrar(const char* name, target_factory make) { registry()[name] = make; }

std::unique_ptr<target> make_target(const std::string& name, const target_options& o) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (auto& n : target_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown target '" + name + "' (known: " + known + ")");
  }
  return it->second(o);
}

std::vector<std::string> target_names() {
  std::vector<std::string> out;
  for (auto& [n, f] : registry()) out.push_back(n);
  return out;
}

}  // namespace chatd_bench
