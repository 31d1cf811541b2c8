// The ScyllaDB store's CQL statements, prepared once at open.
#include <stdexcept>
#include <string>

#include "store/scylla_store_internal.h"

namespace chatd::store::scylla_backend {

void scylla_chat_store::prepare_all() {
  // idempotent = true lets the driver retry after a timeout; conditional
  // statements are never retried blindly (a retry could see its own write
  // and report a conflict).
  auto p = [&](prepared& slot, const std::string& cql, bool idempotent = true) {
    auto r = s_->prepare(replace_all(cql, "${ks}", ks_), idempotent);
    if (!r) throw std::runtime_error("scylla store: " + r.err().message);
    slot = std::move(r).value();
  };
  const std::string participant_cols =
      "id, kind, username, display_name, description, password_hash, banned, created_at";
  p(ins_participant_, "INSERT INTO ${ks}.participants (" + participant_cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  p(sel_participant_, "SELECT " + participant_cols + " FROM ${ks}.participants WHERE id = ?");
  p(claim_username_, "INSERT INTO ${ks}.participant_by_username (kind, username, id) VALUES (?, ?, ?) IF NOT EXISTS",
    false);
  p(sel_username_, "SELECT id FROM ${ks}.participant_by_username WHERE kind = ? AND username = ?");
  p(ins_username_index_, "INSERT INTO ${ks}.participant_usernames (kind, username, id) VALUES (?, ?, ?)");
  p(ins_display_index_, "INSERT INTO ${ks}.participant_by_display_name (kind, folded_name, id) VALUES (?, ?, ?)");
  p(search_usernames_,
    "SELECT username, id FROM ${ks}.participant_usernames WHERE kind = ? AND username >= ? AND username <= ? "
    "LIMIT ?");
  p(search_display_,
    "SELECT folded_name, id FROM ${ks}.participant_by_display_name WHERE kind = ? AND folded_name >= ? AND "
    "folded_name <= ? LIMIT ?");
  p(upd_banned_, "UPDATE ${ks}.participants SET banned = ? WHERE id = ?");
  p(upd_password_, "UPDATE ${ks}.participants SET password_hash = ? WHERE id = ?");

  p(ins_conversation_,
    "INSERT INTO ${ks}.conversations (id, kind, title, created_at, creator_id) VALUES (?, ?, ?, ?, ?)");
  p(upd_activity_, "UPDATE ${ks}.conversations USING TIMESTAMP ? SET updated_at = ?, last_message_id = ? WHERE id = ?");
  p(sel_conversation_,
    "SELECT kind, title, created_at, updated_at, last_message_id, creator_id FROM ${ks}.conversations WHERE id = ?");
  p(ins_member_, "INSERT INTO ${ks}.members (conversation_id, participant_id) VALUES (?, ?)");
  p(ins_member_of_, "INSERT INTO ${ks}.member_of (participant_id, conversation_id) VALUES (?, ?)");
  p(sel_members_, "SELECT participant_id FROM ${ks}.members WHERE conversation_id = ?");
  p(sel_member_, "SELECT participant_id FROM ${ks}.members WHERE conversation_id = ? AND participant_id = ?");
  p(claim_pair_, "INSERT INTO ${ks}.direct_pairs (low, high, conversation_id) VALUES (?, ?, ?) IF NOT EXISTS", false);
  p(ins_inbox_,
    "INSERT INTO ${ks}.inbox (participant_id, updated_at, conversation_id, last_message_id) VALUES (?, ?, ?, ?) "
    "USING TIMESTAMP ?");
  p(del_inbox_,
    "DELETE FROM ${ks}.inbox USING TIMESTAMP ? WHERE participant_id = ? AND updated_at = ? AND conversation_id = ?");
  p(sel_inbox_, "SELECT updated_at, conversation_id, last_message_id FROM ${ks}.inbox WHERE participant_id = ?");

  const std::string message_cols =
      "conversation_id, bucket, message_id, sender_id, sender_kind, body, client_msg_id, created_at, edited_at, "
      "deleted";
  p(ins_message_,
    "INSERT INTO ${ks}.messages (" + message_cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?");
  p(ins_message_by_id_, "INSERT INTO ${ks}.message_by_id (message_id, conversation_id, bucket) VALUES (?, ?, ?)");
  p(ins_bucket_, "INSERT INTO ${ks}.message_buckets (conversation_id, bucket) VALUES (?, ?)");
  p(sel_message_by_id_, "SELECT conversation_id, bucket FROM ${ks}.message_by_id WHERE message_id = ?");
  p(sel_message_,
    "SELECT " + message_cols + " FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND message_id = ?");
  p(sel_buckets_down_, "SELECT bucket FROM ${ks}.message_buckets WHERE conversation_id = ? AND bucket <= ?");
  p(sel_buckets_up_,
    "SELECT bucket FROM ${ks}.message_buckets WHERE conversation_id = ? AND bucket >= ? ORDER BY bucket ASC");
  p(sel_before_, "SELECT " + message_cols +
                     " FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND message_id < ? LIMIT ?");
  p(sel_after_, "SELECT " + message_cols +
                    " FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND message_id > ? "
                    "ORDER BY message_id ASC LIMIT ?");
  p(sel_count_after_,
    "SELECT sender_id, deleted FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND message_id > ?");

  p(claim_cmid_,
    "INSERT INTO ${ks}.client_msg_ids (conversation_id, sender_id, client_msg_id, message_id) VALUES (?, ?, ?, ?) "
    "IF NOT EXISTS",
    false);
  p(sel_cmid_,
    "SELECT message_id FROM ${ks}.client_msg_ids WHERE conversation_id = ? AND sender_id = ? AND client_msg_id = ?");

  p(upd_read_,
    "UPDATE ${ks}.read_state USING TIMESTAMP ? SET message_id = ? WHERE participant_id = ? AND conversation_id = ?");
  p(sel_read_, "SELECT message_id FROM ${ks}.read_state WHERE participant_id = ? AND conversation_id = ?");

  p(upd_presence_seen_, "UPDATE ${ks}.presence SET last_seen_at = ? WHERE participant_id = ?");
  p(upd_presence_state_, "UPDATE ${ks}.presence USING TTL ? SET state = ?, expires_at = ? WHERE participant_id = ?");
  p(sel_presence_, "SELECT state, last_seen_at, expires_at FROM ${ks}.presence WHERE participant_id = ?");

  const std::string notification_cols =
      "recipient_id, notification_id, conversation_id, message_id, sender_id, sender_kind, preview, count, "
      "created_at";
  p(ins_notification_,
    "INSERT INTO ${ks}.notifications (" + notification_cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  p(sel_notifications_, "SELECT " + notification_cols + " FROM ${ks}.notifications WHERE recipient_id = ? LIMIT ?");
  p(claim_delivered_,
    "INSERT INTO ${ks}.notification_delivered (recipient_id, message_id, delivered) VALUES (?, ?, true) "
    "IF NOT EXISTS",
    false);
  p(sel_delivered_, "SELECT delivered FROM ${ks}.notification_delivered WHERE recipient_id = ? AND message_id = ?");

  const std::string server_cols = "id, url, region, lat, lon, has_coordinates, load, expires_at";
  p(ins_server_, "INSERT INTO ${ks}.chat_servers (" + server_cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?");
  p(sel_servers_, "SELECT " + server_cols + " FROM ${ks}.chat_servers");
  p(del_server_, "DELETE FROM ${ks}.chat_servers WHERE id = ?");

  p(sel_leases_, "SELECT node, expires_at FROM ${ks}.node_leases");
  p(claim_lease_, "INSERT INTO ${ks}.node_leases (node, owner, expires_at) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?",
    false);
  p(take_over_lease_,
    "UPDATE ${ks}.node_leases USING TTL ? SET owner = ?, expires_at = ? WHERE node = ? IF expires_at = ?", false);
  // owner is rewritten too: TTLs are per cell, and both must outlive the renewal.
  p(renew_lease_,
    "UPDATE ${ks}.node_leases USING TTL ? SET owner = ?, expires_at = ? WHERE node = ? IF owner = ? AND expires_at > "
    "?",
    false);
  p(release_lease_, "DELETE FROM ${ks}.node_leases WHERE node = ? IF owner = ?", false);
}

}  // namespace chatd::store::scylla_backend
