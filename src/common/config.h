// chatd's configuration: one typed section per service. Sources, weakest
// first: defaults, the TOML file (--config), environment variables
// CHATD_<SECTION>_<KEY>, flags (--set section.key=value). An unknown key in
// any source is an error naming it (docs/configuration in README.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace chatd {

struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct node_config {
  // Snowflake node number, unique per process: 1..1023 is used as is; 0
  // (the default) leases a free one from the chat database at start
  // (store/node_lease.h), so separate processes need no hand configuration.
  std::uint32_t id = 0;
  std::uint32_t io_threads = 0;      // 0: one per core
  std::uint32_t worker_threads = 0;  // 0: 4 per core
  std::string log_level = "info";
};

struct gateway_config {
  std::string listen = "127.0.0.1:8080";
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_connections = 10000;
  std::int64_t request_timeout_ms = 30000;
  std::string web_root;  // the browser client (web/dist); load_config sets the compile-time default, empty: off
  // https on the listener: PEM certificate chain and key, both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
};

struct chat_server_config {
  std::string listen = "127.0.0.1:9000";
  std::string public_url;  // default ws://<bound listen>/v1/ws
  std::string region = "local";
  std::optional<double> lat;
  std::optional<double> lon;
  std::string id;  // default: "cs-<node id>"
  std::size_t max_connections = 10000;
  std::size_t max_queued_frames = 1024;
  std::size_t max_sends_in_flight = 2048;  // in the process; more are answered `unavailable` at once
  std::int64_t max_send_wait_ms = 1000;    // a send that waited longer to be handled is answered `unavailable`
  std::int64_t heartbeat_ms = 2000;
  // wss on the listener (and a wss:// default public_url): PEM certificate
  // chain and key, both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
};

struct storage_config {
  std::string backend = "rocksdb";  // rocksdb | scylla
  std::string path = "./chatd-data";
  bool sync_writes = false;
  std::string hosts = "127.0.0.1:9042";
  std::string keyspace = "chatd";
  std::string consistency = "local_quorum";
  std::string local_dc;
  std::uint32_t replication_factor = 1;
};

struct queue_config {
  std::string backend = "embedded";  // embedded | kafka
  std::string brokers = "127.0.0.1:9092";
  std::string topic_prefix = "chatd.";
  std::uint32_t partitions = 12;
  std::uint32_t replication_factor = 1;
  bool fsync = false;  // embedded: fsync each group commit (power-loss safety)
  // How chat servers get messages and events (ADR 009): routed (each from
  // its own delivery topic, fed by main-chat's router from the route table),
  // broadcast (every chat server reads every record), or auto: broadcast in
  // `chatd all`, routed when the roles run as separate processes.
  std::string delivery = "auto";
  std::map<std::string, std::string> kafka;  // queue.kafka.<librdkafka key>
};

struct region_coordinates {
  double lat = 0;
  double lon = 0;
};

struct discovery_config {
  std::string url;  // empty: in-process (chatd all)
  std::string listen = "127.0.0.1:8090";
  std::string default_region = "local";
  std::int64_t server_ttl_ms = 6000;  // a server missing heartbeats this long is gone
  std::map<std::string, region_coordinates> regions;
};

inline constexpr std::size_t min_secret_bytes = 32;

struct auth_config {
  std::string jwt_secret;  // empty: generated once and kept in the data dir
  // Signs the calls the roles make to each other; required when any role
  // talks to another over HTTP, and never the same as jwt_secret.
  std::string internal_secret;
  std::int64_t token_ttl_s = 24 * 3600;
  std::string password_cost = "default";  // default | fast (tests only)
};

struct admin_config {
  std::string username;
  std::string password;
};

struct notifications_config {
  std::string webhook_url;
  std::string webhook_secret;
  std::int64_t coalesce_ms = 5000;
  std::string listen = "127.0.0.1:8092";
  std::string url;  // empty: in-process; else the notification role's base URL
  std::int64_t retry_initial_ms = 200;
  std::int64_t retry_max_ms = 30000;
  std::uint32_t max_attempts = 12;
};

struct presence_config {
  std::int64_t timeout_ms = 30000;
  std::string listen = "127.0.0.1:8091";
  std::string url;  // empty: in-process
};

struct main_chat_config {
  std::string listen = "127.0.0.1:8093";  // health and metrics of the main-chat role
};

struct rate_limits_config {
  double send_per_second = 20;
  double send_burst = 200;
  double login_per_minute = 60;
  // History pages and the other authenticated reads (GET routes, `history`
  // frames): each one reads the store.
  double read_per_second = 20;
  double read_burst = 200;
  // `typing` frames fan out to every member's chat server; clients send one
  // every few seconds while a person types.
  double typing_per_second = 2;
  double typing_burst = 10;
};

struct config {
  node_config node;
  gateway_config gateway;
  chat_server_config chat_server;
  storage_config storage;
  queue_config queue;
  discovery_config discovery;
  auth_config auth;
  admin_config admin;
  notifications_config notifications;
  presence_config presence;
  main_chat_config main_chat;
  rate_limits_config rate_limits;
};

struct config_sources {
  std::string file;  // empty: no file
  // The file's TOML text, when the caller has it already (fuzzing, tests);
  // `file` then only names it in messages.
  std::optional<std::string> file_text;
  std::vector<std::pair<std::string, std::string>> flags;  // "section.key" -> value
  // Environment; empty means read the process environment.
  std::optional<std::map<std::string, std::string>> env;
};

// Throws config_error naming the file, key and problem.
config load_config(const config_sources& sources);

// Every key with its value after all sources were applied, for `chatd config`
// and the start-up log. Secrets are masked.
std::vector<std::pair<std::string, std::string>> describe_config(const config& c);

}  // namespace chatd
