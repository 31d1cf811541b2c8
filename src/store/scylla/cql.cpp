#include "store/scylla/cql.h"

#include <cctype>

#include "chatd_cql.h"

namespace chatd::store::cql {
namespace {

error to_error(const chatd_cql_result* r, int32_t kind) {
  const std::uint8_t* msg = nullptr;
  std::size_t len = 0;
  (void)chatd_cql_result_error(r, &msg, &len);
  std::string text(reinterpret_cast<const char*>(msg), len);
  // Refused statements are our bugs; everything else is the cluster not
  // answering as asked (docs/style.md: engines map to unavailable).
  return make_error(kind == CHATD_CQL_INVALID ? errc::internal : errc::unavailable, "cql: " + text);
}

}  // namespace

std::optional<consistency> parse_consistency(std::string_view s) {
  std::string l;
  for (char c : s) l.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (l == "any") return consistency::any;
  if (l == "one") return consistency::one;
  if (l == "two") return consistency::two;
  if (l == "three") return consistency::three;
  if (l == "quorum") return consistency::quorum;
  if (l == "all") return consistency::all;
  if (l == "local_quorum") return consistency::local_quorum;
  if (l == "each_quorum") return consistency::each_quorum;
  if (l == "local_one") return consistency::local_one;
  return std::nullopt;
}

// ------------------------------------------------------------------ values --

values::values(std::size_t capacity) : v_(chatd_cql_values_new(capacity)) {}
values::~values() {
  if (v_ != nullptr) chatd_cql_values_free(v_);
}
values&& values::i64(std::int64_t x) {
  chatd_cql_values_bigint(v_, x);
  return std::move(*this);
}
values&& values::i32(std::int32_t x) {
  chatd_cql_values_int(v_, x);
  return std::move(*this);
}
values&& values::boolean(bool x) {
  chatd_cql_values_boolean(v_, x);
  return std::move(*this);
}
values&& values::dbl(double x) {
  chatd_cql_values_double(v_, x);
  return std::move(*this);
}
values&& values::text(std::string_view s) {
  chatd_cql_values_text(v_, reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  return std::move(*this);
}
values&& values::blob(std::string_view s) {
  chatd_cql_values_blob(v_, reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  return std::move(*this);
}
values&& values::null() {
  chatd_cql_values_null(v_);
  return std::move(*this);
}

// -------------------------------------------------------------------- rows --

void rows::deleter::operator()(chatd_cql_result* r) const { chatd_cql_result_free(r); }

std::size_t rows::size() const { return chatd_cql_result_row_count(r_.get()); }
bool rows::is_null(std::size_t row, std::size_t col) const { return chatd_cql_result_is_null(r_.get(), row, col); }
std::int64_t rows::column(const char* name) const { return chatd_cql_result_column_index(r_.get(), name); }
std::int64_t rows::i64(std::size_t row, std::size_t col) const {
  std::int64_t v = 0;
  return chatd_cql_result_i64(r_.get(), row, col, &v) ? v : 0;
}
bool rows::boolean(std::size_t row, std::size_t col) const {
  bool v = false;
  return chatd_cql_result_bool(r_.get(), row, col, &v) ? v : false;
}
double rows::dbl(std::size_t row, std::size_t col) const {
  double v = 0;
  return chatd_cql_result_double(r_.get(), row, col, &v) ? v : 0;
}
std::string_view rows::view(std::size_t row, std::size_t col) const {
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;
  if (!chatd_cql_result_bytes(r_.get(), row, col, &p, &n)) return {};
  return {reinterpret_cast<const char*>(p), n};
}
std::optional<std::string> rows::paging_state() const {
  const std::uint8_t* p = nullptr;
  std::size_t n = 0;
  if (!chatd_cql_result_paging_state(r_.get(), &p, &n)) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(p), n);
}

// ----------------------------------------------------------------- pending --

void pending::deleter::operator()(chatd_cql_future* f) const { chatd_cql_future_free(f); }

result<rows> pending::wait() {
  if (!f_) return make_error(errc::internal, "cql: waited twice");
  chatd_cql_result* r = chatd_cql_future_wait(f_.get());
  f_.reset();
  if (r == nullptr) return make_error(errc::internal, "cql: no result");
  rows out(r);
  if (int32_t kind = chatd_cql_result_error(r, nullptr, nullptr); kind != CHATD_CQL_OK) return to_error(r, kind);
  return out;
}

// ---------------------------------------------------------------- prepared --

void prepared::deleter::operator()(chatd_cql_prepared* p) const { chatd_cql_prepared_free(p); }

// ------------------------------------------------------------------- batch --

batch::batch(bool logged) : b_(chatd_cql_batch_new(logged)) {}
batch::~batch() {
  if (b_ != nullptr) chatd_cql_batch_free(b_);
}
batch& batch::add(const prepared& p, values v) {
  chatd_cql_batch_add(b_, p.get(), v.release());
  ++count_;
  return *this;
}

// ----------------------------------------------------------------- session --

result<std::unique_ptr<session>> session::connect(const session_options& o) {
  chatd_cql_config cfg{};
  cfg.contact_points = o.contact_points.c_str();
  cfg.local_dc = o.local_dc.c_str();
  cfg.consistency = static_cast<std::int32_t>(o.level);
  cfg.request_timeout_ms = o.request_timeout_ms;
  cfg.connect_timeout_ms = o.connect_timeout_ms;
  chatd_cql_result* err = nullptr;
  chatd_cql_session* s = chatd_cql_connect(&cfg, &err);
  if (s == nullptr) {
    rows holder(err);
    if (err == nullptr) return make_error(errc::unavailable, "cql: connect failed");
    return to_error(err, CHATD_CQL_UNAVAILABLE);
  }
  return std::unique_ptr<session>(new session(s));
}

session::~session() { chatd_cql_session_free(s_); }

result<prepared> session::prepare(const std::string& cql, bool idempotent, std::optional<consistency> level) {
  chatd_cql_result* err = nullptr;
  auto* p = chatd_cql_prepare(s_, cql.c_str(), idempotent, level ? static_cast<std::int32_t>(*level) : -1, &err);
  if (p == nullptr) {
    rows holder(err);
    if (err == nullptr) return make_error(errc::internal, "cql: prepare failed: " + cql);
    auto e = to_error(err, chatd_cql_result_error(err, nullptr, nullptr));
    e.message += " (preparing: " + cql + ")";
    return e;
  }
  return prepared(p);
}

pending session::execute(const prepared& p, values v, std::int32_t page_size, std::string_view paging_state) {
  return pending(chatd_cql_execute(s_, p.get(), v.release(), page_size,
                                   reinterpret_cast<const std::uint8_t*>(paging_state.data()), paging_state.size()));
}

pending session::execute(batch b, bool idempotent) {
  return pending(chatd_cql_batch_execute(s_, b.release(), idempotent));
}

pending session::query(const std::string& cql) { return pending(chatd_cql_query(s_, cql.c_str())); }

}  // namespace chatd::store::cql
