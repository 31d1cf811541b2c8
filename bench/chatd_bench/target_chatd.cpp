// chatd through its public contract (/work/shared/spec/api-v1.md): accounts
// and conversations over the gateway's HTTP API, one WebSocket per
// connection to the chat server discovery names, `ready` as the handshake.
//
// Target options (--target-opt key=value):
//   setup_threads=N  parallel HTTP clients while creating accounts (default 4)
//   history_limit=N  messages per history page (default 50)
#include <chrono>
#include <random>
#include <stdexcept>

#include "http.h"
#include "json_scan.h"
#include "target.h"

namespace chatd_bench {
namespace {

namespace js = json_scan;

constexpr std::string_view password = "bench-password-1";

class chatd_handshake : public handshake {
 public:
  std::vector<std::string> start() override { return {}; }
  std::vector<std::string> on_frame(std::string_view frame, bool& ready, bool& failed, std::string& error) override {
    auto type = js::string_member(frame, "type");
    if (type == "ready") {
      ready = true;
    } else if (type == "error") {
      failed = true;
      error = std::string(frame);
    }
    return {};
  }
};

class chatd_target : public target {
 public:
  explicit chatd_target(const target_options& o) : o_(o) {
    std::tie(host_, port_) = split_host_port(o.address);
    for (auto& [k, v] : o.extra) {
      if (k == "setup_threads")
        setup_threads_ = std::max(1, std::stoi(v));
      else if (k == "history_limit")
        history_limit_ = std::stoi(v);
      else
        throw std::invalid_argument("chatd target: unknown option " + k);
    }
    // Names unique to this run, so runs against the same server never collide.
    std::mt19937_64 rng(std::random_device{}());
    const char* digits = "abcdefghijklmnopqrstuvwxyz0123456789";
    prefix_ = "b";
    for (int i = 0; i < 7; ++i) prefix_ += digits[rng() % 36];
    prefix_ += "_";
  }

  std::string name() const override { return "chatd"; }
  int server_pid() const override { return o_.server_pid; }

  population prepare(std::size_t users, const std::vector<std::vector<std::size_t>>& groups) override {
    population p;
    p.accounts.resize(users);
    parallel(users, [&](http_client& http, std::size_t i) { make_account(http, p.accounts[i], i); });
    p.conversations.resize(groups.size());
    parallel(groups.size(), [&](http_client& http, std::size_t g) {
      auto& members = groups[g];
      if (members.size() < 2) throw std::invalid_argument("a conversation needs two members");
      std::string body = members.size() == 2 ? R"({"kind":"direct","members":[)" : R"({"kind":"group","members":[)";
      for (std::size_t k = 1; k < members.size(); ++k) {
        if (k > 1) body += ',';
        body += js::quote(p.accounts.at(members[k]).id);
      }
      body += "]";
      if (members.size() > 2) body += R"(,"title":"bench")";
      body += "}";
      auto r = call(http, "POST", "/v1/conversations", body, p.accounts.at(members[0]).token);
      p.conversations[g].id = std::string(js::string_member(r, "id"));
      p.conversations[g].members = members;
    });
    return p;
  }

  std::unique_ptr<handshake> make_handshake(const population&, std::size_t) override {
    return std::make_unique<chatd_handshake>();
  }

  std::string reconnect_path(const account& a, std::string_view last_message_id) override {
    if (last_message_id.empty()) return a.path;
    return a.path + "&since=" + std::string(last_message_id);
  }

  std::string send_frame(const population& p, std::size_t from, const conversation& to, std::uint64_t request,
                         std::string_view body) override {
    std::string f;
    f.reserve(120 + to.id.size() + body.size());
    f += R"({"type":"send","id":)";
    f += std::to_string(request);
    f += R"(,"conversation_id":")";
    f += to.id;
    f += R"(","client_msg_id":"m)";
    f += std::to_string(request);
    f += R"(","body":")";
    f += body;
    f += "\"}";
    return f;
  }

  std::string history_frame(const population&, std::size_t, const conversation& to, std::uint64_t request) override {
    return R"({"type":"history","id":)" + std::to_string(request) + R"(,"conversation_id":")" + to.id +
           R"(","limit":)" + std::to_string(history_limit_) + "}";
  }

  decoded decode(std::string_view frame) override {
    decoded d;
    std::string_view type, id, message, messages, code;
    js::for_each_member(frame, [&](std::string_view k, std::string_view v) {
      if (k == "type")
        type = js::unquote(v);
      else if (k == "id")
        id = v;
      else if (k == "message")
        message = v;
      else if (k == "messages")
        messages = v;
      else if (k == "code")
        code = js::unquote(v);
      return true;
    });
    if (type == "message") {
      d.kind = frame_kind::deliver;
      js::for_each_member(message, [&](std::string_view k, std::string_view v) {
        if (k == "id")
          d.message_id = js::unquote(v);
        else if (k == "body")
          d.body = js::unquote(v);
        return d.message_id.empty() || d.body.empty();
      });
    } else if (type == "ack") {
      d.kind = frame_kind::ack;
      js::to_uint(id, d.request);
    } else if (type == "history") {
      d.kind = frame_kind::history;
      js::to_uint(id, d.request);
      auto n = js::count_elements(messages);
      d.count = n > 0 ? static_cast<std::size_t>(n) : 0;
    } else if (type == "error") {
      d.kind = frame_kind::error;
      js::to_uint(id, d.request);
      d.body = code;
    }
    return d;
  }

 private:
  target_options o_;
  std::string host_, port_, prefix_;
  int setup_threads_ = 4;
  int history_limit_ = 50;

  std::string call(http_client& http, std::string_view method, std::string_view path, std::string_view body,
                   const std::string& token = {}) {
    std::vector<std::pair<std::string, std::string>> h;
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    auto r = http.request(method, path, body, h);
    if (r.status >= 300) {
      std::string hint;
      if (r.status == 429)
        hint = " (start chatd with rate_limits.login_per_minute=0, send_per_second=0 and read_per_second=0)";
      throw std::runtime_error(std::string(method) + " " + std::string(path) + ": HTTP " + std::to_string(r.status) +
                               " " + r.body + hint);
    }
    return std::move(r.body);
  }

  void make_account(http_client& http, account& a, std::size_t i) {
    a.name = prefix_ + std::to_string(i);
    std::string creds = R"({"username":")" + a.name + R"(","password":")" + std::string(password);
    auto reg = call(http, "POST", "/v1/users", creds + R"(","display_name":")" + a.name + "\"}");
    a.id = std::string(js::string_member(reg, "id"));
    auto login = call(http, "POST", "/v1/auth/login", R"({"kind":"user",)" + creds.substr(1) + "\"}");
    a.token = std::string(js::string_member(login, "access_token"));
    if (a.id.empty() || a.token.empty()) throw std::runtime_error("unexpected register/login answer: " + login);
    auto disc = call(http, "GET", "/v1/discovery", {}, a.token);
    auto servers = js::member(disc, "servers");
    auto first = servers ? js::first_element(*servers) : std::nullopt;
    if (!first) throw std::runtime_error("discovery named no chat server: " + disc);
    std::string url(js::string_member(*first, "url"));
    constexpr std::string_view scheme = "ws://";
    if (url.rfind(scheme, 0) != 0) throw std::runtime_error("only ws:// chat servers are supported: " + url);
    auto rest = url.substr(scheme.size());
    auto slash = rest.find('/');
    std::tie(a.host, a.port) = split_host_port(rest.substr(0, slash));
    a.path = (slash == std::string::npos ? "/" : rest.substr(slash)) + "?access_token=" + a.token;
  }

  // Setup calls on setup_threads_ keep-alive connections at once.
  template <class F>
  void parallel(std::size_t n, F&& f) {
    parallel_requests(host_, port_, static_cast<std::size_t>(setup_threads_), n, f);
  }
};

const target_registrar registered("chatd", [](const target_options& o) -> std::unique_ptr<target> {
  return std::make_unique<chatd_target>(o);
});

}  // namespace
}  // namespace chatd_bench
