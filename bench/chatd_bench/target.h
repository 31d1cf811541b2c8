// What chatd-bench needs to know about the server it loads: how to create
// accounts and conversations, how a connection authenticates, and how to
// encode a send and recognise an ack or a delivery. The WebSocket, the
// clock, the histograms and the scenarios are the tool's own and the same
// for every target, so the numbers compare like with like.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chatd_bench {

// One account the tool connects as.
struct account {
  std::string id;     // the server's participant / user id
  std::string name;   // login name
  std::string token;  // whatever the handshake needs (access token, JWT, password)
  // Where its WebSocket goes: host, port and request target (path + query).
  std::string host;
  std::string port;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // extra upgrade headers
  std::string subprotocol;                                   // Sec-WebSocket-Protocol, empty for none
};

// A conversation (chatd), channel (Centrifugo) or peer JID (XMPP 1:1).
struct conversation {
  std::string id;
  std::vector<std::size_t> members;  // indices into population::accounts
};

struct population {
  std::vector<account> accounts;
  std::vector<conversation> conversations;
};

enum class frame_kind {
  ignore,   // nothing the tool counts (presence, pings, acks of setup requests)
  ack,      // the server accepted send `request`
  deliver,  // a message pushed to this connection; `body` holds it
  history,  // the answer to history request `request`
  error,    // request `request` failed; `body` holds the reason
};

struct decoded {
  frame_kind kind = frame_kind::ignore;
  std::uint64_t request = 0;    // the request id the tool put into the frame, for ack/history/error
  std::string_view body;        // for deliver: the message body exactly as sent (the tool only sends [A-Za-z0-9:_-])
  std::string_view message_id;  // for deliver: the server's id of the message, if it has one (reconnect's `since`)
  std::size_t count = 0;        // for history: messages in the page
};

// The steps between the WebSocket opening and the connection being usable
// (chatd: wait for `ready`; Centrifugo: connect + subscribe; XMPP: open,
// SASL, bind). One per connection attempt.
class handshake {
 public:
  virtual ~handshake() = default;
  // Frames to send as soon as the WebSocket is open.
  virtual std::vector<std::string> start() = 0;
  // A frame that arrived before the connection is ready: the frames to send
  // in answer. Sets `ready` once the connection can send and receive, and
  // `failed` (with a reason in `error`) when it never will.
  virtual std::vector<std::string> on_frame(std::string_view frame, bool& ready, bool& failed, std::string& error) = 0;
};

// With --threads above 1, send_frame, history_frame, decode_all and
// reconnect_path are called from several event loops at once: they must
// not change shared state without a lock.
class target {
 public:
  virtual ~target() = default;
  virtual std::string name() const = 0;
  // Blocking, before the clock starts: creates `users` accounts, and one
  // conversation per group (indices into the accounts).
  virtual population prepare(std::size_t users, const std::vector<std::vector<std::size_t>>& groups) = 0;
  virtual std::unique_ptr<handshake> make_handshake(const population& p, std::size_t account_index) = 0;
  // The request target to reconnect with, asking for what was missed after
  // `last_message_id` (empty when the target cannot, or nothing was seen).
  virtual std::string reconnect_path(const account& a, std::string_view last_message_id) = 0;
  virtual std::string send_frame(const population& p, std::size_t from, const conversation& to, std::uint64_t request,
                                 std::string_view body) = 0;
  // The newest page of `to`; empty when the target has no history request.
  virtual std::string history_frame(const population& p, std::size_t from, const conversation& to,
                                    std::uint64_t request) = 0;
  virtual decoded decode(std::string_view frame) = 0;
  // Every message in one frame, appended to `out`. A server may join several
  // messages into one WebSocket frame (Centrifugo puts up to 16 replies and
  // pushes in one, separated by newlines, whenever its write queue holds
  // more than one); the tool calls this, not decode(), on frames from the
  // server. The default is one decode() per frame.
  virtual void decode_all(std::string_view frame, std::vector<decoded>& out) { out.push_back(decode(frame)); }
  // The server process, for CPU seconds and RSS from /proc; 0 if unknown.
  virtual int server_pid() const = 0;
};

// How a target is reached, from the command line.
struct target_options {
  std::string address;  // host:port of the server's entry point (chatd's gateway, Centrifugo, ejabberd's WebSocket)
  int server_pid = 0;   // for CPU and RSS; 0 when the tool should not read /proc
  std::vector<std::pair<std::string, std::string>> extra;  // --target-opt key=value, target-specific
};

// Each target_*.cpp registers itself with a static registrar, so a target is
// added by adding its file.
using target_factory = std::unique_ptr<target> (*)(const target_options&);
struct target_registrar {
  target_registrar(const char* name, target_factory make);
};
// Throws std::invalid_argument for a name no file registered.
std::unique_ptr<target> make_target(const std::string& name, const target_options& o);
std::vector<std::string> target_names();

}  // namespace chatd_bench
