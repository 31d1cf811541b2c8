#include "integration/chatd_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "net/client.h"

extern char** environ;

namespace chatd::testing {

namespace fs = std::filesystem;

std::string chatd_binary() {
  if (const char* b = std::getenv("CHATD_BINARY")) return b;
  return CHATD_BINARY_PATH;
}

namespace {
std::string fresh_dir() {
  static std::atomic<int> n{0};
  auto p = fs::temp_directory_path() /
           ("chatd-it-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000));
  fs::create_directories(p);
  return p.string();
}
}  // namespace

namespace {
// Starts `args` with stdout into a pipe (returned: pid and its read end) and
// stderr appended to `log_path`; `env` replaces the environment when given.
// Everything is built before fork(): a test may have other threads, so the
// child must not allocate.
std::pair<pid_t, int> spawn(std::vector<std::string> args, const std::vector<std::string>* env,
                            const std::string& log_path) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_copy = env ? *env : std::vector<std::string>{};
  std::vector<char*> envp;
  for (auto& line : env_copy) envp.push_back(line.data());
  envp.push_back(nullptr);
  int out[2];
  if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(out[1], 1);
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) ::dup2(log, 2);
    ::close(out[0]);
    ::close(out[1]);
    if (env) {
      ::execve(argv[0], argv.data(), envp.data());
    } else {
      ::execv(argv[0], argv.data());
    }
    ::_exit(127);
  }
  ::close(out[1]);
  return {pid, out[0]};
}

// The keyspace and topic prefix of the cluster on this data dir.
std::string cluster_tag(const std::string& data_dir) {
  char tag[24];
  std::snprintf(tag, sizeof tag, "c%015zx",
                static_cast<std::size_t>(std::hash<std::string>{}(data_dir)&0xfffffffffffffffULL));
  return tag;
}
}  // namespace

std::vector<std::pair<std::string, std::string>> extra_sets_from_env(const std::string& data_dir) {
  std::vector<std::pair<std::string, std::string>> out;
  if (cluster_mode()) {
    // One-shot commands (admin create) reach the cluster's chat database.
    out.emplace_back("storage.backend", "scylla");
    out.emplace_back("storage.keyspace", cluster_tag(data_dir + "/cluster"));
    out.emplace_back("storage.consistency", "one");
  }
  const char* env = std::getenv("CHATD_TEST_SET");
  if (env == nullptr) return out;
  // A name unique to the data dir but stable across restarts on it, usable
  // as a Kafka topic prefix or a CQL keyspace name.
  char tag[24];
  std::snprintf(tag, sizeof tag, "t%015zx",
                static_cast<std::size_t>(std::hash<std::string>{}(data_dir)&0xfffffffffffffffULL));
  std::string all = env;
  std::size_t pos = 0;
  while (pos <= all.size()) {
    auto end = all.find(';', pos);
    if (end == std::string::npos) end = all.size();
    auto item = all.substr(pos, end - pos);
    pos = end + 1;
    auto eq = item.find('=');
    if (item.empty() || eq == std::string::npos) continue;
    auto value = item.substr(eq + 1);
    for (auto at = value.find("{tag}"); at != std::string::npos; at = value.find("{tag}")) value.replace(at, 5, tag);
    out.emplace_back(item.substr(0, eq), value);
  }
  return out;
}

chatd_process::chatd_process(std::vector<std::pair<std::string, std::string>> flags, std::string role,
                             std::string data_dir)
    : flags_(std::move(flags)), role_(std::move(role)), data_dir_(std::move(data_dir)) {
  if (data_dir_.empty()) {
    data_dir_ = fresh_dir();
    own_dir_ = true;
  }
}

chatd_process::~chatd_process() {
  if (pid_ > 0 || (cluster_ && pid_ == 0)) kill9();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  // CHATD_TEST_KEEP=1 keeps the data dir and the logs for a post-mortem.
  if (own_dir_ && std::getenv("CHATD_TEST_KEEP") == nullptr) {
    std::error_code ec;
    fs::remove_all(data_dir_, ec);
  }
}

bool cluster_mode() {
  const char* v = std::getenv("CHATD_TEST_CLUSTER");
  return v != nullptr && std::string(v) == "1";
}

namespace {

// "notifications.webhook_url" -> "CHATD_NOTIFICATIONS_WEBHOOK_URL".
std::string env_name(const std::string& key) {
  std::string out = "CHATD_";
  for (char c : key) out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

int chatd_process::run_cluster_script(const std::string& command, std::string* out) const {
  std::vector<std::pair<std::string, std::string>> env = {
      {"CHATD_CLUSTER_DIR", data_dir_ + "/cluster"},
      {"CHATD_BINARY", chatd_binary()},
      // The engines are the suite's to start (scripts/test.sh does).
      {"CHATD_CLUSTER_SERVERS", "0"},
  };
  // A keyspace and topics of its own, stable for this data dir.
  const std::string tag = cluster_tag(data_dir_ + "/cluster");
  env.emplace_back("CHATD_STORAGE_KEYSPACE", tag);
  env.emplace_back("CHATD_QUEUE_TOPIC_PREFIX", tag + ".");
  env.emplace_back("CHATD_AUTH_PASSWORD_COST", "fast");
  env.emplace_back("CHATD_AUTH_JWT_SECRET", "integration-test-secret-0123456789abcdef");
  env.emplace_back("CHATD_AUTH_INTERNAL_SECRET", "integration-internal-secret-0123456789abcdef");
  for (const auto& [k, v] : flags_) {
    // The cluster chooses its own listeners and data dirs.
    if (k == "gateway.listen" || k == "chat_server.listen" || k == "storage.path") continue;
    env.emplace_back(env_name(k), v);
  }
  // `command` is the script's arguments, separated by spaces.
  std::vector<std::string> args{"/bin/bash", std::string(CHATD_SOURCE_DIR) + "/scripts/cluster.sh"};
  std::istringstream words(command);
  for (std::string w; words >> w;) args.push_back(w);
  std::vector<std::string> env_lines;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view line(*e);
    auto key = line.substr(0, line.find('='));
    if (std::none_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == key; })) {
      env_lines.emplace_back(line);
    }
  }
  for (const auto& [k, v] : env) env_lines.push_back(k + "=" + v);
  auto [pid, read_fd] = spawn(std::move(args), &env_lines, data_dir_ + "/cluster.log");
  std::string text;
  char chunk[512];
  for (;;) {
    auto n = ::read(read_fd, chunk, sizeof chunk);
    if (n <= 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(read_fd);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (out) *out = std::move(text);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void chatd_process::start_cluster(std::chrono::milliseconds) {
  cluster_ = true;
  std::string out;
  int rc = run_cluster_script("up", &out);
  std::string gateway_url;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("gateway http://", 0) == 0) gateway_url = line.substr(15);
  }
  if (rc != 0 || gateway_url.empty()) {
    std::ifstream in(data_dir_ + "/cluster.log");
    std::stringstream ss;
    ss << in.rdbuf();
    throw std::runtime_error("scripts/cluster.sh up failed (" + std::to_string(rc) + "):\n" + ss.str());
  }
  listeners_["gateway"] = gateway_url;
  // "<name> <role> running pid <pid> <addr>" per process.
  std::string status;
  run_cluster_script("status", &status);
  std::istringstream st(status);
  chat_servers_.clear();
  process_addresses_.clear();
  for (std::string line; std::getline(st, line);) {
    std::istringstream words(line);
    std::string name, role, state, pid_word, pid, addr;
    words >> name >> role >> state >> pid_word >> pid >> addr;
    if (role == "chat-server" && !addr.empty()) chat_servers_.push_back(addr);
    if (!addr.empty()) process_addresses_.push_back(addr);
    if (!addr.empty() && !listeners_.count(role)) listeners_[role] = addr;
  }
  if (chat_servers_.empty()) throw std::runtime_error("the cluster has no chat server:\n" + status);
  pid_ = 0;
}

void chatd_process::kill9_process(const std::string& name) {
  std::ifstream in(data_dir_ + "/cluster/" + name + ".pid");
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) throw std::runtime_error("no pid for cluster process " + name);
  ::kill(pid, SIGKILL);
  // Dead once /proc says so (an orphan may stay a zombie until reaped).
  for (int i = 0; i < 500; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_s, comm, state;
    if (!(stat >> pid_s >> comm >> state) || state == "Z" || state == "X") return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("cluster process " + name + " survived SIGKILL");
}

void chatd_process::restart_dead() {
  std::string out;
  // A process may die while `up` runs (one whose node lease expired during a
  // database outage stops by design): `up` fails on it, and the next `up`
  // starts it again.
  for (int attempt = 1; attempt < 6; ++attempt) {
    if (run_cluster_script("up", &out) == 0) return;
  }
  if (int rc = run_cluster_script("up", &out); rc != 0) {
    std::ifstream in(data_dir_ + "/cluster.log");
    std::stringstream ss;
    ss << in.rdbuf();
    throw std::runtime_error("scripts/cluster.sh up (restart) failed:\n" + ss.str());
  }
}

void chatd_process::restart_engine(const std::string& engine) {
  for (const char* what : {" stop", " start"}) {
    std::string out;
    if (int rc = run_cluster_script("engine " + engine + what, &out); rc != 0) {
      throw std::runtime_error("scripts/cluster.sh engine " + engine + what + " failed (" + std::to_string(rc) + ")");
    }
  }
}

std::vector<std::string> chatd_process::process_addresses() const {
  if (cluster_) return process_addresses_;
  return {gateway()};
}

std::string chatd_process::gateway_url() const {
  bool tls = false;
  for (const auto& [k, v] : flags_) tls = tls || (k == "gateway.tls_cert_file" && !v.empty());
  return (tls ? "https://" : "http://") + gateway();
}

std::vector<std::string> chatd_process::chat_servers() const {
  if (cluster_) return chat_servers_;
  return {address("chat-server")};
}

void chatd_process::start(std::chrono::milliseconds timeout) {
  if (role_ == "all" && cluster_mode()) return start_cluster(timeout);
  std::vector<std::pair<std::string, std::string>> sets = {
      {"gateway.listen", "127.0.0.1:0"},
      {"chat_server.listen", "127.0.0.1:0"},
      {"storage.path", data_dir_},
      {"auth.password_cost", "fast"},
      {"auth.jwt_secret", "integration-test-secret-0123456789abcdef"},
  };
  for (auto& [k, v] : extra_sets_from_env(data_dir_)) sets.emplace_back(k, v);
  for (auto& f : flags_) sets.push_back(f);
  std::vector<std::string> args = {chatd_binary(), role_};
  for (auto& [k, v] : sets) {
    args.push_back("--set");
    args.push_back(k + "=" + v);
  }
  std::tie(pid_, stdout_fd_) = spawn(std::move(args), nullptr, data_dir_ + "/chatd.log");
  listeners_.clear();

  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string buf;
  // "listening <role> <addr>" lines; the rest of the output is the log's.
  auto take_lines = [&](const char* data, std::size_t n) {
    buf.append(data, n);
    for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
      std::istringstream line(buf.substr(0, nl));
      buf.erase(0, nl + 1);
      std::string word, role, addr;
      line >> word >> role >> addr;
      if (word == "listening") listeners_[role] = addr;
    }
  };
  // Wait for the gateway's line, then take any further lines that arrive promptly.
  while (!listeners_.count("gateway")) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("chatd did not announce its listeners in time:\n" + log());
    pollfd p{stdout_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[512];
    auto n = ::read(stdout_fd_, chunk, sizeof chunk);
    if (n <= 0) {
      int st = 0;
      ::waitpid(pid_, &st, 0);
      pid_ = -1;
      throw std::runtime_error("chatd exited during start-up:\n" + log());
    }
    take_lines(chunk, static_cast<std::size_t>(n));
  }
  // Read any other listener lines written together with the gateway's.
  for (;;) {
    pollfd p{stdout_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) break;
    char chunk[512];
    auto n = ::read(stdout_fd_, chunk, sizeof chunk);
    if (n <= 0) break;
    take_lines(chunk, static_cast<std::size_t>(n));
  }
  auto r = net::http_request_sync("GET", gateway_url() + "/healthz");
  if (!r || r->status != 200) throw std::runtime_error("chatd /healthz did not answer 200:\n" + log());
}

int chatd_process::stop(std::chrono::milliseconds timeout) {
  if (cluster_) {
    if (pid_ < 0) return -1;
    pid_ = -1;
    return run_cluster_script("down", nullptr);
  }
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill9();
  return -1;
}

void chatd_process::kill9() {
  if (cluster_) {
    if (pid_ >= 0) run_cluster_script("down", nullptr);
    pid_ = -1;
    return;
  }
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
}

const std::string& chatd_process::address(const std::string& role) const {
  auto it = listeners_.find(role);
  if (it == listeners_.end()) throw std::runtime_error("no listener for role " + role);
  return it->second;
}

std::string chatd_process::log() const {
  std::ifstream in(data_dir_ + "/chatd.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace chatd::testing
