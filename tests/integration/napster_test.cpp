// Napster against something we did not write: the client frames of a real
// opennap-ng 0.50 + TekNap 1.3g session (pcap-fixtures/napster_teknap_opennap_ng.pcap)
// are played against our server over loopback, and every answer must be the
// one opennap-ng gave, frame by frame (type always; the whole payload for
// results, transfer acks and requests). Then real `servent` processes: a
// server and clients searching and downloading from each other by GET and by
// SEND (firewalled), with a resume.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "integration/process.hpp"
#include "integration/socket_client.hpp"
#include "servent/napster/napster_server.hpp"
#include "servent/pcap/capture.hpp"
#include "servent/uv/driver.hpp"
#include "wire/napster/napster.hpp"

namespace fs = std::filesystem;
using namespace sv;
using namespace std::chrono_literals;
namespace nap = sv::wire::napster;
using test::SocketClient;

namespace {

const std::string kFixture = std::string(SERVENT_FIXTURES) + "/napster_teknap_opennap_ng.pcap";

struct Captured {
  std::uint64_t frame;
  std::int64_t stream;
  bool from_client;
  std::uint16_t type;
  std::string payload;
};

// The Napster frames of the fixture, in capture order. The client of a
// stream is the side that sent the login.
std::vector<Captured> captured_frames() {
  std::vector<Captured> out;
  std::map<std::int64_t, std::string> client_of;
  pcap::decode_file(kFixture, [&](pcap::Message&& m) {
    if (m.proto != "napster" || m.block.empty()) return;
    std::size_t used = 0;
    auto f = nap::decode_frame(m.block, used, 65535);
    REQUIRE(f.ok());
    if (f->type == nap::kLogin) client_of[m.stream] = m.src;
    out.push_back({m.frame, m.stream, client_of[m.stream] == m.src, f->type, std::string(f->payload)});
  });
  return out;
}

// Reads the next frame from `c` (bounded); nullopt on close or timeout.
// `b` keeps what was read past it.
std::optional<std::pair<std::uint16_t, std::string>> next_frame(SocketClient& c, std::string& b,
                                                                 std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (b.size() >= 4) {
      const std::size_t len = static_cast<unsigned char>(b[0]) | (static_cast<unsigned char>(b[1]) << 8);
      if (b.size() >= 4 + len) {
        const std::uint16_t type = static_cast<std::uint16_t>(static_cast<unsigned char>(b[2]) |
                                                              (static_cast<unsigned char>(b[3]) << 8));
        std::string payload = b.substr(4, len);
        b.erase(0, 4 + len);
        return std::make_pair(type, payload);
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    const std::string more = c.read_at_least(1, left);
    if (more.empty()) return std::nullopt;
    b += more;
  }
}

// Runs a driver on its own thread; stops and joins it however the test ends.
struct LoopThread {
  Driver& driver;
  int rc = -1;
  std::thread thread;
  explicit LoopThread(Driver& d) : driver(d), thread([this] { rc = driver.run(); }) {}
  int stop() {
    if (thread.joinable()) {
      driver.request_stop();
      thread.join();
    }
    return rc;
  }
  ~LoopThread() { stop(); }
};

}  // namespace

TEST_CASE("napster_server_answers_the_captured_teknap_session_as_opennap_ng_did") {
  if (!fs::exists(kFixture)) {
    MESSAGE("SKIPPED: " << kFixture << " is missing");
    return;
  }
  const auto frames = captured_frames();
  REQUIRE(frames.size() > 90);

  NapsterServerConfig cfg;
  cfg.motd = {"Welcome to a test server."};
  NapsterServer server(cfg);
  DriverConfig d;
  d.handle_signals = false;
  Driver driver(d);
  const Endpoint at = driver.listen_tcp("127.0.0.1", 0, &server);
  LoopThread loop(driver);

  std::map<std::int64_t, std::unique_ptr<SocketClient>> clients;
  std::map<std::int64_t, std::string> pending;
  std::size_t compared = 0, identical = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const Captured& f = frames[i];
    CAPTURE(f.frame);
    if (f.from_client) {
      auto& c = clients[f.stream];
      if (!c) c = std::make_unique<SocketClient>(at.port);
      REQUIRE(c->send(wire::as_chars(nap::encode_frame(f.type, f.payload))));
      continue;
    }
    // A server frame: ours must be of the same type. The MOTD is the
    // server's own text: its lines are skipped on both sides.
    if (f.type == nap::kMotd) continue;
    auto& c = clients[f.stream];
    REQUIRE(c);
    std::optional<std::pair<std::uint16_t, std::string>> got;
    do {
      got = next_frame(*c, pending[f.stream]);
      REQUIRE(got);
    } while (got->first == nap::kMotd);
    CHECK(got->first == f.type);
    ++compared;
    switch (f.type) {
      case nap::kLoginAck:
      case nap::kSearchResult:
      case nap::kSearchEnd:
      case nap::kDownloadAck:
      case nap::kUploadRequest:
      case nap::kAltDownloadAck:
        // Names, sizes, nicks, the decimal IP, ports, link types, zeroed md5s: byte for byte.
        CHECK(got->second == f.payload);
        identical += got->second == f.payload;
        break;
      case nap::kStats: {
        auto ours = nap::decode_stats(got->second);
        CHECK(ours.ok());
        break;
      }
      default: break;
    }
  }
  MESSAGE("compared " << compared << " server frames, " << identical << " byte-identical");
  CHECK(compared >= 20);
  CHECK(identical >= 14);
  CHECK(loop.stop() == 0);
  CHECK(server.stat(NapsterServer::kDownloadAcks) == 4);  // three by 203 + 608, one by 500 + 608
  CHECK(server.stat(NapsterServer::kAltRequests) == 1);
}

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char t[] = "/tmp/servent-napster-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string random_bytes(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("servent_napster_clients_search_and_download_through_a_servent_napster_server") {
  TempDir dir;
  // The server alone; a sharer with a data port; a firewalled sharer; a downloader.
  test::Process server({SERVENT_BIN, "napster-server", "--listen", "127.0.0.1:0"}, (dir.path / "server.err").string());
  auto m = server.wait_for(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
  REQUIRE(m);
  const std::string at = "127.0.0.1:" + (*m)[1].str();
  const std::string open_song = random_bytes(700'000, 1), fw_song = random_bytes(500'000, 2);
  fs::create_directories(dir.path / "open" / "Music");
  fs::create_directories(dir.path / "fw");
  fs::create_directories(dir.path / "empty");
  std::ofstream(dir.path / "open" / "Music" / "Free Software Song.mp3", std::ios::binary) << open_song;
  std::ofstream(dir.path / "fw" / "Pushed \"Quoted\" Tune.mp3", std::ios::binary) << fw_song;
  auto node = [&](const std::string& name, const std::string& share, std::vector<std::string> extra) {
    std::vector<std::string> argv = {SERVENT_BIN,  "run",         "--listen",   "127.0.0.1:0",
                                     "--share",    (dir.path / share).string(), "--state-dir", (dir.path / ("state-" + name)).string(),
                                     "--napster",  at,            "--napster-nick", name,  "--min-peers", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<test::Process>(argv, (dir.path / (name + ".err")).string());
    REQUIRE(p->wait_for(std::regex("^napster: logged in to " + at + " as " + name), 10s));
    return p;
  };
  // Data ports (0 would mean firewalled): two free-looking ones per test run.
  const int base = 20000 + static_cast<int>(::getpid() % 20000) * 2 % 40000;
  auto open = node("opensharer", "open", {"--napster-data-port", std::to_string(base)});
  auto fw = node("fwsharer", "fw", {"--firewalled"});
  auto getter = node("getter", "empty", {"--napster-data-port", std::to_string(base + 1)});
  const std::string node_dir = (dir.path / "state-getter").string();

  // Search through the downloader's node: results from Napster, with the network.
  auto search = test::run({SERVENT_BIN, "search", "free software", "--node", node_dir, "--timeout", "2", "--json"}, 15s);
  REQUIRE(search.status == 0);
  INFO(search.out);
  REQUIRE(search.out.find(R"("network":"napster")") != std::string::npos);
  REQUIRE(search.out.find(R"("nick":"opensharer")") != std::string::npos);
  const std::string hit = search.out.substr(0, search.out.find('\n'));
  CHECK(hit.find(R"("path":"open\\Music\\Free Software Song.mp3")") != std::string::npos);

  // Download by GET from the sharer's data port.
  auto get = test::run({SERVENT_BIN, "get", hit, "--node", node_dir, "-o", (dir.path / "out").string()}, 30s);
  INFO(get.out);
  CHECK(get.status == 0);
  CHECK(slurp(dir.path / "out" / "Free Software Song.mp3") == open_song);

  // The firewalled sharer comes to us (500 -> 607/608 -> 501 -> SEND).
  auto search2 = test::run({SERVENT_BIN, "search", "pushed quoted", "--node", node_dir, "--timeout", "2", "--json"}, 15s);
  REQUIRE(search2.out.find(R"("nick":"fwsharer")") != std::string::npos);
  const std::string hit2 = search2.out.substr(0, search2.out.find('\n'));
  auto get2 = test::run({SERVENT_BIN, "get", hit2, "--node", node_dir, "-o", (dir.path / "out").string()}, 30s);
  INFO(get2.out);
  CHECK(get2.status == 0);
  CHECK(slurp(dir.path / "out" / "Pushed \"Quoted\" Tune.mp3") == fw_song);

  // The server saw it all, and the nodes stop cleanly.
  for (auto* p : {getter.get(), fw.get(), open.get()}) CHECK(p->terminate() == 0);
  CHECK(server.terminate() == 0);
}
