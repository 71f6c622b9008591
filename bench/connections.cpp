// bench/connections: N concurrent Gnutella 0.6 connections (default 10,000)
// to one `servent run` on loopback, each from its own 127.x.y.z address,
// then the servent's memory per connection (goal <= 16 KiB) and Ping round
// trips (p50/p99) through that loaded node.
// Usage: connections [N]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "bench/servent_process.hpp"
#include "wire/gnutella/framer.hpp"

namespace gn = sv::wire::gnutella;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000;
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = n + 1024;  // each process: its sockets and some room
  if (r.rlim_max < r.rlim_cur) r.rlim_max = r.rlim_cur;
  if (::setrlimit(RLIMIT_NOFILE, &r) != 0) {
    std::printf("connections: cannot raise RLIMIT_NOFILE to %zu (need root or a higher hard limit)\n", n + 1024);
    return 1;
  }
  const std::string max = std::to_string(n + 100);
  // An ultrapeer taking every connection as a leaf.
  sv::bench::ServentProcess servent(
      "servent-bench-conn",
      {"--mode", "ultrapeer", "--max-leaves", max, "--max-connections", max, "--max-per-ip", max});
  if (servent.port() == 0) {
    std::printf("connections: servent did not start\n");
    return 1;
  }
  const pid_t pid = servent.pid();
  const int port = servent.port();
  ::usleep(300'000);  // let it settle before the baseline
  const std::size_t rss0 = sv::bench::rss_kib(pid);

  std::vector<int> fds;
  fds.reserve(n);
  const auto t0 = Clock::now();
  const std::string hello = "GNUTELLA CONNECT/0.6\r\nUser-Agent: bench/1\r\nX-Ultrapeer: False\r\n\r\n";
  const std::string final_ok = "GNUTELLA/0.6 200 OK\r\n\r\n";
  std::size_t failed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    // 127.1.0.1 upwards: one source address per connection, loopback only.
    src.sin_addr.s_addr = htonl(0x7f010001u + static_cast<std::uint32_t>(i));
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<std::uint16_t>(port));
    dst.sin_addr.s_addr = htonl(0x7f000001u);
    std::string buf;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 ||
        ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size()) ||
        !sv::bench::read_until(fd, buf, "\r\n\r\n", 5000) || buf.rfind("GNUTELLA/0.6 200", 0) != 0 ||
        ::send(fd, final_ok.data(), final_ok.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(final_ok.size())) {
      ++failed;
      if (fd >= 0) ::close(fd);
      continue;
    }
    fds.push_back(fd);
  }
  const double connect_s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::usleep(1'000'000);  // every handshake processed
  const std::size_t rss1 = sv::bench::rss_kib(pid);
  const double per_conn = fds.empty() ? 0 : static_cast<double>(rss1 - std::min(rss0, rss1)) * 1024.0 / fds.size();

  // Ping round trips through the loaded node, from random connections.
  std::mt19937 rng(7);
  std::vector<double> rtt;
  for (int k = 0; k < 2000 && !fds.empty(); ++k) {
    const int fd = fds[rng() % fds.size()];
    gn::Header h;
    for (auto& b : h.id.bytes) b = static_cast<std::uint8_t>(rng());
    h.type = 0x00;
    h.ttl = 1;
    const auto ping = gn::encode_descriptor(h, {});
    // Whatever the node sent before (its own Pings) is not the answer.
    char junk[65536];
    while (::recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0) {
    }
    const auto s = Clock::now();
    if (::send(fd, ping.data(), ping.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(ping.size())) continue;
    gn::Framer f;
    bool got = false;
    while (!got) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) break;
      const ssize_t m = ::recv(fd, junk, sizeof junk, 0);
      if (m <= 0) break;
      f.feed({reinterpret_cast<std::uint8_t*>(junk), static_cast<std::size_t>(m)});
      while (auto fr = f.next()) {
        if (fr->header.type == 0x01 && fr->header.id == h.id) got = true;
      }
    }
    if (got) rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
  }
  std::sort(rtt.begin(), rtt.end());
  auto pct = [&](double q) { return rtt.empty() ? 0.0 : rtt[static_cast<std::size_t>(q * (rtt.size() - 1))]; };
  std::printf("connections: %zu connected (%zu failed) in %.2f s\n", fds.size(), failed, connect_s);
  std::printf("connections: servent RSS %zu KiB idle, %zu KiB with them: %.1f KiB per connection, kernel socket buffers aside (goal 16 KiB, ratio %.2f)\n",
              rss0, rss1, per_conn / 1024, per_conn / 1024 / 16);
  std::printf("connections: Ping round trip at that load: p50 %.0f us, p99 %.0f us (%zu samples)\n", pct(0.5), pct(0.99),
              rtt.size());
  for (int fd : fds) ::close(fd);
  return 0;
}
