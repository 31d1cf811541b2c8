// JSON shapes of participants on the wire (docs/protocol.md).
#pragma once

#include "common/json.h"
#include "store/store.h"

namespace chatd::participants {

// {"id","kind","display_name"}: what anyone may see.
json::object public_view(const store::participant& p);
// Adds "username" (and "description" for shops): the owner's view, login and search answers.
json::object full_view(const store::participant& p);

}  // namespace chatd::participants
