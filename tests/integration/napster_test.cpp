// Napster against something we did not write: the client frames of a real
// opennap-ng 0.50 + TekNap 1.3g session (pcap-fixtures/napster_teknap_opennap_ng.pcap)
// are played against our server over loopback, and every answer must be the
// one opennap-ng gave, frame by frame (type always; the whole payload for
// results, transfer acks and requests). Then real `servent` processes: a
// server and clients searching and downloading from each other by GET and by
// SEND (firewalled), with a resume.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <algorithm>
#include <regex>
#include <thread>

#include "integration/process.hpp"
#include "integration/socket_client.hpp"
#include "support/files.hpp"
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

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("servent-napster") {}
};

std::string random_bytes(std::size_t n, unsigned seed) { return test::random_bytes(n, seed); }

std::string slurp(const fs::path& p) { return test::read_file(p); }

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
  // Data ports (0 would mean firewalled).
  auto open = node("opensharer", "open", {"--napster-data-port", std::to_string(test::free_port())});
  auto fw = node("fwsharer", "fw", {"--firewalled"});
  auto getter = node("getter", "empty", {"--napster-data-port", std::to_string(test::free_port())});
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

  // Browse the sharer (211 -> 212... 213) through the node.
  auto browse = test::run({SERVENT_BIN, "browse", "fwsharer", "--node", node_dir, "--json"}, 15s);
  CHECK(browse.status == 0);
  CHECK(browse.out.find(R"("path":"fw\\Pushed \"Quoted\" Tune.mp3")") != std::string::npos);

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

namespace {

// The Napster kinds of each stream of a capture, MOTD runs collapsed to one,
// keyed by the client's nick (from its login) and, for peer transfers, by
// "transfer".
std::map<std::string, std::vector<std::string>> kinds_by_client(const std::string& capture) {
  std::map<std::int64_t, std::string> who;
  std::map<std::int64_t, std::vector<std::string>> by_stream;
  pcap::decode_file(capture, [&](pcap::Message&& m) {
    if (m.proto != "napster" && m.proto != "napster-data") return;
    if (m.kind == "login") who[m.stream] = m.info.substr(5, m.info.find(' ') - 5);  // "nick=NAME ..."
    if (m.proto == "napster-data") who[m.stream] = "transfer";
    auto& v = by_stream[m.stream];
    if (m.kind == "motd" && !v.empty() && v.back() == "motd") return;
    v.push_back(m.kind);
  });
  std::map<std::string, std::vector<std::string>> out;
  for (auto& [stream, kinds] : by_stream) {
    if (who.count(stream)) out[who[stream] + "#" + std::to_string(stream)] = kinds;
  }
  return out;
}

std::vector<std::string> first_of(const std::map<std::string, std::vector<std::string>>& m, const std::string& prefix) {
  for (const auto& [k, v] : m) {
    if (k.starts_with(prefix + "#")) return v;
  }
  return {};
}

}  // namespace

TEST_CASE("our_napster_client_and_server_on_the_wire_look_like_the_real_session") {
  if (!test::have_tool("dumpcap")) {
    MESSAGE("SKIPPED: dumpcap is not installed (scripts/test installs it)");
    return;
  }
  if (!fs::exists(kFixture)) {
    MESSAGE("SKIPPED: " << kFixture << " is missing");
    return;
  }
  TempDir dir;
  const std::uint16_t ps = test::free_port(), pd = test::free_port(), pg = test::free_port();
  const std::string cap = (dir.path / "own-napster.pcapng").string();
  test::Process dump({"dumpcap", "-i", "lo", "-q", "-f",
                      "tcp port " + std::to_string(ps) + " or tcp port " + std::to_string(pd) + " or tcp port " +
                          std::to_string(pg),
                      "-w", cap},
                     "-");
  if (!dump.wait_for(std::regex("Capturing on"), 10s)) {
    MESSAGE("SKIPPED: cannot capture on the loopback interface here (needs CAP_NET_RAW)");
    return;
  }
  {
    // Packets flow once a knock on a filtered port shows up in the file (bounded).
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
      try {
        SocketClient knock(pg);  // nothing listens yet: refused, but on the wire
      } catch (...) {
      }
      std::this_thread::sleep_for(100ms);  // polling a file another process writes, bounded
      seen = pcap::decode_file(cap, [](pcap::Message&&) {}).frames > 0;
    }
    REQUIRE(seen);
  }
  const std::string song = random_bytes(83'400, 3);
  fs::create_directories(dir.path / "share");
  fs::create_directories(dir.path / "none");
  std::ofstream(dir.path / "share" / "Teknap Artist - Shared Tune.mp3", std::ios::binary) << song;
  test::Process server({SERVENT_BIN, "napster-server", "--listen", "127.0.0.1:" + std::to_string(ps)},
                       (dir.path / "server.err").string());
  REQUIRE(server.wait_for(std::regex("listening on"), 10s));
  const std::string at = "127.0.0.1:" + std::to_string(ps);
  auto node = [&](const std::string& nick, const std::string& share, std::uint16_t data) {
    auto p = std::make_unique<test::Process>(
        std::vector<std::string>{SERVENT_BIN, "run", "--listen", "127.0.0.1:0", "--share", (dir.path / share).string(),
                                 "--state-dir", (dir.path / ("state-" + nick)).string(), "--min-peers", "0",
                                 "--napster", at, "--napster-nick", nick, "--napster-data-port", std::to_string(data)},
        (dir.path / (nick + ".err")).string());
    REQUIRE(p->wait_for(std::regex("^napster: logged in"), 10s));
    return p;
  };
  auto sharer = node("sharer", "share", pd);
  auto getter = node("getter", "none", pg);
  const std::string node_dir = (dir.path / "state-getter").string();
  auto found = test::run({SERVENT_BIN, "search", "shared tune", "--node", node_dir, "--timeout", "1", "--json"}, 15s);
  REQUIRE(found.out.find("napster") != std::string::npos);
  auto got = test::run({SERVENT_BIN, "get", found.out.substr(0, found.out.find('\n')), "--node", node_dir, "-o",
                        (dir.path / "out").string()},
                       30s);
  REQUIRE(got.status == 0);
  CHECK(slurp(dir.path / "out" / "Teknap Artist - Shared Tune.mp3") == song);
  CHECK(getter->terminate() == 0);
  CHECK(sharer->terminate() == 0);
  CHECK(server.terminate() == 0);
  {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      int data = 0;
      pcap::decode_file(cap, [&](pcap::Message&& m) { data += m.kind == "data"; });
      if (data >= 1 || std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(100ms);  // polling a file another process writes, bounded
    }
  }
  dump.stop_with(SIGINT);

  const auto ours = kinds_by_client(cap);
  const auto real = kinds_by_client(kFixture);
  for (const auto& [k, v] : ours) {
    std::string line;
    for (const auto& x : v) line += x + " ";
    MESSAGE("ours " << k << ": " << line);
  }
  // The downloader: the real session's searching client (nap.py, probeget,
  // stream #2) and ours say the same things in the same order, up to the end
  // of its first download.
  auto real_getter = first_of(real, "probeget");
  auto our_getter = first_of(ours, "getter");
  REQUIRE(real_getter.size() >= 11);
  real_getter.resize(11);  // login ... download-done (then it downloads again)
  CHECK(our_getter == real_getter);
  // The sharer: the real session's spec-written sharer (probeshare, stream #7).
  CHECK(first_of(ours, "sharer") == first_of(real, "probeshare"));
  // The transfer: the same steps (their order in the decode depends on timing).
  // (stream #3 of the real session: probeget's GET from TekNap)
  auto our_transfer = first_of(ours, "transfer"), real_transfer = real.at("transfer#3");
  std::sort(our_transfer.begin(), our_transfer.end());
  std::sort(real_transfer.begin(), real_transfer.end());
  CHECK(our_transfer == real_transfer);
}
