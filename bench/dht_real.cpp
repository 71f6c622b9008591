// bench/dht_real: put and get latency on real sockets, 20 of our nodes of
// each overlay against 20 OpenDHT nodes (Debian's dhtnode) in the same run.
//
//   dht_real [OPS]   (default 100)
//
// Ours: 19 `servent dht run --overlay O` processes on 127.0.0.1 joined
// through the first, and a 20th node of the same overlay inside this
// process (the same core, on its own loop), from which OPS puts and then OPS
// gets of the same keys are made one after another, each timed from the
// call to its result. OpenDHT: 20 `dhtnode` processes bootstrapped from the
// first; the same puts and gets typed into one node's console, each timed
// by dhtnode itself ("took ..."). Printed: p50 and p95 of each, how many
// gets found their value, and the ratio of OpenDHT's p50 to ours (goal:
// ours at most half of OpenDHT's, i.e. a ratio of 2 or more).
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "servent/dht/overlays.hpp"
#include "servent/uv/driver.hpp"

using namespace sv;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A child with its stdin and (stdout + stderr) on pipes.
class Child {
 public:
  explicit Child(std::vector<std::string> args) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      ::close(in[1]);
      ::close(out[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    if (in_ >= 0) ::close(in_);
    if (out_ >= 0) ::close(out_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  void line(const std::string& s) {
    const std::string l = s + "\n";
    (void)!::write(in_, l.data(), l.size());
  }
  // Output until `re` matches what came since the last match; the match
  // refers into last() (what came before and with it).
  std::optional<std::smatch> wait_for(const std::regex& re, std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    for (;;) {
      std::smatch m;
      if (std::regex_search(buf_, m, re)) {
        const auto end = static_cast<std::size_t>(m.position(0) + m.length(0));
        last_ = buf_.substr(0, end);
        buf_.erase(0, end);
        std::smatch out;
        std::regex_search(last_, out, re);
        return out;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
      char tmp[4096];
      const ssize_t n = ::read(out_, tmp, sizeof tmp);
      if (n <= 0) return std::nullopt;
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }
  // What came before and with the last match.
  const std::string& last() const { return last_; }

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string buf_, last_;
};

std::uint16_t free_udp_port() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct Latencies {
  std::vector<double> put_ms, get_ms;
  std::size_t found = 0, stored = 0;
};

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string key_of(std::size_t i) { return "bench-key-" + std::to_string(i); }
std::string value_of(std::size_t i) { return "value-" + std::to_string(i); }

// Ours: 19 processes and one node here, from which the operations go.
Latencies ours(const std::string& overlay, std::size_t nodes, std::size_t ops) {
  Latencies out;
  std::vector<std::unique_ptr<Child>> children;
  const std::regex listening("listening (127\\.0\\.0\\.1:[0-9]+) \\(udp\\)");
  std::string first;
  for (std::size_t i = 0; i + 1 < nodes; ++i) {
    std::vector<std::string> args{SERVENT_BIN, "dht", "run", "--overlay", overlay, "--listen", "127.0.0.1:0"};
    if (overlay == "kelips") args.insert(args.end(), {"--groups", "4"});
    if (i > 0) args.insert(args.end(), {"--join", first});
    children.push_back(std::make_unique<Child>(args));
    auto m = children.back()->wait_for(listening, 10s);
    if (!m) {
      std::fprintf(stderr, "dht_real: a %s node did not start\n", overlay.c_str());
      return out;
    }
    if (i == 0) first = (*m)[1];
  }
  DriverConfig dc;
  Driver driver(dc);
  dht::DhtOptions options;
  if (overlay == "kelips") options.groups = 4;
  auto core = dht::make_overlay(overlay, options, 42);
  const auto sock = driver.listen_udp("127.0.0.1", 0, *core);
  core->bind(sock.id, sock.bound);
  const auto colon = first.find(':');
  core->join(Endpoint{0x7f000001, static_cast<std::uint16_t>(std::stoi(first.substr(colon + 1)))}, driver.now());
  // The overlay settles for 5 s (gossip, stabilisation, the last join),
  // then the operations go one after another.
  std::size_t next = 0;
  bool getting = false;
  Clock::time_point started;
  auto start_next = [&] {
    if (next == ops) {
      if (getting) {
        driver.stop();
        return;
      }
      getting = true;
      next = 0;
    }
    const dht::NodeId key = dht::key_id(key_of(next), core->ring());
    started = Clock::now();
    if (getting) {
      core->get(key, driver.now());
    } else {
      const std::string v = value_of(next);
      core->put(key, wire::Bytes(v.begin(), v.end()), driver.now());
    }
    ++next;
  };
  driver.forward([&] { return core->poll_result(); },
                 [&](const dht::OpResult& r) {
                   const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
                   if (getting) {
                     out.get_ms.push_back(ms);
                     const std::string want = value_of(next - 1);
                     for (const auto& v : r.values) out.found += std::string(v.begin(), v.end()) == want;
                   } else {
                     out.put_ms.push_back(ms);
                     out.stored += r.ok;
                   }
                   start_next();
                 });
  driver.after(5s, start_next);
  driver.after(120s, [&] { driver.stop(); });
  driver.pump();
  driver.run();
  return out;
}

// OpenDHT: 20 dhtnodes; the operations typed into the second one's console.
Latencies opendht(std::size_t nodes, std::size_t ops) {
  Latencies out;
  std::vector<std::unique_ptr<Child>> children;
  const std::regex running("running on port");
  std::uint16_t first = 0;
  for (std::size_t i = 0; i < nodes; ++i) {
    const std::uint16_t port = free_udp_port();
    std::vector<std::string> args{"dhtnode", "-p", std::to_string(port)};
    if (i == 0) {
      first = port;
    } else {
      args.insert(args.end(), {"-b", "127.0.0.1:" + std::to_string(first)});
    }
    children.push_back(std::make_unique<Child>(args));
    if (!children.back()->wait_for(running, 10s)) {
      std::fprintf(stderr, "dht_real: dhtnode did not start (apt-get install dhtnode)\n");
      return out;
    }
  }
  Child& console = *children[1];
  const auto settle = Clock::now() + 5s;
  while (Clock::now() < settle) ::usleep(100000);  // (the same 5 s as ours)
  const std::regex took("took ([0-9.]+) (us|ms|s)");
  auto ms_of = [](const std::smatch& m) {
    const double v = std::stod(m[1]);
    return m[2] == "us" ? v / 1000 : m[2] == "ms" ? v : v * 1000;
  };
  const std::regex put_done("Put: (success|failure)[^\\n]*took ([0-9.]+) (us|ms|s)");
  const std::regex get_done("Get: completed, took ([0-9.]+) (us|ms|s)");
  for (std::size_t i = 0; i < ops; ++i) {
    console.line("p " + key_of(i) + " " + value_of(i));
    auto m = console.wait_for(put_done, 30s);
    if (std::getenv("DHT_REAL_VERBOSE")) std::fprintf(stderr, "put %zu: %s\n", i, m ? std::string((*m)[0]).c_str() : "(no answer in 30 s)");
    if (!m) break;
    out.stored += (*m)[1] == "success";
    std::smatch t;
    const std::string line = (*m)[0];
    if (std::regex_search(line, t, took)) out.put_ms.push_back(ms_of(t));
  }
  for (std::size_t i = 0; i < ops; ++i) {
    console.line("g " + key_of(i));
    auto m = console.wait_for(get_done, 30s);
    if (std::getenv("DHT_REAL_VERBOSE")) std::fprintf(stderr, "get %zu: %s\n", i, m ? std::string((*m)[0]).c_str() : "(no answer in 30 s)");
    if (!m) break;
    std::smatch t;
    const std::string line = (*m)[0];
    if (std::regex_search(line, t, took)) out.get_ms.push_back(ms_of(t));
    out.found += console.last().find("\"" + value_of(i) + "\"") != std::string::npos;
  }
  return out;
}

void print(const char* who, const Latencies& l, std::size_t ops) {
  std::printf("%-16s put p50 %7.3f ms p95 %7.3f ms (%zu/%zu stored); get p50 %7.3f ms p95 %7.3f ms (%zu/%zu found)\n",
              who, pct(l.put_ms, 0.5), pct(l.put_ms, 0.95), l.stored, ops, pct(l.get_ms, 0.5), pct(l.get_ms, 0.95),
              l.found, ops);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t ops = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100;
  constexpr std::size_t kNodes = 20;
  ::signal(SIGPIPE, SIG_IGN);
  const Latencies open = opendht(kNodes, ops);
  print("opendht", open, ops);
  for (const char* overlay : {"chord", "kelips", "pastry"}) {
    const Latencies l = ours(overlay, kNodes, ops);
    print((std::string("servent ") + overlay).c_str(), l, ops);
    std::printf("  %s: OpenDHT p50 / ours p50 = put %.2fx, get %.2fx (goal >= 2x)\n", overlay,
                pct(l.put_ms, 0.5) > 0 ? pct(open.put_ms, 0.5) / pct(l.put_ms, 0.5) : 0.0,
                pct(l.get_ms, 0.5) > 0 ? pct(open.get_ms, 0.5) / pct(l.get_ms, 0.5) : 0.0);
    std::fflush(stdout);
  }
  return 0;
}
