// Error values for everything that comes from a file, a request or a user.
// Invariants of our own code use HYLO_CHECK (check.h) instead.
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace hylo {

// An error message that names its component and the values involved, e.g.
// "[gguf] model.gguf: tensor blk.3.ffn_down_exps: data beyond end of file".
struct Error {
  std::string message;
};

template <typename... Args>
[[nodiscard]] Error make_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error{fmt::format(f, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }
  const std::string& message() const { return error().message; }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }
  const std::string& message() const { return error_.message; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;
inline Status ok_status() { return Status(); }

}  // namespace hylo

// Propagates an error from an expression returning Result<...>/Status.
#define HYLO_TRY(expr)                                   \
  do {                                                   \
    auto&& hylo_try_result_ = (expr);                    \
    if (!hylo_try_result_.ok()) return hylo_try_result_.error(); \
  } while (0)

#define HYLO_CONCAT_INNER_(a, b) a##b
#define HYLO_CONCAT_(a, b) HYLO_CONCAT_INNER_(a, b)
// HYLO_ASSIGN_OR_RETURN(auto x, make_x()); assigns the value or returns the error.
#define HYLO_ASSIGN_OR_RETURN(lhs, expr)                                  \
  auto HYLO_CONCAT_(hylo_aor_, __LINE__) = (expr);                        \
  if (!HYLO_CONCAT_(hylo_aor_, __LINE__).ok())                            \
    return HYLO_CONCAT_(hylo_aor_, __LINE__).error();                     \
  lhs = std::move(HYLO_CONCAT_(hylo_aor_, __LINE__)).value()
