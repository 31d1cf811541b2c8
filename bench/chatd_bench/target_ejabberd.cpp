// ejabberd (scripts/peers/ejabberd.sh) through XMPP over WebSocket (RFC
// 7395: subprotocol "xmpp", one stanza per frame). Accounts are registered
// through mod_http_api (/api/register on the same listener); a connection
// opens the stream, authenticates with SASL PLAIN, re-opens, binds a
// resource and sends its initial presence, as any chat client does. A 1:1
// conversation is the two bare JIDs: a send is a type="chat" <message> to the
// other member's bare JID, a delivery the <message> with a <body> that
// arrives there. History is the newest page of the MAM archive (XEP-0313)
// with the other member.
//
// Not measured here:
// - send->ack. XMPP answers a <message> with nothing unless it fails. The
//   acks of XEP-0198 (<r/> -> <a h=.../>) count stanzas per connection and
//   need a frame of their own, and once a client enables them ejabberd asks
//   for acks itself and closes a connection that does not answer, which a
//   frame decoder cannot do. decode never returns ack; a failed send comes
//   back as a <message type="error"> with its id, which is reported.
// - groups (fan-out): XMPP needs MUC rooms for those; prepare refuses them.
// - reconnect with `since`: XMPP has no request target for it.
//
// Target options (--target-opt key=value):
//   domain=D         the XMPP host (default localhost, as the peer's config)
//   setup_threads=N  parallel HTTP clients while registering (default 4)
//   history_limit=N  messages per history page (default 50)
#include <atomic>
#include <random>
#include <stdexcept>

#include "http.h"
#include "json_scan.h"
#include "target.h"

namespace chatd_bench {
namespace {

constexpr std::string_view password = "bench-password-1";

std::string base64(std::string_view in) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return std::uint32_t(static_cast<unsigned char>(in[k])); };
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int s = 18; s >= 0; s -= 6) out += alphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    std::uint32_t v = byte(i) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The value of attribute `name` in the start tag that begins `tag` (either
// quote); empty if absent.
std::string_view attribute(std::string_view tag, std::string_view name) {
  auto end = tag.find('>');
  tag = tag.substr(0, end);
  for (std::size_t at = 0; (at = tag.find(name, at)) != std::string_view::npos; at += name.size()) {
    if (at == 0 || tag[at - 1] != ' ') continue;
    auto eq = at + name.size();
    if (eq + 1 >= tag.size() || tag[eq] != '=') continue;
    char q = tag[eq + 1];
    if (q != '\'' && q != '"') continue;
    auto close = tag.find(q, eq + 2);
    if (close == std::string_view::npos) return {};
    return tag.substr(eq + 2, close - eq - 2);
  }
  return {};
}

// The text between <name> and </name>, the first time it occurs at or after `from`.
std::string_view element_text(std::string_view s, std::string_view open, std::string_view close, std::size_t from = 0) {
  auto b = s.find(open, from);
  if (b == std::string_view::npos) return {};
  b += open.size();
  auto e = s.find(close, b);
  if (e == std::string_view::npos) return {};
  return s.substr(b, e - b);
}

bool to_uint(std::string_view s, std::uint64_t& out) { return json_scan::to_uint(s, out); }

class xmpp_handshake : public handshake {
 public:
  xmpp_handshake(std::string domain, std::string user, std::string resource)
      : domain_(std::move(domain)), user_(std::move(user)), resource_(std::move(resource)) {}

  std::vector<std::string> start() override { return {open()}; }

  std::vector<std::string> on_frame(std::string_view f, bool& ready, bool& failed, std::string& error) override {
    if (starts_with(f, "<stream:error") || starts_with(f, "<close") || starts_with(f, "<failure")) {
      failed = true;
      error = std::string(f);
      return {};
    }
    switch (step_) {
      case step::auth:
        if (starts_with(f, "<stream:features") && f.find("<mechanism>PLAIN<") != std::string_view::npos) {
          step_ = step::authenticating;
          std::string creds;
          creds += '\0';
          creds += user_;
          creds += '\0';
          creds += password;
          return {"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64(creds) + "</auth>"};
        }
        if (starts_with(f, "<stream:features")) {
          failed = true;
          error = "no SASL PLAIN offered: " + std::string(f);
        }
        break;
      case step::authenticating:
        if (starts_with(f, "<success")) {
          step_ = step::bind;
          return {open()};
        }
        break;
      case step::bind:
        if (starts_with(f, "<stream:features") && f.find("<bind") != std::string_view::npos) {
          step_ = step::binding;
          return {"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource_ +
                  "</resource></bind></iq>"};
        }
        break;
      case step::binding:
        if (starts_with(f, "<iq") && attribute(f, "id") == "bind") {
          if (attribute(f, "type") != "result") {
            failed = true;
            error = "bind: " + std::string(f);
            return {};
          }
          // Initial presence makes the session available: ejabberd routes a
          // message to a bare JID only to available resources.
          ready = true;
          return {"<presence/>"};
        }
        break;
    }
    return {};
  }

 private:
  enum class step { auth, authenticating, bind, binding };
  std::string domain_, user_, resource_;
  step step_ = step::auth;

  std::string open() const {
    return "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='" + domain_ + "' version='1.0'/>";
  }
};

class ejabberd_target : public target {
 public:
  explicit ejabberd_target(const target_options& o) : o_(o) {
    std::tie(host_, port_) = split_host_port(o.address);
    for (auto& [k, v] : o.extra) {
      if (k == "domain")
        domain_ = v;
      else if (k == "setup_threads")
        setup_threads_ = std::max(1, std::stoi(v));
      else if (k == "history_limit")
        history_limit_ = std::stoi(v);
      else
        throw std::invalid_argument("ejabberd target: unknown option " + k);
    }
    // Names unique to this run (and lower case: JIDs are case-folded), so
    // archives never carry over from an earlier run against the same server.
    std::mt19937_64 rng(std::random_device{}());
    const char* digits = "abcdefghijklmnopqrstuvwxyz0123456789";
    prefix_ = "b";
    for (int i = 0; i < 7; ++i) prefix_ += digits[rng() % 36];
    prefix_ += "_";
  }

  std::string name() const override { return "ejabberd"; }
  int server_pid() const override { return o_.server_pid; }

  population prepare(std::size_t users, const std::vector<std::vector<std::size_t>>& groups) override {
    for (auto& g : groups)
      if (g.size() != 2)
        throw std::invalid_argument("ejabberd target: only 1:1 conversations (groups would need MUC rooms)");
    population p;
    p.accounts.resize(users);
    parallel(users, [&](http_client& http, std::size_t i) {
      auto& a = p.accounts[i];
      a.name = prefix_ + std::to_string(i);
      a.id = a.name + "@" + domain_;
      a.token = std::string(password);
      a.host = host_;
      a.port = port_;
      a.path = "/ws";
      a.subprotocol = "xmpp";
      std::string body =
          R"({"user":")" + a.name + R"(","host":")" + domain_ + R"(","password":")" + std::string(password) + "\"}";
      auto r = http.request("POST", "/api/register", body);
      // 409: registered by an earlier prepare in this run, with the same password.
      if (r.status != 200 && r.status != 409)
        throw std::runtime_error("ejabberd /api/register: HTTP " + std::to_string(r.status) + " " + r.body +
                                 " (is mod_http_api allowed from loopback?)");
    });
    p.conversations.resize(groups.size());
    for (std::size_t g = 0; g < groups.size(); ++g) {
      p.conversations[g].members = groups[g];
      p.conversations[g].id = p.accounts.at(groups[g][0]).id + " " + p.accounts.at(groups[g][1]).id;
    }
    return p;
  }

  std::unique_ptr<handshake> make_handshake(const population& p, std::size_t account_index) override {
    // A resource of its own per connection: a second session binding the
    // same resource would replace the first.
    return std::make_unique<xmpp_handshake>(domain_, p.accounts.at(account_index).name,
                                            "c" + std::to_string(next_resource_++));
  }

  std::string reconnect_path(const account& a, std::string_view) override { return a.path; }

  std::string send_frame(const population& p, std::size_t from, const conversation& to, std::uint64_t request,
                         std::string_view body) override {
    auto& peer = p.accounts.at(to.members.at(0) == from ? to.members.at(1) : to.members.at(0)).id;
    std::string f;
    f.reserve(70 + peer.size() + body.size());
    f += "<message to='";
    f += peer;
    f += "' type='chat' id='";
    f += std::to_string(request);
    f += "'><body>";
    f += body;
    f += "</body></message>";
    return f;
  }

  // The newest page (RSM <before/>) of the archive with the other member.
  std::string history_frame(const population& p, std::size_t from, const conversation& to,
                            std::uint64_t request) override {
    auto& peer = p.accounts.at(to.members.at(0) == from ? to.members.at(1) : to.members.at(0)).id;
    auto id = std::to_string(request);
    return "<iq type='set' id='" + id + "'><query xmlns='urn:xmpp:mam:2' queryid='" + id +
           "'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2"
           "</value></field><field var='with'><value>" +
           peer + "</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>" +
           std::to_string(history_limit_) + "</max><before/></set></query></iq>";
  }

  decoded decode(std::string_view f) override {
    decoded d;
    if (starts_with(f, "<message")) {
      if (attribute(f, "type") == "error") {
        d.kind = frame_kind::error;
        to_uint(attribute(f, "id"), d.request);
        d.body = error_condition(f);
        return d;
      }
      auto body = f.find("<body>");
      if (body == std::string_view::npos) return d;  // chat states, receipts
      // A MAM result (a page of history being sent) carries the archived
      // message, body and all, inside <result>: not a delivery.
      if (f.substr(0, body).find("<result") != std::string_view::npos) return d;
      d.kind = frame_kind::deliver;
      d.body = element_text(f, "<body>", "</body>", body);
      auto sid = f.find("<stanza-id");
      if (sid != std::string_view::npos && sid < body) d.message_id = attribute(f.substr(sid), "id");
      return d;
    }
    if (starts_with(f, "<iq")) {
      auto type = attribute(f, "type");
      if (type == "result" && f.find("<fin") != std::string_view::npos) {
        // The result messages came as frames of their own before this one;
        // <count> is the archive's size, so the page held min(count, max).
        d.kind = frame_kind::history;
        to_uint(attribute(f, "id"), d.request);
        std::uint64_t total = 0;
        to_uint(element_text(f, "<count>", "</count>"), total);
        d.count = static_cast<std::size_t>(std::min<std::uint64_t>(total, static_cast<std::uint64_t>(history_limit_)));
      } else if (type == "error") {
        d.kind = frame_kind::error;
        to_uint(attribute(f, "id"), d.request);
        d.body = error_condition(f);
      }
    }
    return d;
  }

 private:
  target_options o_;
  std::string host_, port_, prefix_;
  std::string domain_ = "localhost";
  int setup_threads_ = 4;
  int history_limit_ = 50;
  std::atomic<std::uint64_t> next_resource_{0};

  // The name of the defined condition inside <error>, e.g. "service-unavailable".
  static std::string_view error_condition(std::string_view f) {
    auto e = f.find("<error");
    if (e == std::string_view::npos) return "error";
    auto c = f.find('<', f.find('>', e));
    if (c == std::string_view::npos) return "error";
    auto end = f.find_first_of(" />", c + 1);
    return f.substr(c + 1, end == std::string_view::npos ? std::string_view::npos : end - c - 1);
  }

  // Setup calls on setup_threads_ keep-alive connections at once.
  template <class F>
  void parallel(std::size_t n, F&& f) {
    parallel_requests(host_, port_, static_cast<std::size_t>(setup_threads_), n, f);
  }
};

const target_registrar registered("ejabberd", [](const target_options& o) -> std::unique_ptr<target> {
  return std::make_unique<ejabberd_target>(o);
});

}  // namespace
}  // namespace chatd_bench
