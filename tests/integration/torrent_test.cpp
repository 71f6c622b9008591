// BitTorrent against a client we did not write: libtorrent (Debian's
// python3-libtorrent, run by /usr/bin/python3) downloads a multi-file torrent
// made by `servent torrent create` from `servent torrent seed`, and
// `servent torrent get` downloads it from a libtorrent seed; both byte for
// byte, on loopback only (integration/libtorrent_session.py).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "integration/process.hpp"

namespace fs = std::filesystem;
using namespace sv::test;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char t[] = "/tmp/servent-bt-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void random_file(const fs::path& p, std::size_t n, unsigned seed) {
  fs::create_directories(p.parent_path());
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  std::ofstream(p, std::ios::binary) << s;
}

bool have_libtorrent() { return run({"/usr/bin/python3", "-c", "import libtorrent"}, 20s).status == 0; }

}  // namespace

TEST_CASE("libtorrent_and_servent_swarm_both_ways_byte_for_byte") {
  REQUIRE_MESSAGE(have_libtorrent(), "python3-libtorrent (scripts/deps.sh TEST_PACKAGES) is missing");
  TempDir d;
  random_file(d.path / "data" / "album" / "a.bin", 700001, 1);
  random_file(d.path / "data" / "album" / "deep" / "b.bin", 900000, 2);
  const fs::path script = LIBTORRENT_SESSION;
  const fs::path torrent = d.path / "album.torrent";
  auto made = run({SERVENT_BIN, "torrent", "create", (d.path / "data" / "album").string(), "--piece-size", "32768", "-o",
                   torrent.string()},
                  30s);
  REQUIRE(made.status == 0);
  CHECK(made.out.find("album.torrent") != std::string::npos);

  const std::string hex = made.out.substr(made.out.find(' ') + 1, 40);
  const std::string magnet = "magnet:?xt=urn:btih:" + hex + "&dn=album";

  // `what`: the metainfo file, or a magnet link (the metadata first, BEP 9,
  // from the seed; then the files).
  auto libtorrent_gets_from_servent = [&](const std::string& what) {
    const auto port = free_port();
    Process seed({SERVENT_BIN, "torrent", "seed", torrent.string(), "--data", (d.path / "data" / "album").string(),
                  "--listen", "127.0.0.1:" + std::to_string(port)},
                 "-");
    REQUIRE(seed.wait_for(std::regex("seeding [0-9a-f]{40} listening"), 10s));
    auto got = run({"/usr/bin/python3", script.string(), "get", what, (d.path / "lt").string(),
                    "127.0.0.1:" + std::to_string(port)},
                   40s);
    CHECK(got.status == 0);
    CHECK(slurp(d.path / "lt" / "album" / "a.bin") == slurp(d.path / "data" / "album" / "a.bin"));
    CHECK(slurp(d.path / "lt" / "album" / "deep" / "b.bin") == slurp(d.path / "data" / "album" / "deep" / "b.bin"));
    seed.terminate();
  };
  auto servent_gets_from_libtorrent = [&](const std::string& what) {
    const auto port = free_port();
    Process seed({"/usr/bin/python3", script.string(), "seed", torrent.string(), (d.path / "data").string(),
                  std::to_string(port)},
                 "-");
    REQUIRE(seed.wait_for(std::regex("^seeding"), 20s));
    auto got = run({SERVENT_BIN, "torrent", "get", what, "-o", (d.path / "ours").string(), "--listen", "127.0.0.1:0",
                    "--peer", "127.0.0.1:" + std::to_string(port), "--json"},
                   40s);
    CHECK(got.status == 0);
    CHECK(got.out.find("\"metadata\":true") != std::string::npos);
    CHECK(slurp(d.path / "ours" / "album" / "a.bin") == slurp(d.path / "data" / "album" / "a.bin"));
    CHECK(slurp(d.path / "ours" / "album" / "deep" / "b.bin") == slurp(d.path / "data" / "album" / "deep" / "b.bin"));
    seed.terminate();
  };
  SUBCASE("libtorrent gets from servent") { libtorrent_gets_from_servent(torrent.string()); }
  SUBCASE("servent gets from libtorrent") { servent_gets_from_libtorrent(torrent.string()); }
  SUBCASE("libtorrent gets the metadata and the files from servent by magnet") { libtorrent_gets_from_servent(magnet); }
  SUBCASE("servent gets the metadata and the files from libtorrent by magnet") { servent_gets_from_libtorrent(magnet); }
}

TEST_CASE("libtorrent_finds_a_servent_seed_through_the_servent_tracker_over_http_and_udp") {
  // (both sides announce over the scheme of the torrent's tracker: our client and libtorrent's)
  REQUIRE_MESSAGE(have_libtorrent(), "python3-libtorrent (scripts/deps.sh TEST_PACKAGES) is missing");
  TempDir d;
  random_file(d.path / "data" / "one.bin", 400000, 3);
  const fs::path script = LIBTORRENT_SESSION;
  const auto tport = free_port();
  Process tracker({SERVENT_BIN, "tracker", "--listen", "127.0.0.1:" + std::to_string(tport)}, "-");
  REQUIRE(tracker.wait_for(std::regex("listening 127.0.0.1:[0-9]+ \\(http and udp\\)"), 10s));
  for (const std::string scheme : {"http", "udp"}) {
    CAPTURE(scheme);
    const std::string url = scheme == "http" ? "http://127.0.0.1:" + std::to_string(tport) + "/announce"
                                             : "udp://127.0.0.1:" + std::to_string(tport);
    const fs::path torrent = d.path / (scheme + ".torrent");
    REQUIRE(run({SERVENT_BIN, "torrent", "create", (d.path / "data" / "one.bin").string(), "--tracker", url, "-o",
                 torrent.string()},
                30s)
                .status == 0);
    // Our seed announces to the torrent's own tracker, over HTTP or UDP.
    Process seed({SERVENT_BIN, "torrent", "seed", torrent.string(), "--data", (d.path / "data" / "one.bin").string(),
                  "--listen", "127.0.0.1:" + std::to_string(free_port())},
                 "-");
    REQUIRE(seed.wait_for(std::regex("seeding [0-9a-f]{40} listening"), 10s));
    // The tracker has it (bounded poll of its scrape) before libtorrent asks once.
    // (the two torrents share their info-hash: the first seed is still listed, so count both)
    const std::string want = scheme == "http" ? "completei1e" : "completei2e";
    bool known = false;
    for (int i = 0; i < 100 && !known; ++i) {
      known = run({"curl", "-s", "http://127.0.0.1:" + std::to_string(tport) + "/scrape"}, 5s).out.find(want) !=
              std::string::npos;
      if (!known) std::this_thread::sleep_for(100ms);
    }
    REQUIRE(known);
    // libtorrent knows only the tracker.
    auto got = run({"/usr/bin/python3", script.string(), "get", torrent.string(), (d.path / ("lt-" + scheme)).string(), "-"}, 40s);
    CHECK(got.status == 0);
    CHECK(slurp(d.path / ("lt-" + scheme) / "one.bin") == slurp(d.path / "data" / "one.bin"));
    seed.terminate();
  }
  tracker.terminate();
}

namespace {

// Waits (bounded) until every file of `want` under `got` is byte-identical.
bool arrives(const fs::path& got, const fs::path& want, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    bool all = true;
    for (const auto& e : fs::recursive_directory_iterator(want)) {
      if (!e.is_regular_file()) continue;
      const fs::path other = got / fs::relative(e.path(), want.parent_path());
      all = all && fs::exists(other) && slurp(other) == slurp(e.path());
    }
    if (all) return true;
    // (a bounded poll of files written by another program; no event to wait on)
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

struct Swarm {
  TempDir d;
  fs::path data, torrent;
  std::uint16_t tracker_port = free_port();
  std::unique_ptr<Process> tracker;
  Swarm() {
    data = d.path / "data" / "album";
    random_file(data / "a.bin", 300001, 7);
    random_file(data / "sub" / "b.bin", 200000, 8);
    tracker = std::make_unique<Process>(
        std::vector<std::string>{SERVENT_BIN, "tracker", "--listen", "127.0.0.1:" + std::to_string(tracker_port)}, "-");
    REQUIRE(tracker->wait_for(std::regex("listening"), 10s));
    torrent = d.path / "album.torrent";
    REQUIRE(run({SERVENT_BIN, "torrent", "create", data.string(), "--piece-size", "32768", "--tracker",
                 "http://127.0.0.1:" + std::to_string(tracker_port) + "/announce", "-o", torrent.string()},
                30s)
                .status == 0);
  }
  std::unique_ptr<Process> servent_seed(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{SERVENT_BIN, "torrent", "seed", torrent.string(), "--data", data.string(), "--listen",
                                  "127.0.0.1:" + std::to_string(free_port())};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<Process>(argv, "-");
    REQUIRE(p->wait_for(std::regex("seeding [0-9a-f]{40} listening"), 10s));
    // Clients that ask the tracker once must find the seed there: wait (bounded)
    // until a scrape counts it.
    bool known = false;
    for (int i = 0; i < 100 && !known; ++i) {
      known = run({"curl", "-s", "http://127.0.0.1:" + std::to_string(tracker_port) + "/scrape"}, 5s).out.find("completei1e") !=
              std::string::npos;
      if (!known) std::this_thread::sleep_for(100ms);  // (polling another process's state; no event to wait on)
    }
    REQUIRE(known);
    return p;
  }
  RunResult servent_get(const fs::path& out, std::uint16_t peer, const std::string& host = "127.0.0.1") {
    return run({SERVENT_BIN, "torrent", "get", torrent.string(), "-o", out.string(), "--listen", "127.0.0.1:0", "--peer",
                host + ":" + std::to_string(peer)},
               60s);
  }
};

}  // namespace

TEST_CASE("aria2c_gets_from_servent_through_the_tracker_and_servent_gets_from_aria2c") {
  REQUIRE_MESSAGE(have_tool("aria2c"), "aria2 (scripts/deps.sh TEST_PACKAGES) is missing");
  Swarm s;
  const std::vector<std::string> aria{"aria2c", "--enable-dht=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                                      "--summary-interval=0", "--console-log-level=warn"};
  {
    auto seed = s.servent_seed();
    auto argv = aria;
    argv.insert(argv.end(), {"--seed-time=0", "--dir", (s.d.path / "aria").string(), "--listen-port",
                             std::to_string(free_port()), s.torrent.string()});
    CHECK(run(argv, 60s).status == 0);
    CHECK(arrives(s.d.path / "aria", s.data, 5s));
  }
  const auto port = free_port();
  auto argv = aria;
  argv.insert(argv.end(), {"--check-integrity=true", "--seed-ratio=0", "--seed-time=5", "--dir", (s.d.path / "data").string(),
                           "--listen-port", std::to_string(port), s.torrent.string()});
  Process seed(argv, "-");
  // aria2c listens once it has checked the data; our get dials again (with backoff) until it does.
  CHECK(s.servent_get(s.d.path / "ours", port).status == 0);
  CHECK(arrives(s.d.path / "ours", s.data, 5s));
  seed.terminate();
}

TEST_CASE("ctorrent_gets_from_servent_through_the_tracker_and_servent_gets_from_ctorrent") {
  REQUIRE_MESSAGE(have_tool("ctorrent"), "ctorrent (scripts/deps.sh TEST_PACKAGES) is missing");
  Swarm s;
  {
    auto seed = s.servent_seed();
    fs::create_directories(s.d.path / "ct");
    // ctorrent ignores tracker peers with its own address: it says it is 127.0.0.2.
    const fs::path log = s.d.path / "ctorrent-get.log";
    Process get({"sh", "-c", "cd '" + (s.d.path / "ct").string() + "' && exec ctorrent -e 0 -p " + std::to_string(free_port()) +
                                 " -i 127.0.0.2 '" + s.torrent.string() + "' </dev/null >'" + log.string() + "' 2>&1"},
                "/dev/null");
    const bool ok = arrives(s.d.path / "ct", s.data, 40s);
    if (!ok) MESSAGE(slurp(log).substr(0, 3000));
    CHECK(ok);
    get.terminate();
  }
  const auto port = free_port();
  const fs::path log = s.d.path / "ctorrent-seed.log";
  // (and it refuses connections from its own address: it is 127.0.0.2 here too)
  Process seed({"sh", "-c", "cd '" + (s.d.path / "data").string() + "' && exec ctorrent -e 1 -i 127.0.0.2 -p " +
                               std::to_string(port) + " '" + s.torrent.string() + "' </dev/null >'" + log.string() + "' 2>&1"},
               "/dev/null");
  // ctorrent sends the bitfield it has when a peer connects and no haves for
  // the pieces its check finds later: let it finish checking first (bounded poll of its log).
  for (int i = 0; i < 100 && slurp(log).find("Checking completed") == std::string::npos; ++i) std::this_thread::sleep_for(100ms);
  const bool ok = s.servent_get(s.d.path / "ours", port, "127.0.0.2").status == 0;
  if (!ok) MESSAGE(slurp(log).substr(0, 3000));
  CHECK(ok);
  CHECK(arrives(s.d.path / "ours", s.data, 5s));
  seed.terminate();
}

namespace {
// A configuration directory of its own: no DHT, LPD, uTP, peer exchange or
// port mapping (loopback only), nothing shared with other runs.
fs::path transmission_config(const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream(dir / "settings.json") << R"({"dht-enabled": false, "lpd-enabled": false, "utp-enabled": false,
    "pex-enabled": false, "port-forwarding-enabled": false, "rpc-enabled": false, "encryption": 0})";
  return dir;
}
}  // namespace

TEST_CASE("transmission_gets_from_servent_and_servent_gets_from_transmission") {
  REQUIRE_MESSAGE(have_tool("transmission-cli"), "transmission-cli (scripts/deps.sh TEST_PACKAGES) is missing");
  Swarm s;
  // Transmission never dials 127.0.0.0/8 but accepts connections: our seed dials it.
  {
    const auto port = free_port();
    fs::create_directories(s.d.path / "tr");
    const fs::path log = s.d.path / "transmission-get.log";
    Process get({"sh", "-c", "exec transmission-cli -g '" + transmission_config(s.d.path / "tr-get-config").string() + "' -M -w '" +
                                 (s.d.path / "tr").string() + "' -p " + std::to_string(port) + " -et '" + s.torrent.string() +
                                 "' </dev/null >'" + log.string() + "' 2>&1"},
                "/dev/null");
    auto seed = s.servent_seed({"--peer", "127.0.0.1:" + std::to_string(port)});
    const bool ok = arrives(s.d.path / "tr", s.data, 60s);
    if (!ok) MESSAGE(slurp(log).substr(0, 2000));
    CHECK(ok);
    get.terminate();
  }
  const auto port = free_port();
  Process seed({"sh", "-c", "exec transmission-cli -g '" + transmission_config(s.d.path / "tr-seed-config").string() + "' -M -w '" +
                               (s.d.path / "data").string() + "' -p " + std::to_string(port) + " -et '" + s.torrent.string() +
                               "' </dev/null >/dev/null 2>&1"},
               "/dev/null");
  CHECK(s.servent_get(s.d.path / "ours", port).status == 0);
  CHECK(arrives(s.d.path / "ours", s.data, 5s));
  seed.terminate();
}

TEST_CASE("servent_run_seeds_its_torrent_dir_on_the_gnutella_port_and_lists_it_through_the_control_socket") {
  REQUIRE_MESSAGE(have_libtorrent(), "python3-libtorrent (scripts/deps.sh TEST_PACKAGES) is missing");
  TempDir d;
  const fs::path dir = d.path / "torrents";
  random_file(dir / "album" / "a.bin", 300001, 7);
  random_file(dir / "album" / "b.bin", 200000, 8);
  auto made = run({SERVENT_BIN, "torrent", "create", (dir / "album").string(), "--piece-size", "32768", "-o",
                   (dir / "album.torrent").string()},
                  30s);
  REQUIRE(made.status == 0);
  fs::create_directories(d.path / "share");
  const auto port = free_port();
  // One port for Gnutella, HTTP and BitTorrent: the first bytes pick the core.
  Process node({SERVENT_BIN, "run", "--listen", "127.0.0.1:" + std::to_string(port), "--state-dir", (d.path / "state").string(),
                "--share", (d.path / "share").string(), "--min-peers", "0", "--torrent-dir", dir.string()},
               "-");
  REQUIRE(node.wait_for(std::regex("torrent: [0-9a-f]{40} album"), 10s));
  const fs::path script = LIBTORRENT_SESSION;
  auto got = run({"/usr/bin/python3", script.string(), "get", (dir / "album.torrent").string(), (d.path / "lt").string(),
                  "127.0.0.1:" + std::to_string(port)},
                 40s);
  CHECK(got.status == 0);
  CHECK(slurp(d.path / "lt" / "album" / "a.bin") == slurp(dir / "album" / "a.bin"));
  CHECK(slurp(d.path / "lt" / "album" / "b.bin") == slurp(dir / "album" / "b.bin"));
  auto list = run({SERVENT_BIN, "torrent", "list", "--node", (d.path / "state").string(), "--json"}, 10s);
  CHECK(list.status == 0);
  CHECK(list.out.find("\"state\":\"seeding\"") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(list.out, m, std::regex("\"uploaded\":([0-9]+)")));
  CHECK(std::stoull(m[1].str()) >= 500001);  // all of it (endgame may send a block twice)
  node.terminate();
}

TEST_CASE("servent_seeds_and_gets_through_opentracker_over_http_and_udp") {
  // A tracker we did not write: Debian's opentracker (whitelist build: the
  // info-hash must be listed in its -w file).
  REQUIRE_MESSAGE(have_tool("opentracker"), "opentracker (scripts/deps.sh TEST_PACKAGES) is missing");
  TempDir d;
  random_file(d.path / "data" / "album" / "a.bin", 250000, 11);
  random_file(d.path / "data" / "album" / "b.bin", 150001, 12);
  const auto tport = free_port();
  const std::string http = "http://127.0.0.1:" + std::to_string(tport) + "/announce";
  const std::string udp = "udp://127.0.0.1:" + std::to_string(tport) + "/announce";
  const fs::path torrent = d.path / "album.torrent";
  auto made = run({SERVENT_BIN, "torrent", "create", (d.path / "data" / "album").string(), "--piece-size", "32768", "--tracker",
                   http, "-o", torrent.string()},
                  30s);
  REQUIRE(made.status == 0);
  const std::string hex = made.out.substr(made.out.find(' ') + 1, 40);
  // It refuses to run as root: it chroots into a folder of its own, as nobody,
  // and reads the whitelist there.
  const fs::path jail = d.path / "opentracker";
  fs::create_directories(jail);
  std::ofstream(jail / "whitelist") << hex << "\n";
  fs::permissions(jail, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec);
  Process tracker({"opentracker", "-i", "127.0.0.1", "-p", std::to_string(tport), "-P", std::to_string(tport), "-w",
                   "/whitelist", "-d", jail.string(), "-u", "nobody"},
                  "-");
  // Up once it answers a scrape for our torrent.
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = !run({"curl", "-s", "http://127.0.0.1:" + std::to_string(tport) + "/scrape"}, 5s).out.empty();
    if (!up) std::this_thread::sleep_for(100ms);  // (another process starting; no event to wait on)
  }
  REQUIRE(up);
  // Our seed announces over HTTP (the torrent's tracker) ...
  Process seed({SERVENT_BIN, "torrent", "seed", torrent.string(), "--data", (d.path / "data" / "album").string(), "--listen",
                "127.0.0.1:" + std::to_string(free_port())},
               "-");
  REQUIRE(seed.wait_for(std::regex("seeding [0-9a-f]{40} listening"), 10s));
  bool listed = false;
  for (int i = 0; i < 100 && !listed; ++i) {
    listed = run({"curl", "-s", "http://127.0.0.1:" + std::to_string(tport) + "/scrape"}, 5s).out.find("completei1e") !=
             std::string::npos;
    if (!listed) std::this_thread::sleep_for(100ms);
  }
  REQUIRE(listed);
  // ... and our leecher finds it over UDP (BEP 15) alone: no --peer.
  auto got = run({SERVENT_BIN, "torrent", "get", "magnet:?xt=urn:btih:" + hex + "&tr=" + udp, "-o", (d.path / "got").string(),
                  "--listen", "127.0.0.1:0"},
                 40s);
  CHECK(got.status == 0);
  CHECK(slurp(d.path / "got" / "album" / "a.bin") == slurp(d.path / "data" / "album" / "a.bin"));
  CHECK(slurp(d.path / "got" / "album" / "b.bin") == slurp(d.path / "data" / "album" / "b.bin"));
  seed.terminate();
  tracker.terminate();
}
