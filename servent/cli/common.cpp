#include "servent/cli/common.hpp"

#include "servent/cli/args.hpp"

#include <fmt/core.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
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

std::string bar(double fraction, int width) {
  int full = static_cast<int>(fraction * width);
  return std::string(static_cast<std::size_t>(std::clamp(full, 0, width)), '#') +
         std::string(static_cast<std::size_t>(width - std::clamp(full, 0, width)), '.');
}

std::string eta(double seconds) {
  if (seconds < 0 || seconds > 360000) return "--:--";
  auto s = static_cast<long>(seconds);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
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


ListenAddress parse_listen(const std::string& text, const std::string& what) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw UsageError(what + ": expected HOST:PORT, got '" + text + "'");
  ListenAddress out;
  out.host = text.substr(0, colon);
  if (out.host == "localhost") out.host = "127.0.0.1";
  if (!Endpoint::parse((out.host.empty() ? "0.0.0.0" : out.host) + text.substr(colon))) {
    throw UsageError(what + ": expected an IPv4 address and a port, got '" + text + "'");
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  out.port = static_cast<std::uint16_t>(parse_int(text.substr(colon + 1), 0, 65535, what));
  return out;
}

void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace sv::cli
