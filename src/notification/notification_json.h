// Wire shapes of the notification service.
#pragma once

#include "common/json.h"
#include "store/store.h"

namespace chatd::notification {

// The stored notification as clients and webhooks see it (api-v1.md, the
// contract): {"id","recipient_id","conversation_id","message_id",
// "sender":{"id","kind","display_name"},"preview","count","created_at"}.
// The sender is read from the store; a missing participant gives
// {"id","kind","display_name":""} rather than failing the notification.
json::object notification_json(const store::notification& n, store::chat_store& store);

// The first code points of a message body that a notification shows.
inline constexpr std::size_t preview_chars = 140;

// A message in the contract's message shape, used by the internal
// notify endpoint: {"id","conversation_id","sender":{"id","kind"},"body",
// "client_msg_id","created_at","edited_at"|null,"deleted"}.
json::object message_wire(const store::message& m);
// The inverse; strict (unknown fields, wrong types are bad_request).
result<store::message> parse_message_wire(const json::object& o);

}  // namespace chatd::notification
