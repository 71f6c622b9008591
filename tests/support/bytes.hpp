// Test helpers: byte vectors from hex and text.
#pragma once

#include <stdexcept>
#include <string_view>

#include "wire/common/bytes.hpp"

namespace sv::test {

inline wire::Bytes hex(std::string_view h) {
  wire::Bytes out;
  std::string clean;
  for (char c : h) {
    if (c != ' ' && c != '\n') clean.push_back(c);
  }
  if (!wire::from_hex(clean, out)) throw std::invalid_argument("bad hex in test vector");
  return out;
}

inline wire::Bytes text(std::string_view s) { return wire::Bytes(s.begin(), s.end()); }

}  // namespace sv::test
