#include "discovery/heartbeat_loop.h"

#include "common/log.h"
#include "common/metrics.h"

namespace chatd::discovery {

namespace {
constexpr std::chrono::seconds warn_every{30};

counter& failures_metric() {
  static auto& c = default_registry().counter("chatd_discovery_heartbeat_failures_total",
                                              "Chat-server heartbeats that the registry refused or did not get");
  return c;
}
}  // namespace

heartbeat_loop::heartbeat_loop(registry& reg, std::function<server_info()> info, std::chrono::milliseconds interval,
                               std::chrono::milliseconds ttl)
    : reg_(reg), info_(std::move(info)), interval_(interval), ttl_(ttl) {
  if (interval_.count() <= 0) interval_ = std::chrono::milliseconds{1};
}

heartbeat_loop::~heartbeat_loop() { stop(); }

status heartbeat_loop::beat() {
  server_info s = info_();
  {
    std::lock_guard lock(mu_);
    last_id_ = s.id;
  }
  auto st = reg_.heartbeat(s, ttl_);
  auto now = std::chrono::steady_clock::now();
  // Only the loop's thread (or start() before it exists) gets here, so the
  // logging state needs no lock.
  if (st) {
    sent_.fetch_add(1);
    if (failing_) {
      spdlog::info("discovery: heartbeat of {} works again ({} failures not logged)", s.id, suppressed_);
      failing_ = false;
      suppressed_ = 0;
    }
    return st;
  }
  failed_.fetch_add(1);
  failures_metric().inc();
  if (!failing_ || now - last_warn_ >= warn_every) {
    spdlog::warn("discovery: heartbeat of {} failed, retrying every {} ms: {}{}", s.id, interval_.count(),
                 st.err().message,
                 suppressed_ ? fmt::format(" ({} more failures since the last report)", suppressed_) : std::string());
    last_warn_ = now;
    suppressed_ = 0;
  } else {
    ++suppressed_;
  }
  failing_ = true;
  return st;
}

status heartbeat_loop::start() {
  {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) return make_error(errc::conflict, "heartbeat loop already started");
    started_ = true;
  }
  auto first = beat();
  thread_ = std::thread([this] { run(); });
  return first;
}

void heartbeat_loop::run() {
  std::unique_lock lock(mu_);
  auto next = std::chrono::steady_clock::now() + interval_;
  while (!cv_.wait_until(lock, next, [this] { return stopping_; })) {
    lock.unlock();
    // A registry call may block for its timeout; ticks are counted from the
    // start of the previous one so a slow registry does not slow the rhythm
    // down unless a call takes longer than the interval.
    auto started = std::chrono::steady_clock::now();
    (void)beat();
    next = std::max(started + interval_, std::chrono::steady_clock::now());
    lock.lock();
  }
}

void heartbeat_loop::stop() {
  std::string id;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    if (!started_) return;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mu_);
    id = last_id_;  // the thread may have beaten with a newer id meanwhile
  }
  if (id.empty()) return;
  if (auto s = reg_.remove(id); !s) {
    // Not fatal: the entry expires by itself within the ttl.
    spdlog::warn("discovery: could not sign {} off ({}); it expires within {} ms", id, s.err().message, ttl_.count());
  } else {
    spdlog::info("discovery: chat server {} signed off", id);
  }
}

}  // namespace chatd::discovery
