// The conformance suite against the embedded log, each test in its own fresh
// directory; open() again on the same directory is a process restart.
#include "queue/embedded_log.h"
#include "queue/queue_conformance.h"
#include "queue/temp_dir.h"

namespace chatd::queue::testing {
namespace {

class embedded_env final : public queue_env {
 public:
  std::unique_ptr<queue> open() override {
    embedded_log_options opt;
    opt.path = dir_.path() + "/log";
    opt.partitions = 4;
    return open_embedded_log(opt);
  }

 private:
  temp_dir dir_;
};

INSTANTIATE_TEST_SUITE_P(embedded, queue_conformance,
                         ::testing::Values(conformance_backend{"embedded",
                                                               [] { return std::make_unique<embedded_env>(); }}),
                         conformance_backend_name);

}  // namespace
}  // namespace chatd::queue::testing
