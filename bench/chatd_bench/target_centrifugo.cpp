// Centrifugo v6 (scripts/peers/centrifugo.sh) through its bidirectional JSON
// protocol over WebSocket. Accounts need no server call: a connection JWT
// (HS256, the secret in the peer's config) names the user. A 1:1
// conversation is the user-limited channel dm:#<a>,<b> (only those two users
// may subscribe), a group the channel grp:<name>; a connection subscribes to
// every channel its account is a member of, then publishes into them. The
// publish reply is the ack, the publication pushed on the receivers'
// subscription the delivery. Centrifugo also pushes a publication back to the
// publisher's own subscription (it has no way to skip the sender), so the
// sending connection sees its own message as a delivery too.
//
// Target options (--target-opt key=value):
//   secret=S         the HMAC secret of client.token.hmac_secret_key
//                    (default: the one scripts/peers/centrifugo.sh writes)
//   history_limit=N  publications per history page (default 50)
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>

#include "http.h"
#include "json_scan.h"
#include "target.h"

namespace chatd_bench {
namespace {

namespace js = json_scan;

constexpr std::string_view default_secret = "chatd-bench-centrifugo-secret";

std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view message) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(), &len) ||
      len != out.size())
    throw std::runtime_error("HMAC-SHA256 failed");
  return out;
}

std::string base64url(std::string_view in) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t v = (std::uint32_t(static_cast<unsigned char>(in[i])) << 16) |
                      (std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8) |
                      std::uint32_t(static_cast<unsigned char>(in[i + 2]));
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    std::uint32_t v = std::uint32_t(static_cast<unsigned char>(in[i])) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    std::uint32_t v = (std::uint32_t(static_cast<unsigned char>(in[i])) << 16) |
                      (std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
  return out;
}

// A connection JWT without expiry: the run is shorter than any sensible one.
std::string connection_token(std::string_view secret, std::string_view user) {
  std::string signing_input =
      base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(R"({"sub":)" + js::quote(user) + "}");
  auto mac = hmac_sha256(secret, signing_input);
  return signing_input + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

// Calls f(line) for each newline-separated message of a frame.
template <class F>
void for_each_line(std::string_view frame, F&& f) {
  while (!frame.empty()) {
    auto nl = frame.find('\n');
    auto line = frame.substr(0, nl);
    if (!line.empty()) f(line);
    if (nl == std::string_view::npos) break;
    frame.remove_prefix(nl + 1);
  }
}

// connect (id 1), then one subscribe per channel (ids 2, 3, ...), all in one
// frame: Centrifugo handles the commands of a frame in order.
class centrifugo_handshake : public handshake {
 public:
  centrifugo_handshake(std::string token, std::vector<std::string> channels)
      : token_(std::move(token)), channels_(std::move(channels)) {}

  std::vector<std::string> start() override {
    std::string f = R"({"id":1,"connect":{"token":)" + js::quote(token_) + "}}";
    for (std::size_t i = 0; i < channels_.size(); ++i)
      f += "\n{\"id\":" + std::to_string(i + 2) + R"(,"subscribe":{"channel":)" + js::quote(channels_[i]) + "}}";
    return {f};
  }

  std::vector<std::string> on_frame(std::string_view frame, bool& ready, bool& failed, std::string& error) override {
    for_each_line(frame, [&](std::string_view line) {
      std::uint64_t id = 0;
      bool has_error = false;
      js::for_each_member(line, [&](std::string_view k, std::string_view v) {
        if (k == "id")
          js::to_uint(v, id);
        else if (k == "error")
          has_error = true;
        return true;
      });
      if (id == 0) return;
      if (has_error) {
        failed = true;
        error = std::string(line);
      } else if (id <= channels_.size() + 1) {
        ++answered_;
      }
    });
    if (!failed && answered_ == channels_.size() + 1) ready = true;
    return {};
  }

 private:
  std::string token_;
  std::vector<std::string> channels_;
  std::size_t answered_ = 0;
};

class centrifugo_target : public target {
 public:
  explicit centrifugo_target(const target_options& o) : o_(o), secret_(default_secret) {
    std::tie(host_, port_) = split_host_port(o.address);
    for (auto& [k, v] : o.extra) {
      if (k == "secret")
        secret_ = v;
      else if (k == "history_limit")
        history_limit_ = std::stoi(v);
      else
        throw std::invalid_argument("centrifugo target: unknown option " + k);
    }
    // User ids unique to this run, so channels (and their history) never
    // carry over from an earlier run against the same server.
    std::mt19937_64 rng(std::random_device{}());
    const char* digits = "abcdefghijklmnopqrstuvwxyz0123456789";
    prefix_ = "b";
    for (int i = 0; i < 7; ++i) prefix_ += digits[rng() % 36];
    prefix_ += "_";
  }

  std::string name() const override { return "centrifugo"; }
  int server_pid() const override { return o_.server_pid; }

  population prepare(std::size_t users, const std::vector<std::vector<std::size_t>>& groups) override {
    population p;
    p.accounts.resize(users);
    for (std::size_t i = 0; i < users; ++i) {
      auto& a = p.accounts[i];
      a.id = prefix_ + std::to_string(i);
      a.name = a.id;
      a.token = connection_token(secret_, a.id);
      a.host = host_;
      a.port = port_;
      a.path = "/connection/websocket";
    }
    p.conversations.resize(groups.size());
    for (std::size_t g = 0; g < groups.size(); ++g) {
      auto& members = groups[g];
      if (members.size() < 2) throw std::invalid_argument("a conversation needs two members");
      auto& c = p.conversations[g];
      c.members = members;
      if (members.size() == 2)
        c.id = "dm:#" + p.accounts.at(members[0]).id + "," + p.accounts.at(members[1]).id;
      else
        c.id = "grp:" + prefix_ + "g" + std::to_string(g);
    }
    // The channels each account subscribes to in its handshake.
    channels_.assign(users, {});
    for (auto& c : p.conversations)
      for (auto m : c.members) channels_.at(m).push_back(c.id);
    return p;
  }

  std::unique_ptr<handshake> make_handshake(const population& p, std::size_t account_index) override {
    return std::make_unique<centrifugo_handshake>(p.accounts.at(account_index).token, channels_.at(account_index));
  }

  // Recovery in Centrifugo is per subscription (offset and epoch in the
  // subscribe command), not something a request target can ask for.
  std::string reconnect_path(const account& a, std::string_view) override { return a.path; }

  std::string send_frame(const population&, std::size_t, const conversation& to, std::uint64_t request,
                         std::string_view body) override {
    std::string f;
    f.reserve(60 + to.id.size() + body.size());
    f += R"({"id":)";
    f += std::to_string(request);
    f += R"(,"publish":{"channel":")";
    f += to.id;
    f += R"(","data":")";
    f += body;
    f += "\"}}";
    return f;
  }

  std::string history_frame(const population&, std::size_t, const conversation& to, std::uint64_t request) override {
    return R"({"id":)" + std::to_string(request) + R"(,"history":{"channel":")" + to.id + R"(","limit":)" +
           std::to_string(history_limit_) + R"(,"reverse":true}})";
  }

  decoded decode(std::string_view frame) override {
    decoded d;
    for_each_line(frame, [&](std::string_view line) {
      if (d.kind == frame_kind::ignore) d = decode_line(line);
    });
    return d;
  }

  void decode_all(std::string_view frame, std::vector<decoded>& out) override {
    for_each_line(frame, [&](std::string_view line) { out.push_back(decode_line(line)); });
  }

 private:
  target_options o_;
  std::string host_, port_, prefix_, secret_;
  int history_limit_ = 50;
  std::vector<std::vector<std::string>> channels_;

  static decoded decode_line(std::string_view line) {
    decoded d;
    std::string_view id, push, history, error;
    bool has_publish = false;
    js::for_each_member(line, [&](std::string_view k, std::string_view v) {
      if (k == "id") {
        id = v;
      } else if (k == "push") {
        push = v;
      } else if (k == "publish") {
        has_publish = true;
      } else if (k == "history") {
        history = v;
      } else if (k == "error") {
        error = v;
      }
      return true;
    });
    if (!push.empty()) {
      // Only publications count; join/leave, unsubscribe and disconnect
      // pushes do not.
      auto pub = js::member(push, "pub");
      if (!pub) return d;
      d.kind = frame_kind::deliver;
      js::for_each_member(*pub, [&](std::string_view k, std::string_view v) {
        if (k == "data")
          d.body = js::unquote(v);
        else if (k == "offset")
          d.message_id = v;
        return d.body.empty() || d.message_id.empty();
      });
    } else if (!error.empty()) {
      d.kind = frame_kind::error;
      js::to_uint(id, d.request);
      d.body = js::string_member(error, "message");
    } else if (has_publish) {
      d.kind = frame_kind::ack;
      js::to_uint(id, d.request);
    } else if (!history.empty()) {
      d.kind = frame_kind::history;
      js::to_uint(id, d.request);
      if (auto pubs = js::member(history, "publications")) {
        auto n = js::count_elements(*pubs);
        d.count = n > 0 ? static_cast<std::size_t>(n) : 0;
      }
    }
    return d;
  }
};

const target_registrar registered("centrifugo", [](const target_options& o) -> std::unique_ptr<target> {
  return std::make_unique<centrifugo_target>(o);
});

}  // namespace
}  // namespace chatd_bench
