// Header accumulation both llhttp wrappers share: llhttp hands a header's
// name and value in pieces; a header is complete when the next name starts
// or the head ends.
#pragma once

#include <string>

#include "wire/common/text.hpp"

namespace sv::http {

class HeaderCollector {
 public:
  void field(const char* at, std::size_t len, wire::Headers& into) {
    if (in_value_) flush(into);
    field_.append(at, len);
  }
  void value(const char* at, std::size_t len) {
    in_value_ = true;
    value_.append(at, len);
  }
  void flush(wire::Headers& into) {
    if (!field_.empty()) into.add(std::move(field_), std::string(wire::trim(value_)));
    reset();
  }
  // No header name has started yet (the parser is still in the first line).
  bool none_started() const { return field_.empty() && !in_value_; }
  void reset() {
    field_.clear();
    value_.clear();
    in_value_ = false;
  }

 private:
  std::string field_, value_;
  bool in_value_ = false;
};

}  // namespace sv::http
