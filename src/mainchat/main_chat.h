// The main chat service: consumes the message topic in consumer group
// "main-chat", stores each message exactly once (idempotent writes keyed by
// message id, client_msg_id dedup), updates inboxes and read state, and asks
// the notification service to notify recipients who are not active.
// The caller commits the queue offset only after apply() succeeded.
#pragma once

#include <cstdint>
#include <vector>

#include "common/error.h"

namespace chatd {
class metrics_registry;
class counter;
namespace store {
class chat_store;
}
namespace presence {
class presence_port;
}
namespace notification {
class notifier;
}
namespace chat {
struct event;
}
}  // namespace chatd

namespace chatd::mainchat {

class main_chat {
 public:
  main_chat(store::chat_store& db, presence::presence_port& presence, notification::notifier& notifier,
            metrics_registry& metrics);

  // Applies one record. Safe to call again for the same record (redelivery).
  // An error means "retry later": the offset must not be committed.
  status apply(const chat::event& e);
  // Applies records in order, with one inbox update per conversation, one
  // read mark per sender and conversation and one presence question for the
  // whole batch (both only move forward, so the last one is all that counts).
  // Safe to call again for the same batch; an error means "retry it all".
  status apply_batch(const std::vector<chat::event>& events);

 private:
  struct pending;
  status store_message(const chat::event& e, pending& p);
  status finish(pending& p);
  status update_message(const chat::event& e);

  store::chat_store& db_;
  presence::presence_port& presence_;
  notification::notifier& notifier_;
  counter& stored_;
  counter& duplicates_;
  counter& notify_requests_;
};

}  // namespace chatd::mainchat
