// Test helper: a whole file as a string ("" when it cannot be read).
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include <stdlib.h>

namespace sv::test {

// A fresh folder under /tmp named "<prefix>-XXXXXX", removed with all it holds.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "servent") {
    std::string t = "/tmp/" + prefix + "-XXXXXX";
    path = ::mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// `n` pseudo-random bytes (xorshift from `seed`): content no two seeds share.
inline std::string random_bytes(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace sv::test
