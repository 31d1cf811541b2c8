// Conversations and their history, as both the gateway (HTTP) and the chat
// server (WebSocket `ready`, `history`, `read`) serve them. Access rule: only
// members see a conversation, except admins; anyone else gets not_found, as
// if it did not exist.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "store/store.h"

namespace chatd {
class id_generator;
}

namespace chatd::chat {

using store::participant;

struct conversation_view {
  store::conversation conv;
  std::vector<participant> members;
  std::optional<store::message> last_message;
  std::size_t unread_count = 0;
  std::int64_t updated_at = 0;
  std::uint64_t read_up_to = 0;
  // How far each other member has read (participant id, message id), for
  // "Seen" after a reload; only members who read something, and only in
  // conversations of at most read_states_member_cap members.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> read_states;
};

inline constexpr std::size_t max_group_members = 1000;
inline constexpr std::size_t max_title_chars = 200;
inline constexpr std::size_t unread_cap = 1000;  // unread counts saturate here
// Larger groups show "seen by" from live read frames only: a view must not
// cost a read per member of a thousand-member group.
inline constexpr std::size_t read_states_member_cap = 50;

class conversation_service {
 public:
  conversation_service(store::chat_store& db, id_generator& ids) : db_(db), ids_(ids) {}

  // Returns the view and whether it was created (a direct pair that exists
  // already comes back with false).
  result<std::pair<conversation_view, bool>> create(const participant& caller, store::conversation_kind kind,
                                                    std::vector<std::uint64_t> members, std::string title);
  result<std::vector<conversation_view>> list(const participant& caller, std::size_t limit);
  result<conversation_view> get(const participant& caller, std::uint64_t conversation_id);
  // Newest first; before = 0 means from the newest.
  result<store::message_page> history(const participant& caller, std::uint64_t conversation_id, std::uint64_t before,
                                      std::size_t limit);
  // Moves the caller's read marker forward (never back). Returns the marker.
  result<std::uint64_t> mark_read(const participant& caller, std::uint64_t conversation_id, std::uint64_t message_id);
  // Admins join any conversation and add anyone to a group; the creator of a
  // group adds others to it; any other member gets forbidden.
  result<conversation_view> add_member(const participant& caller, std::uint64_t conversation_id,
                                       std::uint64_t participant_id);
  // Member, or an admin: the conversation; anyone else: not_found.
  result<store::conversation> check_access(const participant& caller, std::uint64_t conversation_id);
  // As check_access, for acting in it (send, read marker, typing): an admin
  // who is not a member gets forbidden.
  result<store::conversation> check_participation(const participant& caller, std::uint64_t conversation_id);
  // Ids of the members.
  result<std::vector<std::uint64_t>> members(std::uint64_t conversation_id);

 private:
  result<conversation_view> build_view(const participant& caller, const store::conversation& c,
                                       const store::inbox_entry* entry);

  store::chat_store& db_;
  id_generator& ids_;
};

// Wire shapes (docs/protocol.md).
json::object message_view(const store::message& m);
json::object conversation_json(const conversation_view& v);

}  // namespace chatd::chat
