#include "chatserver/chat_server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "chat/conversations.h"
#include "chat/events.h"
#include "chat/messages.h"
#include "chatserver/recent_messages.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rate_limiter.h"
#include "common/worker_pool.h"
#include "net/reply.h"
#include "participants/service.h"
#include "participants/views.h"
#include "presence/presence.h"
#include "store/store.h"

namespace chatd::chatserver {

namespace {

constexpr std::size_t max_buffered_while_starting = 10000;
constexpr std::size_t max_frames_before_ready = 64;
constexpr std::size_t max_pending_per_connection = 256;

json::value request_id_value(const json::object& o) {
  auto* v = o.if_contains("id");
  if (!v) return nullptr;
  return *v;
}

std::string error_frame(const json::value& id, const error& e) {
  json::object o;
  o["type"] = "error";
  o["id"] = id;
  o["code"] = code_name(e.code);
  o["message"] = e.message;
  return json::serialize(o);
}

std::string message_frame(const char* type, const store::message& m) {
  json::object o;
  o["type"] = type;
  o["message"] = chat::message_view(m);
  return json::serialize(o);
}

}  // namespace

class session;

struct chat_server::impl : std::enable_shared_from_this<chat_server::impl> {
  impl(deps d, options o)
      : d(d),
        opt(std::move(o)),
        connections_open(d.metrics.gauge("chatd_connections_open", "Open WebSocket connections")),
        delivered(d.metrics.counter("chatd_messages_delivered_total", "Message frames pushed to connections")),
        events_in(d.metrics.counter("chatd_chat_server_events_total",
                                    "Queue records (messages and events) this chat server processed")),
        sent(d.metrics.counter("chatd_messages_sent_total", "Messages accepted (acked) from clients")),
        refused_busy(d.metrics.counter("chatd_sends_refused_busy_total",
                                       "Sends answered unavailable because the process had enough in flight")),
        send_to_ack(d.metrics.histogram("chatd_send_to_ack_seconds", "From a send arriving to its ack")),
        send_to_deliver(d.metrics.histogram("chatd_send_to_deliver_seconds",
                                            "From a send arriving to its push to a recipient connection")),
        recent_size(d.metrics.gauge("chatd_chat_server_recent_messages",
                                    "Messages kept for ready and ?since= until the store surely has them")) {}

  deps d;
  options opt;
  gauge& connections_open;
  counter& delivered;
  counter& events_in;
  counter& sent;
  counter& refused_busy;
  histogram& send_to_ack;
  histogram& send_to_deliver;

  std::atomic<std::uint64_t> next_connection{1};
  std::atomic<std::size_t> sends_in_flight{0};
  std::atomic<bool> stopped{false};

  mutable std::mutex hub_mu;
  std::unordered_map<std::uint64_t, std::vector<std::weak_ptr<session>>> hub;  // participant -> sessions
  std::size_t hub_count = 0;

  // Closes the window between the queue pushing a message and the store
  // having it, for `ready` and ?since=.
  recent_messages recent{recent_messages::limits{}};
  gauge& recent_size;

  void add(std::uint64_t pid, const std::shared_ptr<session>& s) {
    std::lock_guard lock(hub_mu);
    hub[pid].push_back(s);
    ++hub_count;
  }
  void remove(std::uint64_t pid, const session* s);
  std::vector<std::shared_ptr<session>> sessions_of(std::uint64_t pid) {
    std::vector<std::shared_ptr<session>> out;
    std::lock_guard lock(hub_mu);
    auto it = hub.find(pid);
    if (it == hub.end()) return out;
    for (auto& w : it->second) {
      if (auto s = w.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  void remember(const store::message& m) { recent_size.set(static_cast<double>(recent.remember(m, now_ms()))); }
  std::vector<store::message> recent_after(std::uint64_t conv, std::uint64_t after) {
    return recent.after(conv, after);
  }

  void deliver_to_members(std::uint64_t conv, const std::string& frame, const chat::event& e, bool count_delivery,
                          std::uint64_t skip_participant);
};

// One WebSocket connection.
class session : public net::ws_handler, public std::enable_shared_from_this<session> {
 public:
  session(std::shared_ptr<chat_server::impl> srv, store::participant who, std::int64_t token_expires_at_s,
          std::uint64_t since)
      : srv_(std::move(srv)),
        who_(std::move(who)),
        limit_key_(format_id(who_.id)),
        token_expires_at_s_(token_expires_at_s),
        since_(since),
        id_(srv_->next_connection++),
        queue_(serial_queue::create(srv_->d.workers)) {}

  std::uint64_t id() const { return id_; }
  std::uint64_t participant_id() const { return who_.id; }
  std::int64_t token_expires_at_s() const { return token_expires_at_s_.load(); }

  void on_open(std::shared_ptr<net::ws_connection> conn) override {
    conn_ = std::move(conn);
    srv_->add(who_.id, shared_from_this());
    srv_->connections_open.inc();
    auto self = shared_from_this();
    queue_->post([self] { self->start(); });
  }

  void on_text(std::string text) override {
    auto self = shared_from_this();
    auto at = now_ms();
    begin_work();
    queue_->post([self, text = std::move(text), at] {
      self->handle(text, at);
      self->turn_free_at_ = now_ms();
      self->end_work();
    });
  }

  void on_close() override {
    closed_ = true;
    srv_->remove(who_.id, this);
    srv_->connections_open.dec();
    auto self = shared_from_this();
    queue_->post(
        [self] { self->srv_->d.presence.connection_closed(self->srv_->opt.server_id, self->id_, self->who_.id); });
  }

  // A pushed frame. Until `ready` (and the ?since= replay) went out, pushes
  // are held back so that `ready` is always first and nothing is lost.
  void push(const std::string& frame, std::uint64_t message_id) {
    {
      std::lock_guard lock(mu_);
      if (!live_) {
        if (held_.size() >= max_buffered_while_starting) {
          if (conn_) conn_->close(net::ws_close_policy, "too slow");
          return;
        }
        held_.emplace_back(frame, message_id);
        return;
      }
      // This server's consumer may reach a message after the store did:
      // what `ready` or the replay already showed is not sent twice.
      if (message_id != 0 && !shown_.empty() && shown_.erase(message_id) != 0) return;
    }
    send(frame);
  }

  void close(std::uint16_t code, const std::string& reason) {
    if (conn_) conn_->close(code, reason);
  }

 private:
  bool send(const std::string& frame) { return conn_ && conn_->send_text(frame); }

  void start() {
    srv_->d.presence.connection_state(srv_->opt.server_id, id_, who_.id, store::presence_state::active);
    // The history in `ready` is read only once the route table knows this
    // connection (ADR 009): whatever is routed from then on comes here, and
    // whatever was routed before is already in the store.
    auto self = shared_from_this();
    srv_->d.presence.after_reported([self] { self->queue_->post([self] { self->send_ready(); }); });
  }

  void send_ready() {
    auto& d = srv_->d;
    std::set<std::uint64_t> sent_ids;         // sent by the replay
    std::unordered_set<std::uint64_t> shown;  // in `ready` or the replay
    json::object ready;
    ready["type"] = "ready";
    ready["participant"] = participants::full_view(who_);
    ready["session_id"] = srv_->opt.server_id + ":" + format_id(id_);
    json::array convs;
    auto list = d.conversations.list(who_, srv_->opt.ready_conversations);
    std::vector<std::uint64_t> conv_ids;
    if (list) {
      for (auto& v : *list) {
        conv_ids.push_back(v.conv.id);
        auto page = d.db.list_messages(v.conv.id, 0, srv_->opt.ready_messages);
        std::vector<store::message> msgs = page ? std::move(page->messages) : std::vector<store::message>{};
        // Merge what this server pushed but the store may not have yet.
        for (auto& m : srv_->recent_after(v.conv.id, 0)) {
          auto pos = std::find_if(msgs.begin(), msgs.end(), [&](const auto& x) { return x.id == m.id; });
          if (pos == msgs.end()) {
            msgs.push_back(m);
          } else {
            *pos = m;
          }
        }
        std::sort(msgs.begin(), msgs.end(), [](const auto& a, const auto& b) { return a.id > b.id; });
        if (msgs.size() > srv_->opt.ready_messages) msgs.resize(srv_->opt.ready_messages);
        auto o = chat::conversation_json(v);
        json::array arr;
        for (const auto& m : msgs) {
          arr.push_back(chat::message_view(m));
          shown.insert(m.id);
        }
        if (!msgs.empty() && (!v.last_message || msgs.front().id > v.last_message->id)) {
          o["last_message"] = chat::message_view(msgs.front());
        }
        o["messages"] = std::move(arr);
        convs.push_back(std::move(o));
      }
    } else {
      spdlog::warn("chat server: cannot list conversations of {}: {}", who_.id, list.err().message);
    }
    ready["conversations"] = std::move(convs);
    send(json::serialize(ready));

    if (since_ != 0) {
      // Every message newer than `since` in the participant's conversations, in id order.
      std::vector<store::message> missed;
      for (auto conv : conv_ids) {
        auto after = d.db.list_messages_after(conv, since_, srv_->opt.recovery_limit);
        if (after) {
          for (auto& m : *after) missed.push_back(std::move(m));
        }
        for (auto& m : srv_->recent_after(conv, since_)) missed.push_back(std::move(m));
      }
      std::sort(missed.begin(), missed.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
      for (const auto& m : missed) {
        if (!sent_ids.insert(m.id).second) continue;
        shown.insert(m.id);
        send(message_frame("message", m));
      }
    }
    // Now live: flush what arrived meanwhile, skipping what the replay sent.
    for (;;) {
      std::vector<std::pair<std::string, std::uint64_t>> held;
      {
        std::lock_guard lock(mu_);
        if (held_.empty()) {
          live_ = true;
          shown_ = std::move(shown);
          break;
        }
        held.swap(held_);
      }
      for (auto& [frame, mid] : held) {
        if (mid != 0 && shown.erase(mid) != 0) continue;
        send(frame);
      }
    }
    ready_sent_ = true;
    auto early = std::move(early_);
    for (auto& [text, at] : early) handle(text, at);
  }

  void reply(const json::value& id, json::object o) {
    o["id"] = id;
    send(json::serialize(o));
  }

  void fail(const json::value& id, const error& e) { send(error_frame(id, e)); }

  // Work this connection asked for that is not finished: frames received and
  // not yet handled, and sends not yet durable. Past the limit the
  // connection stops being read (TCP pushes back on the client) until half
  // of it is done; nothing waits on a worker thread and nothing piles up.
  void begin_work() {
    std::lock_guard lock(flow_mu_);
    if (++pending_ >= max_pending_per_connection && !reading_paused_ && conn_) {
      reading_paused_ = true;
      conn_->pause_reading();
    }
  }
  void end_work() {
    std::lock_guard lock(flow_mu_);
    --pending_;
    if (reading_paused_ && pending_ <= max_pending_per_connection / 2) {
      reading_paused_ = false;
      conn_->resume_reading();
    }
  }

  void send_done(const json::value& rid, std::int64_t received_at, result<chat::send_result> r) {
    srv_->sends_in_flight.fetch_sub(1);
    end_work();
    if (!r) return fail(rid, r.err());
    if (!r->duplicate) {
      srv_->sent.inc();
      srv_->send_to_ack.observe(static_cast<double>(now_ms() - received_at) / 1000.0);
    }
    json::object a;
    a["type"] = "ack";
    a["message"] = chat::message_view(r->message);
    reply(rid, std::move(a));
  }

  // Counts a malformed frame; the one past the limit within a minute closes.
  void bad_frame(const json::value& id, std::string message) {
    fail(id, make_error(errc::bad_request, std::move(message)));
    auto now = now_ms();
    bad_times_.push_back(now);
    while (!bad_times_.empty() && bad_times_.front() <= now - 60'000) bad_times_.pop_front();
    if (bad_times_.size() > srv_->opt.bad_frames_per_minute) {
      close(net::ws_close_policy, "too many invalid requests");
    }
  }

  void handle(const std::string& text, std::int64_t received_at) {
    if (closed_) return;
    if (!ready_sent_) {
      // A client that did not wait for `ready`: its requests run after it.
      if (early_.size() >= max_frames_before_ready) return close(net::ws_close_policy, "too many frames before ready");
      early_.emplace_back(text, received_at);
      return;
    }
    auto parsed = parse_json_object(text);
    if (!parsed) return bad_frame(nullptr, "frame is not a JSON object");
    const json::object& o = *parsed;
    json::value rid = request_id_value(o);
    if (!rid.is_null() && !rid.is_string() && !rid.is_int64() && !rid.is_uint64()) {
      return bad_frame(nullptr, "id must be a string or a number");
    }
    bool has_id = !rid.is_null();
    json_fields f(o);
    f.ignore("id");
    auto type = f.str("type", true);
    if (!type) {
      (void)f.finish();
      return bad_frame(rid, "frame needs a string 'type'");
    }
    auto& d = srv_->d;
    chat::origin from{srv_->opt.server_id, id_, received_at};

    if (*type == "send") {
      auto conv = f.id("conversation_id", true);
      auto cmid = f.str("client_msg_id", false);
      auto body = f.str("body", true);
      if (auto s = f.finish(); !s) return bad_frame(rid, s.err().message);
      if (!d.limits.writes.allow(limit_key_)) {
        return fail(rid, make_error(errc::rate_limited, "sending too fast"));
      }
      // The whole process has as much in flight as it should: answering at
      // once keeps every answer fast and the backlog bounded past the knee.
      // A send that already waited long for a worker is answered at once as
      // well: the worker time goes to sends that can still be answered
      // quickly. The wait counts from when the connection's earlier requests
      // were done, not from receipt: a client that pipelines many sends into
      // a slow store waits for itself, not for an overloaded process, and
      // refusing one in the middle would break the order of its sends.
      if (srv_->sends_in_flight.load() >= srv_->opt.max_sends_in_flight ||
          now_ms() - std::max(received_at, turn_free_at_) > srv_->opt.max_send_wait_ms) {
        srv_->refused_busy.inc();
        return fail(rid, make_error(errc::unavailable, "the server is busy: send again shortly"));
      }
      // Sends are pipelined: the next frame is handled while this one
      // becomes durable, and the ack goes out from the queue's completion.
      // Order is kept because the id and the queue position are assigned
      // here, on the connection's serial queue.
      srv_->sends_in_flight.fetch_add(1);
      begin_work();
      auto self = shared_from_this();
      d.messages.send_async(
          who_, *conv, cmid.value_or(""), *body, from,
          [self, rid, received_at](result<chat::send_result> r) { self->send_done(rid, received_at, std::move(r)); });
      return;
    }
    if (*type == "history") {
      auto conv = f.id("conversation_id", true);
      std::uint64_t before = 0;
      if (f.has("before"))
        before = f.id("before", true).value_or(0);
      else
        f.ignore("before");
      auto limit = f.integer("limit", false, 1, 100);
      if (auto s = f.finish(); !s) return bad_frame(rid, s.err().message);
      if (!d.limits.reads.allow(limit_key_)) {
        return fail(rid, make_error(errc::rate_limited, "too many history requests, slow down"));
      }
      auto page = d.conversations.history(who_, *conv, before, static_cast<std::size_t>(limit.value_or(50)));
      if (!page) return fail(rid, page.err());
      json::object h;
      h["type"] = "history";
      h["conversation_id"] = format_id(*conv);
      json::array arr;
      for (const auto& m : page->messages) arr.push_back(chat::message_view(m));
      h["messages"] = std::move(arr);
      h["has_more"] = page->has_more;
      return reply(rid, std::move(h));
    }
    if (*type == "read") {
      auto conv = f.id("conversation_id", true);
      auto mid = f.id("message_id", true);
      if (auto s = f.finish(); !s) return bad_frame(rid, s.err().message);
      if (!d.limits.writes.allow(limit_key_)) {
        return fail(rid, make_error(errc::rate_limited, "too many read markers, slow down"));
      }
      auto r = d.messages.mark_read(who_, *conv, *mid, from);
      if (!r) return fail(rid, r.err());
      return ok(rid, has_id);
    }
    if (*type == "typing") {
      auto conv = f.id("conversation_id", true);
      if (auto s = f.finish(); !s) return bad_frame(rid, s.err().message);
      if (!d.limits.typing.allow(limit_key_)) {
        return fail(rid, make_error(errc::rate_limited, "typing too often, slow down"));
      }
      if (auto s = d.messages.typing(who_, *conv, from); !s) return fail(rid, s.err());
      return ok(rid, has_id);
    }
    if (*type == "presence") {
      auto state = f.str("state", true);
      if (auto s = f.finish(); !s) return bad_frame(rid, s.err().message);
      store::presence_state ps;
      if (*state == "active") {
        ps = store::presence_state::active;
      } else if (*state == "inactive") {
        ps = store::presence_state::inactive;
      } else {
        return bad_frame(rid, "state must be active or inactive");
      }
      d.presence.connection_state(srv_->opt.server_id, id_, who_.id, ps);
      return ok(rid, has_id);
    }
    if (*type == "edit" || *type == "delete") {
      auto mid = f.id("message_id", true);
      std::optional<std::string_view> body;
      if (*type == "edit") body = f.str("body", true);
      if (auto s = f.finish(); !s) return bad_frame(rid, s.err().message);
      if (!d.limits.writes.allow(limit_key_)) {
        return fail(rid, make_error(errc::rate_limited, "too many changes, slow down"));
      }
      // Acked from the queue's confirmation, as sends are: no worker waits.
      begin_work();
      auto self = shared_from_this();
      auto done = [self, rid](result<store::message> r) {
        self->end_work();
        if (!r) return self->fail(rid, r.err());
        json::object a;
        a["type"] = "ack";
        a["message"] = chat::message_view(*r);
        self->reply(rid, std::move(a));
      };
      if (*type == "edit") return d.messages.edit_async(who_, *mid, *body, from, std::move(done));
      return d.messages.remove_async(who_, *mid, from, std::move(done));
    }
    if (*type == "refresh") {
      // A new token for the same participant keeps the connection open past
      // the old token's expiry, as a re-identify does on Discord's gateway.
      auto token = f.str("access_token", true);
      if (auto s = f.finish(); !s) return bad_frame(rid, s.err().message);
      if (!d.limits.reads.allow(limit_key_)) {
        return fail(rid, make_error(errc::rate_limited, "too many refreshes, slow down"));
      }
      auto a = d.participants.authenticate_session(*token);
      if (!a) return fail(rid, a.err());
      if (a->who.id != who_.id) return fail(rid, make_error(errc::forbidden, "the token is another participant's"));
      token_expires_at_s_ = std::max(token_expires_at_s_.load(), a->expires_at_s);
      return ok(rid, has_id);
    }
    if (*type == "ping") {
      if (auto s = f.finish(); !s) return bad_frame(rid, s.err().message);
      json::object p;
      p["type"] = "pong";
      return reply(rid, std::move(p));
    }
    (void)f.finish();
    return bad_frame(rid, "unknown frame type '" + utf8_prefix(*type, 32) + "'");
  }

  void ok(const json::value& rid, bool has_id) {
    if (!has_id) return;
    json::object o;
    o["type"] = "ok";
    reply(rid, std::move(o));
  }

  std::shared_ptr<chat_server::impl> srv_;
  store::participant who_;
  const std::string limit_key_;                   // who_.id as the rate limiters key it, formatted once
  std::atomic<std::int64_t> token_expires_at_s_;  // read by the expiry sweep, raised by `refresh`
  std::uint64_t since_;
  std::uint64_t id_;
  std::shared_ptr<serial_queue> queue_;
  std::shared_ptr<net::ws_connection> conn_;
  std::atomic<bool> closed_{false};
  std::mutex flow_mu_;
  std::size_t pending_ = 0;
  bool reading_paused_ = false;
  std::deque<std::int64_t> bad_times_;

  std::mutex mu_;
  bool live_ = false;
  // On the serial queue only: when the previous request was done (the
  // start of this request's wait for a worker).
  std::int64_t turn_free_at_ = 0;
  // On the serial queue only: requests that arrived before `ready` went out.
  bool ready_sent_ = false;
  std::vector<std::pair<std::string, std::int64_t>> early_;
  std::vector<std::pair<std::string, std::uint64_t>> held_;
  // Ids `ready` or the replay sent that a live push may still bring; each is
  // dropped once seen, so the set only shrinks after start.
  std::unordered_set<std::uint64_t> shown_;

  friend struct chat_server::impl;
};

void chat_server::impl::remove(std::uint64_t pid, const session* s) {
  std::lock_guard lock(hub_mu);
  auto it = hub.find(pid);
  if (it == hub.end()) return;
  auto& v = it->second;
  auto before = v.size();
  v.erase(std::remove_if(v.begin(), v.end(),
                         [&](const std::weak_ptr<session>& w) {
                           auto p = w.lock();
                           return !p || p.get() == s;
                         }),
          v.end());
  hub_count -= std::min(hub_count, before - v.size());
  if (v.empty()) hub.erase(it);
}

void chat_server::impl::deliver_to_members(std::uint64_t conv, const std::string& frame, const chat::event& e,
                                           bool count_delivery, std::uint64_t skip_participant) {
  // A routed record names its recipients here; a broadcast one is for every
  // member this server holds.
  const std::vector<std::uint64_t>* targets = &e.recipients;
  result<std::vector<std::uint64_t>> members = std::vector<std::uint64_t>{};
  if (e.recipients.empty()) {
    members = d.db.list_members(conv);
    if (!members) {
      spdlog::warn("chat server: cannot list members of {}: {}", conv, members.err().message);
      return;
    }
    targets = &*members;
  }
  bool from_here = e.origin_server == opt.server_id;
  std::uint64_t mid = e.kind == chat::event_kind::message ? e.message.id : 0;
  for (auto pid : *targets) {
    if (pid == skip_participant) continue;
    for (auto& s : sessions_of(pid)) {
      if (from_here && s->id() == e.origin_connection) continue;  // it gets the ack instead
      s->push(frame, mid);
      if (count_delivery) {
        delivered.inc();
        if (e.sent_at_ms) send_to_deliver.observe(static_cast<double>(now_ms() - e.sent_at_ms) / 1000.0);
      }
    }
  }
}

chat_server::chat_server(deps d, options o) : impl_(std::make_shared<impl>(d, std::move(o))) {}

chat_server::~chat_server() { stop(); }

net::ws_upgrade_result chat_server::upgrade(net::http_request& req) {
  auto& i = *impl_;
  if (i.stopped) return net::error_reply(errc::unavailable, "server is shutting down");
  auto token = net::bearer_token(req, true);
  if (!token) return net::error_reply(errc::unauthorized, "missing access token");
  auto who = i.d.participants.authenticate_session(*token);
  if (!who) return net::error_reply(who.err());
  std::uint64_t since = 0;
  if (auto s = req.query_param("since"); s && !s->empty()) {
    auto parsed = parse_id(*s);
    if (!parsed) return net::error_reply(errc::bad_request, "since must be a message id");
    since = *parsed;
  }
  if (connections() >= i.opt.max_connections) return net::error_reply(errc::unavailable, "too many connections");
  return std::make_shared<session>(impl_, std::move(who->who), who->expires_at_s, since);
}

void chat_server::on_event(const chat::event& e) {
  auto& i = *impl_;
  i.events_in.inc();
  switch (e.kind) {
    case chat::event_kind::message: {
      i.remember(e.message);
      i.deliver_to_members(e.message.conversation_id, message_frame("message", e.message), e, true, 0);
      break;
    }
    case chat::event_kind::message_updated: {
      i.remember(e.message);
      i.deliver_to_members(e.message.conversation_id, message_frame("message_updated", e.message), e, false, 0);
      break;
    }
    case chat::event_kind::read: {
      json::object o;
      o["type"] = "read";
      o["conversation_id"] = format_id(e.conversation_id);
      o["participant_id"] = format_id(e.participant_id);
      o["message_id"] = format_id(e.message_id);
      i.deliver_to_members(e.conversation_id, json::serialize(o), e, false, 0);
      break;
    }
    case chat::event_kind::typing: {
      json::object o;
      o["type"] = "typing";
      o["conversation_id"] = format_id(e.conversation_id);
      o["participant_id"] = format_id(e.participant_id);
      i.deliver_to_members(e.conversation_id, json::serialize(o), e, false, e.participant_id);
      break;
    }
    case chat::event_kind::presence: {
      // To everyone who shares a conversation with the participant.
      json::object o;
      o["type"] = "presence";
      o["participant_id"] = format_id(e.participant_id);
      o["state"] = store::presence_name(e.presence.state);
      o["last_seen_at"] = e.presence.last_seen_at;
      auto frame = json::serialize(o);
      if (!e.recipients.empty()) {  // routed: the router found the partners
        for (auto pid : e.recipients) {
          if (pid == e.participant_id) continue;
          for (auto& s : i.sessions_of(pid)) s->push(frame, 0);
        }
        break;
      }
      // Broadcast delivery: every chat server sees every change. One that
      // holds no connection has no one to tell, and skips the reads (up to
      // 500 inbox entries and their member lists) on its consumer thread.
      if (connections() == 0) break;
      auto inbox = i.d.db.list_inbox(e.participant_id, 500);
      if (!inbox) break;
      std::set<std::uint64_t> told;
      for (const auto& entry : *inbox) {
        auto members = i.d.db.list_members(entry.conversation_id);
        if (!members) continue;
        for (auto pid : *members) {
          if (pid == e.participant_id || !told.insert(pid).second) continue;
          for (auto& s : i.sessions_of(pid)) s->push(frame, 0);
        }
      }
      break;
    }
    case chat::event_kind::ban: {
      // The event may reach this server late (a lagging consumer), after an
      // unban and a new connection: only a ban still in force closes.
      auto who = i.d.db.get_participant(e.participant_id);
      if (who && !who->banned) break;
      close_participant(e.participant_id, net::ws_close_policy, "banned");
      break;
    }
  }
}

void chat_server::close_participant(std::uint64_t participant_id, std::uint16_t code, const std::string& reason) {
  for (auto& s : impl_->sessions_of(participant_id)) s->close(code, reason);
}

std::size_t chat_server::close_expired(std::int64_t now_s) {
  std::vector<std::shared_ptr<session>> expired;
  {
    std::lock_guard lock(impl_->hub_mu);
    for (auto& [pid, v] : impl_->hub) {
      for (auto& w : v) {
        if (auto s = w.lock(); s && s->token_expires_at_s() <= now_s) expired.push_back(std::move(s));
      }
    }
  }
  // Outside the lock, as every broadcast: closing takes the connection's own.
  for (auto& s : expired) s->close(net::ws_close_token_expired, "token expired");
  return expired.size();
}

std::size_t chat_server::connections() const {
  std::lock_guard lock(impl_->hub_mu);
  return impl_->hub_count;
}

void chat_server::stop() {
  impl_->stopped = true;
  std::vector<std::shared_ptr<session>> all;
  {
    std::lock_guard lock(impl_->hub_mu);
    for (auto& [pid, v] : impl_->hub) {
      for (auto& w : v) {
        if (auto s = w.lock()) all.push_back(std::move(s));
      }
    }
  }
  for (auto& s : all) s->close(net::ws_close_going_away, "server shutting down");
}

}  // namespace chatd::chatserver
