// How the chat services put events on the message queue. Implemented over the
// queue port (src/app wiring); a fake in unit tests.
#pragma once

#include <functional>

#include "chat/events.h"
#include "common/error.h"

namespace chatd::chat {

class publisher {
 public:
  virtual ~publisher() = default;
  // Durable topic (<prefix>messages). `done` runs once the queue holds the
  // record durably (or failed). Records enqueued one after another with the
  // same key keep that order in the queue, which is what lets message ids
  // agree with queue order.
  virtual void publish_durable(const event& e, std::function<void(status)> done) = 0;
  // Ephemeral topic (<prefix>events): best effort, does not wait.
  virtual void publish_ephemeral(const event& e) = 0;
};

}  // namespace chatd::chat
