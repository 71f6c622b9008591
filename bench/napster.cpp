// bench/napster: a `servent napster-server` holding 1,000,000 shares from
// 10,000 logged-in users (a vocabulary of 5,000 words with Zipf popularity,
// 3-6 words per name, sizes 2-12 MB, usual bitrates), then searches answered
// per second (200 sent -> 202 received) with 1, 8, 32 and 128 concurrent
// searchers, each on its own connection, MAX_RESULTS 100, queries of one or
// two words from rare to common; p50/p99 latency; the share-loading rate; RSS
// per share. Compared with opennap-ng 0.50 measured on this kind of machine
// with the same workload (figures from the project's issue 11; opennap-ng is
// not packaged in Debian 12, so it cannot run side by side here).
//
// The searching sockets set TCP_NODELAY and do NOT set TCP_QUICKACK: they are
// ordinary clients, so a server that wrote a search's answers in several
// small writes would show the 40 ms delayed-ACK floor here.
//
// Usage: napster [USERS [SHARES_PER_USER [SECONDS_PER_LEVEL]]]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/servent_process.hpp"
#include "wire/napster/napster.hpp"

namespace nap = sv::wire::napster;
using Clock = std::chrono::steady_clock;

namespace {

int dial(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(0x7f000001);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, const sv::wire::Bytes& b) {
  std::size_t off = 0;
  while (off < b.size()) {
    const ssize_t n = ::send(fd, b.data() + off, b.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads frames until one of `type` arrives; returns the frames of other
// types seen before it (count only) or -1 on error/timeout.
long read_until_type(int fd, std::uint16_t type, std::vector<std::uint8_t>& buf, int timeout_ms = 10000,
                     std::string* payload = nullptr) {
  long others = 0;
  std::size_t pos = 0;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    while (buf.size() - pos >= 4) {
      const std::size_t len = buf[pos] | (buf[pos + 1] << 8);
      const std::uint16_t t = static_cast<std::uint16_t>(buf[pos + 2] | (buf[pos + 3] << 8));
      if (buf.size() - pos < 4 + len) break;
      if (t == type) {
        if (payload) payload->assign(reinterpret_cast<const char*>(buf.data() + pos + 4), len);
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(pos + 4 + len));
        return others;
      }
      ++others;
      pos += 4 + len;
    }
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(pos));
    pos = 0;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return -1;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return -1;
    std::uint8_t tmp[65536];
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return -1;
    buf.insert(buf.end(), tmp, tmp + n);
  }
}

// Zipf(1) over [0, n): rank r with probability ~ 1/(r+1).
class Zipf {
 public:
  explicit Zipf(std::size_t n) {
    cdf_.reserve(n);
    double sum = 0;
    for (std::size_t r = 0; r < n; ++r) cdf_.push_back(sum += 1.0 / static_cast<double>(r + 1));
    for (auto& c : cdf_) c /= sum;
  }
  std::size_t operator()(std::mt19937_64& rng) const {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

std::string make_word(std::size_t i) {
  // Pronounceable, distinct, 4-9 letters.
  static const char* syl[] = {"ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "be", "do", "fa", "gu", "hi", "ja", "po", "se"};
  std::string w;
  std::size_t v = i + 17;
  do {
    w += syl[v % 16];
    v /= 16;
  } while (v > 0);
  if (w.size() < 4) w += "ra";
  return w;
}

struct Level {
  int searchers;
  double opennap;  // searches/s measured for opennap-ng 0.50 (issue 11; the best figure where it ranged)
  const char* opennap_text;
};

}  // namespace

int main(int argc, char** argv) {
  const std::size_t users = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000;
  const std::size_t per_user = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100;
  const double seconds = argc > 3 ? std::atof(argv[3]) : 3.0;
  const std::size_t total = users * per_user;
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = users + 1024;
  if (r.rlim_max < r.rlim_cur) r.rlim_max = r.rlim_cur;
  if (::setrlimit(RLIMIT_NOFILE, &r) != 0) {
    std::printf("napster: cannot raise RLIMIT_NOFILE to %zu\n", users + 1024);
    return 1;
  }
  const std::string cap = std::to_string(users + 512);
  sv::bench::ServentProcess server("servent-bench-napster",
                                   {"--max-users", cap, "--max-per-ip", cap, "--search-rate", "0",
                                    "--max-shares-per-user", std::to_string(per_user + 10)},
                                   "napster-server");
  if (server.port() == 0) {
    std::printf("napster: servent napster-server did not start\n");
    return 1;
  }
  const int port = server.port();
  std::printf("napster: %zu users x %zu shares = %zu shares, vocabulary 5000 words (Zipf), 3-6 words per name\n", users,
              per_user, total);

  // Log every user in (each its own connection), then measure the base RSS.
  std::vector<int> conns;
  conns.reserve(users);
  for (std::size_t u = 0; u < users; ++u) {
    const int fd = dial(port);
    if (fd < 0) {
      std::printf("napster: connection %zu failed\n", u);
      return 1;
    }
    nap::Login l{"user" + std::to_string(u), "pw", 6699, "bench 1.0", static_cast<std::uint32_t>(u % 11), ""};
    if (!send_all(fd, nap::encode_frame(nap::kLogin, nap::encode_login(l)))) return 1;
    conns.push_back(fd);
  }
  // Each login answer is read, so the server is known to hold every user.
  for (int fd : conns) {
    std::vector<std::uint8_t> buf;
    if (read_until_type(fd, nap::kStats, buf) < 0) {
      std::printf("napster: a login was not answered\n");
      return 1;
    }
  }
  const std::size_t rss_users = sv::bench::rss_kib(server.pid());

  // Shares: every user sends its list in one go; the rate is counted until
  // the server reports every file in its stats.
  std::mt19937_64 rng(42);
  Zipf zipf(5000);
  std::vector<std::string> vocab;
  for (std::size_t i = 0; i < 5000; ++i) vocab.push_back(make_word(i));
  const std::uint32_t bitrates[] = {128, 128, 160, 192, 192, 256, 320};
  const auto load_start = Clock::now();
  for (std::size_t u = 0; u < users; ++u) {
    sv::wire::Bytes batch;
    for (std::size_t k = 0; k < per_user; ++k) {
      const std::size_t nwords = 3 + rng() % 4;
      std::string name = "C:\\My Music\\";
      for (std::size_t w = 0; w < nwords; ++w) name += (w ? " " : "") + vocab[zipf(rng)];
      name += " " + std::to_string(k) + ".mp3";
      nap::ShareEntry e{name, "0123456789abcdef0123456789abcdef", 2'000'000 + rng() % 10'000'000,
                        bitrates[rng() % 7], rng() % 4 ? 44100u : 48000u, 120 + static_cast<std::uint32_t>(rng() % 300)};
      nap::append_frame(batch, nap::kShare, nap::encode_share(e));
    }
    if (!send_all(conns[u], batch)) return 1;
  }
  // Poll the stats (214) until every share is in.
  const int probe = dial(port);
  {
    std::vector<std::uint8_t> buf;
    send_all(probe, nap::encode_frame(nap::kLogin, nap::encode_login({"probe", "pw", 0, "bench", 0, ""})));
    read_until_type(probe, nap::kStats, buf);
    for (;;) {
      std::string stats;
      send_all(probe, nap::encode_frame(nap::kStats, ""));
      if (read_until_type(probe, nap::kStats, buf, 60000, &stats) < 0) {
        std::printf("napster: stats not answered\n");
        return 1;
      }
      auto s = nap::decode_stats(stats);
      if (s && s->files >= total) break;
      if (Clock::now() - load_start > std::chrono::minutes(5)) {
        std::printf("napster: shares not all loaded after 5 minutes\n");
        return 1;
      }
    }
  }
  const double load_s = std::chrono::duration<double>(Clock::now() - load_start).count();
  const std::size_t rss_loaded = sv::bench::rss_kib(server.pid());
  const double per_share = static_cast<double>(rss_loaded - rss_users) * 1024.0 / static_cast<double>(total);
  std::printf("napster: loading %zu shares took %.2f s: %.0f shares/s (opennap-ng 118,000-120,000/s; ratio %.1f)\n",
              total, load_s, static_cast<double>(total) / load_s, static_cast<double>(total) / load_s / 119000.0);
  std::printf("napster: RSS %zu KiB with %zu users, %zu KiB with their shares: %.0f bytes per share "
              "(opennap-ng 951; ratio %.2f, goal <= 0.5)\n",
              rss_users, users, rss_loaded, per_share, per_share / 951.0);

  // Queries: one or two words, rare to common (Zipf draws, sorted by rank).
  std::vector<std::string> queries;
  for (int i = 0; i < 4096; ++i) {
    const std::size_t a = zipf(rng);
    std::string q = "FILENAME CONTAINS \"" + vocab[a];
    if (rng() % 2) q += " " + vocab[zipf(rng)];
    q += "\" MAX_RESULTS 100";
    queries.push_back(q);
  }

  const Level levels[] = {{1, 104, "104"}, {8, 649, "649"}, {32, 1466, "1,466"}, {128, 2856, "2,409-2,856"}};
  for (const auto& lv : levels) {
    std::vector<int> fds;
    for (int i = 0; i < lv.searchers; ++i) {
      const int fd = dial(port);
      std::vector<std::uint8_t> buf;
      send_all(fd, nap::encode_frame(nap::kLogin, nap::encode_login({"searcher" + std::to_string(lv.searchers) + "x" +
                                                                          std::to_string(i),
                                                                      "pw", 0, "bench", 0, ""})));
      if (fd < 0 || read_until_type(fd, nap::kStats, buf) < 0) {
        std::printf("napster: searcher login failed\n");
        return 1;
      }
      fds.push_back(fd);
    }
    std::atomic<bool> stop{false};
    std::atomic<long> failures{0};
    std::vector<std::vector<double>> lat(static_cast<std::size_t>(lv.searchers));
    std::vector<long> results(static_cast<std::size_t>(lv.searchers), 0);
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    for (int i = 0; i < lv.searchers; ++i) {
      threads.emplace_back([&, i] {
        std::vector<std::uint8_t> buf;
        std::size_t q = static_cast<std::size_t>(i) * 97;
        auto& mine = lat[static_cast<std::size_t>(i)];
        while (!stop.load(std::memory_order_relaxed)) {
          const auto t0 = Clock::now();
          if (!send_all(fds[static_cast<std::size_t>(i)],
                        nap::encode_frame(nap::kSearch, queries[q++ % queries.size()]))) {
            ++failures;
            return;
          }
          const long n = read_until_type(fds[static_cast<std::size_t>(i)], nap::kSearchEnd, buf);
          if (n < 0) {
            ++failures;
            return;
          }
          results[static_cast<std::size_t>(i)] += n;
          mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    long res = 0;
    for (std::size_t i = 0; i < lat.size(); ++i) {
      all.insert(all.end(), lat[i].begin(), lat[i].end());
      res += results[i];
    }
    std::sort(all.begin(), all.end());
    const double rate = static_cast<double>(all.size()) / elapsed;
    const double p50 = all.empty() ? 0 : all[all.size() / 2] / 1000.0;
    const double p99 = all.empty() ? 0 : all[std::min(all.size() - 1, all.size() * 99 / 100)] / 1000.0;
    std::printf("napster: %3d searcher%s: %8.0f searches/s, %.1f results each, p50 %.3f ms, p99 %.3f ms; "
                "opennap-ng %s/s: ratio %.1f (goal >= 10)%s\n",
                lv.searchers, lv.searchers == 1 ? " " : "s", rate,
                all.empty() ? 0.0 : static_cast<double>(res) / static_cast<double>(all.size()), p50, p99,
                lv.opennap_text, rate / lv.opennap, failures ? " FAILURES" : "");
    for (int fd : fds) ::close(fd);
  }
  std::printf("napster: searching sockets use TCP_NODELAY and not TCP_QUICKACK (ordinary clients)\n");
  for (int fd : conns) ::close(fd);
  ::close(probe);
  return 0;
}
