// BitTorrent against a client we did not write: libtorrent (Debian's
// python3-libtorrent, run by /usr/bin/python3) downloads a multi-file torrent
// made by `servent torrent create` from `servent torrent seed`, and
// `servent torrent get` downloads it from a libtorrent seed; both byte for
// byte, on loopback only (uTP, DHT, LSD, UPnP and NAT-PMP off).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>

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

// One libtorrent session: "get TORRENT SAVE_DIR HOST:PORT" connects to a peer
// ("-": only the torrent's trackers) and exits 0 once it seeds; "seed TORRENT
// SAVE_DIR PORT" serves until killed.
constexpr const char* kLibtorrent = R"(
import libtorrent as lt, sys, time
mode, tor, save = sys.argv[1], sys.argv[2], sys.argv[3]
port = int(sys.argv[4]) if mode == "seed" else 0
s = lt.session({'listen_interfaces': '127.0.0.1:%d' % port, 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'enable_outgoing_utp': False,
                'enable_incoming_utp': False, 'allow_multiple_connections_per_ip': True})
h = s.add_torrent({'ti': lt.torrent_info(tor), 'save_path': save})
if mode == "seed":
    while not h.status().is_seeding: time.sleep(0.05)
    print("seeding", s.listen_port(), flush=True)
    while True: time.sleep(1)
if sys.argv[4] != "-":
    host, p = sys.argv[4].split(':')
    h.connect_peer((host, int(p)))
end = time.time() + 30
while time.time() < end and not h.status().is_seeding: time.sleep(0.05)
print("libtorrent", h.status().state, flush=True)
sys.exit(0 if h.status().is_seeding else 1)
)";

bool have_libtorrent() { return run({"/usr/bin/python3", "-c", "import libtorrent"}, 20s).status == 0; }

}  // namespace

TEST_CASE("libtorrent_and_servent_swarm_both_ways_byte_for_byte") {
  REQUIRE_MESSAGE(have_libtorrent(), "python3-libtorrent (scripts/deps.sh TEST_PACKAGES) is missing");
  TempDir d;
  random_file(d.path / "data" / "album" / "a.bin", 700001, 1);
  random_file(d.path / "data" / "album" / "deep" / "b.bin", 900000, 2);
  const fs::path script = d.path / "lt.py";
  std::ofstream(script) << kLibtorrent;
  const fs::path torrent = d.path / "album.torrent";
  auto made = run({SERVENT_BIN, "torrent", "create", (d.path / "data" / "album").string(), "--piece-size", "32768", "-o",
                   torrent.string()},
                  30s);
  REQUIRE(made.status == 0);
  CHECK(made.out.find("album.torrent") != std::string::npos);

  SUBCASE("libtorrent gets from servent") {
    const auto port = free_port();
    Process seed({SERVENT_BIN, "torrent", "seed", torrent.string(), "--data", (d.path / "data" / "album").string(),
                  "--listen", "127.0.0.1:" + std::to_string(port)},
                 "-");
    REQUIRE(seed.wait_for(std::regex("seeding [0-9a-f]{40} listening"), 10s));
    auto got = run({"/usr/bin/python3", script.string(), "get", torrent.string(), (d.path / "lt").string(),
                    "127.0.0.1:" + std::to_string(port)},
                   40s);
    CHECK(got.status == 0);
    CHECK(slurp(d.path / "lt" / "album" / "a.bin") == slurp(d.path / "data" / "album" / "a.bin"));
    CHECK(slurp(d.path / "lt" / "album" / "deep" / "b.bin") == slurp(d.path / "data" / "album" / "deep" / "b.bin"));
    seed.terminate();
  }
  SUBCASE("servent gets from libtorrent") {
    const auto port = free_port();
    Process seed({"/usr/bin/python3", script.string(), "seed", torrent.string(), (d.path / "data").string(),
                  std::to_string(port)},
                 "-");
    REQUIRE(seed.wait_for(std::regex("^seeding"), 20s));
    auto got = run({SERVENT_BIN, "torrent", "get", torrent.string(), "-o", (d.path / "ours").string(), "--listen",
                    "127.0.0.1:0", "--peer", "127.0.0.1:" + std::to_string(port)},
                   40s);
    CHECK(got.status == 0);
    CHECK(slurp(d.path / "ours" / "album" / "a.bin") == slurp(d.path / "data" / "album" / "a.bin"));
    CHECK(slurp(d.path / "ours" / "album" / "deep" / "b.bin") == slurp(d.path / "data" / "album" / "deep" / "b.bin"));
    seed.terminate();
  }
}

TEST_CASE("libtorrent_finds_a_servent_seed_through_the_servent_tracker_over_http_and_udp") {
  REQUIRE_MESSAGE(have_libtorrent(), "python3-libtorrent (scripts/deps.sh TEST_PACKAGES) is missing");
  TempDir d;
  random_file(d.path / "data" / "one.bin", 400000, 3);
  const fs::path script = d.path / "lt.py";
  std::ofstream(script) << kLibtorrent;
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
    // Our seed announces over HTTP (the torrent's own tracker when it is http://).
    Process seed({SERVENT_BIN, "torrent", "seed", torrent.string(), "--data", (d.path / "data" / "one.bin").string(),
                  "--listen", "127.0.0.1:" + std::to_string(free_port()), "--tracker",
                  "http://127.0.0.1:" + std::to_string(tport) + "/announce"},
                 "-");
    REQUIRE(seed.wait_for(std::regex("seeding [0-9a-f]{40} listening"), 10s));
    // libtorrent knows only the tracker.
    auto got = run({"/usr/bin/python3", script.string(), "get", torrent.string(), (d.path / ("lt-" + scheme)).string(), "-"}, 40s);
    CHECK(got.status == 0);
    CHECK(slurp(d.path / ("lt-" + scheme) / "one.bin") == slurp(d.path / "data" / "one.bin"));
    seed.terminate();
  }
  tracker.terminate();
}
