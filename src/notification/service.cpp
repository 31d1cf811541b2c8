#include "notification/service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "auth/hmac.h"
#include "common/json.h"
#include "net/client.h"
#include "net/reply.h"
#include "notification/internal_api.h"
#include "notification/notification_json.h"
#include "notification/retry.h"

namespace chatd::notification {

namespace {

constexpr std::size_t stripe_count = 64;

// The time a message counts at for the coalescing window: its own creation
// time, so that a backlog replayed in a burst still coalesces by when the
// messages were written, not by when they were consumed.
std::int64_t message_time(const store::message& m) { return m.created_at > 0 ? m.created_at : now_ms(); }

// Journal rows carry the real recipient in front of the preview: the
// notification row has no other free field, and the journal is private to
// this service.
store::notification to_journal(const store::notification& n) {
  store::notification j = n;
  j.recipient_id = journal_recipient;
  j.preview = format_id(n.recipient_id) + "\n" + n.preview;
  return j;
}

std::optional<store::notification> from_journal(const store::notification& j) {
  auto nl = j.preview.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  auto recipient = parse_id(std::string_view(j.preview).substr(0, nl));
  if (!recipient) return std::nullopt;
  store::notification n = j;
  n.recipient_id = *recipient;
  n.preview = j.preview.substr(nl + 1);
  return n;
}

}  // namespace

std::string webhook_signature(std::string_view secret, std::string_view timestamp, std::string_view body) {
  std::string signed_text;
  signed_text.reserve(timestamp.size() + 1 + body.size());
  signed_text.append(timestamp).append(".").append(body);
  return "sha256=" + auth::hmac_sha256_hex(secret, signed_text);
}

service::service(store::chat_store& store, id_generator& ids, const notifications_config& cfg,
                 metrics_registry& metrics, service_options options)
    : store_(store),
      ids_(ids),
      cfg_(cfg),
      options_(options),
      created_(metrics.counter("chatd_notifications_total", "Notifications created")),
      attempts_(metrics.counter("chatd_notification_attempts_total", "Webhook delivery attempts")),
      failures_(metrics.counter("chatd_notification_failures_total",
                                "Webhook delivery attempts that failed (non-2xx, network error)")),
      deliveries_(metrics.counter("chatd_notification_deliveries_total", "Webhook deliveries that succeeded")),
      abandoned_(metrics.counter("chatd_notification_abandoned_total",
                                 "Notifications given up after max_attempts failed attempts")),
      coalesced_(
          metrics.counter("chatd_notification_coalesced_total", "Messages merged into an existing notification")),
      pending_gauge_(metrics.gauge("chatd_notification_pending",
                                   "Notifications waiting for delivery (coalescing window or retry)")),
      stripes_(stripe_count) {
  std::string scheme = cfg_.webhook_url.substr(0, cfg_.webhook_url.find("://") + 1);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (webhook_enabled() && scheme != "http:" && scheme != "https:") {
    spdlog::warn("notifications.webhook_url '{}' is not an http:// or https:// URL; deliveries will fail",
                 cfg_.webhook_url);
  }
}

service::~service() { stop(); }

std::mutex& service::stripe(const key_t& k) {
  std::uint64_t h = (k.first * 0x9E3779B97F4A7C15ull) ^ (k.second + 0x632BE59BD9B4E019ull + (k.first << 6));
  return stripes_[h % stripes_.size()];
}

void service::start() {
  {
    std::lock_guard lock(mu_);
    if (running_) return;
  }
  recover();
  std::lock_guard lock(mu_);
  running_ = true;
  stopping_ = false;
  const std::size_t n = std::max<std::size_t>(options_.delivery_threads, 1);
  for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
}

void service::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    if (!running_) return;
    stopping_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
  std::lock_guard lock(mu_);
  running_ = false;
  stopping_ = false;
}

std::size_t service::pending() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

// ---------------------------------------------------------------------------
// notify

status service::notify(const notify_request& req) {
  const store::message& m = req.message;
  if (req.recipient_id == journal_recipient || m.id == 0 || m.conversation_id == 0) {
    return make_error(errc::bad_request, "notify needs a recipient, a message id and a conversation id");
  }
  // Senders are never notified of their own messages; a deleted message has
  // nothing left to show.
  if (req.recipient_id == m.sender_id || m.deleted) return {};

  const key_t k{req.recipient_id, m.conversation_id};
  std::lock_guard stripe_lock(stripe(k));
  std::unique_lock lock(mu_);
  if (auto o = open_.find(k); o != open_.end()) {
    auto it = entries_.find(o->second);
    if (it != entries_.end() && !it->second.closed) {
      entry& e = it->second;
      // Queue order is per conversation, so a message no newer than the one
      // the open notification names has been seen: a redelivery.
      if (m.id <= e.n.message_id) return {};
      if (message_time(m) < e.window_end) return merge(lock, o->second, m);
    }
    // Out of the window: the old notification keeps its schedule, the
    // message starts a new one.
    open_.erase(o);
  }
  lock.unlock();

  auto seen = already_notified(req);
  if (!seen) return std::move(seen).err();
  if (*seen) return {};
  return create(req);
}

result<bool> service::already_notified(const notify_request& req) {
  const store::message& m = req.message;
  auto delivered = store_.is_delivered(req.recipient_id, m.id);
  if (!delivered) return std::move(delivered).err();
  if (*delivered) return true;
  // A notification of this conversation that names this message or a newer
  // one covers it (coalesced notifications name only their newest message).
  // Only the newest few are looked at: redeliveries are of recent messages.
  auto recent = store_.list_notifications(req.recipient_id, options_.dedup_scan_limit);
  if (!recent) return std::move(recent).err();
  for (const auto& n : *recent) {
    if (n.conversation_id == m.conversation_id && n.message_id >= m.id) return true;
  }
  return false;
}

status service::record(const store::notification& n) {
  // The journal row first. The other order could lose a delivery: with the
  // recipient's row written and the journal write failed, the retried
  // notify() would see the stored row, take the message as a redelivery and
  // schedule nothing. This order can at worst leave an orphan journal row
  // (its notify() failed and was retried under a new id); a restart then
  // checks it against is_delivered like any other row.
  if (journaling()) {
    if (auto st = store_.put_notification(to_journal(n)); !st) return st;
  }
  return store_.put_notification(n);
}

status service::merge(std::unique_lock<std::mutex>& lock, store::id_t id, const store::message& m) {
  entry& e = entries_.at(id);
  e.updating = true;  // a delivery thread that finds it due now waits for us
  store::notification n = e.n;
  n.count += 1;
  n.message_id = m.id;
  n.sender_id = m.sender_id;
  n.sender_kind = m.sender_kind;
  n.preview = utf8_prefix(m.body, preview_chars);
  lock.unlock();
  status st = record(n);
  lock.lock();
  // stop() never erases entries and delivery threads skip updating ones, so
  // the entry is still there.
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    entry& cur = it->second;
    cur.updating = false;
    // On failure the entry keeps the old content; the caller retries notify()
    // and the same merge is written again (same values: idempotent).
    if (st) cur.n = n;
    if (cur.deferred) {
      cur.deferred = false;
      schedule_locked(id, cur, clock::now());
    }
  }
  if (st) coalesced_.inc();
  return st;
}

status service::create(const notify_request& req) {
  const store::message& m = req.message;
  store::notification n;
  auto id = ids_.try_next();
  if (!id) return std::move(id).err();
  n.id = *id;
  n.recipient_id = req.recipient_id;
  n.conversation_id = m.conversation_id;
  n.message_id = m.id;
  n.sender_id = m.sender_id;
  n.sender_kind = m.sender_kind;
  n.preview = utf8_prefix(m.body, preview_chars);
  n.count = 1;
  n.created_at = now_ms();
  if (auto st = record(n); !st) return st;
  created_.inc();

  const bool coalescing = cfg_.coalesce_ms > 0;
  // Stored only, nothing to deliver and nothing to merge into: done.
  if (!webhook_enabled() && !coalescing) return {};

  std::lock_guard lock(mu_);
  entry& e = entries_[n.id];
  e.n = n;
  e.window_end = message_time(m) + std::max<std::int64_t>(cfg_.coalesce_ms, 0);
  if (coalescing) open_[{n.recipient_id, n.conversation_id}] = n.id;
  schedule_locked(n.id, e, clock::now() + std::chrono::milliseconds(std::max<std::int64_t>(cfg_.coalesce_ms, 0)));
  pending_gauge_.set(static_cast<double>(entries_.size()));
  return {};
}

void service::schedule_locked(store::id_t id, entry& e, clock::time_point due) {
  e.generation = next_generation_++;
  timers_.push(timer{due, id, e.generation});
  // Every delivery thread may be sleeping until a later deadline.
  cv_.notify_all();
}

void service::finish_locked(store::id_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  auto o = open_.find({it->second.n.recipient_id, it->second.n.conversation_id});
  if (o != open_.end() && o->second == id) open_.erase(o);
  entries_.erase(it);
  pending_gauge_.set(static_cast<double>(entries_.size()));
}

void service::finish(store::id_t id, bool journal_done) {
  if (journal_done && journaling()) {
    if (auto st = store_.mark_delivered(journal_recipient, id); !st) {
      // Harmless: a restart would find the notification delivered (or retry
      // one that was given up).
      spdlog::warn("notification {}: could not close its journal row: {}", id, st.err().message);
    }
  }
  std::lock_guard lock(mu_);
  finish_locked(id);
}

// ---------------------------------------------------------------------------
// delivery

void service::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const timer top = timers_.top();
    if (top.due > clock::now()) {
      cv_.wait_until(lock, top.due);
      continue;
    }
    timers_.pop();
    auto it = entries_.find(top.id);
    if (it == entries_.end() || it->second.generation != top.generation) continue;  // stale timer
    entry& e = it->second;
    if (e.updating) {
      e.deferred = true;  // merge() reschedules it when its write is done
      continue;
    }
    e.closed = true;
    if (auto o = open_.find({e.n.recipient_id, e.n.conversation_id}); o != open_.end() && o->second == top.id) {
      open_.erase(o);
    }
    const store::notification n = e.n;
    lock.unlock();
    deliver(top.id, n);
    lock.lock();
  }
}

void service::deliver(store::id_t id, const store::notification& n) {
  if (!webhook_enabled()) {
    finish(id, false);  // only the coalescing window was pending
    return;
  }
  // Before every attempt: delivered by an earlier attempt, another process
  // or before a restart means never again.
  auto delivered = store_.is_delivered(n.recipient_id, n.message_id);
  if (!delivered) {
    // Not a webhook attempt (the metrics count only those), but it uses up
    // one of max_attempts so that a broken store cannot keep it forever.
    failed(id, "store: " + delivered.err().message);
    return;
  }
  if (*delivered) {
    finish(id, true);
    return;
  }

  const std::string body = json::serialize(notification_json(n, store_));
  // The timestamp is signed with the body so that a receiver can refuse old
  // attempts and replays (as Slack's and Stripe's webhooks allow); every
  // attempt is signed afresh.
  const std::string timestamp = std::to_string(now_ms() / 1000);
  const net::header_list headers{
      {"Content-Type", "application/json"},
      {"X-Chatd-Timestamp", timestamp},
      {"X-Chatd-Signature", webhook_signature(cfg_.webhook_secret, timestamp, body)},
  };
  attempts_.inc();
  auto r = net::http_request_sync("POST", cfg_.webhook_url, body, headers, options_.request_timeout);
  if (r && r->status >= 200 && r->status < 300) {
    deliveries_.inc();
    if (auto md = store_.mark_delivered(n.recipient_id, n.message_id); !md) {
      // The attempt succeeded; it is not repeated, but a redelivery of the
      // same message after a restart could now be delivered again.
      spdlog::error("notification {}: delivered but not marked delivered: {}", id, md.err().message);
    }
    finish(id, true);
    return;
  }
  failures_.inc();
  failed(id, r ? "HTTP " + std::to_string(r->status) : r.err().message);
}

void service::failed(store::id_t id, const std::string& reason) {
  std::unique_lock lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  entry& e = it->second;
  e.attempts += 1;
  const std::uint32_t max_attempts = std::max<std::uint32_t>(cfg_.max_attempts, 1);
  if (e.attempts >= max_attempts) {
    spdlog::warn("notification {} for {}: giving up after {} attempts, last: {}", id, e.n.recipient_id, e.attempts,
                 reason);
    abandoned_.inc();
    lock.unlock();
    finish(id, true);  // closes the journal row too: a restart does not start over
    return;
  }
  auto delay = retry_delay(cfg_, e.attempts, random_jitter());
  spdlog::debug("notification {}: attempt {} failed ({}), next in {} ms", id, e.attempts, reason, delay.count());
  schedule_locked(id, e, clock::now() + delay);
}

void service::recover() {
  if (!journaling()) return;
  auto rows = store_.list_notifications(journal_recipient, options_.recovery_scan_limit);
  if (!rows) {
    spdlog::error("notifications: cannot read the delivery journal, pending deliveries are not resumed: {}",
                  rows.err().message);
    return;
  }
  std::size_t resumed = 0;
  for (const auto& row : *rows) {
    {
      std::lock_guard lock(mu_);
      if (entries_.count(row.id)) continue;  // still in memory (stop() then start())
    }
    auto done = store_.is_delivered(journal_recipient, row.id);
    if (!done || *done) continue;
    auto n = from_journal(row);
    if (!n) continue;
    auto delivered = store_.is_delivered(n->recipient_id, n->message_id);
    if (delivered && *delivered) {
      (void)store_.mark_delivered(journal_recipient, row.id);
      continue;
    }
    std::lock_guard lock(mu_);
    entry& e = entries_[n->id];
    e.n = *n;
    e.closed = true;  // its window is long over; new messages start new notifications
    schedule_locked(n->id, e, clock::now());
    ++resumed;
  }
  std::lock_guard lock(mu_);
  pending_gauge_.set(static_cast<double>(entries_.size()));
  if (resumed > 0) spdlog::info("notifications: resumed {} undelivered notifications", resumed);
}

// ---------------------------------------------------------------------------
// reading

result<std::vector<store::notification>> service::list(std::uint64_t recipient_id, std::size_t limit) {
  if (recipient_id == journal_recipient) return std::vector<store::notification>{};
  return store_.list_notifications(recipient_id, limit);
}

net::http_response list_reply(store::chat_store& store, const net::http_request& req, std::uint64_t caller_id) {
  if (caller_id == journal_recipient) return net::error_reply(errc::unauthorized, "authentication required");
  auto limit = net::int_query(req, "limit", 50, 1, 100);
  if (!limit) return net::error_reply(limit.err());
  auto rows = store.list_notifications(caller_id, static_cast<std::size_t>(*limit));
  if (!rows) return net::error_reply(rows.err());
  json::array items;
  items.reserve(rows->size());
  for (const auto& n : *rows) items.emplace_back(notification_json(n, store));
  json::object o;
  o["notifications"] = std::move(items);
  return net::json_reply(200, o);
}

void service::add_internal_routes(net::router& routes, std::string secret) {
  add_notify_route(routes, *this, std::move(secret));
}

}  // namespace chatd::notification
