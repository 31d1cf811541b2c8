// The embedded log: topics (creation, partition counts, watermarks, reads)
// and a group's lag.
#include <algorithm>

#include "queue/embedded_log_internal.h"

namespace chatd::queue::embedded {

result<topic_state*> log_engine::get_or_create_topic(std::string_view name, std::int32_t partitions) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    if (auto* t = find_topic_locked(name)) return t;
  }
  std::lock_guard create_lock(create_mu_);
  {
    std::lock_guard lock(mu_);
    if (auto* t = find_topic_locked(name)) return t;  // created meanwhile
  }
  {
    std::shared_lock db_lock(db_mu_);
    if (!db_) return closed_error();
    std::string v;
    put_be32(v, static_cast<std::uint32_t>(partitions));
    // The metadata reaches the WAL before any record of the topic, so
    // recovery never finds records of an unknown topic.
    auto s = db_->Put(write_options(), meta_cf_, std::string(topic_meta_prefix) + std::string(name), v);
    if (!s.ok()) return unavailable("creating topic", s);
  }
  auto t = std::make_unique<topic_state>();
  t->name = std::string(name);
  for (std::int32_t p = 0; p < partitions; ++p) {
    auto ps = std::make_unique<partition_state>();
    ps->prefix = partition_prefix(name, p);
    t->partitions.push_back(std::move(ps));
  }
  topic_state* raw = t.get();
  {
    std::lock_guard lock(mu_);
    topics_.emplace(raw->name, std::move(t));
    // Members already subscribed to this topic get its partitions now.
    for (auto& [_, g] : groups_) {
      bool wanted = false;
      for (auto& m : g->members) {
        wanted = wanted || std::find(m->topics.begin(), m->topics.end(), name) != m->topics.end();
      }
      if (wanted) rebalance_locked(*g);
    }
  }
  cv_.notify_all();
  return raw;
}

status log_engine::ensure_topic(std::string_view topic, std::int32_t partitions) {
  if (!valid_topic_name(topic)) return make_error(errc::bad_request, "queue: invalid topic name");
  if (partitions < 1 || partitions > max_partitions) {
    return make_error(errc::bad_request, "queue: partitions must be 1.." + std::to_string(max_partitions));
  }
  auto t = get_or_create_topic(topic, partitions);
  if (!t) return std::move(t).err();
  return {};
}

result<std::int32_t> log_engine::partition_count(std::string_view topic) {
  std::lock_guard lock(mu_);
  if (closed_) return closed_error();
  auto* t = find_topic_locked(topic);
  if (!t) return make_error(errc::not_found, "queue: no such topic");
  return static_cast<std::int32_t>(t->partitions.size());
}

result<watermarks> log_engine::watermark_offsets(std::string_view topic, std::int32_t partition) {
  std::lock_guard lock(mu_);
  auto ps = find_partition_locked(topic, partition);
  if (!ps) return std::move(ps).err();
  return watermarks{(*ps)->low, (*ps)->high};
}

result<std::vector<record>> log_engine::read(std::string_view topic, std::int32_t partition, std::int64_t from,
                                             std::size_t max_records) {
  max_records = std::max<std::size_t>(1, max_records);
  std::string prefix;
  std::int64_t high = 0;
  {
    std::lock_guard lock(mu_);
    auto ps = find_partition_locked(topic, partition);
    if (!ps) return std::move(ps).err();
    prefix = (*ps)->prefix;
    high = (*ps)->high;  // only what is published: a record being written is not read
    from = std::max(from, (*ps)->low);
  }
  std::vector<record> out;
  if (from >= high) return out;
  std::shared_lock db_lock(db_mu_);
  if (!db_) return closed_error();
  auto n = read_range_shared(prefix, topic, partition, from, high, max_records, out);
  if (!n) return std::move(n).err();
  return out;
}

result<std::size_t> log_engine::read_range_shared(const std::string& prefix, std::string_view topic,
                                                  std::int32_t partition, std::int64_t from, std::int64_t to,
                                                  std::size_t max_records, std::vector<record>& out) {
  const std::string upper = record_key(prefix, to);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, records_cf_));
  const std::size_t before = out.size();
  // Below the low watermark (retention deleted it) the seek lands on the
  // oldest record still held.
  for (it->Seek(record_key(prefix, from)); it->Valid() && out.size() < max_records; it->Next()) {
    record r;
    r.topic = std::string(topic);
    r.partition = partition;
    r.offset = static_cast<std::int64_t>(get_be64(it->key().data() + prefix.size()));
    if (!decode_value(it->value(), r)) return make_error(errc::unavailable, "queue: corrupt record in " + r.topic);
    out.push_back(std::move(r));
  }
  if (!it->status().ok()) return unavailable("reading records", it->status());
  return out.size() - before;
}

result<std::int64_t> log_engine::lag(std::string_view group, std::string_view topic) {
  std::lock_guard lock(mu_);
  if (closed_) return closed_error();
  auto* t = find_topic_locked(topic);
  if (!t) return make_error(errc::not_found, "queue: no such topic");
  auto git = groups_.find(group);
  std::int64_t sum = 0;
  for (std::int32_t p = 0; p < static_cast<std::int32_t>(t->partitions.size()); ++p) {
    const auto& ps = *t->partitions[p];
    std::int64_t from = ps.low;
    if (git != groups_.end()) {
      auto cit = git->second->committed.find(topic_partition{t->name, p});
      if (cit != git->second->committed.end()) from = cit->second;
    }
    sum += std::max<std::int64_t>(0, ps.high - from);
  }
  return sum;
}

}  // namespace chatd::queue::embedded
