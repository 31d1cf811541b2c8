// The notification service: stores a notification for an inactive recipient,
// coalesces bursts per (recipient, conversation), and delivers each one to the
// configured webhook with HMAC signatures and retries (README.md in this
// folder has the rules and the guarantees).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "net/http.h"
#include "notification/notifier.h"
#include "store/store.h"

namespace chatd::notification {

// X-Chatd-Signature of a webhook attempt: "sha256=" and the lower-case hex
// HMAC-SHA256, keyed by the webhook secret, of "<timestamp>.<raw body>", where
// the timestamp is the X-Chatd-Timestamp header (Unix seconds).
std::string webhook_signature(std::string_view secret, std::string_view timestamp, std::string_view body);

// Knobs that are not part of the configuration contract.
struct service_options {
  // Delivery threads. Each blocks on one webhook call at a time, so this is
  // how many slow receivers can be waited for at once.
  std::size_t delivery_threads = 2;
  // One webhook call, connect to answer. stop() may wait this long for a call
  // in flight.
  std::chrono::milliseconds request_timeout{5000};
  // Record undelivered notifications in a journal and resume them at start()
  // (only when a webhook is configured).
  bool journal = true;
  // How many of the newest journal rows start() looks at.
  std::size_t recovery_scan_limit = 1000;
  // How many of the recipient's newest notifications notify() looks at to
  // recognise a redelivered message.
  std::size_t dedup_scan_limit = 100;
};

// Journal rows live under this recipient id, which no participant can have
// (parse_id rejects 0).
inline constexpr store::id_t journal_recipient = 0;

// GET /v1/notifications?limit=1..100 (default 50) for an authenticated caller:
// their stored notifications, newest first. It reads only the chat database,
// so the gateway answers it in every layout, whichever process runs the
// notification service.
net::http_response list_reply(store::chat_store& store, const net::http_request& req, std::uint64_t caller_id);

class service : public notifier {
 public:
  // All references must outlive the service.
  service(store::chat_store& store, id_generator& ids, const notifications_config& cfg, metrics_registry& metrics,
          service_options options = {});
  ~service() override;
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // Resumes journaled deliveries, then starts the delivery threads.
  void start();
  // Wakes and joins the delivery threads. A webhook call in flight finishes
  // (bounded by request_timeout); scheduled deliveries and retries stay in
  // memory and go on if start() is called again (and the journal resumes them
  // in a new process). Idempotent.
  void stop();

  status notify(const notify_request& req) override;

  // The recipient's stored notifications, newest first.
  result<std::vector<store::notification>> list(std::uint64_t recipient_id, std::size_t limit);

  // list_reply() over this service's store.
  net::http_response handle_list(const net::http_request& req, std::uint64_t caller_id) {
    return list_reply(store_, req, caller_id);
  }

  // POST /v1/internal/notify, signed with `secret` (see internal_api.h).
  // Throws std::invalid_argument for an empty secret.
  void add_internal_routes(net::router& routes, std::string secret);

  // Notifications created and not yet delivered, given up or dropped.
  std::size_t pending() const;

 private:
  using key_t = std::pair<store::id_t, store::id_t>;  // (recipient, conversation)
  using clock = std::chrono::steady_clock;

  struct entry {
    store::notification n;
    std::int64_t window_end = 0;   // message time (ms) before which messages merge
    std::uint32_t attempts = 0;    // failed attempts so far
    std::uint64_t generation = 0;  // timer entries of older generations are stale
    bool closed = false;           // picked up for delivery once: no more merging
    bool updating = false;         // a merge is being written to the store
    bool deferred = false;         // became due while updating
  };
  struct timer {
    clock::time_point due;
    store::id_t id;
    std::uint64_t generation;
    bool operator>(const timer& o) const { return due > o.due; }
  };

  status merge(std::unique_lock<std::mutex>& lock, store::id_t id, const store::message& m);
  status create(const notify_request& req);
  result<bool> already_notified(const notify_request& req);
  status record(const store::notification& n);  // notification + journal row
  void schedule_locked(store::id_t id, entry& e, clock::time_point due);
  void finish_locked(store::id_t id);
  void finish(store::id_t id, bool journal_done);
  void failed(store::id_t id, const std::string& reason);
  void recover();
  void run();
  void deliver(store::id_t id, const store::notification& n);
  bool webhook_enabled() const { return !cfg_.webhook_url.empty(); }
  bool journaling() const { return options_.journal && webhook_enabled(); }
  std::mutex& stripe(const key_t& k);

  store::chat_store& store_;
  id_generator& ids_;
  const notifications_config cfg_;
  const service_options options_;

  counter& created_;
  counter& attempts_;
  counter& failures_;
  counter& deliveries_;
  counter& abandoned_;
  counter& coalesced_;
  chatd::gauge& pending_gauge_;

  // Serialise notify() per (recipient, conversation), so that two calls for
  // the same pair cannot both create a notification; store I/O happens under
  // these, never under mu_.
  std::vector<std::mutex> stripes_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<store::id_t, entry> entries_;
  std::map<key_t, store::id_t> open_;  // the notification still accepting merges, per pair
  std::priority_queue<timer, std::vector<timer>, std::greater<>> timers_;
  std::uint64_t next_generation_ = 1;
  bool running_ = false;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace chatd::notification
