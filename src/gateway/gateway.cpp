#include "gateway/gateway.h"

#include <chrono>

#include "chat/conversations.h"
#include "chat/messages.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rate_limiter.h"
#include "discovery/service.h"
#include "net/reply.h"
#include "participants/service.h"
#include "participants/views.h"
#include "presence/presence.h"
#include "store/store.h"
#include "web/static_files.h"

namespace chatd::gateway {

using net::error_reply;
using net::http_request;
using net::http_response;
using net::json_reply;

namespace {
// How many of the caller's most recent conversations are searched for one
// shared with a participant whose presence they ask for.
constexpr std::size_t presence_visibility_scan = 1000;
}  // namespace

struct gateway::impl {
  impl(deps d, const config& cfg, extensions ext)
      : d(d),
        cfg(cfg),
        ext(std::move(ext)),
        login_limit(cfg.rate_limits.login_per_minute / 60.0, cfg.rate_limits.login_per_minute) {}

  deps d;
  config cfg;
  extensions ext;
  rate_limiter login_limit;  // per client IP: login and registration

  using authed_handler = std::function<http_response(http_request&, const store::participant&)>;

  // Token check for every authenticated route: the participant must exist and
  // not be banned (a banned participant's calls are 403).
  // Which of the participant's buckets a route spends from.
  enum class spends { write, read };

  // The caller of an authenticated route, once its token and its bucket let it in.
  result<store::participant> admit(http_request& req, spends kind) {
    auto token = net::bearer_token(req, false);
    if (!token) return make_error(errc::unauthorized, "missing bearer token");
    auto who = d.participants.authenticate(*token);
    if (!who) return std::move(who).err();
    auto& bucket = kind == spends::write ? d.limits.writes : d.limits.reads;
    if (!bucket.allow(format_id(who->id))) return make_error(errc::rate_limited, "too many requests, slow down");
    return who;
  }

  net::http_handler authed(authed_handler h, spends kind) {
    return [this, h = std::move(h), kind](http_request& req) -> http_response {
      auto who = admit(req, kind);
      if (!who) return error_reply(who.err());
      return h(req, *who);
    };
  }

  using authed_async_handler = std::function<void(http_request&, const store::participant&, net::http_responder)>;

  net::async_http_handler authed_async(authed_async_handler h, spends kind) {
    return [this, h = std::move(h), kind](http_request& req, net::http_responder respond) {
      auto who = admit(req, kind);
      if (!who) return respond(error_reply(who.err()));
      h(req, *who, std::move(respond));
    };
  }

  net::http_handler ip_limited(net::http_handler h) {
    return [this, h = std::move(h)](http_request& req) -> http_response {
      if (!login_limit.allow(req.remote_addr)) return error_reply(errc::rate_limited, "too many attempts, slow down");
      return h(req);
    };
  }

  http_response register_kind(http_request& req, store::participant_kind kind) {
    auto body = parse_json_object(req.body);
    if (!body) return error_reply(body.err());
    json_fields f(*body);
    participants::registration r;
    r.kind = kind;
    auto username = f.str("username", true);
    auto password = f.str("password", true);
    auto display_name = f.str("display_name", true);
    std::optional<std::string_view> description;
    if (kind == store::participant_kind::shop) description = f.str("description", false);
    if (auto s = f.finish(); !s) return error_reply(s.err());
    r.username = *username;
    r.password = *password;
    r.display_name = *display_name;
    if (description) r.description = *description;
    auto p = d.participants.register_participant(r);
    if (!p) return error_reply(p.err());
    return json_reply(201, participants::full_view(*p));
  }

  http_response login(http_request& req) {
    auto body = parse_json_object(req.body);
    if (!body) return error_reply(body.err());
    json_fields f(*body);
    auto kind_s = f.str("kind", true);
    auto username = f.str("username", true);
    auto password = f.str("password", true);
    if (auto s = f.finish(); !s) return error_reply(s.err());
    auto kind = store::parse_kind(*kind_s);
    if (!kind) return error_reply(errc::bad_request, "kind must be user, shop or admin");
    auto a = d.participants.login(*kind, *username, *password);
    if (!a) return error_reply(a.err());
    json::object o;
    o["access_token"] = a->access_token;
    o["token_type"] = "Bearer";
    o["expires_in"] = a->expires_in;
    o["participant"] = participants::full_view(a->who);
    return json_reply(200, o);
  }

  static result<std::uint64_t> path_id(const http_request& req, std::string_view name) {
    auto id = parse_id(req.param(name));
    if (!id) return make_error(errc::not_found, "no such " + std::string(name == "id" ? "resource" : name));
    return *id;
  }

  http_response search(http_request& req, const store::participant&) {
    auto kind_q = req.query_param("kind");
    auto kind = store::parse_kind(kind_q ? *kind_q : "shop");
    if (!kind) return error_reply(errc::bad_request, "kind must be user, shop or admin");
    auto q = req.query_param("q");
    std::string prefix = q ? std::string(*q) : std::string();
    if (!valid_utf8(prefix) || utf8_length(prefix) > 64) return error_reply(errc::bad_request, "q is too long");
    auto limit = net::int_query(req, "limit", 20, 1, 100);
    if (!limit) return error_reply(limit.err());
    auto found = d.participants.search(*kind, prefix, static_cast<std::size_t>(*limit));
    if (!found) return error_reply(found.err());
    json::array arr;
    for (const auto& p : *found) {
      auto o = participants::public_view(p);
      o["username"] = p.username;
      if (p.kind == store::participant_kind::shop) o["description"] = p.description;
      arr.push_back(std::move(o));
    }
    json::object out;
    out["participants"] = std::move(arr);
    return json_reply(200, out);
  }

  http_response create_conversation(http_request& req, const store::participant& who) {
    auto body = parse_json_object(req.body);
    if (!body) return error_reply(body.err());
    json_fields f(*body);
    auto kind_s = f.str("kind", true);
    auto members = f.id_array("members", true, chat::max_group_members);
    auto title = f.str("title", false);
    if (auto s = f.finish(); !s) return error_reply(s.err());
    store::conversation_kind kind;
    if (*kind_s == "direct") {
      kind = store::conversation_kind::direct;
    } else if (*kind_s == "group") {
      kind = store::conversation_kind::group;
    } else {
      return error_reply(errc::bad_request, "kind must be direct or group");
    }
    auto made = d.conversations.create(who, kind, std::move(*members), title ? std::string(*title) : std::string());
    if (!made) return error_reply(made.err());
    return json_reply(made->second ? 201 : 200, chat::conversation_json(made->first));
  }

  http_response list_conversations(http_request& req, const store::participant& who) {
    auto limit = net::int_query(req, "limit", 100, 1, 500);
    if (!limit) return error_reply(limit.err());
    auto list = d.conversations.list(who, static_cast<std::size_t>(*limit));
    if (!list) return error_reply(list.err());
    json::array arr;
    for (const auto& v : *list) arr.push_back(chat::conversation_json(v));
    json::object out;
    out["conversations"] = std::move(arr);
    return json_reply(200, out);
  }

  http_response get_conversation(http_request& req, const store::participant& who) {
    auto id = path_id(req, "id");
    if (!id) return error_reply(errc::not_found, "conversation not found");
    auto v = d.conversations.get(who, *id);
    if (!v) return error_reply(v.err());
    return json_reply(200, chat::conversation_json(*v));
  }

  http_response history(http_request& req, const store::participant& who) {
    auto id = path_id(req, "id");
    if (!id) return error_reply(errc::not_found, "conversation not found");
    std::uint64_t before = 0;
    if (auto b = req.query_param("before")) {
      auto parsed = parse_id(*b);
      if (!parsed) return error_reply(errc::bad_request, "before must be a message id");
      before = *parsed;
    }
    auto limit = net::int_query(req, "limit", 50, 1, 100);
    if (!limit) return error_reply(limit.err());
    auto page = d.conversations.history(who, *id, before, static_cast<std::size_t>(*limit));
    if (!page) return error_reply(page.err());
    json::array arr;
    for (const auto& m : page->messages) arr.push_back(chat::message_view(m));
    json::object out;
    out["messages"] = std::move(arr);
    out["has_more"] = page->has_more;
    return json_reply(200, out);
  }

  http_response mark_read(http_request& req, const store::participant& who) {
    auto id = path_id(req, "id");
    if (!id) return error_reply(errc::not_found, "conversation not found");
    auto body = parse_json_object(req.body);
    if (!body) return error_reply(body.err());
    json_fields f(*body);
    auto mid = f.id("message_id", true);
    if (auto s = f.finish(); !s) return error_reply(s.err());
    auto r =
        d.messages ? d.messages->mark_read(who, *id, *mid, http_origin()) : d.conversations.mark_read(who, *id, *mid);
    if (!r) return error_reply(r.err());
    return net::no_content();
  }

  http_response add_member(http_request& req, const store::participant& who) {
    auto id = path_id(req, "id");
    if (!id) return error_reply(errc::not_found, "conversation not found");
    auto body = parse_json_object(req.body);
    if (!body) return error_reply(body.err());
    json_fields f(*body);
    std::optional<std::uint64_t> pid;
    if (f.has("id")) {
      pid = f.id("id", true);
      f.ignore("participant_id");
    } else {
      pid = f.id("participant_id", true);
    }
    if (auto s = f.finish(); !s) return error_reply(s.err());
    auto v = d.conversations.add_member(who, *id, *pid);
    if (!v) return error_reply(v.err());
    return json_reply(200, chat::conversation_json(*v));
  }

  http_response set_ban(http_request& req, const store::participant& who, bool banned) {
    auto id = path_id(req, "id");
    if (!id) return error_reply(errc::not_found, "participant not found");
    auto s = d.participants.set_banned(who, *id, banned);
    if (!s) return error_reply(s.err());
    return net::no_content();
  }

  http_response readyz() {
    auto probe = d.db.get_participant(1);  // any read proves the store answers
    if (!probe && probe.err().code != errc::not_found) {
      return error_reply(errc::unavailable, "chat store: " + probe.err().message);
    }
    if (ext.readiness) {
      if (auto why = ext.readiness(); !why.empty()) return error_reply(errc::unavailable, why);
    }
    json::object o;
    o["status"] = "ready";
    return json_reply(200, o);
  }

  static chat::origin http_origin() { return chat::origin{"http", 0, now_ms()}; }

  // Answers once the queue confirmed the message: no worker waits for it
  // (a broker outage would otherwise hold every worker, /healthz's too).
  void send_message(http_request& req, const store::participant& who, const net::http_responder& respond) {
    auto id = path_id(req, "id");
    if (!id) return respond(error_reply(errc::not_found, "conversation not found"));
    auto body = parse_json_object(req.body);
    if (!body) return respond(error_reply(body.err()));
    json_fields f(*body);
    auto cmid = f.str("client_msg_id", false);
    auto text = f.str("body", true);
    if (auto s = f.finish(); !s) return respond(error_reply(s.err()));
    // send_async copies what it keeps before it returns.
    d.messages->send_async(who, *id, cmid.value_or(""), *text, http_origin(), [respond](result<chat::send_result> r) {
      if (!r) return respond(error_reply(r.err()));
      respond(json_reply(r->duplicate ? 200 : 201, chat::message_view(r->message)));
    });
  }

  // Edits and deletes answer from the queue's confirmation too.
  void edit_message(http_request& req, const store::participant& who, const net::http_responder& respond) {
    auto id = path_id(req, "id");
    if (!id) return respond(error_reply(errc::not_found, "message not found"));
    auto body = parse_json_object(req.body);
    if (!body) return respond(error_reply(body.err()));
    json_fields f(*body);
    auto text = f.str("body", true);
    if (auto s = f.finish(); !s) return respond(error_reply(s.err()));
    d.messages->edit_async(who, *id, *text, http_origin(), change_answer(respond));
  }

  void delete_message(http_request& req, const store::participant& who, const net::http_responder& respond) {
    auto id = path_id(req, "id");
    if (!id) return respond(error_reply(errc::not_found, "message not found"));
    d.messages->remove_async(who, *id, http_origin(), change_answer(respond));
  }

  static chat::message_service::change_callback change_answer(const net::http_responder& respond) {
    return [respond](result<store::message> r) {
      if (!r) return respond(error_reply(r.err()));
      respond(json_reply(200, chat::message_view(*r)));
    };
  }

  // Presence is visible to the participant, to admins and to those who share
  // a conversation with them; to anyone else the participant is as unknown as
  // a conversation they cannot see.
  result<bool> may_see_presence(const store::participant& caller, std::uint64_t id) {
    if (caller.id == id || caller.kind == store::participant_kind::admin) return true;
    auto inbox = d.db.list_inbox(caller.id, presence_visibility_scan);
    if (!inbox) return std::move(inbox).err();
    for (const auto& e : *inbox) {
      auto member = d.db.is_member(e.conversation_id, id);
      if (!member) return std::move(member).err();
      if (*member) return true;
    }
    return false;
  }

  http_response get_presence(http_request& req, const store::participant& caller) {
    auto id = path_id(req, "id");
    if (!id) return error_reply(errc::not_found, "participant not found");
    auto p = d.db.get_participant(*id);
    if (!p) return error_reply(p.err());
    auto visible = may_see_presence(caller, *id);
    if (!visible) return error_reply(visible.err());
    if (!*visible) return error_reply(errc::not_found, "participant not found");
    auto st = d.presence->get(*id);
    if (!st) return error_reply(st.err());
    json::object o;
    o["participant_id"] = format_id(*id);
    o["state"] = store::presence_name(st->state);
    o["last_seen_at"] = st->last_seen_at ? json::value(st->last_seen_at) : json::value(nullptr);
    return json_reply(200, o);
  }
};

gateway::gateway(deps d, const config& cfg, extensions ext) : impl_(std::make_unique<impl>(d, cfg, std::move(ext))) {}

gateway::~gateway() = default;

void gateway::add_routes(net::router& r) {
  auto* i = impl_.get();
  using store::participant_kind;
  r.add("GET", "/healthz", [](http_request&) {
    json::object o;
    o["status"] = "ok";
    return json_reply(200, o);
  });
  r.add("GET", "/readyz", [i](http_request&) { return i->readyz(); });
  r.add("GET", "/metrics", [i](http_request&) {
    http_response resp;
    resp.content_type = "text/plain; version=0.0.4";
    resp.body = i->d.metrics.render();
    return resp;
  });

  r.add("POST", "/v1/users",
        i->ip_limited([i](http_request& q) { return i->register_kind(q, participant_kind::user); }));
  r.add("POST", "/v1/shops",
        i->ip_limited([i](http_request& q) { return i->register_kind(q, participant_kind::shop); }));
  r.add("POST", "/v1/admins",
        i->authed(
            [i](http_request& q, const store::participant& who) {
              if (who.kind != participant_kind::admin) {
                return error_reply(errc::forbidden, "only admins can create admins");
              }
              return i->register_kind(q, participant_kind::admin);
            },
            impl::spends::write));
  r.add("POST", "/v1/auth/login", i->ip_limited([i](http_request& q) { return i->login(q); }));
  r.add("GET", "/v1/me",
        i->authed(
            [](http_request&, const store::participant& who) { return json_reply(200, participants::full_view(who)); },
            impl::spends::read));
  r.add(
      "GET", "/v1/participants",
      i->authed([i](http_request& q, const store::participant& who) { return i->search(q, who); }, impl::spends::read));
  r.add("GET", "/v1/participants/{id}",
        i->authed(
            [i](http_request& q, const store::participant&) {
              auto id = impl::path_id(q, "id");
              if (!id) return error_reply(errc::not_found, "participant not found");
              auto p = i->d.participants.get(*id);
              if (!p) return error_reply(p.err());
              return json_reply(200, participants::public_view(*p));
            },
            impl::spends::read));
  r.add("POST", "/v1/participants/{id}/ban",
        i->authed([i](http_request& q, const store::participant& who) { return i->set_ban(q, who, true); },
                  impl::spends::write));
  r.add("POST", "/v1/participants/{id}/unban",
        i->authed([i](http_request& q, const store::participant& who) { return i->set_ban(q, who, false); },
                  impl::spends::write));

  r.add("POST", "/v1/conversations",
        i->authed([i](http_request& q, const store::participant& w) { return i->create_conversation(q, w); },
                  impl::spends::write));
  r.add("GET", "/v1/conversations",
        i->authed([i](http_request& q, const store::participant& w) { return i->list_conversations(q, w); },
                  impl::spends::read));
  r.add("GET", "/v1/conversations/{id}",
        i->authed([i](http_request& q, const store::participant& w) { return i->get_conversation(q, w); },
                  impl::spends::read));
  r.add("GET", "/v1/conversations/{id}/messages",
        i->authed([i](http_request& q, const store::participant& w) { return i->history(q, w); }, impl::spends::read));
  r.add(
      "POST", "/v1/conversations/{id}/read",
      i->authed([i](http_request& q, const store::participant& w) { return i->mark_read(q, w); }, impl::spends::write));
  r.add("POST", "/v1/conversations/{id}/members",
        i->authed([i](http_request& q, const store::participant& w) { return i->add_member(q, w); },
                  impl::spends::write));

  if (i->d.messages) {
    r.add_async("POST", "/v1/conversations/{id}/messages",
                i->authed_async([i](http_request& q, const store::participant& w,
                                    const net::http_responder& respond) { i->send_message(q, w, respond); },
                                impl::spends::write));
    r.add_async("PATCH", "/v1/messages/{id}",
                i->authed_async([i](http_request& q, const store::participant& w,
                                    const net::http_responder& respond) { i->edit_message(q, w, respond); },
                                impl::spends::write));
    r.add_async("DELETE", "/v1/messages/{id}",
                i->authed_async([i](http_request& q, const store::participant& w,
                                    const net::http_responder& respond) { i->delete_message(q, w, respond); },
                                impl::spends::write));
  }
  if (i->d.presence) {
    r.add("GET", "/v1/presence/{id}",
          i->authed([i](http_request& q, const store::participant& w) { return i->get_presence(q, w); },
                    impl::spends::read));
  }
  if (i->d.discovery) {
    r.add("GET", "/v1/discovery",
          i->authed([i](http_request& q, const store::participant&) { return i->d.discovery->handle_discovery(q); },
                    impl::spends::read));
  }
  if (i->d.notifications) {
    r.add("GET", "/v1/notifications",
          i->authed([i](http_request& q, const store::participant& w) { return i->d.notifications(q, w.id); },
                    impl::spends::read));
  }
  if (i->d.dead_letters_list && i->d.dead_letter_replay) {
    auto admin_only = [i](std::function<http_response(const http_request&)> f) {
      return i->authed(
          [f = std::move(f)](http_request& q, const store::participant& w) {
            if (w.kind != participant_kind::admin) return error_reply(errc::forbidden, "only admins see dead letters");
            return f(q);
          },
          impl::spends::read);
    };
    r.add("GET", "/v1/admin/dead-letters", admin_only(i->d.dead_letters_list));
    r.add("POST", "/v1/admin/dead-letters/{id}/replay", admin_only(i->d.dead_letter_replay));
  }
  if (i->ext.add_routes) i->ext.add_routes(r);

  // The browser client at "/". A catch-all runs only for paths no route above
  // knows, so it never shadows /v1/*, /healthz, /readyz or /metrics.
  auto site = std::make_shared<const web::static_site>(i->cfg.gateway.web_root);
  r.add("GET", "/*", [site](http_request& q) { return site->serve(q); });
}

void gateway::observe(const net::http_request& req, int status, double seconds) {
  // Label values stay bounded: route patterns, known methods, status codes.
  const std::string route = req.route.empty() ? std::string("unmatched") : req.route;
  static const char* const known[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
  std::string method = "other";
  for (const char* m : known) {
    if (req.method == m) method = m;
  }
  impl_->d.metrics
      .counter("chatd_http_requests_total", "HTTP requests by route, method and status",
               {{"route", route}, {"method", method}, {"status", std::to_string(status)}})
      .inc();
  impl_->d.metrics
      .histogram("chatd_http_request_duration_seconds", "HTTP request latency by route",
                 {{"route", route}, {"method", method}})
      .observe(seconds);
}

}  // namespace chatd::gateway
