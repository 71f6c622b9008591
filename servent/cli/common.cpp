#include "servent/cli/common.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

namespace sv::cli {

void usage_error(const std::string& command, const std::string& msg) {
  fmt::print(stderr, "servent{}: {} (see 'servent{} --help')\n", command.empty() ? "" : " " + command, msg,
             command.empty() ? "" : " " + command);
  std::exit(2);
}

std::string home_dir() {
  const char* h = std::getenv("HOME");
  return h && *h ? h : "/";
}

std::string default_state_dir() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/servent";
  return home_dir() + "/.local/state/servent";
}

std::string human_bytes(std::uint64_t b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd() ^ static_cast<std::uint64_t>(getpid());
}

void print_counters(const char* who, const std::vector<Counter>& cs) {
  std::string line;
  for (const auto& c : cs) {
    if (c.value == 0) continue;
    line += fmt::format(" {}={}", c.name, c.value);
  }
  if (!line.empty()) fmt::print(stderr, "{}:{}\n", who, line);
}


}  // namespace sv::cli
