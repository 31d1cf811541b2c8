#include "common/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace chatd {
namespace {

std::string write_temp(const std::string& text) {
  auto path = std::filesystem::temp_directory_path() /
              ("chatd-config-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()) + ".toml");
  std::ofstream(path) << text;
  return path.string();
}

config_sources no_env() {
  config_sources s;
  s.env.emplace();
  return s;
}

TEST(config, defaults_match_the_contract) {
  auto c = load_config(no_env());
  EXPECT_EQ(c.gateway.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.chat_server.listen, "127.0.0.1:9000");
  EXPECT_EQ(c.chat_server.region, "local");
  EXPECT_EQ(c.storage.backend, "rocksdb");
  EXPECT_EQ(c.storage.path, "./chatd-data");
  EXPECT_EQ(c.queue.backend, "embedded");
  EXPECT_EQ(c.queue.brokers, "127.0.0.1:9092");
  EXPECT_EQ(c.queue.topic_prefix, "chatd.");
  EXPECT_EQ(c.queue.partitions, 12u);
  EXPECT_EQ(c.storage.hosts, "127.0.0.1:9042");
  EXPECT_EQ(c.storage.keyspace, "chatd");
  EXPECT_EQ(c.notifications.coalesce_ms, 5000);
  EXPECT_EQ(c.presence.timeout_ms, 30000);
  EXPECT_EQ(c.rate_limits.send_per_second, 20);
  EXPECT_EQ(c.rate_limits.read_per_second, 20);
  EXPECT_EQ(c.rate_limits.typing_burst, 10);
  EXPECT_EQ(c.rate_limits.send_burst, 200);
  EXPECT_EQ(c.rate_limits.login_per_minute, 60);
  EXPECT_EQ(c.node.id, 0u);  // lease a node number from the chat database
}

TEST(config, node_id_is_zero_to_lease_or_an_explicit_number) {
  for (auto [v, want] : std::vector<std::pair<std::string, std::uint32_t>>{{"0", 0}, {"1", 1}, {"1023", 1023}}) {
    config_sources s = no_env();
    s.flags.emplace_back("node.id", v);
    EXPECT_EQ(load_config(s).node.id, want) << v;
  }
  config_sources env = no_env();
  env.env->emplace("CHATD_NODE_ID", "17");
  EXPECT_EQ(load_config(env).node.id, 17u);
  for (std::string bad : {"1024", "-1", "4294967296", "x"}) {
    config_sources s = no_env();
    s.flags.emplace_back("node.id", bad);
    EXPECT_THROW(load_config(s), config_error) << bad;
  }
}

TEST(config, file_then_env_then_flags) {
  auto file = write_temp(
      "[gateway]\nlisten = \"127.0.0.1:1111\"\n[storage]\npath = \"/tmp/x\"\n"
      "[notifications]\ncoalesce_ms = 10\n[discovery.regions.eu]\nlat = 50.1\nlon = 8.6\n");
  config_sources s = no_env();
  s.file = file;
  s.env->emplace("CHATD_GATEWAY_LISTEN", "127.0.0.1:2222");
  s.env->emplace("CHATD_CHAT_SERVER_REGION", "eu");
  s.env->emplace("CHATD_RATE_LIMITS_SEND_BURST", "5");
  s.env->emplace("CHATD_UNRELATED", "x");  // not a chatd section: ignored
  s.flags.emplace_back("storage.path", "/tmp/y");
  auto c = load_config(s);
  EXPECT_EQ(c.gateway.listen, "127.0.0.1:2222");
  EXPECT_EQ(c.chat_server.region, "eu");
  EXPECT_EQ(c.rate_limits.send_burst, 5);
  EXPECT_EQ(c.storage.path, "/tmp/y");
  EXPECT_EQ(c.notifications.coalesce_ms, 10);
  ASSERT_EQ(c.discovery.regions.count("eu"), 1u);
  EXPECT_DOUBLE_EQ(c.discovery.regions["eu"].lat, 50.1);
  EXPECT_DOUBLE_EQ(c.discovery.regions["eu"].lon, 8.6);
  std::remove(file.c_str());
}

TEST(config, unknown_keys_are_named) {
  auto file = write_temp("[gateway]\nlistn = \"127.0.0.1:1\"\n");
  config_sources s = no_env();
  s.file = file;
  try {
    load_config(s);
    FAIL() << "accepted an unknown key";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("gateway.listn"), std::string::npos) << e.what();
  }
  std::remove(file.c_str());

  config_sources env = no_env();
  env.env->emplace("CHATD_STORAGE_PAHT", "x");
  try {
    load_config(env);
    FAIL() << "accepted an unknown env key";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("CHATD_STORAGE_PAHT"), std::string::npos) << e.what();
  }

  config_sources flag = no_env();
  flag.flags.emplace_back("nosuch.key", "1");
  EXPECT_THROW(load_config(flag), config_error);
}

TEST(config, bad_values_are_rejected) {
  for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{{"queue.partitions", "0"},
                                                                      {"queue.partitions", "ten"},
                                                                      {"storage.backend", "mysql"},
                                                                      {"gateway.listen", "nohostport"},
                                                                      {"gateway.listen", "127.0.0.1:70000"},
                                                                      {"storage.sync_writes", "maybe"},
                                                                      {"rate_limits.send_per_second", "-1"},
                                                                      {"chat_server.lat", "91"},
                                                                      {"node.id", "1024"}}) {
    config_sources s = no_env();
    s.flags.emplace_back(k, v);
    EXPECT_THROW(load_config(s), config_error) << k << "=" << v;
  }
}

TEST(config, secrets_must_be_long_and_distinct) {
  const std::string key32(32, 'k');
  auto load_with = [](std::vector<std::pair<std::string, std::string>> flags) {
    config_sources s = no_env();
    s.flags = std::move(flags);
    return load_config(s);
  };
  EXPECT_THROW(load_with({{"auth.jwt_secret", std::string(31, 'k')}}), config_error);
  EXPECT_THROW(load_with({{"auth.internal_secret", "short"}}), config_error);
  EXPECT_THROW(load_with({{"auth.jwt_secret", key32}, {"auth.internal_secret", key32}}), config_error);
  auto c = load_with({{"auth.jwt_secret", key32}, {"auth.internal_secret", std::string(32, 'i')}});
  EXPECT_EQ(c.auth.internal_secret, std::string(32, 'i'));
  EXPECT_TRUE(load_with({}).auth.internal_secret.empty());  // chatd all needs none
  // A webhook is signed, so it needs a secret, and speaks HTTP(S).
  EXPECT_THROW(load_with({{"notifications.webhook_url", "https://hooks.example/chat"}}), config_error);
  EXPECT_THROW(
      load_with({{"notifications.webhook_url", "ftp://hooks.example/chat"}, {"notifications.webhook_secret", "s"}}),
      config_error);
  EXPECT_EQ(
      load_with({{"notifications.webhook_url", "https://hooks.example/chat"}, {"notifications.webhook_secret", "s"}})
          .notifications.webhook_url,
      "https://hooks.example/chat");
}

TEST(config, syntax_error_names_the_file) {
  auto file = write_temp("[gateway\nlisten=");
  config_sources s = no_env();
  s.file = file;
  try {
    load_config(s);
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos);
  }
  std::remove(file.c_str());
}

TEST(config, file_text_is_read_like_a_file) {
  config_sources s = no_env();
  s.file = "inline.toml";
  s.file_text = "[gateway]\nmax_connections = 7\n";
  EXPECT_EQ(load_config(s).gateway.max_connections, 7u);
  s.file_text = "[gateway]\nno_such_key = 1\n";
  try {
    load_config(s);
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("inline.toml"), std::string::npos) << e.what();
  }
}

// toml11 read past its buffer on this (an unterminated literal string with
// a byte that is not UTF-8); found by fuzz/config_fuzz.cpp.
TEST(config, a_file_that_is_not_utf8_is_a_config_error) {
  for (bool inline_text : {true, false}) {
    config_sources s = no_env();
    std::string text = "'\xa7'";
    if (inline_text) {
      s.file = "inline.toml";
      s.file_text = text;
    } else {
      s.file = write_temp(text);
    }
    try {
      load_config(s);
      FAIL();
    } catch (const config_error& e) {
      EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
    }
    if (!inline_text) std::remove(s.file.c_str());
  }
}

TEST(config, a_missing_file_is_a_config_error) {
  config_sources s = no_env();
  s.file = "/nonexistent/chatd.toml";
  EXPECT_THROW(load_config(s), config_error);
}

// The sample configs in deploy/ load as they are (a key renamed in the code
// must be renamed there too).
TEST(config, deploy_samples_load) {
  const std::filesystem::path dir = std::filesystem::path(CHATD_SOURCE_DIR) / "deploy";
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".toml") continue;
    ++files;
    auto s = no_env();
    s.file = e.path().string();
    // The secrets come from the environment, as deploy/README.md says.
    s.env = std::map<std::string, std::string>{{"CHATD_AUTH_JWT_SECRET", std::string(32, 'j')},
                                               {"CHATD_AUTH_INTERNAL_SECRET", std::string(32, 'i')},
                                               {"CHATD_NOTIFICATIONS_WEBHOOK_SECRET", "hook-secret"}};
    config c;
    ASSERT_NO_THROW(c = load_config(s)) << e.path();
    EXPECT_EQ(c.storage.backend, "scylla") << e.path();
    EXPECT_EQ(c.queue.backend, "kafka") << e.path();
  }
  EXPECT_EQ(files, 6);
}

}  // namespace
}  // namespace chatd
