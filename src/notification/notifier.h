// The notifier port: how the main chat service asks for a notification.
// Implementations: notification::service (in-process, `chatd all`) and
// notification::http_notifier (the distributed layout, over
// POST /v1/internal/notify). One conformance suite
// (tests/notification/notifier_conformance_test.cpp) runs against both.
#pragma once

#include <cstdint>

#include "common/error.h"
#include "store/store.h"

namespace chatd::notification {

// A stored message whose recipient is not active.
struct notify_request {
  std::uint64_t recipient_id = 0;
  store::message message;
};

class notifier {
 public:
  virtual ~notifier() = default;
  // Returns once the notification is durably recorded (stored) and its
  // delivery scheduled: the caller commits its queue offset only after that.
  // Idempotent: a second call for the same (recipient, message id) records
  // and delivers nothing new (queue redelivery).
  virtual status notify(const notify_request& req) = 0;
};

}  // namespace chatd::notification
