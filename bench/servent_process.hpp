// For the benches: a `servent run` (or other listening command) child on
// 127.0.0.1 (a free port, a fresh share and state folder in /tmp), its stdout
// drained so it never blocks, stopped with SIGTERM and its folder removed on
// destruction.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sv::bench {

// Resident memory of a process, in KiB (0 when unknown).
inline std::size_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// Reads from `fd` (a socket or a pipe) until `buf` holds `marker`; false on
// end of file or after `timeout_ms`.
inline bool read_until(int fd, std::string& buf, std::string_view marker, int timeout_ms = 5000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (buf.find(marker) == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char tmp[4096];
    const ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
  return true;
}

class ServentProcess {
 public:
  // Starts `servent run --listen 127.0.0.1:0 --min-peers 0 --share ... --state-dir ...` plus `extra`;
  // port() is 0 when it did not start.
  // With `command` other than "run" (e.g. "napster-server"), starts
  // `servent COMMAND --listen 127.0.0.1:0` plus `extra` instead.
  explicit ServentProcess(const std::string& name, const std::vector<std::string>& extra,
                          const std::string& command = "run") {
    dir_ = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "share");
    int out[2];
    if (::pipe(out) != 0) return;
    std::vector<std::string> args = {SERVENT_BIN, command, "--listen", "127.0.0.1:0"};
    if (command == "run") {
      for (std::string a : {"--min-peers", "0", "--share"}) args.push_back(a);
      args.push_back((dir_ / "share").string());
      args.push_back("--state-dir");
      args.push_back((dir_ / "state").string());
    }
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(SERVENT_BIN, argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::string banner;
    constexpr std::string_view kListening = "listening on 127.0.0.1:";
    if (!read_until(out[0], banner, "\n", 10000) || banner.find(kListening) == std::string::npos) return;
    port_ = std::atoi(banner.c_str() + banner.find(kListening) + kListening.size());
    // Its later lines (one per peer) are read and dropped, or it would block on a full pipe.
    std::thread([fd = out[0]] {
      char sink[4096];
      while (::read(fd, sink, sizeof sink) > 0) {
      }
    }).detach();
  }
  ~ServentProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  ServentProcess(const ServentProcess&) = delete;
  ServentProcess& operator=(const ServentProcess&) = delete;

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace sv::bench
