#include "engine.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "ws.h"

namespace asio = boost::asio;

namespace chatd_bench {
namespace {

using steady = std::chrono::steady_clock;
static_assert(std::is_same_v<steady::period, std::nano>, "steady_clock counts nanoseconds");
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

std::int64_t now_ns() { return steady::now().time_since_epoch().count(); }
steady::time_point at_ns(std::int64_t ns) { return steady::time_point(steady::duration(ns)); }
void sleep_until_ns(std::int64_t ns) { std::this_thread::sleep_until(at_ns(ns)); }
std::int64_t seconds_ns(double s) { return static_cast<std::int64_t>(s * 1e9); }

// ---- server and generator resources ---------------------------------------

double server_cpu_seconds(int pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  auto close = s.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  // Fields 3.. after the name; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double server_rss_kib(int pid) {
  if (pid <= 0) return 0;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

double generator_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// ---- what the tool remembers per request ----------------------------------

enum class req_kind : std::uint8_t { none, send, history };

struct pending {
  std::uint64_t request = 0;
  std::int64_t intended = 0;
  std::uint32_t conversation = 0;
  int step = -1;
  req_kind kind = req_kind::none;
};

// Requests in flight on one connection, found again by their id when the
// answer comes. Ids count up from 1 (small, so any target can carry them),
// and a slot is the id modulo a power of two: no allocation per request,
// growth only when more are in flight than ever before.
class request_ring {
 public:
  std::uint64_t put(req_kind k, std::int64_t intended, std::uint32_t conversation, int step) {
    std::uint64_t r = ++next_;
    if (slots_.empty()) slots_.resize(64);
    for (;;) {
      auto& s = slots_[r & (slots_.size() - 1)];
      // An answer that has not come in a minute never will; its slot is free.
      if (s.kind == req_kind::none || intended - s.intended > seconds_ns(60)) {
        s = {r, intended, conversation, step, k};
        return r;
      }
      grow();
    }
  }
  bool take(std::uint64_t r, pending& out) {
    if (slots_.empty() || r == 0) return false;
    auto& s = slots_[r & (slots_.size() - 1)];
    if (s.kind == req_kind::none || s.request != r) return false;
    out = s;
    s.kind = req_kind::none;
    return true;
  }

 private:
  std::vector<pending> slots_;
  std::uint64_t next_ = 0;

  void grow() {
    std::vector<pending> old(slots_.size() * 2);
    old.swap(slots_);
    for (auto& p : old) {
      if (p.kind != req_kind::none) slots_[p.request & (slots_.size() - 1)] = p;
    }
  }
};

// Which sequence numbers of one sender a receiver has seen.
struct stream_track {
  std::uint64_t sender = 0;
  std::vector<std::uint64_t> bits;
  std::uint64_t max_seq = 0;
  bool any = false;

  // False when `seq` was seen before.
  bool mark(std::uint64_t seq, bool& out_of_order) {
    std::size_t word = seq / 64;
    if (word >= bits.size()) bits.resize(std::max(word + 1, bits.size() * 2), 0);
    std::uint64_t bit = std::uint64_t{1} << (seq % 64);
    if (bits[word] & bit) return false;
    bits[word] |= bit;
    out_of_order = any && seq < max_seq;
    if (!any || seq > max_seq) max_seq = seq;
    any = true;
    return true;
  }
};

// ---- counters of one step, per shard, merged for the report ---------------

struct step_stats {
  std::uint64_t sends = 0, not_sent = 0, acks = 0, send_errors = 0, expected = 0, undeliverable = 0;
  std::uint64_t delivered = 0, duplicates = 0, out_of_order = 0, arrived_in_window = 0;
  std::uint64_t history_sent = 0, history_answered = 0, history_failed = 0, history_messages = 0;
  std::map<std::string, std::uint64_t> errors;
  histogram ack, deliver, history;
  histogram late;  // how long after its intended time the tool wrote a request

  void merge(const step_stats& o) {
    sends += o.sends;
    not_sent += o.not_sent;
    acks += o.acks;
    send_errors += o.send_errors;
    expected += o.expected;
    undeliverable += o.undeliverable;
    delivered += o.delivered;
    duplicates += o.duplicates;
    out_of_order += o.out_of_order;
    arrived_in_window += o.arrived_in_window;
    history_sent += o.history_sent;
    history_answered += o.history_answered;
    history_failed += o.history_failed;
    history_messages += o.history_messages;
    for (auto& [k, v] : o.errors) errors[k] += v;
    ack.merge(o.ack);
    deliver.merge(o.deliver);
    history.merge(o.history);
    late.merge(o.late);
  }
  // Everything the step asked for has an answer (or was refused).
  bool complete() const {
    return acks + send_errors >= sends && delivered + undeliverable >= expected &&
           history_answered + history_failed >= history_sent;
  }
};

// The counters without the histograms, cheap to fetch while draining.
struct step_counts {
  std::uint64_t sends = 0, acks = 0, send_errors = 0, expected = 0, undeliverable = 0, delivered = 0;
  std::uint64_t history_sent = 0, history_done = 0;
  bool complete() const {
    return acks + send_errors >= sends && delivered + undeliverable >= expected && history_done >= history_sent;
  }
};

struct shard {
  std::size_t index = 0, of = 1;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(ioc);
  std::thread thread;
  // Step k's messages are those intended from step_starts[k] on.
  std::vector<std::int64_t> step_starts;
  std::vector<std::unique_ptr<step_stats>> steps;
  std::int64_t window_start = 0, window_end = 0;
  int window_step = -1;
  histogram connect_ready, reconnect_ready;
  std::uint64_t connected = 0, reconnects = 0, reconnect_failures = 0, closed = 0;
  std::map<std::string, std::uint64_t> connect_errors;

  step_stats* stats_for(std::int64_t intended) {
    auto it = std::upper_bound(step_starts.begin(), step_starts.end(), intended);
    if (it == step_starts.begin()) return nullptr;
    return steps[static_cast<std::size_t>(it - step_starts.begin() - 1)].get();
  }
};

struct conn_state {
  std::size_t account = 0;
  shard* sh = nullptr;
  std::shared_ptr<ws_connection> ws;
  request_ring ring;
  std::vector<stream_track> tracks;
  std::string last_message_id;
  std::uint64_t next_seq = 0;
  std::uint64_t generation = 0;
  bool reconnecting = false;
  asio::ip::address local;

  stream_track& track(std::uint64_t sender) {
    for (auto& t : tracks) {
      if (t.sender == sender) return t;
    }
    tracks.push_back({});
    tracks.back().sender = sender;
    return tracks.back();
  }
};

// Ids are decimal strings of growing 64-bit numbers: the longer is larger.
bool id_greater(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return a.size() > b.size();
  return a > b;
}

// b:<sender>:<seq>:<intended ns>xxxx...
bool parse_body(std::string_view b, std::uint64_t& sender, std::uint64_t& seq, std::int64_t& intended) {
  if (b.size() < 8 || b[0] != 'b' || b[1] != ':') return false;
  const char* p = b.data() + 2;
  const char* end = b.data() + b.size();
  auto r = std::from_chars(p, end, sender);
  if (r.ec != std::errc{} || r.ptr == end || *r.ptr != ':') return false;
  r = std::from_chars(r.ptr + 1, end, seq);
  if (r.ec != std::errc{} || r.ptr == end || *r.ptr != ':') return false;
  r = std::from_chars(r.ptr + 1, end, intended);
  return r.ec == std::errc{};
}

struct flow_member {
  std::size_t conn;
  std::size_t conversation;
};

struct flow {
  req_kind kind = req_kind::send;
  double rate = 0;  // requests/s over all members
  std::vector<flow_member> members;
};

std::string short_error(const std::string& e) {
  // Errors carry addresses and ports; group them by their kind.
  auto colon = e.find(": ");
  std::string head = e.substr(0, colon);
  auto sp = head.find(' ');
  if (sp != std::string::npos) head = head.substr(0, sp);
  std::string tail = colon == std::string::npos ? "" : e.substr(colon + 2);
  if (tail.size() > 60) tail = tail.substr(0, 60);
  return head + ": " + tail;
}

class engine {
 public:
  engine(target& t, const options& o) : t_(t), o_(o), server_pid_(t.server_pid()) {
    std::size_t n = std::max<std::size_t>(1, o.threads);
    for (std::size_t i = 0; i < n; ++i) {
      shards_.push_back(std::make_unique<shard>());
      auto* s = shards_.back().get();
      s->index = i;
      s->of = n;
      s->thread = std::thread([s] { s->ioc.run(); });
    }
  }
  ~engine() {
    for (auto& s : shards_) {
      s->guard.reset();
      s->ioc.stop();
    }
    for (auto& s : shards_) s->thread.join();
    conns_.clear();
    shards_.clear();
  }

  population pop;
  int server_pid() const { return server_pid_; }

  // Runs f on the shard's thread and waits for its result.
  template <class F>
  auto on(shard& s, F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    asio::post(s.ioc, [&task] { task(); });
    return fut.get();
  }

  std::size_t add_connection(std::size_t account, asio::ip::address local = {}) {
    auto c = std::make_unique<conn_state>();
    c->account = account;
    c->sh = shards_[conns_.size() % shards_.size()].get();
    c->local = local;
    conns_.push_back(std::move(c));
    return conns_.size() - 1;
  }
  conn_state& conn(std::size_t i) { return *conns_[i]; }
  std::size_t connection_count() const { return conns_.size(); }

  // Opens connections [first, last) with at most connect_concurrency
  // handshakes in flight; returns how many are ready.
  std::size_t connect(std::size_t first, std::size_t last, bool progress) {
    std::atomic<std::size_t> done{0};
    std::size_t total = last - first;
    auto per_shard = std::max<std::size_t>(1, o_.connect_concurrency / shards_.size());
    for (auto& sp : shards_) {
      auto* s = sp.get();
      auto queue = std::make_shared<std::vector<std::size_t>>();
      for (std::size_t i = first; i < last; ++i) {
        if (conns_[i]->sh == s) queue->push_back(i);
      }
      auto next = std::make_shared<std::size_t>(0);
      for (std::size_t w = 0; w < per_shard && w < queue->size(); ++w) {
        asio::co_spawn(
            s->ioc,
            [this, s, queue, next, &done]() -> asio::awaitable<void> {
              while (*next < queue->size()) {
                auto& c = *conns_[(*queue)[(*next)++]];
                co_await open_one(c, pop.accounts[c.account].path, false);
                ++done;
              }
            },
            asio::detached);
      }
    }
    auto started = now_ns();
    std::size_t shown = 0;
    while (done < total) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (progress && now_ns() - started > seconds_ns(2) && done / 10000 != shown) {
        shown = done / 10000;
        std::fprintf(stderr, "  %zu / %zu connected\n", done.load(), total);
      }
    }
    std::size_t ready = 0;
    for (std::size_t i = first; i < last; ++i) {
      if (conns_[i]->ws) ++ready;
    }
    return ready;
  }

  // Connections still open, counted on their own threads.
  std::size_t open_connections() {
    std::size_t n = 0;
    for (auto& s : shards_) {
      n += on(*s, [&] {
        std::size_t k = 0;
        for (auto& c : conns_) {
          if (c->sh == s.get() && c->ws && c->ws->is_open()) ++k;
        }
        return k;
      });
    }
    return n;
  }

  std::map<std::string, std::uint64_t> connect_errors() {
    std::map<std::string, std::uint64_t> out;
    for (auto& s : shards_) {
      on(*s, [&] {
        for (auto& [k, v] : s->connect_errors) out[k] += v;
        return 0;
      });
    }
    return out;
  }

  histogram merged_ready(bool reconnect) {
    histogram h;
    for (auto& s : shards_) {
      on(*s, [&] {
        h.merge(reconnect ? s->reconnect_ready : s->connect_ready);
        return 0;
      });
    }
    return h;
  }

  std::pair<std::uint64_t, std::uint64_t> reconnect_counts() {
    std::uint64_t n = 0, failed = 0;
    for (auto& s : shards_) {
      on(*s, [&] {
        n += s->reconnects;
        failed += s->reconnect_failures;
        return 0;
      });
    }
    return {n, failed};
  }

  struct step_result {
    step_stats stats;
    double seconds = 0;     // the sending window
    double elapsed = 0;     // window plus drain
    double server_cpu = 0;  // over window plus drain
    double generator_cpu = 0;
    double server_rss = 0;  // KiB at the end
    bool drained = false;
  };

  // One step: every flow at its rate for `seconds`, then up to
  // drain_seconds for the answers. `during` runs on each shard at the
  // start (reconnect's storms).
  step_result run_step(const std::vector<flow>& flows, double seconds,
                       std::function<void(shard&, std::int64_t, std::int64_t)> during = {}) {
    int step = ++step_index_;
    std::int64_t t0 = now_ns() + seconds_ns(0.2);
    std::int64_t t1 = t0 + seconds_ns(seconds);
    for (auto& sp : shards_) {
      auto* s = sp.get();
      on(*s, [&] {
        s->step_starts.push_back(t0);
        s->steps.push_back(std::make_unique<step_stats>());
        s->window_start = t0;
        s->window_end = t1;
        s->window_step = step;
        for (auto& f : flows) {
          std::vector<flow_member> part;
          for (auto& m : f.members) {
            if (conns_[m.conn]->sh == s) part.push_back(m);
          }
          if (part.empty() || f.rate <= 0) continue;
          double share = f.rate * static_cast<double>(part.size()) / static_cast<double>(f.members.size());
          asio::co_spawn(s->ioc, pace(*s, std::move(part), f.kind, share, t0, t1, step), asio::detached);
        }
        if (during) during(*s, t0, t1);
        return 0;
      });
    }
    step_result r;
    r.seconds = seconds;
    sleep_until_ns(t0);
    double cpu0 = server_cpu_seconds(server_pid_), gen0 = generator_cpu_seconds();
    sleep_until_ns(t1);
    std::int64_t deadline = t1 + seconds_ns(o_.drain_seconds);
    for (;;) {
      step_counts c = counts(step);
      if (c.complete()) {
        r.drained = true;
        break;
      }
      if (now_ns() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    r.elapsed = static_cast<double>(now_ns() - t0) / 1e9;
    r.server_cpu = server_cpu_seconds(server_pid_) - cpu0;
    r.generator_cpu = generator_cpu_seconds() - gen0;
    r.server_rss = server_rss_kib(server_pid_);
    for (auto& sp : shards_) {
      on(*sp, [&] {
        sp->window_step = -1;
        r.stats.merge(*sp->steps[static_cast<std::size_t>(step)]);
        return 0;
      });
    }
    return r;
  }

  void reconnect_storm(shard& s, std::vector<std::size_t> receivers, std::int64_t t0, std::int64_t t1) {
    asio::co_spawn(s.ioc, storm(s, std::move(receivers), t0, t1), asio::detached);
  }

 private:
  target& t_;
  const options& o_;
  int server_pid_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::vector<std::unique_ptr<conn_state>> conns_;
  int step_index_ = -1;

  step_counts counts(int step) {
    step_counts c;
    for (auto& sp : shards_) {
      on(*sp, [&] {
        auto& s = *sp->steps[static_cast<std::size_t>(step)];
        c.sends += s.sends;
        c.acks += s.acks;
        c.send_errors += s.send_errors;
        c.expected += s.expected;
        c.undeliverable += s.undeliverable;
        c.delivered += s.delivered;
        c.history_sent += s.history_sent;
        c.history_done += s.history_answered + s.history_failed;
        return 0;
      });
    }
    return c;
  }

  asio::awaitable<void> open_one(conn_state& c, std::string path, bool reconnect) {
    auto& s = *c.sh;
    auto ws = std::make_shared<ws_connection>(s.ioc);
    auto h = t_.make_handshake(pop, c.account);
    std::uint64_t generation = c.generation;
    std::int64_t start = now_ns();
    auto err =
        co_await ws->open(pop.accounts[c.account], path, c.local, *h, std::chrono::milliseconds(o_.connect_timeout_ms));
    std::int64_t took = (now_ns() - start) / 1000;
    if (!err.empty()) {
      ++s.connect_errors[short_error(err)];
      if (reconnect) ++s.reconnect_failures;
      co_return;
    }
    if (generation != c.generation) {  // a newer attempt took over
      ws->close();
      co_return;
    }
    (reconnect ? s.reconnect_ready : s.connect_ready).record(took);
    c.ws = ws;
    ++s.connected;
    asio::co_spawn(s.ioc, read_loop(c, ws), asio::detached);
  }

  asio::awaitable<void> read_loop(conn_state& c, std::shared_ptr<ws_connection> ws) {
    std::string_view f;
    while (co_await ws->read(f)) on_frame(c, f);
    if (c.ws == ws) ++c.sh->closed;
  }

  void on_frame(conn_state& c, std::string_view f) {
    std::int64_t now = now_ns();
    // Reused, so a frame costs no allocation here.
    thread_local std::vector<decoded> all;
    all.clear();
    t_.decode_all(f, all);
    for (auto& d : all) on_message(c, d, now);
  }

  void on_message(conn_state& c, const decoded& d, std::int64_t now) {
    shard& s = *c.sh;
    switch (d.kind) {
      case frame_kind::deliver: {
        std::uint64_t sender = 0, seq = 0;
        std::int64_t intended = 0;
        if (!d.message_id.empty() && id_greater(d.message_id, c.last_message_id)) {
          c.last_message_id.assign(d.message_id);
        }
        if (!parse_body(d.body, sender, seq, intended)) return;
        // A copy back to the sender's own account is not a delivery (chatd
        // never sends one to the sending connection; Centrifugo pushes every
        // publication to the publisher's own subscription too).
        if (sender == c.account) return;
        auto* st = s.stats_for(intended);
        if (!st) return;
        if (s.window_step >= 0 && now >= s.window_start && now < s.window_end) {
          ++s.steps[static_cast<std::size_t>(s.window_step)]->arrived_in_window;
        }
        bool out_of_order = false;
        if (!c.track(sender).mark(seq, out_of_order)) {
          ++st->duplicates;
          return;
        }
        if (out_of_order) ++st->out_of_order;
        ++st->delivered;
        st->deliver.record((now - intended) / 1000);
        return;
      }
      case frame_kind::ack: {
        pending p;
        if (!c.ring.take(d.request, p) || p.kind != req_kind::send) return;
        auto& st = *s.steps[static_cast<std::size_t>(p.step)];
        ++st.acks;
        st.ack.record((now - p.intended) / 1000);
        return;
      }
      case frame_kind::history: {
        pending p;
        if (!c.ring.take(d.request, p) || p.kind != req_kind::history) return;
        auto& st = *s.steps[static_cast<std::size_t>(p.step)];
        ++st.history_answered;
        st.history_messages += d.count;
        st.history.record((now - p.intended) / 1000);
        return;
      }
      case frame_kind::error: {
        pending p;
        bool known = c.ring.take(d.request, p);
        step_stats* st = nullptr;
        if (known) {
          st = s.steps[static_cast<std::size_t>(p.step)].get();
        } else if (!s.steps.empty()) {
          st = s.steps.back().get();
        }
        if (!st) return;
        ++st->errors[d.body.empty() ? std::string("error") : std::string(d.body)];
        if (known && p.kind == req_kind::send) {
          ++st->send_errors;
          st->undeliverable += recipients(p.conversation);
        } else if (known && p.kind == req_kind::history) {
          ++st->history_failed;
        }
        return;
      }
      case frame_kind::ignore:
        return;
    }
  }

  std::uint64_t recipients(std::size_t conversation) const {
    // Every member has one connection in the scenarios that send, and the
    // sending connection gets an ack instead of the message.
    return pop.conversations[conversation].members.size() - 1;
  }

  void emit(shard& s, const flow_member& m, req_kind kind, std::int64_t due, std::int64_t now, int step) {
    auto& c = *conns_[m.conn];
    auto& st = *s.steps[static_cast<std::size_t>(step)];
    st.late.record((now - due) / 1000);
    if (!c.ws || !c.ws->is_open()) {
      ++st.not_sent;
      ++st.errors["not connected"];
      return;
    }
    const auto& conv = pop.conversations[m.conversation];
    auto conv_index = static_cast<std::uint32_t>(m.conversation);
    if (kind == req_kind::send) {
      thread_local std::string body;
      body.assign("b:");
      char num[24];
      auto put = [&](auto v) {
        auto r = std::to_chars(num, num + sizeof num, v);
        body.append(num, r.ptr);
      };
      put(c.account);
      body += ':';
      put(c.next_seq++);
      body += ':';
      put(due);
      if (body.size() < o_.payload) body.append(o_.payload - body.size(), 'x');
      auto r = c.ring.put(req_kind::send, due, conv_index, step);
      c.ws->send(t_.send_frame(pop, c.account, conv, r, body));
      ++st.sends;
      st.expected += recipients(m.conversation);
    } else {
      auto r = c.ring.put(req_kind::history, due, conv_index, step);
      c.ws->send(t_.history_frame(pop, c.account, conv, r));
      ++st.history_sent;
    }
  }

  // Open loop: request k of this shard is due at t0 + k / share, whatever
  // happened to the ones before; when the loop falls behind it sends
  // everything overdue at once, stamped with the time it was due, so a slow
  // server shows up as latency instead of a lower rate.
  asio::awaitable<void> pace(shard& s, std::vector<flow_member> members, req_kind kind, double share, std::int64_t t0,
                             std::int64_t t1, int step) {
    double interval = 1e9 / share;
    // Shards start a fraction of an interval apart, not in lockstep.
    auto offset = static_cast<std::int64_t>(interval * static_cast<double>(s.index) / static_cast<double>(s.of));
    asio::steady_timer timer(s.ioc);
    std::uint64_t k = 0;
    auto due_of = [&](std::uint64_t i) {
      return t0 + offset + static_cast<std::int64_t>(static_cast<double>(i) * interval);
    };
    for (;;) {
      std::int64_t due = due_of(k);
      if (due >= t1) break;
      std::int64_t now = now_ns();
      if (due > now) {
        timer.expires_at(at_ns(due));
        co_await timer.async_wait(tuple_awaitable);
        now = now_ns();
      }
      while (due <= now && due < t1) {
        emit(s, members[k % members.size()], kind, due, now, step);
        due = due_of(++k);
      }
    }
  }

  asio::awaitable<void> storm(shard& s, std::vector<std::size_t> receivers, std::int64_t t0, std::int64_t t1) {
    asio::steady_timer timer(s.ioc);
    std::int64_t every = seconds_ns(o_.reconnect_every);
    for (int wave = 1;; ++wave) {
      std::int64_t at = t0 + every * wave;
      if (at >= t1) break;
      timer.expires_at(at_ns(at));
      co_await timer.async_wait(tuple_awaitable);
      // A fraction of the receivers each wave, a different slice each time.
      auto n = static_cast<std::size_t>(std::ceil(o_.reconnect_fraction * static_cast<double>(receivers.size())));
      for (std::size_t j = 0; j < n && j < receivers.size(); ++j) {
        auto& c = *conns_[receivers[(j + static_cast<std::size_t>(wave) * n) % receivers.size()]];
        if (c.reconnecting) continue;
        c.reconnecting = true;
        ++c.generation;
        if (c.ws) c.ws->close();
        ++s.reconnects;
        std::string path = t_.reconnect_path(pop.accounts[c.account], c.last_message_id);
        asio::co_spawn(
            s.ioc,
            [this, &c, path]() -> asio::awaitable<void> {
              co_await open_one(c, path, true);
              c.reconnecting = false;
            },
            asio::detached);
      }
    }
  }
};

// ---- stepping and rows -----------------------------------------------------

std::vector<double> step_rates(const options& o, double start, double factor, double max) {
  if (!o.rates.empty()) return o.rates;
  if (o.start_rate > 0) start = o.start_rate;
  if (o.step_factor > 1) factor = o.step_factor;
  if (o.max_rate > 0) max = o.max_rate;
  std::vector<double> out;
  for (double r = start; r <= max * 1.0001; r *= factor) out.push_back(std::round(r));
  return out;
}

void add_delivery_fields(result_row& row, const engine::step_result& r, double offered) {
  auto& s = r.stats;
  double lost = static_cast<double>(s.expected) - static_cast<double>(s.delivered);
  row.set("offered_per_s", offered);
  row.set("sent_per_s", static_cast<double>(s.sends) / r.seconds);
  row.set("delivered_per_s", static_cast<double>(s.arrived_in_window) / r.seconds);
  row.set("sends", static_cast<double>(s.sends));
  row.set("not_sent", static_cast<double>(s.not_sent));
  row.set("acks", static_cast<double>(s.acks));
  row.set("send_errors", static_cast<double>(s.send_errors));
  row.set("expected", static_cast<double>(s.expected));
  row.set("delivered", static_cast<double>(s.delivered));
  row.set("delivered_pct", s.expected ? 100.0 * static_cast<double>(s.delivered) / static_cast<double>(s.expected) : 0);
  row.set("lost", lost < 0 ? 0 : lost);
  row.set("duplicates", static_cast<double>(s.duplicates));
  row.set("out_of_order", static_cast<double>(s.out_of_order));
  row.set("drained", r.drained ? 1 : 0);
  row.latencies.emplace_back("send_to_ack", summarize(s.ack));
  row.latencies.emplace_back("send_to_deliver", summarize(s.deliver));
  // The generator's own delay, included in the latencies above: when this
  // grows, the tool (or the machine) is the bottleneck, not the server.
  row.latencies.emplace_back("send_late", summarize(s.late));
}

void add_resource_fields(result_row& row, const engine::step_result& r, std::uint64_t per) {
  row.set("server_cpu_s", r.server_cpu);
  row.set("server_cpu_s_per_1000", per ? r.server_cpu * 1000.0 / static_cast<double>(per) : 0);
  row.set("generator_cpu_s", r.generator_cpu);
  row.set("server_rss_mib", r.server_rss / 1024.0);
  row.set("elapsed_s", r.elapsed);
}

bool delivery_passes(const options& o, const engine::step_result& r) {
  auto& s = r.stats;
  if (s.expected == 0) return false;
  double ratio = static_cast<double>(s.delivered) / static_cast<double>(s.expected);
  return ratio >= o.min_delivered && static_cast<double>(s.deliver.percentile(0.99)) <= o.slo_ms * 1000.0;
}

std::vector<std::pair<std::string, std::string>> delivery_columns(const std::string& first) {
  return {{first, "offered_per_s"},
          {"sent/s", "sent_per_s"},
          {"deliv/s", "delivered_per_s"},
          {"deliv%", "delivered_pct"},
          {"lost", "lost"},
          {"dup", "duplicates"},
          {"ooo", "out_of_order"},
          {"err", "send_errors"},
          {"ack p50", "send_to_ack.p50"},
          {"ack p99", "send_to_ack.p99"},
          {"p50", "send_to_deliver.p50"},
          {"p90", "send_to_deliver.p90"},
          {"p99", "send_to_deliver.p99"},
          {"p99.9", "send_to_deliver.p999"},
          {"max", "send_to_deliver.max"},
          {"srv cpu", "server_cpu_s"},
          {"cpu/1k", "server_cpu_s_per_1000"},
          {"gen cpu", "generator_cpu_s"},
          {"late p99", "send_late.p99"},
          {"rss MiB", "server_rss_mib"},
          {"ok", "pass"}};
}

void connect_or_throw(engine& e, std::size_t n, report& rep) {
  auto t0 = now_ns();
  auto ready = e.connect(0, n, n > 20000);
  double took = static_cast<double>(now_ns() - t0) / 1e9;
  rep.summary.emplace_back("connections", static_cast<double>(n));
  rep.summary.emplace_back("connect_seconds", took);
  if (ready != n) {
    std::string why;
    for (auto& [k, v] : e.connect_errors()) why += "\n  " + std::to_string(v) + " x " + k;
    throw std::runtime_error(std::to_string(n - ready) + " of " + std::to_string(n) + " connections failed:" + why);
  }
}

// ---- the scenarios -----------------------------------------------------------

// The pairs every pairs-based scenario starts from: accounts 2i (sender)
// and 2i+1 (receiver) in conversation i, all connected. Returns the flow of
// the senders, at rate 0.
flow connect_pairs(target& t, const options& o, engine& e, report& rep) {
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < o.pairs; ++i) groups.push_back({2 * i, 2 * i + 1});
  e.pop = t.prepare(2 * o.pairs, groups);
  for (std::size_t a = 0; a < 2 * o.pairs; ++a) e.add_connection(a);
  connect_or_throw(e, 2 * o.pairs, rep);
  flow f;
  for (std::size_t i = 0; i < o.pairs; ++i) f.members.push_back({2 * i, i});
  return f;
}

report run_pairs(target& t, const options& o, engine& e, report rep) {
  flow f = connect_pairs(t, o, e, rep);
  rep.columns = delivery_columns("offered");

  if (o.unloaded) {
    f.rate = o.unloaded_rate;
    auto r = e.run_step({f}, o.unloaded_seconds);
    result_row row;
    row.label = "unloaded";
    row.series = "unloaded";
    add_delivery_fields(row, r, o.unloaded_rate);
    add_resource_fields(row, r, r.stats.delivered);
    row.set("pass", delivery_passes(o, r) ? 1 : 0);
    row.errors = r.stats.errors;
    rep.summary.emplace_back("unloaded_p50_us", static_cast<double>(r.stats.deliver.percentile(0.5)));
    rep.summary.emplace_back("unloaded_ack_p50_us", static_cast<double>(r.stats.ack.percentile(0.5)));
    rep.rows.push_back(std::move(row));
  }
  double knee = 0;
  const result_row* knee_row = nullptr;
  std::size_t k = 0;
  for (double rate : step_rates(o, 1000, 1.5, 100000)) {
    f.rate = rate;
    auto r = e.run_step({f}, o.step_seconds);
    result_row row;
    row.label = "step " + std::to_string(++k);
    row.series = t.name();
    add_delivery_fields(row, r, rate);
    add_resource_fields(row, r, r.stats.delivered);
    bool pass = delivery_passes(o, r);
    row.set("pass", pass ? 1 : 0);
    row.errors = r.stats.errors;
    rep.rows.push_back(std::move(row));
    std::fprintf(stderr, "  %s at %.0f/s: p99 %.2f ms, %.2f%% delivered%s\n", rep.rows.back().label.c_str(), rate,
                 static_cast<double>(r.stats.deliver.percentile(0.99)) / 1000.0, rep.rows.back().get("delivered_pct"),
                 pass ? "" : " (fails the SLO)");
    if (pass) {
      knee = rate;
    } else if (!o.keep_stepping) {
      break;
    }
  }
  for (auto& row : rep.rows) {
    if (row.label != "unloaded" && row.get("offered_per_s") == knee && row.get("pass") == 1) knee_row = &row;
  }
  rep.summary.emplace_back("knee_msgs_per_s", knee);
  if (knee_row) {
    rep.summary.emplace_back("knee_p99_us", static_cast<double>(knee_row->latency("send_to_deliver")->p99));
    rep.summary.emplace_back("knee_server_cpu_s_per_1000", knee_row->get("server_cpu_s_per_1000"));
    rep.summary.emplace_back("knee_delivered_per_s", knee_row->get("delivered_per_s"));
  }
  return rep;
}

report run_fanout(target& t, const options& o, engine& e, report rep) {
  std::size_t users = 0;
  for (auto g : o.groups) {
    if (g < 2) throw std::invalid_argument("a group needs at least 2 members");
    users = std::max(users, g);
  }
  // One population: the groups are nested (the first g accounts), account 0
  // sends into each.
  std::vector<std::vector<std::size_t>> groups;
  for (auto g : o.groups) {
    std::vector<std::size_t> members(g);
    for (std::size_t i = 0; i < g; ++i) members[i] = i;
    groups.push_back(std::move(members));
  }
  e.pop = t.prepare(users, groups);
  for (std::size_t a = 0; a < users; ++a) e.add_connection(a);
  connect_or_throw(e, users, rep);
  rep.columns = delivery_columns("offered");
  rep.columns.insert(rep.columns.begin(), {"members", "members"});
  rep.columns.insert(rep.columns.begin() + 2, {"msgs/s", "messages_per_s"});
  for (std::size_t gi = 0; gi < o.groups.size(); ++gi) {
    std::size_t g = o.groups[gi];
    flow f;
    f.members.push_back({0, gi});
    double knee = 0;
    std::size_t k = 0;
    for (double deliveries : step_rates(o, 5000, 2, 320000)) {
      f.rate = deliveries / static_cast<double>(g - 1);
      auto r = e.run_step({f}, o.step_seconds);
      result_row row;
      row.label = "group " + std::to_string(g) + " step " + std::to_string(++k);
      row.series = "group " + std::to_string(g);
      row.set("members", static_cast<double>(g));
      add_delivery_fields(row, r, deliveries);
      row.set("messages_per_s", f.rate);
      add_resource_fields(row, r, r.stats.delivered);
      bool pass = delivery_passes(o, r);
      row.set("pass", pass ? 1 : 0);
      row.errors = r.stats.errors;
      std::fprintf(stderr, "  %s at %.0f deliveries/s: p99 %.2f ms, %.2f%% delivered%s\n", row.label.c_str(),
                   deliveries, static_cast<double>(r.stats.deliver.percentile(0.99)) / 1000.0, row.get("delivered_pct"),
                   pass ? "" : " (fails the SLO)");
      rep.rows.push_back(std::move(row));
      if (pass) {
        knee = std::max(knee, rep.rows.back().get("delivered_per_s"));
      } else if (!o.keep_stepping) {
        break;
      }
    }
    rep.summary.emplace_back("knee_deliveries_per_s_group_" + std::to_string(g), knee);
  }
  return rep;
}

report run_idle(target& t, const options& o, engine& e, report rep) {
  std::size_t n = o.connections;
  std::size_t accounts = std::max<std::size_t>(1, std::min(o.accounts, n));
  e.pop = t.prepare(accounts, {});
  // Past about 28 000 connections one source address runs out of ports
  // toward one server port; 127.0.0.0/8 is all local, so spread over it.
  std::size_t ips = o.source_ips ? o.source_ips : (n + 19999) / 20000;
  for (std::size_t i = 0; i < n; ++i) {
    auto ip = asio::ip::make_address_v4(static_cast<asio::ip::address_v4::uint_type>((127u << 24) | (2 + i % ips)));
    e.add_connection(i % accounts, asio::ip::address(ip));
  }
  // Let the server settle after the accounts were made before the baseline.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  double rss0 = server_rss_kib(e.server_pid());
  double cpu0 = server_cpu_seconds(e.server_pid());
  auto t0 = now_ns();
  auto ready = e.connect(0, n, true);
  double took = static_cast<double>(now_ns() - t0) / 1e9;
  double cpu1 = server_cpu_seconds(e.server_pid());
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(o.hold_seconds * 1000)));
  double rss1 = server_rss_kib(e.server_pid());
  auto held = e.open_connections();

  result_row row;
  row.label = "idle";
  row.series = t.name();
  row.set("attempted", static_cast<double>(n));
  row.set("ready", static_cast<double>(ready));
  row.set("held", static_cast<double>(held));
  row.set("accounts", static_cast<double>(accounts));
  row.set("source_ips", static_cast<double>(ips));
  row.set("connect_s", took);
  row.set("connects_per_s", took > 0 ? static_cast<double>(ready) / took : 0);
  row.set("server_cpu_s_connecting", cpu1 - cpu0);
  row.set("server_rss_before_mib", rss0 / 1024.0);
  row.set("server_rss_after_mib", rss1 / 1024.0);
  double per = held ? (rss1 - rss0) * 1024.0 / static_cast<double>(held) : 0;
  row.set("bytes_per_connection", per);
  row.set("generator_cpu_s", generator_cpu_seconds());
  row.latencies.emplace_back("connect_to_ready", summarize(e.merged_ready(false)));
  row.errors = e.connect_errors();
  rep.columns = {{"attempted", "attempted"},
                 {"ready", "ready"},
                 {"held", "held"},
                 {"connect s", "connect_s"},
                 {"conn/s", "connects_per_s"},
                 {"ready p50", "connect_to_ready.p50"},
                 {"ready p99", "connect_to_ready.p99"},
                 {"rss before MiB", "server_rss_before_mib"},
                 {"rss after MiB", "server_rss_after_mib"},
                 {"bytes/conn", "bytes_per_connection"}};
  rep.summary.emplace_back("held_connections", static_cast<double>(held));
  rep.summary.emplace_back("bytes_per_connection", per);
  if (e.server_pid() <= 0) rep.notes.push_back("no server pid: memory per connection not measured (--server-pid)");
  rep.rows.push_back(std::move(row));
  return rep;
}

report run_history(target& t, const options& o, engine& e, report rep) {
  flow sends = connect_pairs(t, o, e, rep);
  sends.rate = o.rate;
  flow reads;
  reads.kind = req_kind::history;
  for (std::size_t i = 0; i < std::min(o.readers, o.pairs); ++i) reads.members.push_back({2 * i + 1, i});
  // A first page to read: history of an empty conversation costs less.
  {
    flow warm = sends;
    warm.rate = std::min(o.rate, 200.0 * static_cast<double>(o.pairs));
    e.run_step({warm}, 0.5);
  }
  rep.columns = {{"reads offered", "history_offered_per_s"},
                 {"reads/s", "history_per_s"},
                 {"answered%", "history_answered_pct"},
                 {"msgs/page", "messages_per_page"},
                 {"read p50", "history.p50"},
                 {"read p90", "history.p90"},
                 {"read p99", "history.p99"},
                 {"read p99.9", "history.p999"},
                 {"read max", "history.max"},
                 {"bg deliv/s", "delivered_per_s"},
                 {"bg p99", "send_to_deliver.p99"},
                 {"srv cpu", "server_cpu_s"},
                 {"gen cpu", "generator_cpu_s"},
                 {"ok", "pass"}};
  double knee = 0;
  std::size_t k = 0;
  for (double rate : step_rates(o, 250, 2, 32000)) {
    reads.rate = rate;
    auto r = e.run_step({sends, reads}, o.step_seconds);
    auto& s = r.stats;
    result_row row;
    row.label = "step " + std::to_string(++k);
    row.series = "history";
    add_delivery_fields(row, r, o.rate);
    row.set("history_offered_per_s", rate);
    row.set("history_sent", static_cast<double>(s.history_sent));
    row.set("history_per_s", static_cast<double>(s.history_answered) / r.seconds);
    double answered =
        s.history_sent ? 100.0 * static_cast<double>(s.history_answered) / static_cast<double>(s.history_sent) : 0;
    row.set("history_answered_pct", answered);
    row.set("history_failed", static_cast<double>(s.history_failed));
    row.set("messages_per_page",
            s.history_answered ? static_cast<double>(s.history_messages) / static_cast<double>(s.history_answered) : 0);
    row.latencies.emplace_back("history", summarize(s.history));
    add_resource_fields(row, r, s.history_answered);
    bool pass = answered >= o.min_delivered * 100 && static_cast<double>(s.history.percentile(0.99)) <= o.slo_ms * 1000;
    row.set("pass", pass ? 1 : 0);
    row.errors = s.errors;
    std::fprintf(stderr, "  %s at %.0f reads/s: p99 %.2f ms, %.2f%% answered%s\n", row.label.c_str(), rate,
                 static_cast<double>(s.history.percentile(0.99)) / 1000.0, answered, pass ? "" : " (fails the SLO)");
    rep.rows.push_back(std::move(row));
    if (pass) {
      knee = rate;
    } else if (!o.keep_stepping) {
      break;
    }
  }
  rep.summary.emplace_back("knee_history_reads_per_s", knee);
  return rep;
}

report run_reconnect(target& t, const options& o, engine& e, report rep) {
  flow f = connect_pairs(t, o, e, rep);
  f.rate = o.rate;
  std::vector<std::size_t> receivers;
  for (std::size_t i = 0; i < o.pairs; ++i) receivers.push_back(2 * i + 1);
  auto r = e.run_step({f}, o.seconds, [&](shard& s, std::int64_t t0, std::int64_t t1) {
    std::vector<std::size_t> mine;
    for (auto c : receivers) {
      if (e.conn(c).sh == &s) mine.push_back(c);
    }
    e.reconnect_storm(s, std::move(mine), t0, t1);
  });
  auto [reconnects, failures] = e.reconnect_counts();
  result_row row;
  row.label = "reconnect";
  row.series = t.name();
  add_delivery_fields(row, r, o.rate);
  add_resource_fields(row, r, r.stats.delivered);
  row.set("reconnects", static_cast<double>(reconnects));
  row.set("reconnect_failures", static_cast<double>(failures));
  row.latencies.emplace_back("reconnect_to_ready", summarize(e.merged_ready(true)));
  row.errors = r.stats.errors;
  for (auto& [k, v] : e.connect_errors()) row.errors["connect: " + k] += v;
  rep.columns = {{"offered", "offered_per_s"},
                 {"deliv/s", "delivered_per_s"},
                 {"reconnects", "reconnects"},
                 {"failed", "reconnect_failures"},
                 {"ready p50", "reconnect_to_ready.p50"},
                 {"ready p99", "reconnect_to_ready.p99"},
                 {"ready max", "reconnect_to_ready.max"},
                 {"deliv%", "delivered_pct"},
                 {"missed", "lost"},
                 {"dup", "duplicates"},
                 {"ooo", "out_of_order"},
                 {"p50", "send_to_deliver.p50"},
                 {"p99", "send_to_deliver.p99"},
                 {"max", "send_to_deliver.max"},
                 {"srv cpu", "server_cpu_s"}};
  rep.summary.emplace_back("reconnects", static_cast<double>(reconnects));
  rep.summary.emplace_back("missed", row.get("lost"));
  rep.summary.emplace_back("duplicates", row.get("duplicates"));
  rep.rows.push_back(std::move(row));
  return rep;
}

}  // namespace

report run_scenario(target& t, const options& o) {
  report rep;
  rep.scenario = o.scenario;
  rep.target = t.name();
  engine e(t, o);
  if (o.scenario == "pairs") return run_pairs(t, o, e, std::move(rep));
  if (o.scenario == "fanout") return run_fanout(t, o, e, std::move(rep));
  if (o.scenario == "idle") return run_idle(t, o, e, std::move(rep));
  if (o.scenario == "history") return run_history(t, o, e, std::move(rep));
  if (o.scenario == "reconnect") return run_reconnect(t, o, e, std::move(rep));
  throw std::invalid_argument("unknown scenario " + o.scenario);
}

}  // namespace chatd_bench
