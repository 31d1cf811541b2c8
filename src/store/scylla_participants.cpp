// The ScyllaDB store: participants, their username claims and the
// username and display-name search indexes.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

status scylla_chat_store::create_participant(const participant& p) {
  auto existing = s_->run(sel_participant_, values().id(p.id));
  if (!existing) return std::move(existing).err();
  if (!existing->empty()) return make_error(errc::conflict, "participant " + std::to_string(p.id) + " exists");

  auto claim = s_->run(claim_username_, values().i32(kind_int(p.kind)).text(p.username).id(p.id));
  if (!claim) return std::move(claim).err();
  if (!applied(*claim)) {
    // Our own earlier attempt that died before writing the rows owns the
    // name: finish it. Anyone else's is a conflict.
    auto owner = lwt_i64(*claim, "id");
    if (!owner || static_cast<id_t>(*owner) != p.id) {
      return make_error(errc::conflict, "username '" + p.username + "' is taken");
    }
  }
  std::vector<pending> ps;
  ps.push_back(s_->execute(ins_participant_, values()
                                                 .id(p.id)
                                                 .i32(kind_int(p.kind))
                                                 .text(p.username)
                                                 .text(p.display_name)
                                                 .text(p.description)
                                                 .text(p.password_hash)
                                                 .boolean(p.banned)
                                                 .i64(p.created_at)));
  ps.push_back(s_->execute(ins_username_index_, values().i32(kind_int(p.kind)).text(p.username).id(p.id)));
  ps.push_back(
      s_->execute(ins_display_index_, values().i32(kind_int(p.kind)).text(fold_display_name(p.display_name)).id(p.id)));
  return wait_all(ps);
}

result<participant> scylla_chat_store::get_participant(id_t id) {
  auto r = s_->run(sel_participant_, values().id(id));
  if (!r) return std::move(r).err();
  if (r->empty() || r->is_null(0, 2)) return make_error(errc::not_found, "no such participant");
  return read_participant(*r, 0);
}

result<participant> scylla_chat_store::find_participant(participant_kind kind, const std::string& username) {
  auto r = s_->run(sel_username_, values().i32(kind_int(kind)).text(username));
  if (!r) return std::move(r).err();
  if (r->empty()) return make_error(errc::not_found, "no such participant");
  return get_participant(r->id(0, 0));
}

result<std::vector<participant>> scylla_chat_store::search_participants(participant_kind kind,
                                                                        const std::string& prefix, std::size_t limit) {
  std::vector<participant> out;
  if (limit == 0) return out;
  std::string hi = prefix + std::string(max_code_point);
  std::map<std::string, participant> found;  // by username: the order of the answer
  auto offer = [&](participant p) {
    if (found.size() >= limit && p.username >= found.rbegin()->first) return;
    found.emplace(p.username, std::move(p));
    if (found.size() > limit) found.erase(std::prev(found.end()));
  };

  // Username index, in username order: the first `limit` are candidates.
  auto names = s_->run(search_usernames_, values()
                                              .i32(kind_int(kind))
                                              .text(prefix)
                                              .text(hi)
                                              .i32(static_cast<std::int32_t>(std::min<std::size_t>(limit, INT32_MAX))));
  if (!names) return std::move(names).err();
  std::vector<id_t> ids;
  for (std::size_t i = 0; i < names->size(); ++i) {
    if (names->view(i, 0).starts_with(prefix)) ids.push_back(names->id(i, 1));
  }

  // Display-name index on the folded name, paged, at most the scan cap.
  std::string folded = fold_display_name(prefix);
  std::string fhi = folded + std::string(max_code_point);
  std::string page_state;
  std::int32_t scanned = 0;
  std::vector<id_t> by_display;
  for (;;) {
    auto page =
        s_->execute(search_display_, values().i32(kind_int(kind)).text(folded).text(fhi).i32(display_name_scan_cap),
                    1000, page_state)
            .wait();
    if (!page) return std::move(page).err();
    for (std::size_t i = 0; i < page->size(); ++i, ++scanned) by_display.push_back(page->id(i, 1));
    auto next = page->paging_state();
    if (!next || scanned >= display_name_scan_cap) break;
    page_state = std::move(*next);
  }

  auto loaded = load_participants(ids);
  if (!loaded) return std::move(loaded).err();
  for (auto& p : *loaded) offer(std::move(p));
  auto loaded_display = load_participants(by_display);
  if (!loaded_display) return std::move(loaded_display).err();
  for (auto& p : *loaded_display) {
    if (p.kind != kind || !fold_display_name(p.display_name).starts_with(folded)) continue;
    if (found.count(p.username) != 0) continue;
    offer(std::move(p));
  }
  out.reserve(found.size());
  for (auto& [name, p] : found) out.push_back(std::move(p));
  return out;
}

status scylla_chat_store::set_banned(id_t id, bool banned) {
  auto p = get_participant(id);
  if (!p) return std::move(p).err();
  if (p->banned == banned) return {};
  auto r = s_->run(upd_banned_, values().boolean(banned).id(id));
  if (!r) return std::move(r).err();
  return {};
}

status scylla_chat_store::set_password_hash(id_t id, const std::string& hash) {
  // An UPDATE of a missing row would create one: check first.
  auto p = get_participant(id);
  if (!p) return std::move(p).err();
  auto r = s_->run(upd_password_, values().text(hash).id(id));
  if (!r) return std::move(r).err();
  return {};
}

// Loads participants by id concurrently, skipping ids without a row.
result<std::vector<participant>> scylla_chat_store::load_participants(const std::vector<id_t>& ids) {
  std::vector<participant> out;
  std::vector<pending> ps;
  ps.reserve(ids.size());
  for (id_t id : ids) ps.push_back(s_->execute(sel_participant_, values().id(id)));
  std::optional<error> failed;
  for (auto& p : ps) {
    auto r = p.wait();
    if (!r) {
      if (!failed) failed = std::move(r).err();
      continue;
    }
    if (!r->empty() && !r->is_null(0, 2)) out.push_back(read_participant(*r, 0));
  }
  if (failed) return std::move(*failed);
  return out;
}

}  // namespace chatd::store::scylla_backend
