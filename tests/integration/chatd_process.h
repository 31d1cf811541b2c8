// Starts a real `chatd` process for integration tests: port 0 everywhere, a
// fresh data directory, the `listening <role> <addr>` lines read from stdout.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace chatd::testing {

class chatd_process {
 public:
  // `flags` are passed as --set key=value; the data dir is fresh unless given.
  explicit chatd_process(std::vector<std::pair<std::string, std::string>> flags = {}, std::string role = "all",
                         std::string data_dir = {});
  ~chatd_process();
  chatd_process(const chatd_process&) = delete;
  chatd_process& operator=(const chatd_process&) = delete;

  // Starts it and waits for every listener and for /healthz. Throws on failure.
  //
  // With CHATD_TEST_CLUSTER=1 a process of role "all" is the distributed
  // layout instead: scripts/cluster.sh up, every role its own process on the
  // Kafka broker and CQL server, each --set flag passed as its CHATD_*
  // variable, a keyspace and topic prefix of its own. address("chat-server")
  // is then the first of chat_servers().
  void start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGTERM and wait; returns the exit status (or -1).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // SIGKILL and reap.
  void kill9();
  bool running() const { return pid_ > 0 || (cluster_ && pid_ == 0); }

  const std::string& address(const std::string& role) const;  // "host:port"
  // Every chat server's "host:port" (one unless this is a cluster).
  std::vector<std::string> chat_servers() const;
  bool is_cluster() const { return cluster_; }
  // "host:port" of every process's listener (each serves /metrics): the
  // gateway's alone unless this is a cluster.
  std::vector<std::string> process_addresses() const;
  // Cluster only: SIGKILL one process by its cluster.sh name ("presence",
  // "main-chat-1", "chat-sg", ...), and `cluster.sh up` again, which
  // restarts what is dead on its old port and waits until all are ready.
  void kill9_process(const std::string& name);
  void restart_dead();
  // Cluster only: stops and starts "kafka" or "cassandra", the engine the
  // cluster uses (its own, in a namespace, with CHATD_CLUSTER_NETNS).
  void restart_engine(const std::string& engine);
  std::string gateway() const { return address("gateway"); }
  // "http://host:port", or https:// when the gateway was given a certificate.
  std::string gateway_url() const;
  const std::string& data_dir() const { return data_dir_; }
  std::string log() const;  // what it wrote to stderr

 private:
  std::vector<std::pair<std::string, std::string>> flags_;
  std::string role_;
  std::string data_dir_;
  bool own_dir_ = false;
  int pid_ = -1;
  int stdout_fd_ = -1;
  std::map<std::string, std::string> listeners_;
  bool cluster_ = false;
  std::vector<std::string> chat_servers_;
  std::vector<std::string> process_addresses_;

  void start_cluster(std::chrono::milliseconds timeout);
  int run_cluster_script(const std::string& command, std::string* out) const;
};

// CHATD_TEST_CLUSTER=1: suites run against scripts/cluster.sh.
bool cluster_mode();

std::string chatd_binary();

// CHATD_TEST_SET="key=value;key=value" adds --set flags to every process the
// suite starts, so one suite runs against several backends (for example
// `queue.backend=kafka;queue.topic_prefix={tag}.`). `{tag}` becomes a name
// unique to the process's data dir and stable across its restarts.
std::vector<std::pair<std::string, std::string>> extra_sets_from_env(const std::string& data_dir);

}  // namespace chatd::testing
