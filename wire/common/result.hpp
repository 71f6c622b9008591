// Result<T>: a value or a WireError. A tiny stand-in for std::expected, which
// does not compile under clang-14 with this libstdc++ (clang is the fuzzing
// compiler), with the same shape.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <variant>

namespace sv::wire {

enum class WireError : std::uint8_t {
  NeedMore,     // not an error: the input is a valid prefix, feed more bytes
  Malformed,    // the bytes can never become valid
  TooLarge,     // a length field or the input exceeds a configured limit
  Unsupported,  // valid but not something we speak
};

constexpr std::string_view to_string(WireError e) {
  switch (e) {
    case WireError::NeedMore: return "need-more";
    case WireError::Malformed: return "malformed";
    case WireError::TooLarge: return "too-large";
    case WireError::Unsupported: return "unsupported";
  }
  return "?";
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(WireError e) : v_(e) {}             // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  WireError error() const { return std::get<1>(v_); }
  bool need_more() const { return !ok() && error() == WireError::NeedMore; }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, WireError> v_;
};

}  // namespace sv::wire
