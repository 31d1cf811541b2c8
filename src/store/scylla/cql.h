// A thin C++ layer over chatd's CQL bridge (ffi/include/chatd_cql.h, a C ABI
// over ScyllaDB's Rust driver; docs/adr/006-scylla-driver.md): RAII handles
// and chatd::result instead of raw pointers and error kinds. Calls block the
// calling thread (a worker, never a network thread); `execute` returns a
// `pending` so a caller can start several requests and then wait for all.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.h"

extern "C" {
struct chatd_cql_session;
struct chatd_cql_prepared;
struct chatd_cql_values;
struct chatd_cql_batch;
struct chatd_cql_future;
struct chatd_cql_result;
}

namespace chatd::store::cql {

// CQL protocol codes.
enum class consistency : std::int32_t {
  any = 0,
  one = 1,
  two = 2,
  three = 3,
  quorum = 4,
  all = 5,
  local_quorum = 6,
  each_quorum = 7,
  local_one = 10,
};
// "one", "local_quorum", "QUORUM"... (case-insensitive); nullopt if unknown.
std::optional<consistency> parse_consistency(std::string_view s);

struct session_options {
  std::string contact_points;  // "host[:port],..."
  std::string local_dc;        // empty: no datacenter preference
  consistency level = consistency::local_quorum;
  std::uint32_t request_timeout_ms = 5000;
  std::uint32_t connect_timeout_ms = 5000;
};

// Bound values of one statement, in bind-marker order.
class values {
 public:
  explicit values(std::size_t capacity = 8);
  values(values&& o) noexcept : v_(std::exchange(o.v_, nullptr)) {}
  values& operator=(values&&) = delete;
  values(const values&) = delete;
  ~values();

  // Chained on a temporary (`values().id(a).text(b)`), hence rvalue returns.
  values&& i64(std::int64_t x);
  // Ids are unsigned 64-bit; CQL has signed bigint. Snowflake ids stay below
  // 2^63, so the bits are kept as they are and numeric order is preserved.
  values&& id(std::uint64_t x) { return i64(static_cast<std::int64_t>(x)); }
  values&& i32(std::int32_t x);
  values&& boolean(bool x);
  values&& dbl(double x);
  values&& text(std::string_view s);
  values&& blob(std::string_view s);
  values&& null();

  chatd_cql_values* release() { return std::exchange(v_, nullptr); }

 private:
  chatd_cql_values* v_;
};

// The rows of a completed request. Accessors of a null or mistyped cell
// return the type's zero value; `is_null` tells them apart.
class rows {
 public:
  explicit rows(chatd_cql_result* r) : r_(r) {}
  rows(rows&&) noexcept = default;
  rows& operator=(rows&&) noexcept = default;

  std::size_t size() const;
  bool empty() const { return size() == 0; }
  bool is_null(std::size_t row, std::size_t col) const;
  // The index of a named column; -1 if absent.
  std::int64_t column(const char* name) const;
  std::int64_t i64(std::size_t row, std::size_t col) const;
  std::uint64_t id(std::size_t row, std::size_t col) const { return static_cast<std::uint64_t>(i64(row, col)); }
  bool boolean(std::size_t row, std::size_t col) const;
  double dbl(std::size_t row, std::size_t col) const;
  std::string_view view(std::size_t row, std::size_t col) const;
  std::string text(std::size_t row, std::size_t col) const { return std::string(view(row, col)); }
  // The state of the next page (paged execute); nullopt on the last page.
  std::optional<std::string> paging_state() const;

 private:
  struct deleter {
    void operator()(chatd_cql_result* r) const;
  };
  std::unique_ptr<chatd_cql_result, deleter> r_;
};

// A request in flight.
class pending {
 public:
  explicit pending(chatd_cql_future* f) : f_(f) {}
  pending(pending&&) noexcept = default;
  pending& operator=(pending&&) noexcept = default;
  // Blocks until the request completes. Call once.
  result<rows> wait();

 private:
  struct deleter {
    void operator()(chatd_cql_future* f) const;
  };
  std::unique_ptr<chatd_cql_future, deleter> f_;
};

class prepared {
 public:
  prepared() = default;
  explicit prepared(chatd_cql_prepared* p) : p_(p) {}
  const chatd_cql_prepared* get() const { return p_.get(); }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  struct deleter {
    void operator()(chatd_cql_prepared* p) const;
  };
  std::unique_ptr<chatd_cql_prepared, deleter> p_;
};

class batch {
 public:
  explicit batch(bool logged);
  batch(batch&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  batch(const batch&) = delete;
  batch& operator=(const batch&) = delete;
  ~batch();
  batch& add(const prepared& p, values v);
  bool empty() const { return count_ == 0; }
  chatd_cql_batch* release() { return std::exchange(b_, nullptr); }

 private:
  chatd_cql_batch* b_;
  std::size_t count_ = 0;
};

class session {
 public:
  // Connects; errc::unavailable when no contact point answers.
  static result<std::unique_ptr<session>> connect(const session_options& o);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // `idempotent`: the driver may retry it after a timeout. `level` overrides
  // the session's consistency for this statement.
  result<prepared> prepare(const std::string& cql, bool idempotent, std::optional<consistency> level = std::nullopt);
  // page_size <= 0: the whole result; otherwise one page from `paging_state`.
  pending execute(const prepared& p, values v, std::int32_t page_size = 0, std::string_view paging_state = {});
  pending execute(batch b, bool idempotent);
  // An unprepared statement without values (schema), given at least 30 s
  // (not request_timeout_ms): schema changes are slow on a loaded cluster.
  pending query(const std::string& cql);

  result<rows> run(const prepared& p, values v) { return execute(p, std::move(v)).wait(); }

 private:
  explicit session(chatd_cql_session* s) : s_(s) {}
  chatd_cql_session* s_;
};

}  // namespace chatd::store::cql
