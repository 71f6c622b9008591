#include "integration/process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

extern char** environ;

namespace sv::test {

Process::Process(std::vector<std::string> argv, std::string stderr_path) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  if (stderr_path == "-") {
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  } else if (!stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  out_fd_ = fds[0];
  if (rc != 0) {
    ::close(out_fd_);
    throw std::runtime_error("cannot start " + argv[0]);
  }
}

Process::~Process() {
  if (!exited_) terminate(std::chrono::seconds(2));
  if (out_fd_ >= 0) ::close(out_fd_);
}

std::optional<std::string> Process::read_line(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      lines_.push_back(line);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || out_fd_ < 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char tmp[4096];
    ssize_t n = ::read(out_fd_, tmp, sizeof tmp);
    if (n <= 0) {
      // EOF: a last line without its newline still counts.
      if (buf_.empty()) return std::nullopt;
      std::string line = std::move(buf_);
      buf_.clear();
      lines_.push_back(line);
      return line;
    }
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
}

std::optional<std::smatch> Process::wait_for(const std::regex& re, std::chrono::milliseconds timeout,
                                             std::string* line_out) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto line = read_line(left);
    if (!line) return std::nullopt;
    last_match_line_ = *line;
    std::smatch m;
    if (std::regex_search(last_match_line_, m, re)) {
      if (line_out) *line_out = last_match_line_;
      return m;
    }
  }
}

int Process::wait(std::chrono::milliseconds timeout) {
  if (exited_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      exited_ = true;
      status_ = -1;
      return status_;
    }
    // Polling the child's exit: waitpid has no timeout form.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int Process::terminate(std::chrono::milliseconds timeout) { return stop_with(SIGTERM, timeout); }

int Process::stop_with(int sig, std::chrono::milliseconds timeout) {
  if (exited_) return status_;
  ::kill(pid_, sig);
  return wait(timeout);
}

RunResult run(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  Process p(std::move(argv));
  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto line = p.read_line(left);
    if (!line) break;
    r.out += *line + "\n";
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  r.status = p.wait(std::max(left, std::chrono::milliseconds(100)));
  return r;
}

bool have_tool(const char* tool) {
  return run({"sh", "-c", std::string("command -v ") + tool}, std::chrono::seconds(5)).status == 0;
}

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace sv::test
