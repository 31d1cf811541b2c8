#include "chat/conversations.h"

#include <algorithm>

#include "common/ids.h"
#include "participants/views.h"

namespace chatd::chat {

result<store::conversation> conversation_service::check_access(const participant& caller,
                                                               std::uint64_t conversation_id) {
  auto c = db_.get_conversation(conversation_id);
  if (!c) return std::move(c).err();
  if (caller.kind == store::participant_kind::admin) return c;
  auto member = db_.is_member(conversation_id, caller.id);
  if (!member) return std::move(member).err();
  if (!*member) return make_error(errc::not_found, "conversation not found");
  return c;
}

result<store::conversation> conversation_service::check_participation(const participant& caller,
                                                                      std::uint64_t conversation_id) {
  auto c = check_access(caller, conversation_id);
  if (!c) return c;
  if (caller.kind == store::participant_kind::admin) {
    // Admins read any conversation but act in it only once they joined: a
    // message, a read marker or "typing" from a stranger would show the
    // members someone who is not in their list.
    auto member = db_.is_member(conversation_id, caller.id);
    if (!member) return std::move(member).err();
    if (!*member) return make_error(errc::forbidden, "join the conversation before taking part in it");
  }
  return c;
}

result<std::vector<std::uint64_t>> conversation_service::members(std::uint64_t conversation_id) {
  return db_.list_members(conversation_id);
}

result<conversation_view> conversation_service::build_view(const participant& caller, const store::conversation& c,
                                                           const store::inbox_entry* entry) {
  conversation_view v;
  v.conv = c;
  auto ids = db_.list_members(c.id);
  if (!ids) return std::move(ids).err();
  v.members.reserve(ids->size());
  for (auto id : *ids) {
    auto p = db_.get_participant(id);
    if (p) v.members.push_back(std::move(p.value()));
  }
  std::uint64_t last_id = 0;
  v.updated_at = c.created_at;
  if (entry) {
    last_id = entry->last_message_id;
    v.updated_at = entry->updated_at;
  } else {
    auto page = db_.list_messages(c.id, 0, 1);
    if (!page) return std::move(page).err();
    if (!page->messages.empty()) {
      last_id = page->messages.front().id;
      v.updated_at = std::max(v.updated_at, page->messages.front().created_at);
    }
  }
  if (last_id != 0) {
    auto m = db_.get_message(last_id);
    if (m) v.last_message = std::move(m.value());
  }
  auto read = db_.get_read(caller.id, c.id);
  if (!read) return std::move(read).err();
  v.read_up_to = *read;
  if (ids->size() <= read_states_member_cap) {
    for (auto id : *ids) {
      if (id == caller.id) continue;
      auto theirs = db_.get_read(id, c.id);
      if (!theirs) return std::move(theirs).err();
      if (*theirs != 0) v.read_states.emplace_back(id, *theirs);
    }
  }
  if (last_id > *read) {
    auto n = db_.count_messages_after(c.id, *read, caller.id, unread_cap);
    if (!n) return std::move(n).err();
    v.unread_count = *n;
  }
  return v;
}

result<std::pair<conversation_view, bool>> conversation_service::create(const participant& caller,
                                                                        store::conversation_kind kind,
                                                                        std::vector<std::uint64_t> members,
                                                                        std::string title) {
  if (!valid_utf8(title) || utf8_length(title) > max_title_chars) {
    return make_error(errc::bad_request, "title must be at most 200 characters");
  }
  members.push_back(caller.id);
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  if (members.size() > max_group_members) {
    return make_error(errc::bad_request, "a conversation has at most 1000 members");
  }
  for (auto id : members) {
    if (id == caller.id) continue;
    auto p = db_.get_participant(id);
    if (!p) {
      if (p.err().code == errc::not_found)
        return make_error(errc::not_found, "participant " + format_id(id) + " not found");
      return std::move(p).err();
    }
  }
  store::conversation c;
  auto id = ids_.try_next();
  if (!id) return std::move(id).err();
  c.id = *id;
  c.kind = kind;
  c.title = std::move(title);
  c.created_at = now_ms();
  c.creator_id = caller.id;
  if (kind == store::conversation_kind::direct) {
    if (members.size() != 2) {
      return make_error(errc::bad_request, "a direct conversation has exactly two members");
    }
    auto made = db_.create_direct(c, members[0], members[1]);
    if (!made) return std::move(made).err();
    auto v = build_view(caller, made->first, nullptr);
    if (!v) return std::move(v).err();
    return std::make_pair(std::move(v.value()), made->second);
  }
  // A group of one is allowed: like a Slack channel it may start with only its
  // creator, and members join later.
  if (auto s = db_.create_conversation(c, members); !s) return std::move(s).err();
  auto v = build_view(caller, c, nullptr);
  if (!v) return std::move(v).err();
  return std::make_pair(std::move(v.value()), true);
}

result<std::vector<conversation_view>> conversation_service::list(const participant& caller, std::size_t limit) {
  auto inbox = db_.list_inbox(caller.id, limit);
  if (!inbox) return std::move(inbox).err();
  std::vector<conversation_view> out;
  out.reserve(inbox->size());
  for (const auto& e : *inbox) {
    auto c = db_.get_conversation(e.conversation_id);
    if (!c) continue;  // a conversation whose row is gone is skipped, not an error for the list
    auto v = build_view(caller, *c, &e);
    if (!v) return std::move(v).err();
    out.push_back(std::move(v.value()));
  }
  return out;
}

result<conversation_view> conversation_service::get(const participant& caller, std::uint64_t conversation_id) {
  auto c = check_access(caller, conversation_id);
  if (!c) return std::move(c).err();
  return build_view(caller, *c, nullptr);
}

result<store::message_page> conversation_service::history(const participant& caller, std::uint64_t conversation_id,
                                                          std::uint64_t before, std::size_t limit) {
  auto c = check_access(caller, conversation_id);
  if (!c) return std::move(c).err();
  return db_.list_messages(conversation_id, before, limit);
}

result<std::uint64_t> conversation_service::mark_read(const participant& caller, std::uint64_t conversation_id,
                                                      std::uint64_t message_id) {
  auto c = check_participation(caller, conversation_id);
  if (!c) return std::move(c).err();
  auto m = db_.get_message(message_id);
  if (!m || m->conversation_id != conversation_id) {
    if (!m && m.err().code != errc::not_found) return std::move(m).err();
    return make_error(errc::not_found, "message not found in this conversation");
  }
  return db_.mark_read(caller.id, conversation_id, message_id);
}

result<conversation_view> conversation_service::add_member(const participant& caller, std::uint64_t conversation_id,
                                                           std::uint64_t participant_id) {
  auto c = check_access(caller, conversation_id);
  if (!c) return std::move(c).err();
  bool is_admin = caller.kind == store::participant_kind::admin;
  if (c->kind == store::conversation_kind::direct && !(is_admin && participant_id == caller.id)) {
    return make_error(errc::forbidden, "only an admin may join a direct conversation, and only themselves");
  }
  // Only the creator and admins shape a group's membership, so that a member
  // cannot pull strangers into someone else's group (as in a Telegram group or
  // a private Slack channel). check_access above already answered not_found
  // to a non-member, so a stranger learns nothing here. A group stored before
  // chatd kept its creator has creator_id 0, which is nobody's id: only admins
  // add to it, rather than guessing a creator.
  if (!is_admin && c->creator_id != caller.id) {
    return make_error(errc::forbidden, "only the group's creator or an admin may add members");
  }
  auto target = db_.get_participant(participant_id);
  if (!target) return std::move(target).err();
  auto ids = db_.list_members(conversation_id);
  if (!ids) return std::move(ids).err();
  if (ids->size() >= max_group_members) return make_error(errc::bad_request, "the conversation is full");
  if (auto s = db_.add_member(conversation_id, participant_id); !s) return std::move(s).err();
  return build_view(caller, *c, nullptr);
}

json::object message_view(const store::message& m) {
  json::object o;
  o["id"] = format_id(m.id);
  o["conversation_id"] = format_id(m.conversation_id);
  json::object sender;
  sender["id"] = format_id(m.sender_id);
  sender["kind"] = store::kind_name(m.sender_kind);
  o["sender"] = std::move(sender);
  o["body"] = m.deleted ? std::string() : m.body;
  o["client_msg_id"] = m.client_msg_id;
  o["created_at"] = m.created_at;
  if (m.edited_at) {
    o["edited_at"] = m.edited_at;
  } else {
    o["edited_at"] = nullptr;
  }
  o["deleted"] = m.deleted;
  return o;
}

json::object conversation_json(const conversation_view& v) {
  json::object o;
  o["id"] = format_id(v.conv.id);
  o["kind"] = v.conv.kind == store::conversation_kind::direct ? "direct" : "group";
  o["title"] = v.conv.title;
  json::array members;
  for (const auto& p : v.members) members.push_back(participants::public_view(p));
  o["members"] = std::move(members);
  if (v.last_message) {
    o["last_message"] = message_view(*v.last_message);
  } else {
    o["last_message"] = nullptr;
  }
  o["unread_count"] = v.unread_count;
  o["updated_at"] = v.updated_at;
  o["created_at"] = v.conv.created_at;
  o["created_by"] = v.conv.creator_id ? json::value(format_id(v.conv.creator_id)) : json::value(nullptr);
  o["last_read_message_id"] = v.read_up_to ? json::value(format_id(v.read_up_to)) : json::value(nullptr);
  json::array reads;
  for (const auto& [participant_id, message_id] : v.read_states) {
    reads.push_back(json::object{{"participant_id", format_id(participant_id)}, {"message_id", format_id(message_id)}});
  }
  o["read_states"] = std::move(reads);
  return o;
}

}  // namespace chatd::chat
