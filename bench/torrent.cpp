// bench/torrent: BitTorrent on loopback, one run printing every line.
// A random file (SIZE_MB, default 512) in 256 KiB pieces, `servent tracker`,
// and one seeder; then one leecher at a time through the tracker: ours from
// our seeder, libtorrent (Debian's python3-libtorrent), aria2c and ctorrent
// from our seeder, and ours from a libtorrent seeder. For each: wall time
// until the leecher exits with the file complete (checked byte for byte),
// MB/s, CPU seconds and peak RSS of the leecher process, and the ratio of the
// fastest other client's time to ours. Then one seeder and four leechers
// started together: ours from ours, and libtorrent from libtorrent.
// Usage: torrent [SIZE_MB]   (TORRENT_OURS_ONLY=1: our own leechers only;
// KEEP=1: the work directory and every leecher's log are kept)
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

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

pid_t spawn(const std::vector<std::string>& args, const std::string& cwd = "", const std::string& out = "/dev/null") {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    const int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

struct Usage {
  int status = -1;
  double wall = 0, cpu = 0;
  long rss_mib = 0;
};

// Waits for `pid` (at most `limit`, then kills it) and reports its usage.
Usage reap(pid_t pid, Clock::time_point started, std::chrono::seconds limit) {
  Usage u;
  rusage ru{};
  int st = 0;
  while (true) {
    const pid_t r = ::wait4(pid, &st, WNOHANG, &ru);
    if (r == pid) break;
    if (Clock::now() - started > limit) {
      ::kill(pid, SIGKILL);
      ::wait4(pid, &st, 0, &ru);
      break;
    }
    std::this_thread::sleep_for(2ms);  // (a child process's exit; SIGCHLD handling would be the alternative)
  }
  u.wall = std::chrono::duration<double>(Clock::now() - started).count();
  u.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  u.cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
          static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  u.rss_mib = ru.ru_maxrss / 1024;
  return u;
}

std::string http_get(std::uint16_t port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

// Waits (bounded) until the tracker lists `seeds` seeds.
bool tracker_has(std::uint16_t port, int seeds) {
  const std::string want = "completei" + std::to_string(seeds) + "e";
  for (int i = 0; i < 300; ++i) {
    if (http_get(port, "/scrape").find(want) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

bool same_file(const fs::path& a, const fs::path& b) {
  if (!fs::exists(a) || !fs::exists(b) || fs::file_size(a) != fs::file_size(b)) return false;
  std::ifstream x(a, std::ios::binary), y(b, std::ios::binary);
  std::vector<char> p(1 << 20), q(1 << 20);
  while (x && y) {
    x.read(p.data(), static_cast<std::streamsize>(p.size()));
    y.read(q.data(), static_cast<std::streamsize>(q.size()));
    if (x.gcount() != y.gcount() || std::memcmp(p.data(), q.data(), static_cast<std::size_t>(x.gcount())) != 0) return false;
  }
  return true;
}


}  // namespace

int main(int argc, char** argv) {
  const long size_mb = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 512;
  const fs::path dir = fs::temp_directory_path() / ("servent-bench-torrent-" + std::to_string(::getpid()));
  fs::create_directories(dir / "seed");
  const fs::path file = dir / "seed" / "big.bin";
  {
    std::ifstream rnd("/dev/urandom", std::ios::binary);
    std::ofstream out(file, std::ios::binary);
    std::vector<char> buf(1 << 20);
    for (long i = 0; i < size_mb; ++i) {
      rnd.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    }
  }
  const double mb = static_cast<double>(size_mb) * 1.048576;
  const std::string script = LIBTORRENT_SESSION;
  const std::uint16_t tport = free_port();
  const pid_t tracker = spawn({SERVENT_BIN, "tracker", "--listen", "127.0.0.1:" + std::to_string(tport)});
  const std::string torrent = (dir / "big.torrent").string();
  {
    const auto t0 = Clock::now();
    const pid_t c = spawn({SERVENT_BIN, "torrent", "create", file.string(), "--piece-size", "262144", "--tracker",
                           "http://127.0.0.1:" + std::to_string(tport) + "/announce", "-o", torrent});
    const Usage u = reap(c, t0, 600s);
    std::printf("torrent create %ld MiB (256 KiB pieces): %.2f s\n", size_mb, u.wall);
  }
  const pid_t seed = spawn({SERVENT_BIN, "torrent", "seed", torrent, "--data", file.string(), "--listen",
                            "127.0.0.1:" + std::to_string(free_port())});
  if (!tracker_has(tport, 1)) {
    std::printf("torrent: the seeder never showed up at the tracker\n");
    return 1;
  }
  struct Row {
    std::string name;
    Usage u;
    bool ok;
  };
  std::vector<Row> rows;
  auto leech = [&](const std::string& name, std::vector<std::string> args, const fs::path& out_dir, const std::string& cwd = "") {
    fs::create_directories(out_dir);
    ::sync();  // the last run's writes are not flushed on this one's time
    const auto t0 = Clock::now();
    const pid_t p = spawn(args, cwd, (dir / (name + ".log")).string());
    const Usage u = reap(p, t0, 180s);
    const bool ok = same_file(out_dir / "big.bin", file);
    rows.push_back({name, u, ok});
    std::printf("torrent %-34s %6.2f s %8.1f MB/s  cpu %6.2f s  rss %5ld MiB  %s\n", name.c_str(), u.wall, mb / u.wall, u.cpu,
                u.rss_mib, ok ? "identical" : u.status < 0 ? "KILLED after 180 s" : "NOT IDENTICAL");
    if (!ok) {
      std::ifstream log(dir / (name + ".log"));
      const std::string text{std::istreambuf_iterator<char>(log), {}};
      std::printf("  (its output ends: %s)\n", text.substr(text.size() > 300 ? text.size() - 300 : 0).c_str());
    }
    std::fflush(stdout);
    fs::remove_all(out_dir);
  };
  // Four leechers started together from one seeder, all finding each other
  // through the tracker: wall time until the last is complete, the
  // aggregate rate, and the leechers' CPU (sum) and peak RSS (largest).
  struct Group {
    std::string name;
    double wall = 0, cpu = 0;
    long rss_mib = 0;
    bool ok = true;
  };
  std::vector<Group> groups;
  auto leech4 = [&](const std::string& name, const std::function<std::vector<std::string>(const fs::path&)>& args) {
    Group g{name};
    ::sync();
    const auto t0 = Clock::now();
    std::vector<std::pair<pid_t, fs::path>> kids;
    for (int i = 0; i < 4; ++i) {
      const std::string n = std::to_string(i);
      const fs::path out = dir / "g" / n;
      fs::create_directories(out);
      kids.emplace_back(spawn(args(out), "", (dir / (name + " " + n + ".log")).string()), out);
    }
    for (const auto& [pid, out] : kids) {
      const Usage u = reap(pid, t0, 300s);
      g.cpu += u.cpu;
      g.rss_mib = std::max(g.rss_mib, u.rss_mib);
      g.ok = g.ok && same_file(out / "big.bin", file);
      fs::remove_all(out);
    }
    g.wall = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("torrent %-34s %6.2f s %8.1f MB/s  cpu %6.2f s  rss %5ld MiB  %s\n", name.c_str(), g.wall,
                4 * mb / g.wall, g.cpu, g.rss_mib, g.ok ? "all identical" : "NOT ALL IDENTICAL (or killed after 300 s)");
    std::fflush(stdout);
    groups.push_back(g);
  };

  leech("servent <- servent", {SERVENT_BIN, "torrent", "get", torrent, "-o", (dir / "o1").string(), "--listen", "127.0.0.1:0"},
        dir / "o1");
  // (ctorrent before libtorrent: it gives up on the swarm when the first peer
  // the tracker names refuses the connection, as a client that left without
  // telling the tracker does; ours tells it.)
  const bool others = std::getenv("TORRENT_OURS_ONLY") == nullptr;  // (to look at our own runs alone)
  if (others) leech("ctorrent <- servent (exit incl.)",
        {"ctorrent", "-e", "0", "-i", "127.0.0.2", "-p", std::to_string(free_port()), torrent}, dir / "o4", (dir / "o4").string());
  if (others) leech("libtorrent <- servent", {"/usr/bin/python3", script, "get", torrent, (dir / "o2").string(), "-"}, dir / "o2");
  if (others) leech("aria2c <- servent",
        {"aria2c", "--enable-dht=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--seed-time=0",
         "--summary-interval=0", "--dir", (dir / "o3").string(), "--listen-port", std::to_string(free_port()), torrent},
        dir / "o3");
  leech4("4 x servent <- servent", [&](const fs::path& out) {
    return std::vector<std::string>{SERVENT_BIN, "torrent", "get", torrent, "-o", out.string(), "--listen", "127.0.0.1:0"};
  });
  ::kill(seed, SIGTERM);
  ::waitpid(seed, nullptr, 0);
  // From a libtorrent seeder: ours, then four libtorrents together.
  const std::uint16_t lport = free_port();
  const fs::path lt_log = dir / "libtorrent-seed.log";
  const pid_t lt_seed = spawn({"/usr/bin/python3", script, "seed", torrent, (dir / "seed").string(), std::to_string(lport)}, "",
                              lt_log.string());
  bool lt_ready = false;
  for (int i = 0; i < 600 && !lt_ready; ++i) {  // it prints "seeding PORT" once its check is done
    std::ifstream in(lt_log);
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    lt_ready = text.find("seeding") != std::string::npos;
    if (!lt_ready) std::this_thread::sleep_for(100ms);
  }
  if (lt_ready) {
    leech("servent <- libtorrent", {SERVENT_BIN, "torrent", "get", torrent, "-o", (dir / "o5").string(), "--listen",
                                    "127.0.0.1:0", "--peer", "127.0.0.1:" + std::to_string(lport)},
          dir / "o5");
    leech4("4 x libtorrent <- libtorrent", [&](const fs::path& out) {
      return std::vector<std::string>{"/usr/bin/python3", script, "get", torrent, out.string(),
                                      "127.0.0.1:" + std::to_string(lport)};
    });
  } else {
    std::printf("torrent: the libtorrent seeder never got ready\n");
  }
  ::kill(lt_seed, SIGTERM);
  ::waitpid(lt_seed, nullptr, 0);
  const Row* ours = nullptr;
  double fastest_other = 0;
  for (const auto& r : rows) {
    if (r.name == "servent <- servent") ours = &r;
    if (r.name.rfind("servent", 0) != 0 && r.ok && (fastest_other == 0 || r.u.wall < fastest_other)) fastest_other = r.u.wall;
  }
  if (ours && ours->ok && fastest_other > 0) {
    std::printf("torrent ratio: the fastest other client took %.2fx our time (goal >= 2x); our CPU %.2f s, RSS %ld MiB\n",
                fastest_other / ours->u.wall, ours->u.cpu, ours->u.rss_mib);
  }
  if (groups.size() == 2 && groups[0].ok && groups[1].ok) {
    std::printf("torrent ratio, four leechers: libtorrent's swarm took %.2fx our swarm's time; CPU %.2f s vs %.2f s, "
                "peak RSS %ld vs %ld MiB\n",
                groups[1].wall / groups[0].wall, groups[0].cpu, groups[1].cpu, groups[0].rss_mib, groups[1].rss_mib);
  }
  ::kill(tracker, SIGTERM);
  ::waitpid(tracker, nullptr, 0);
  if (!std::getenv("KEEP")) fs::remove_all(dir);
  return 0;
}
