#include "mainchat/router.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "chat/events.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "presence/presence.h"
#include "queue/queue.h"
#include "store/store.h"

namespace chatd::mainchat {

namespace {

// A presence change goes to the partners of the participant's most recent
// conversations, as the chat servers did when every one read every event.
constexpr std::size_t partner_conversations = 500;
// A server seen in the route table stays a fallback target this long after.
constexpr std::int64_t remember_servers_ms = 10LL * 60 * 1000;

}  // namespace

std::string delivery_topic(std::string_view prefix, std::string_view server_id) {
  std::string t(prefix);
  t += "deliver.";
  t += server_id;
  return t;
}

bool valid_route_name(std::string_view server_id) {
  if (server_id.empty() || server_id.size() > 200) return false;
  return std::all_of(server_id.begin(), server_id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

struct router::impl {
  impl(router_deps d, std::string prefix)
      : d(d),
        prefix(std::move(prefix)),
        records(d.metrics.counter("chatd_router_records_total", "Queue records the router routed")),
        routed_copies(d.metrics.counter("chatd_router_copies_total", "Copies written to chat servers' delivery topics",
                                        {{"mode", "routed"}})),
        broadcast_copies(d.metrics.counter(
            "chatd_router_copies_total", "Copies written to chat servers' delivery topics", {{"mode", "broadcast"}})) {}

  router_deps d;
  std::string prefix;
  counter& records;
  counter& routed_copies;
  counter& broadcast_copies;
  std::map<std::string, std::int64_t> seen_servers;  // server -> last time the route table named it

  struct item {
    chat::event e;
    std::string key;
    std::vector<std::uint64_t> recipients;
  };

  // Members per conversation, read once per batch.
  struct member_cache {
    store::chat_store& db;
    std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> got;
    result<const std::vector<std::uint64_t>*> of(std::uint64_t conv) {
      if (auto it = got.find(conv); it != got.end()) return &it->second;
      auto m = db.list_members(conv);
      if (!m) {
        // A conversation that is not there has nobody to deliver to.
        if (m.err().code == errc::not_found) return &got[conv];
        return std::move(m).err();
      }
      return &(got[conv] = std::move(*m));
    }
  };

  status recipients_of(item& it, member_cache& members) {
    const auto& e = it.e;
    switch (e.kind) {
      case chat::event_kind::message:
      case chat::event_kind::message_updated:
      case chat::event_kind::read:
      case chat::event_kind::typing: {
        auto conv = e.kind == chat::event_kind::message || e.kind == chat::event_kind::message_updated
                        ? e.message.conversation_id
                        : e.conversation_id;
        auto m = members.of(conv);
        if (!m) return std::move(m).err();
        for (auto pid : **m) {
          if (e.kind == chat::event_kind::typing && pid == e.participant_id) continue;
          it.recipients.push_back(pid);
        }
        return {};
      }
      case chat::event_kind::presence: {
        auto inbox = d.db.list_inbox(e.participant_id, partner_conversations);
        if (!inbox) return std::move(inbox).err();
        std::set<std::uint64_t> partners;
        for (const auto& entry : *inbox) {
          auto m = members.of(entry.conversation_id);
          if (!m) return std::move(m).err();
          partners.insert((*m)->begin(), (*m)->end());
        }
        partners.erase(e.participant_id);
        it.recipients.assign(partners.begin(), partners.end());
        return {};
      }
      case chat::event_kind::ban:
        it.recipients.push_back(e.participant_id);
        return {};
    }
    return {};
  }

  // Every server to send to when the route table cannot say.
  std::vector<std::string> fallback_targets(std::int64_t now) {
    std::set<std::string> all;
    if (d.live_servers) {
      for (auto& s : d.live_servers()) all.insert(std::move(s));
    }
    for (auto it = seen_servers.begin(); it != seen_servers.end();) {
      if (now - it->second > remember_servers_ms) {
        it = seen_servers.erase(it);
      } else {
        all.insert(it->first);
        ++it;
      }
    }
    std::vector<std::string> out;
    for (const auto& s : all) {
      if (valid_route_name(s)) out.push_back(s);
    }
    return out;
  }

  // Produces every copy and waits for all of them.
  status produce_all(std::vector<std::pair<std::string, item*>>& copies,
                     const std::map<std::pair<std::string, const item*>, std::vector<std::uint64_t>>& per_server) {
    struct waiter {
      std::mutex mu;
      std::condition_variable cv;
      std::size_t left = 0;
      std::optional<error> failed;
    };
    auto w = std::make_shared<waiter>();
    w->left = copies.size();
    for (auto& [server, it] : copies) {
      chat::event e = it->e;
      if (auto found = per_server.find({server, it}); found != per_server.end()) {
        e.recipients = found->second;
      } else {
        e.recipients = it->recipients;
      }
      d.producer.produce_async(delivery_topic(prefix, server), it->key, chat::encode_event(e),
                               [w](result<queue::record_position> r) {
                                 std::lock_guard lock(w->mu);
                                 if (!r && !w->failed) w->failed = r.err();
                                 if (--w->left == 0) w->cv.notify_all();
                               });
    }
    std::unique_lock lock(w->mu);
    w->cv.wait(lock, [&] { return w->left == 0; });
    if (w->failed) return make_error(errc::unavailable, "cannot write to a delivery topic: " + w->failed->message);
    return {};
  }
};

router::router(router_deps d, std::string topic_prefix) : impl_(std::make_unique<impl>(d, std::move(topic_prefix))) {}

router::~router() = default;

status router::route(const std::vector<queue::record>& batch) {
  auto& i = *impl_;
  std::vector<impl::item> items;
  items.reserve(batch.size());
  impl::member_cache members{i.d.db, {}};
  for (const auto& r : batch) {
    auto e = chat::decode_event(r.value);
    if (!e) {
      spdlog::error("router: skipping record {}/{}@{}: {}", r.topic, r.partition, r.offset, e.err().message);
      continue;
    }
    auto& it = items.emplace_back();
    it.e = std::move(*e);
    it.e.recipients.clear();
    it.key = r.key;
    if (auto s = i.recipients_of(it, members); !s) return make_error(errc::unavailable, s.err().message);
    if (it.recipients.empty()) items.pop_back();
  }
  i.records.inc(batch.size());
  if (items.empty()) return {};

  std::vector<std::uint64_t> everyone;
  for (const auto& it : items) everyone.insert(everyone.end(), it.recipients.begin(), it.recipients.end());
  std::sort(everyone.begin(), everyone.end());
  everyone.erase(std::unique(everyone.begin(), everyone.end()), everyone.end());

  auto now = now_ms();
  auto routes = i.d.presence.routes_of(everyone);
  std::vector<std::pair<std::string, impl::item*>> copies;
  std::map<std::pair<std::string, const impl::item*>, std::vector<std::uint64_t>> per_server;
  if (routes && routes->complete && routes->servers.size() == everyone.size()) {
    std::unordered_map<std::uint64_t, const std::vector<std::string>*> where;
    for (std::size_t k = 0; k < everyone.size(); ++k) {
      where[everyone[k]] = &routes->servers[k];
      for (const auto& s : routes->servers[k]) i.seen_servers[s] = now;
    }
    for (auto& it : items) {
      for (auto pid : it.recipients) {
        for (const auto& server : *where[pid]) {
          if (!valid_route_name(server)) continue;
          auto& v = per_server[{server, &it}];
          if (v.empty()) copies.emplace_back(server, &it);
          v.push_back(pid);
        }
      }
    }
    i.routed_copies.inc(copies.size());
  } else {
    if (!routes) spdlog::warn("router: no route table ({}); sending to every chat server", routes.err().message);
    for (const auto& server : i.fallback_targets(now)) {
      for (auto& it : items) copies.emplace_back(server, &it);
    }
    i.broadcast_copies.inc(copies.size());
  }
  if (copies.empty()) return {};
  return i.produce_all(copies, per_server);
}

}  // namespace chatd::mainchat
