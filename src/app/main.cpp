// chatd: one binary, many roles (docs in README.md, contract in docs/protocol.md).
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "app/roles.h"
#include "common/config.h"
#include "common/log.h"

#ifndef CHATD_VERSION
#define CHATD_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{
      "chatd - a real-time chat system: gateway, discovery, chat servers, presence,\n"
      "main chat service and notifications, together (`chatd all`) or one role per process."};
  app.set_version_flag("--version", std::string("chatd ") + CHATD_VERSION);
  app.require_subcommand(1);
  app.fallthrough();

  std::string config_file;
  std::vector<std::string> sets;
  app.add_option("-c,--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  app.add_option("--set", sets,
                 "Set a config key, e.g. --set gateway.listen=127.0.0.1:0 (wins over the file and CHATD_* "
                 "environment variables); repeatable");

  const char* roles[][2] = {
      {"all", "Every role in one process, on embedded backends by default"},
      {"gateway", "API gateway: participants, conversations, discovery and presence lookups"},
      {"discovery", "Service discovery: chat-server registry and nearest-server choice"},
      {"chat-server", "WebSocket chat server"},
      {"presence", "Presence service"},
      {"main-chat", "Main chat service: consumes messages, stores them, asks for notifications"},
      {"notification", "Notification service: signed webhooks and stored notifications"},
  };
  std::string chosen_role;
  for (auto& r : roles) {
    auto* sub = app.add_subcommand(r[0], r[1]);
    sub->callback([&chosen_role, name = std::string(r[0])] { chosen_role = name; });
  }

  auto* admin = app.add_subcommand("admin", "Administration commands");
  admin->require_subcommand(1);
  auto* admin_create = admin->add_subcommand("create", "Create an admin participant (the first admin)");
  std::string admin_username, admin_password, admin_display = "Administrator";
  admin_create->add_option("--username", admin_username, "admin username")->required();
  admin_create->add_option("--password", admin_password, "admin password (at least 8 characters)")->required();
  admin_create->add_option("--display-name", admin_display, "display name");
  bool do_admin_create = false;
  admin_create->callback([&] { do_admin_create = true; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  chatd::config_sources src;
  src.file = config_file;
  for (const auto& s : sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "chatd: --set expects section.key=value, got '" << s << "'\n";
      return 2;
    }
    src.flags.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  chatd::config cfg;
  try {
    cfg = chatd::load_config(src);
  } catch (const chatd::config_error& e) {
    std::cerr << "chatd: configuration error: " << e.what() << "\n";
    return 2;
  }
  chatd::init_logging(cfg.node.log_level);

  try {
    if (do_admin_create) return chatd::app::admin_create(cfg, admin_username, admin_password, admin_display);
    return chatd::app::run_role(chosen_role, cfg);
  } catch (const std::exception& e) {
    spdlog::critical("chatd {}: {}", chosen_role.empty() ? "admin" : chosen_role, e.what());
    return 1;
  }
}
