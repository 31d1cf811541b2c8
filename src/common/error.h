// Error vocabulary shared by every service. See docs/style.md for the policy:
// exceptions only at start-up/configuration, `result<T>` on request paths, and
// every error that reaches a client carries one of these stable codes.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace chatd {

enum class errc {
  bad_request,
  unauthorized,
  forbidden,
  not_found,
  conflict,
  too_large,
  rate_limited,
  unavailable,
  internal,
};

// The contract's snake_case code, e.g. "bad_request".
std::string_view code_name(errc c) noexcept;
// The code a name stands for (the inverse of code_name); internal for a name
// the contract does not know.
errc code_from_name(std::string_view name) noexcept;
// The HTTP status the contract assigns to the code.
int http_status(errc c) noexcept;

struct error {
  errc code = errc::internal;
  std::string message;
};

inline error make_error(errc code, std::string message) { return error{code, std::move(message)}; }

// A value or an error. Deliberately small: the hot paths only need
// "did it work, and if not which contract code".
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error err) : v_(std::move(err)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const error& err() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  error&& err() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error err) : err_(std::move(err)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const error& err() const& {
    assert(!ok_);
    return err_;
  }
  error&& err() && {
    assert(!ok_);
    return std::move(err_);
  }

 private:
  error err_;
  bool ok_ = true;
};

using status = result<void>;

}  // namespace chatd
