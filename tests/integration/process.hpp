// Child processes for integration tests: spawn, read stdout lines with a
// deadline, signal, and reap (bounded).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace sv::test {

class Process {
 public:
  // Starts argv[0] with argv; stdout is captured, stderr goes to `stderr_path`
  // (or is inherited when empty; "-" merges it into the captured stdout).
  explicit Process(std::vector<std::string> argv, std::string stderr_path = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Next stdout line, or nullopt at EOF / deadline.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads lines until one matches; returns the match (nullopt on EOF/timeout).
  std::optional<std::smatch> wait_for(const std::regex& re, std::chrono::milliseconds timeout,
                                      std::string* line_out = nullptr);
  // Sends SIGTERM and waits (bounded, then SIGKILL); returns the exit status.
  int terminate(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Sends `sig` (e.g. SIGINT, which dumpcap needs to flush) and waits as terminate().
  int stop_with(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Waits for exit (bounded, then SIGKILL); returns the exit status or -1.
  int wait(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }
  // Every stdout line read so far.
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buf_;
  std::vector<std::string> lines_;
  std::string last_match_line_;
  bool exited_ = false;
  int status_ = -1;
};

// Runs a command to completion (bounded); returns exit status and stdout.
struct RunResult {
  int status = -1;
  std::string out;
};
RunResult run(std::vector<std::string> argv, std::chrono::milliseconds timeout);
// True when `tool` is on the PATH.
bool have_tool(const char* tool);
// A TCP port on 127.0.0.1 that was free a moment ago (for a child to listen on).
std::uint16_t free_port();

}  // namespace sv::test
