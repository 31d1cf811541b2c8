#include "participants/views.h"

#include "common/ids.h"

namespace chatd::participants {

json::object public_view(const store::participant& p) {
  json::object o;
  o["id"] = format_id(p.id);
  o["kind"] = store::kind_name(p.kind);
  o["display_name"] = p.display_name;
  return o;
}

json::object full_view(const store::participant& p) {
  json::object o;
  o["id"] = format_id(p.id);
  o["kind"] = store::kind_name(p.kind);
  o["username"] = p.username;
  o["display_name"] = p.display_name;
  if (p.kind == store::participant_kind::shop) o["description"] = p.description;
  if (p.banned) o["banned"] = true;
  o["created_at"] = p.created_at;
  return o;
}

}  // namespace chatd::participants
