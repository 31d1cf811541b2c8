// Helpers for tests of the RocksDB store: a temporary directory, a store
// that forwards to another one, and a store that owns the directory it lives
// in, so a conformance factory can hand out a plain
// std::unique_ptr<chat_store> and the directory still goes away.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <utility>

#include "store/rocksdb_store.h"
#include "store/store.h"

namespace chatd::store::testing {

class temp_dir {
 public:
  temp_dir() {
    static std::atomic<unsigned> counter{0};
    std::random_device rd;
    path_ =
        std::filesystem::temp_directory_path() / ("chatd-store-" + std::to_string(::getpid()) + "-" +
                                                  std::to_string(counter.fetch_add(1)) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Forwards every call to another store; tests derive from it to wrap a real
// store (own its directory, inject failures into one call).
class forwarding_store : public chat_store {
 public:
  explicit forwarding_store(chat_store* target = nullptr) : target_(target) {}

  status create_participant(const participant& p) override { return target_->create_participant(p); }
  result<participant> get_participant(id_t id) override { return target_->get_participant(id); }
  result<participant> find_participant(participant_kind kind, const std::string& username) override {
    return target_->find_participant(kind, username);
  }
  result<std::vector<participant>> search_participants(participant_kind kind, const std::string& prefix,
                                                       std::size_t limit) override {
    return target_->search_participants(kind, prefix, limit);
  }
  status set_banned(id_t id, bool banned) override { return target_->set_banned(id, banned); }
  status set_password_hash(id_t id, const std::string& hash) override { return target_->set_password_hash(id, hash); }
  status create_conversation(const conversation& c, const std::vector<id_t>& members) override {
    return target_->create_conversation(c, members);
  }
  result<std::pair<conversation, bool>> create_direct(const conversation& c, id_t a, id_t b) override {
    return target_->create_direct(c, a, b);
  }
  result<conversation> get_conversation(id_t id) override { return target_->get_conversation(id); }
  result<std::vector<id_t>> list_members(id_t conversation_id) override {
    return target_->list_members(conversation_id);
  }
  result<bool> is_member(id_t conversation_id, id_t participant_id) override {
    return target_->is_member(conversation_id, participant_id);
  }
  status add_member(id_t conversation_id, id_t participant_id) override {
    return target_->add_member(conversation_id, participant_id);
  }
  result<std::vector<inbox_entry>> list_inbox(id_t participant_id, std::size_t limit) override {
    return target_->list_inbox(participant_id, limit);
  }
  status touch_conversation(id_t conversation_id, std::int64_t updated_at, id_t last_message_id) override {
    return target_->touch_conversation(conversation_id, updated_at, last_message_id);
  }
  status put_message(const message& m) override { return target_->put_message(m); }
  status insert_message(const message& m) override { return target_->insert_message(m); }
  result<message> get_message(id_t message_id) override { return target_->get_message(message_id); }
  result<message_page> list_messages(id_t conversation_id, id_t before, std::size_t limit) override {
    return target_->list_messages(conversation_id, before, limit);
  }
  result<std::vector<message>> list_messages_after(id_t conversation_id, id_t after, std::size_t limit) override {
    return target_->list_messages_after(conversation_id, after, limit);
  }
  result<std::size_t> count_messages_after(id_t conversation_id, id_t after, id_t exclude_sender,
                                           std::size_t cap) override {
    return target_->count_messages_after(conversation_id, after, exclude_sender, cap);
  }
  result<id_t> claim_client_msg_id(id_t conversation_id, id_t sender_id, const std::string& client_msg_id,
                                   id_t message_id) override {
    return target_->claim_client_msg_id(conversation_id, sender_id, client_msg_id, message_id);
  }
  result<std::optional<id_t>> find_client_msg_id(id_t conversation_id, id_t sender_id,
                                                 const std::string& client_msg_id) override {
    return target_->find_client_msg_id(conversation_id, sender_id, client_msg_id);
  }
  result<id_t> mark_read(id_t participant_id, id_t conversation_id, id_t message_id) override {
    return target_->mark_read(participant_id, conversation_id, message_id);
  }
  result<id_t> get_read(id_t participant_id, id_t conversation_id) override {
    return target_->get_read(participant_id, conversation_id);
  }
  status put_presence(const presence& p, std::int64_t ttl_ms) override { return target_->put_presence(p, ttl_ms); }
  result<presence> get_presence(id_t participant_id) override { return target_->get_presence(participant_id); }
  status put_notification(const notification& n) override { return target_->put_notification(n); }
  result<std::vector<notification>> list_notifications(id_t recipient_id, std::size_t limit) override {
    return target_->list_notifications(recipient_id, limit);
  }
  result<bool> mark_delivered(id_t recipient_id, id_t message_id) override {
    return target_->mark_delivered(recipient_id, message_id);
  }
  result<bool> is_delivered(id_t recipient_id, id_t message_id) override {
    return target_->is_delivered(recipient_id, message_id);
  }
  status put_chat_server(const chat_server_row& row) override { return target_->put_chat_server(row); }
  result<std::vector<chat_server_row>> list_chat_servers(std::int64_t now_ms) override {
    return target_->list_chat_servers(now_ms);
  }
  status remove_chat_server(const std::string& id) override { return target_->remove_chat_server(id); }
  result<std::uint32_t> acquire_node_id(const std::string& owner, std::int64_t ttl_ms) override {
    return target_->acquire_node_id(owner, ttl_ms);
  }
  status renew_node_id(std::uint32_t node, const std::string& owner, std::int64_t ttl_ms) override {
    return target_->renew_node_id(node, owner, ttl_ms);
  }
  status release_node_id(std::uint32_t node, const std::string& owner) override {
    return target_->release_node_id(node, owner);
  }

 protected:
  void set_target(chat_store* target) { target_ = target; }

 private:
  chat_store* target_;
};

// A RocksDB store in a fresh temporary directory, removed after the store closes.
class temp_rocksdb_store final : public forwarding_store {
 public:
  temp_rocksdb_store() {
    rocksdb_options o;
    o.path = (dir_.path() / "db").string();
    o.block_cache_mb = 8;
    inner_ = open_rocksdb_store(o);
    set_target(inner_.get());
  }

 private:
  temp_dir dir_;  // declared first: removed after the store has closed
  std::unique_ptr<chat_store> inner_;
};

}  // namespace chatd::store::testing
