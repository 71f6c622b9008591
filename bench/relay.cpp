// bench/relay: Queries relayed end to end through one `servent run` between
// real loopback sockets: a sender peer floods distinct Queries (TTL 2), a
// receiver peer counts what the servent relays to it. Prints descriptors/s
// and the servent's CPU per descriptor, and the same stream through a
// GnutellaCore alone (no sockets) for the Driver's share of the CPU.
// Goals: at least 500,000 descriptors/s on one core; the Driver (sockets,
// libuv, copying) costs less than half of the CPU.
// Usage: relay [N]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/servent_process.hpp"
#include "servent/gnutella/gnutella_core.hpp"
#include "wire/gnutella/framer.hpp"

namespace gn = sv::wire::gnutella;
using Clock = std::chrono::steady_clock;
using namespace sv;

namespace {

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = s.rfind(')');
  std::vector<std::string> f;
  std::string cur;
  for (std::size_t i = close + 2; i < s.size(); ++i) {
    if (s[i] == ' ') {
      f.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(s[i]);
    }
  }
  // Fields after the name: state is [0]; utime [11], stime [12] (proc(5)).
  return (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

int peer(int port, std::uint32_t src_ip) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{}, dst{};
  src.sin_family = dst.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(src_ip);
  dst.sin_port = htons(static_cast<std::uint16_t>(port));
  dst.sin_addr.s_addr = htonl(0x7f000001u);
  std::string buf;
  const std::string hello = "GNUTELLA CONNECT/0.6\r\nUser-Agent: bench/1\r\nX-Ultrapeer: True\r\n\r\n";
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 ||
      ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) <= 0 || !bench::read_until(fd, buf, "\r\n\r\n")) {
    return -1;
  }
  const std::string ok = "GNUTELLA/0.6 200 OK\r\n\r\n";
  ::send(fd, ok.data(), ok.size(), MSG_NOSIGNAL);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2'000'000;
  // The stream: distinct Queries, TTL 2, that match nothing shared.
  std::string stream;
  stream.reserve(n * 48);
  for (std::size_t i = 0; i < n; ++i) {
    gn::Header h;
    std::uint64_t a = i * 0x9E3779B97F4A7C15ull + 1, b = ~i;
    std::memcpy(h.id.bytes.data(), &a, 8);
    std::memcpy(h.id.bytes.data() + 8, &b, 8);
    h.type = 0x80;
    h.ttl = 2;
    wire::Bytes p;
    gn::encode_query(p, gn::Query{0x8000, "bench words " + std::to_string(i % 1000), {}});
    auto d = gn::encode_descriptor(h, p);
    stream.append(d.begin(), d.end());
  }
  const double mb = static_cast<double>(stream.size()) / 1e6;

  // 1. The core alone: the same stream into one connection, relayed to another.
  double core_cpu = 0;
  {
    share::Library lib;
    GnutellaConfig cfg;
    cfg.mode = NodeMode::Ultrapeer;  // a relaying node
    cfg.query_rate = 1e12;
    cfg.query_burst = 1e12;
    GnutellaCore core(lib, cfg, 1);
    Instant now{Duration(1)};
    for (std::uint64_t c = 1; c <= 2; ++c) {
      core.handle_connected(ConnId{c}, Endpoint{static_cast<std::uint32_t>(0x7f000001 + c), 6346}, Direction::Inbound, now);
      const std::string hs = "GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: True\r\n\r\nGNUTELLA/0.6 200 OK\r\n\r\n";
      core.handle_bytes(ConnId{c}, wire::as_bytes(hs), now);
    }
    while (core.poll_action()) {
    }
    std::size_t relayed = 0;
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < stream.size(); i += 65536) {
      core.handle_bytes(ConnId{1}, wire::as_bytes(std::string_view(stream).substr(i, 65536)), now);
      while (auto a = core.poll_action()) relayed += std::holds_alternative<action::Broadcast>(*a) || std::holds_alternative<action::Send>(*a);
    }
    core_cpu = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("relay: core alone: %zu descriptors in %.3f s, %.0f descriptors/s (%zu relay actions)\n", n, core_cpu,
                static_cast<double>(n) / core_cpu, relayed);
  }

  // 2. Through a servent process, between real sockets.
  bench::ServentProcess servent("servent-bench-relay", {"--mode", "ultrapeer", "--query-rate", "1000000", "--no-deflate"});
  if (servent.port() == 0) {
    std::printf("relay: servent did not start\n");
    return 1;
  }
  const pid_t pid = servent.pid();
  const int port = servent.port();
  const int sender = peer(port, 0x7f000002), receiver = peer(port, 0x7f000003);
  if (sender < 0 || receiver < 0) {
    std::printf("relay: could not connect\n");
    return 1;
  }
  ::usleep(200'000);
  std::size_t received = 0;
  Clock::time_point last{};
  std::thread reader([&] {
    gn::Framer f(1 << 16);
    std::vector<std::uint8_t> buf(1 << 20);
    while (received < n) {
      pollfd p{receiver, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0) break;
      const ssize_t m = ::recv(receiver, buf.data(), buf.size(), 0);
      if (m <= 0) break;
      f.feed({buf.data(), static_cast<std::size_t>(m)});
      while (auto fr = f.next()) received += fr->header.type == 0x80;
      last = Clock::now();
    }
  });
  const double cpu0 = cpu_seconds(pid);
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < stream.size();) {
    const ssize_t m = ::send(sender, stream.data() + i, std::min<std::size_t>(1 << 20, stream.size() - i), MSG_NOSIGNAL);
    if (m <= 0) break;
    i += static_cast<std::size_t>(m);
  }
  reader.join();
  const double wall = std::chrono::duration<double>(last - t0).count();
  const double cpu = cpu_seconds(pid) - cpu0;
  std::printf("relay: servent between sockets: %zu of %zu relayed in %.3f s: %.0f descriptors/s, %.1f MB/s in; goal 500000/s, ratio %.2f\n",
              received, n, wall, static_cast<double>(received) / wall, mb / wall,
              static_cast<double>(received) / wall / 500000);
  const double per = received ? cpu / static_cast<double>(received) * 1e9 : 0;
  const double core_per = core_cpu / static_cast<double>(n) * 1e9;
  std::printf("relay: servent CPU %.3f s: %.0f ns per descriptor, of which the core %.0f ns: Driver share %.0f %% (goal < 50 %%)\n",
              cpu, per, core_per, per > 0 ? 100.0 * (per - core_per) / per : 0.0);
  ::close(sender);
  ::close(receiver);
  return 0;
}
