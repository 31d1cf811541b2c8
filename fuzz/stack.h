// The services a client request reaches, wired in-process the way `chatd all`
// wires them (src/app), on a real RocksDB chat store in a temporary
// directory. The queue is replaced by a publisher that reports every record
// durable at once, and presence by a port that only answers "offline".
//
// The store keeps what earlier inputs created (conversations, messages): a
// crash found late may need the inputs before it to reproduce, and
// -runs=1 on the reproducer alone is then not enough.
#pragma once

#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "auth/password.h"
#include "auth/token.h"
#include "chat/conversations.h"
#include "chat/messages.h"
#include "chat/publisher.h"
#include "common/config.h"
#include "common/ids.h"
#include "common/metrics.h"
#include "common/rate_limiter.h"
#include "common/worker_pool.h"
#include "participants/service.h"
#include "presence/presence.h"
#include "store/rocksdb_store.h"
#include "store/store.h"
// The port fakes of the test suite (tests/fakes.h), shared rather than copied.
#include "../tests/fakes.h"

namespace chatd::fuzz {

class immediate_publisher : public chat::publisher {
 public:
  void publish_durable(const chat::event&, std::function<void(status)> done) override { done({}); }
  void publish_ephemeral(const chat::event&) override {}
};

inline config generous_config() {
  config c;
  // Rate limits would otherwise answer most inputs after the first second.
  c.rate_limits.send_per_second = c.rate_limits.send_burst = 1e9;
  c.rate_limits.read_per_second = c.rate_limits.read_burst = 1e9;
  c.rate_limits.typing_per_second = c.rate_limits.typing_burst = 1e9;
  c.rate_limits.login_per_minute = 1e9;
  return c;
}

inline std::filesystem::path fresh_dir() {
  std::random_device rd;
  return std::filesystem::temp_directory_path() / ("chatd-fuzz-" + std::to_string(rd()) + std::to_string(rd()));
}

inline std::unique_ptr<store::chat_store> open_store(const std::filesystem::path& dir) {
  store::rocksdb_options o;
  o.path = dir.string();
  return store::open_rocksdb_store(o);
}

struct stack {
  stack() {
    alice = person(store::participant_kind::user, "alice");
    bob = person(store::participant_kind::shop, "bob");
    admin = person(store::participant_kind::admin, "root");
    auto made = conversations.create(alice, store::conversation_kind::direct, {bob.id}, "");
    if (made) conversation = made->first.conv.id;
    alice_token = token_for(alice);
    admin_token = token_for(admin);
  }
  ~stack() {
    workers.stop();
    db.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  store::participant person(store::participant_kind k, const std::string& name) {
    store::participant p;
    p.id = ids.next();
    p.kind = k;
    p.username = name;
    p.display_name = name;
    p.created_at = now_ms();
    (void)db->create_participant(p);
    return p;
  }
  std::string token_for(const store::participant& p) const {
    auth::token_claims c;
    c.sub = p.id;
    c.kind = std::string(store::kind_name(p.kind));
    c.iat = now_ms() / 1000;
    c.exp = c.iat + 24 * 3600;
    return tokens.sign(c);
  }

  std::filesystem::path dir = fresh_dir();
  std::unique_ptr<store::chat_store> db = open_store(dir);
  id_generator ids{1};
  auth::token_signer tokens{"fuzz-secret-fuzz-secret-fuzz-sec"};
  participants::service participants{*db, tokens, auth::fast_password_params(), ids, 3600};
  chat::conversation_service conversations{*db, ids};
  immediate_publisher pub;
  chat::message_service messages{*db, ids, conversations, pub};
  testing::fixed_presence presence{store::presence_state::offline};
  metrics_registry metrics;
  config cfg = generous_config();
  participant_limits limits{cfg.rate_limits};
  worker_pool workers{2, "fuzz"};
  store::participant alice, bob, admin;
  std::uint64_t conversation = 0;
  std::string alice_token, admin_token;
};

}  // namespace chatd::fuzz
