#include "presence/remote.h"

#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "net/reply.h"
#include "rpc/internal.h"
#include "store/store.h"

namespace chatd::presence {

namespace {

constexpr std::size_t max_batch = 500;
// Changes waiting while the service is unreachable; past this the oldest are
// dropped and the next snapshot repairs the service's view.
constexpr std::size_t max_pending = 100'000;

std::optional<presence_state> parse_state(std::string_view s) {
  if (s == "active") return presence_state::active;
  if (s == "inactive") return presence_state::inactive;
  if (s == "offline") return presence_state::offline;
  return std::nullopt;
}

json::object presence_json(const store::presence& p) {
  return json::object{{"participant_id", format_id(p.participant_id)},
                      {"state", store::presence_name(p.state)},
                      {"last_seen_at", p.last_seen_at}};
}

result<store::presence> parse_presence(const json::value& v, std::uint64_t expected_id) {
  if (!v.is_object()) return make_error(errc::unavailable, "presence service answered nonsense");
  json_fields f(v.get_object());
  auto id = f.id("participant_id", true);
  auto state = f.str("state", true);
  auto last = f.integer("last_seen_at", true, 0, std::numeric_limits<std::int64_t>::max());
  if (auto s = f.finish(); !s) return make_error(errc::unavailable, "presence service answered nonsense");
  auto ps = parse_state(*state);
  if (!ps || *id != expected_id) return make_error(errc::unavailable, "presence service answered nonsense");
  return store::presence{*id, *ps, *last};
}

// {"participant_ids":["<id>",...]}, 1..max_query_ids of them.
result<std::vector<std::uint64_t>> parse_id_list(std::string_view body) {
  auto o = parse_json_object(body);
  if (!o) return std::move(o).err();
  json_fields f(*o);
  f.ignore("participant_ids");
  if (auto s = f.finish(); !s) return std::move(s).err();
  auto* ids = o->if_contains("participant_ids");
  if (!ids || !ids->is_array() || ids->get_array().empty() || ids->get_array().size() > max_query_ids) {
    return make_error(errc::bad_request, "participant_ids must be an array of 1-1000 ids");
  }
  std::vector<std::uint64_t> want;
  want.reserve(ids->get_array().size());
  for (const auto& v : ids->get_array()) {
    auto id = v.is_string() ? parse_id(std::string_view(v.get_string())) : std::nullopt;
    if (!id) return make_error(errc::bad_request, "participant_ids must hold ids");
    want.push_back(*id);
  }
  return want;
}

std::string id_list_body(const std::vector<std::uint64_t>& ids, std::size_t from, std::size_t to) {
  json::array out;
  out.reserve(to - from);
  for (auto k = from; k < to; ++k) out.push_back(json::value(format_id(ids[k])));
  return json::serialize(json::object{{"participant_ids", std::move(out)}});
}

}  // namespace

std::string report_body(const report& r) {
  json::object o;
  o["server"] = r.server;
  o["snapshot"] = r.snapshot;
  json::array conns;
  conns.reserve(r.connections.size());
  for (const auto& c : r.connections) {
    conns.push_back(
        json::object{{"id", format_id(c.conn.connection_id)},
                     {"participant_id", format_id(c.conn.participant_id)},
                     {"state", c.closed ? std::string_view("closed") : store::presence_name(c.conn.state)}});
  }
  o["connections"] = std::move(conns);
  return json::serialize(o);
}

result<report> parse_report(std::string_view body) {
  auto o = parse_json_object(body);
  if (!o) return std::move(o).err();
  json_fields f(*o);
  report r;
  auto server = f.str("server", true);
  auto snapshot = f.boolean("snapshot", true);
  f.ignore("connections");
  if (auto s = f.finish(); !s) return std::move(s).err();
  if (server->empty() || server->size() > 200) return make_error(errc::bad_request, "server must be 1-200 bytes");
  r.server = std::string(*server);
  r.snapshot = *snapshot;
  auto* conns = o->if_contains("connections");
  if (!conns || !conns->is_array()) return make_error(errc::bad_request, "connections must be an array");
  for (const auto& v : conns->get_array()) {
    if (!v.is_object()) return make_error(errc::bad_request, "each connection must be an object");
    json_fields cf(v.get_object());
    auto id = cf.id("id", true);
    auto pid = cf.id("participant_id", true);
    auto state = cf.str("state", true);
    if (auto s = cf.finish(); !s) return std::move(s).err();
    reported_connection rc;
    rc.conn.connection_id = *id;
    rc.conn.participant_id = *pid;
    if (*state == "closed") {
      rc.closed = true;
    } else if (*state == "active" || *state == "inactive") {
      rc.conn.state = *parse_state(*state);
    } else {
      return make_error(errc::bad_request, "state must be active, inactive or closed");
    }
    if (r.snapshot && rc.closed) return make_error(errc::bad_request, "a snapshot lists open connections only");
    r.connections.push_back(rc);
  }
  return r;
}

void add_internal_routes(net::router& routes, service& target, std::string secret) {
  const std::string secret_copy = secret;
  rpc::add_route(routes, "POST", std::string(report_path), secret, [&target](net::http_request& req) {
    auto r = parse_report(req.body);
    if (!r) return net::error_reply(r.err());
    if (r->snapshot) {
      std::vector<connection_report> open;
      open.reserve(r->connections.size());
      for (const auto& c : r->connections) open.push_back(c.conn);
      target.sync(r->server, open, now_ms());
    } else {
      for (const auto& c : r->connections) {
        if (c.closed) {
          target.connection_closed(r->server, c.conn.connection_id, c.conn.participant_id);
        } else {
          target.connection_state(r->server, c.conn.connection_id, c.conn.participant_id, c.conn.state);
        }
      }
    }
    return net::no_content();
  });
  rpc::add_route(routes, "GET", std::string(state_path_prefix) + "{id}", std::move(secret),
                 [&target](net::http_request& req) {
                   auto id = parse_id(req.param("id"));
                   if (!id) return net::error_reply(errc::not_found, "no such participant");
                   auto p = target.get(*id);
                   if (!p) return net::error_reply(p.err());
                   return net::json_reply(200, presence_json(*p));
                 });
  // A different method from GET {id}, and the literal segment would win anyway.
  rpc::add_route(routes, "POST", std::string(query_path), secret_copy, [&target](net::http_request& req) {
    auto want = parse_id_list(req.body);
    if (!want) return net::error_reply(want.err());
    auto got = target.get_many(*want);
    if (!got) return net::error_reply(got.err());
    json::array out;
    out.reserve(got->size());
    for (const auto& p : *got) out.push_back(presence_json(p));
    return net::json_reply(200, json::object{{"presence", std::move(out)}});
  });
  rpc::add_route(routes, "POST", std::string(routes_path), secret_copy, [&target](net::http_request& req) {
    auto want = parse_id_list(req.body);
    if (!want) return net::error_reply(want.err());
    auto got = target.routes_of(*want);
    if (!got) return net::error_reply(got.err());
    json::array out;
    out.reserve(got->servers.size());
    for (const auto& servers : got->servers) {
      json::array one;
      for (const auto& s : servers) one.push_back(json::value(s));
      out.push_back(std::move(one));
    }
    return net::json_reply(200, json::object{{"routes", std::move(out)}, {"complete", got->complete}});
  });
}

struct client::impl {
  impl(std::string base_url, std::string secret, store::chat_store& db, metrics_registry& metrics)
      : rpc("presence", std::move(base_url), std::move(secret), metrics), db(db) {}

  rpc::client rpc;
  store::chat_store& db;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::string server;                                                 // the reporting chat server (one per process)
  std::deque<std::pair<std::uint64_t, reported_connection>> pending;  // with its sequence number
  std::uint64_t queued_seq = 0;                                       // of the last change queued
  std::uint64_t done_seq = 0;  // every change up to this one was sent or given up
  std::vector<std::pair<std::uint64_t, std::function<void()>>> waiters;
  bool snapshot_wanted = false;
  // Every open connection reported through this client: the snapshot.
  std::map<std::uint64_t, connection_report> open;
  std::thread sender;

  void enqueue(const std::string& server_id, reported_connection c) {
    {
      std::lock_guard lock(mu);
      server = server_id;
      if (c.closed) {
        open.erase(c.conn.connection_id);
      } else {
        open[c.conn.connection_id] = c.conn;
      }
      if (pending.size() >= max_pending) {
        pending.pop_front();
        snapshot_wanted = true;
      }
      pending.emplace_back(++queued_seq, c);
    }
    cv.notify_one();
  }

  // Called with mu held: every change up to `seq` is settled.
  std::vector<std::function<void()>> settle(std::uint64_t seq) {
    done_seq = std::max(done_seq, seq);
    std::vector<std::function<void()>> ready;
    std::erase_if(waiters, [&](auto& w) {
      if (w.first > done_seq) return false;
      ready.push_back(std::move(w.second));
      return true;
    });
    return ready;
  }

  // One thread sends everything, so changes and snapshots arrive in the order
  // they were made; a snapshot replaces the changes queued before it.
  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return stopping || snapshot_wanted || !pending.empty(); });
      if (stopping) return;
      report r;
      r.server = server;
      std::uint64_t covers = 0;  // the last change this report carries
      if (snapshot_wanted) {
        snapshot_wanted = false;
        pending.clear();
        r.snapshot = true;
        covers = queued_seq;
        for (const auto& [id, c] : open) r.connections.push_back({c, false});
      } else {
        while (!pending.empty() && r.connections.size() < max_batch) {
          covers = pending.front().first;
          r.connections.push_back(pending.front().second);
          pending.pop_front();
        }
      }
      lock.unlock();
      auto sent = rpc.call("POST", report_path, report_body(r));
      lock.lock();
      if (!sent) {
        // The next snapshot carries the current truth; retrying old changes
        // would only replay history.
        spdlog::warn("presence: report to {} failed: {}", rpc.base_url(), sent.err().message);
        pending.clear();
        covers = queued_seq;
      }
      auto ready = settle(covers);
      if (!ready.empty()) {
        lock.unlock();
        for (auto& f : ready) f();
        lock.lock();
      }
    }
  }
};

client::client(std::string base_url, std::string secret, store::chat_store& db, metrics_registry& metrics)
    : impl_(std::make_unique<impl>(std::move(base_url), std::move(secret), db, metrics)) {}

client::~client() { stop(); }

void client::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->sender.joinable()) return;
  impl_->stopping = false;
  impl_->sender = std::thread([this] { impl_->run(); });
}

void client::stop() {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->sender.joinable()) impl_->sender.join();
  {
    std::lock_guard lock(impl_->mu);
    ready = impl_->settle(impl_->queued_seq);
  }
  for (auto& f : ready) f();
}

void client::after_reported(std::function<void()> done) {
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->stopping && impl_->sender.joinable() && impl_->done_seq < impl_->queued_seq) {
      impl_->waiters.emplace_back(impl_->queued_seq, std::move(done));
      return;
    }
  }
  done();
}

result<routes> client::routes_of(const std::vector<std::uint64_t>& participant_ids) {
  routes out;
  out.complete = true;
  out.servers.reserve(participant_ids.size());
  for (std::size_t from = 0; from < participant_ids.size(); from += max_query_ids) {
    auto to = std::min(participant_ids.size(), from + max_query_ids);
    auto body = impl_->rpc.call("POST", routes_path, id_list_body(participant_ids, from, to));
    if (!body) return std::move(body).err();
    std::error_code ec;
    auto v = json::parse(*body, ec);
    const json::array* arr = nullptr;
    const json::value* complete = nullptr;
    if (!ec && v.is_object()) {
      if (auto* a = v.get_object().if_contains("routes"); a && a->is_array()) arr = &a->get_array();
      complete = v.get_object().if_contains("complete");
    }
    if (!arr || arr->size() != to - from || !complete || !complete->is_bool()) {
      return make_error(errc::unavailable, "presence service answered nonsense");
    }
    out.complete = out.complete && complete->get_bool();
    for (const auto& one : *arr) {
      auto& servers = out.servers.emplace_back();
      if (!one.is_array()) return make_error(errc::unavailable, "presence service answered nonsense");
      for (const auto& sv : one.get_array()) {
        if (!sv.is_string()) return make_error(errc::unavailable, "presence service answered nonsense");
        servers.emplace_back(sv.get_string());
      }
    }
  }
  return out;
}

void client::connection_state(const std::string& server_id, std::uint64_t connection_id, std::uint64_t participant_id,
                              presence_state state) {
  impl_->enqueue(server_id, {{connection_id, participant_id, state}, false});
}

void client::connection_closed(const std::string& server_id, std::uint64_t connection_id,
                               std::uint64_t participant_id) {
  impl_->enqueue(server_id, {{connection_id, participant_id, presence_state::offline}, true});
}

void client::refresh(const std::string& server_id) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->server = server_id;
    impl_->snapshot_wanted = true;
  }
  impl_->cv.notify_one();
}

result<store::presence> client::get(std::uint64_t participant_id) {
  auto body = impl_->rpc.call("GET", std::string(state_path_prefix) + format_id(participant_id));
  if (!body) {
    if (body.err().code != errc::unavailable) return std::move(body).err();
    // The presence service stores every change: its last word stands in.
    return impl_->db.get_presence(participant_id);
  }
  std::error_code ec;
  auto v = json::parse(*body, ec);
  if (ec) return make_error(errc::unavailable, "presence service answered nonsense");
  return parse_presence(v, participant_id);
}

result<std::vector<store::presence>> client::get_many(const std::vector<std::uint64_t>& participant_ids) {
  std::vector<store::presence> out;
  out.reserve(participant_ids.size());
  for (std::size_t from = 0; from < participant_ids.size(); from += max_query_ids) {
    auto to = std::min(participant_ids.size(), from + max_query_ids);
    auto body = impl_->rpc.call("POST", query_path, id_list_body(participant_ids, from, to));
    if (!body) {
      if (body.err().code != errc::unavailable) return std::move(body).err();
      // As get(): the stored rows stand in while the service is away.
      for (auto k = from; k < to; ++k) {
        auto p = impl_->db.get_presence(participant_ids[k]);
        if (!p) return std::move(p).err();
        out.push_back(*p);
      }
      continue;
    }
    std::error_code ec;
    auto v = json::parse(*body, ec);
    const json::array* arr = nullptr;
    if (!ec && v.is_object()) {
      if (auto* a = v.get_object().if_contains("presence"); a && a->is_array()) arr = &a->get_array();
    }
    if (!arr || arr->size() != to - from) return make_error(errc::unavailable, "presence service answered nonsense");
    for (auto k = from; k < to; ++k) {
      auto p = parse_presence((*arr)[k - from], participant_ids[k]);
      if (!p) return std::move(p).err();
      out.push_back(*p);
    }
  }
  return out;
}

}  // namespace chatd::presence
