// The Kafka backend's translation of chatd's settings into librdkafka
// configuration, its client handles, and librdkafka's errors as chatd's.
#include <map>
#include <set>

#include "common/config.h"
#include "common/log.h"
#include "queue/kafka_internal.h"

namespace chatd::queue::kafka {

error kafka_error(rd_kafka_resp_err_t err, const std::string& what) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return make_error(errc::not_found, what + ": " + rd_kafka_err2str(err));
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return make_error(errc::too_large, what + ": " + rd_kafka_err2str(err));
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
      return make_error(errc::bad_request, what + ": " + rd_kafka_err2str(err));
    default:
      return make_error(errc::unavailable, what + ": " + rd_kafka_err2str(err));
  }
}

// librdkafka's log lines go to spdlog (it calls this from its own threads).
void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  const char* name = rd_kafka_name(rk);
  if (level <= 3) {
    spdlog::error("kafka {} {}: {}", name, fac, buf);
  } else if (level == 4) {
    spdlog::warn("kafka {} {}: {}", name, fac, buf);
  } else if (level <= 6) {
    spdlog::info("kafka {} {}: {}", name, fac, buf);
  } else {
    spdlog::debug("kafka {} {}: {}", name, fac, buf);
  }
}

void error_cb(rd_kafka_t* rk, int err, const char* reason, void* /*opaque*/) {
  const auto e = static_cast<rd_kafka_resp_err_t>(err);
  if (e == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    rd_kafka_fatal_error(rk, why, sizeof why);
    spdlog::error("kafka {}: fatal error: {}", rd_kafka_name(rk), why);
    return;
  }
  // Brokers going away and coming back are reported here; librdkafka
  // reconnects by itself, so this is a warning, not an error.
  spdlog::warn("kafka {}: {} ({})", rd_kafka_name(rk), reason, rd_kafka_err2name(e));
}

// Settings the port's guarantees rest on: a user value must agree.
const std::map<std::string, std::set<std::string>>& enforced(client_kind kind) {
  static const std::map<std::string, std::set<std::string>> producer{
      {"enable.idempotence", {"true"}},
      {"acks", {"all", "-1"}},
      {"request.required.acks", {"all", "-1"}},
  };
  static const std::map<std::string, std::set<std::string>> consumer{
      {"enable.auto.commit", {"false"}},
      {"enable.auto.offset.store", {"false"}},
  };
  static const std::map<std::string, std::set<std::string>> none;
  return kind == client_kind::producer ? producer : kind == client_kind::consumer ? consumer : none;
}

void set_or_throw(rd_kafka_conf_t* conf, const std::string& key, const std::string& value, const std::string& origin) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    throw config_error(origin + ": " + errstr);
  }
}

// chatd's defaults, then the user's settings, then the enforced ones.
// Throws config_error (start-up) for a bad or conflicting setting.
conf_ptr make_conf(const kafka_queue_options& o, client_kind kind,
                   const std::vector<std::pair<std::string, std::string>>& extra) {
  conf_ptr conf(rd_kafka_conf_new());
  std::vector<std::pair<std::string, std::string>> defaults{
      {"bootstrap.servers", o.brokers},
      {"client.id", "chatd"},
      // A broker that comes back is found within a second, not the default
      // 10 s backoff: chatd must recover quickly after a broker restart.
      {"reconnect.backoff.ms", "100"},
      {"reconnect.backoff.max.ms", "1000"},
      {"log.connection.close", "false"},
  };
  if (kind == client_kind::producer) {
    defaults.insert(defaults.end(), {
                                        {"enable.idempotence", "true"},
                                        {"acks", "all"},
                                        // Where Kafka's Java client puts a keyed record: the
                                        // partition partition_for_key() computes.
                                        {"partitioner", "murmur2_random"},
                                        // A chat send waits for its ack: batch for 1 ms, not 5.
                                        {"linger.ms", "1"},
                                        // A send fails (unavailable) after 15 s without a
                                        // durable write rather than hanging for 5 minutes.
                                        {"message.timeout.ms", "15000"},
                                    });
  } else if (kind == client_kind::consumer) {
    defaults.insert(defaults.end(), {
                                        {"enable.auto.commit", "false"},
                                        {"enable.auto.offset.store", "false"},
                                        {"enable.partition.eof", "false"},
                                        {"allow.auto.create.topics", "false"},
                                        // A member that died (kill -9) holds its partitions
                                        // until this passes: 6 s, Kafka's minimum by default,
                                        // instead of 45 s.
                                        {"session.timeout.ms", "6000"},
                                        {"heartbeat.interval.ms", "1500"},
                                        // An idle partition's fetch waits this long at the
                                        // broker; a record can occasionally sit out the whole
                                        // wait (measured: up to 0.5 s with the default 500).
                                        {"fetch.wait.max.ms", "100"},
                                        // Pre-fetch per consumer: 64 MiB by default is a lot for
                                        // a process with several groups.
                                        {"queued.max.messages.kbytes", "16384"},
                                    });
  } else {
    defaults.emplace_back("allow.auto.create.topics", "false");
  }
  for (const auto& [k, v] : defaults) set_or_throw(conf.get(), k, v, "kafka default " + k);

  static const std::vector<std::pair<std::string, client_kind>> scoped{
      {"producer.", client_kind::producer}, {"consumer.", client_kind::consumer}, {"admin.", client_kind::admin}};
  const auto& must = enforced(kind);
  for (const auto& [key, value] : o.settings) {
    std::string k = key;
    bool applies = true;
    for (const auto& [prefix, which] : scoped) {
      if (k.rfind(prefix, 0) == 0) {
        applies = which == kind;
        k = k.substr(prefix.size());
        break;
      }
    }
    if (!applies) continue;
    if (auto it = must.find(k); it != must.end() && !it->second.contains(value)) {
      throw config_error("queue.kafka." + key + "=" + value + ": chatd's delivery guarantees need it to be " +
                         *it->second.begin());
    }
    if (k == "group.id") {
      throw config_error("queue.kafka." + key + ": group ids come from chatd (see queue.topic_prefix)");
    }
    set_or_throw(conf.get(), k, value, "queue.kafka." + key);
  }
  for (const auto& [k, v] : extra) set_or_throw(conf.get(), k, v, "kafka " + k);
  rd_kafka_conf_set_log_cb(conf.get(), log_cb);
  rd_kafka_conf_set_error_cb(conf.get(), error_cb);
  return conf;
}

// Takes ownership of conf (also on failure, as rd_kafka_new does on success).
rd_kafka_t* new_handle(rd_kafka_type_t type, conf_ptr conf, std::string& why) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) {
    why = errstr;
    return nullptr;
  }
  (void)conf.release();  // owned by rk now
  return rk;
}

}  // namespace chatd::queue::kafka
