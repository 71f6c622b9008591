// Four real `servent run` processes in a chain on 127.0.0.1; `servent search`
// at one end finds a file at the other, and curl (a real client) downloads it
// byte-identical, whole, by Range and resumed.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include <filesystem>
#include <map>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "http/text.hpp"
#include "integration/gnutella_peer.hpp"
#include "integration/process.hpp"
#include "support/files.hpp"
#include "support/json_line.hpp"
#include "share/sha1.hpp"
#include "wire/gnutella/descriptors.hpp"
#include "wire/gnutella/framer.hpp"
#include "wire/gnutella/huge.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace gn = sv::wire::gnutella;
using sv::test::Process;
using sv::test::control_call;

using sv::test::read_file;

namespace {

// The value of "key": in one flat JSON object line (strings or numbers).
using sv::test::json_field;

struct Servent {
  std::unique_ptr<Process> proc;
  std::uint16_t port = 0;
};

}  // namespace

TEST_CASE("chain_of_four_servents_search_and_download_with_curl") {
  char tmpl[] = "/tmp/servent-chain-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  const std::string name = "Chain Test Song (live).ogg";
  std::string content(1'500'000, '\0');
  std::mt19937 rng(7);
  for (auto& c : content) c = static_cast<char>(rng());
  fs::create_directories(root / "share0");
  std::ofstream(root / "share0" / name, std::ios::binary) << content;

  std::vector<Servent> chain;
  const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+), sharing (\d+) files?)");
  for (int i = 0; i < 4; ++i) {
    fs::create_directories(root / ("share" + std::to_string(i)));
    // --min-peers 0: the chain must stay a chain (no dialling learned hosts);
    // ultrapeers, so each relays to the next.
    std::vector<std::string> argv = {SERVENT_BIN, "run", "--listen", "127.0.0.1:0", "--min-peers", "0",
                                     "--mode", "ultrapeer",
                                     "--share", (root / ("share" + std::to_string(i))).string(),
                                     "--state-dir", (root / ("state" + std::to_string(i))).string()};
    if (i > 0) {
      argv.push_back("--connect");
      argv.push_back("127.0.0.1:" + std::to_string(chain.back().port));
    }
    Servent s;
    s.proc = std::make_unique<Process>(argv, (root / ("stderr" + std::to_string(i))).string());
    auto m = s.proc->wait_for(listening, 10s);
    REQUIRE(m);
    s.port = static_cast<std::uint16_t>(std::stoi((*m)[1]));
    CHECK(std::stoi((*m)[2]) == (i == 0 ? 1 : 0));
    if (i == 0) REQUIRE(s.proc->wait_for(std::regex("^hashed 1 file$"), 10s));
    if (i > 0) {
      const std::regex up("^peer up 127\\.0\\.0\\.1:" + std::to_string(chain.back().port) + " out 0\\.6");
      REQUIRE(s.proc->wait_for(up, 10s));
    }
    chain.push_back(std::move(s));
  }
  const std::string end = "127.0.0.1:" + std::to_string(chain.back().port);

  // The searcher joins at the far end: the file is 4 hops away.
  auto near = sv::test::run({SERVENT_BIN, "search", "chain", "song", "--connect", end, "--ttl", "3", "--timeout",
                             "1500ms", "--json"},
                            20s);
  CHECK(near.status == 0);
  CHECK(near.out.empty());  // TTL 3 stops one hop short

  auto found = sv::test::run({SERVENT_BIN, "search", "chain", "song", "--connect", end, "--ttl", "4", "--timeout",
                              "3s", "--json"},
                             20s);
  REQUIRE(found.status == 0);
  std::istringstream lines(found.out);
  std::string line;
  REQUIRE(std::getline(lines, line));
  std::string extra;
  const bool more = static_cast<bool>(std::getline(lines, extra)) && !extra.empty();
  CHECK_FALSE(more);  // exactly one hit
  CHECK(json_field(line, "host") == "127.0.0.1");
  CHECK(json_field(line, "port") == std::to_string(chain.front().port));
  CHECK(json_field(line, "name") == name);
  CHECK(json_field(line, "size") == std::to_string(content.size()));
  CHECK(json_field(line, "servent_id").size() == 32);
  const std::string urn = sv::share::sha1_urn(sv::share::sha1_of(content));
  CHECK(json_field(line, "urn") == urn);
  const std::string url = "http://127.0.0.1:" + json_field(line, "port") + "/get/" + json_field(line, "index") +
                          "/" + sv::http::percent_encode(name);

  // Whole file.
  auto got = root / "got.ogg";
  auto r = sv::test::run({"curl", "-sS", "--fail", "-o", got.string(), url}, 20s);
  REQUIRE(r.status == 0);
  CHECK(read_file(got) == content);

  // A Range.
  auto part = root / "part";
  r = sv::test::run({"curl", "-sS", "--fail", "-r", "1000-199999", "-o", part.string(), url}, 20s);
  REQUIRE(r.status == 0);
  CHECK(read_file(part) == content.substr(1000, 199000));

  // Resume: keep the first 700,001 bytes, then let curl continue (-C -).
  auto resumed = root / "resumed.ogg";
  std::ofstream(resumed, std::ios::binary) << content.substr(0, 700'001);
  r = sv::test::run({"curl", "-sS", "--fail", "-C", "-", "-o", resumed.string(), url}, 20s);
  REQUIRE(r.status == 0);
  CHECK(read_file(resumed) == content);

  // By urn (HUGE /uri-res/N2R), as gtk-gnutella asks.
  auto by_urn = root / "by_urn.ogg";
  r = sv::test::run({"curl", "-sS", "--fail", "-o", by_urn.string(),
                     "http://127.0.0.1:" + json_field(line, "port") + "/uri-res/N2R?" + urn},
                    20s);
  REQUIRE(r.status == 0);
  CHECK(read_file(by_urn) == content);

  // Traversal through the real server: refused.
  r = sv::test::run({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--path-as-is",
                     "http://127.0.0.1:" + std::to_string(chain.front().port) + "/get/1/../../../../etc/passwd"},
                    20s);
  const bool refused = r.out == "400\n" || r.out == "404\n";
  CAPTURE(r.out);
  CHECK(refused);

  // Clean shutdown on SIGTERM: every process exits 0 (uv_loop_close == 0).
  for (auto& s : chain) CHECK(s.proc->terminate() == 0);
  fs::remove_all(root);
}

TEST_CASE("cli_rejects_bad_flags_with_one_line_and_exit_2") {
  for (auto argv : std::vector<std::vector<std::string>>{
           {SERVENT_BIN, "run", "--no-such-flag"},
           {SERVENT_BIN, "run", "--max-ttl", "zero"},
           {SERVENT_BIN, "run", "--connect", "not-an-address"},
           {SERVENT_BIN, "search"},
           {SERVENT_BIN, "search", "x", "--connect", "127.0.0.1:1", "--ttl", "99"},
           {SERVENT_BIN, "frobnicate"},
       }) {
    auto r = sv::test::run(argv, 10s);
    CHECK(r.status == 2);
  }
  auto help = sv::test::run({SERVENT_BIN, "run", "--help"}, 10s);
  CHECK(help.status == 0);
  CHECK(help.out.find("usage: servent run") != std::string::npos);
  auto shelp = sv::test::run({SERVENT_BIN, "search", "--help"}, 10s);
  CHECK(shelp.out.find("--json") != std::string::npos);
}

TEST_CASE("servent_below_min_peers_dials_hosts_learned_from_pongs_and_saves_them") {
  char tmpl[] = "/tmp/servent-hosts-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
  auto start = [&](const std::string& name, const std::vector<std::string>& extra) {
    fs::create_directories(root / name);
    std::vector<std::string> argv = {SERVENT_BIN, "run", "--listen", "127.0.0.1:0", "--share", (root / name).string(),
                                     "--state-dir", (root / ("state-" + name)).string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(argv, (root / ("err-" + name)).string());
  };
  auto a = start("a", {"--min-peers", "0", "--mode", "ultrapeer"});
  auto ma = a->wait_for(listening, 10s);
  REQUIRE(ma);
  const std::string pa = (*ma)[1];
  auto b = start("b", {"--min-peers", "0", "--mode", "ultrapeer", "--connect", "127.0.0.1:" + pa});
  auto mb = b->wait_for(listening, 10s);
  REQUIRE(mb);
  const std::string pb = (*mb)[1];
  REQUIRE(b->wait_for(std::regex("^peer up 127\\.0\\.0\\.1:" + pa + " out"), 10s));
  // c only knows b; b's Pong cache tells it about a, and c (a leaf: it
  // wants its 3 ultrapeers) dials it.
  auto c = start("c", {"--min-peers", "2", "--connect", "127.0.0.1:" + pb});
  REQUIRE(c->wait_for(std::regex("^peer up 127\\.0\\.0\\.1:" + pa + " out"), 10s));
  CHECK(c->terminate() == 0);
  std::ifstream hosts(root / "state-c" / "hosts");
  std::stringstream ss;
  ss << hosts.rdbuf();
  CHECK(ss.str().find("127.0.0.1:" + pa) != std::string::npos);
  CHECK(ss.str().find("127.0.0.1:" + pb) != std::string::npos);
  CHECK(b->terminate() == 0);
  CHECK(a->terminate() == 0);
  fs::remove_all(root);
}

TEST_CASE("pcap_replay_of_gtk_gnutella_probe_sessions_against_a_live_servent") {
  char tmpl[] = "/tmp/servent-replay-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  fs::create_directories(root / "with");
  fs::create_directories(root / "without");
  std::ofstream(root / "with" / "interop_test_file.txt") << std::string(116000, 'i');
  auto start = [&](const std::string& share) {
    auto p = std::make_unique<Process>(std::vector<std::string>{SERVENT_BIN, "run", "--min-peers", "0", "--listen",
                                                                 "127.0.0.1:0", "--share", (root / share).string(),
                                                                 "--state-dir", (root / ("s" + share)).string()},
                                       (root / ("err" + share)).string());
    auto m = p->wait_for(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
    REQUIRE(m);
    return std::make_pair(std::move(p), "127.0.0.1:" + std::string((*m)[1]));
  };
  auto [with, with_addr] = start("with");
  auto [without, without_addr] = start("without");
  const std::string fx = SERVENT_FIXTURES;
  // The probe's plain session (capture 01) and its deflated one (capture 02, stream 1).
  auto r = sv::test::run({SERVENT_BIN, "pcap", "replay", fx + "/01_leaf_handshake_ping_query_hit_plain.pcap", "--to",
                          with_addr, "--wait", "1"},
                         30s);
  CHECK(r.status == 0);
  CHECK(r.out.find("Query \"interop\"") != std::string::npos);
  CHECK(r.out.find("replay: 0 differences") != std::string::npos);
  r = sv::test::run({SERVENT_BIN, "pcap", "replay", fx + "/02_leaf_defaultcfg_403_uncompressed_then_deflate_ok.pcap",
                     "--stream", "1", "--to", with_addr, "--wait", "1"},
                    30s);
  CHECK(r.status == 0);
  CHECK(r.out.find("1 QueryHit") != std::string::npos);
  // Without the file, the hit is missing: reported, exit 1.
  r = sv::test::run({SERVENT_BIN, "pcap", "replay", fx + "/01_leaf_handshake_ping_query_hit_plain.pcap", "--to",
                     without_addr, "--wait", "1"},
                    30s);
  CHECK(r.status == 1);
  CHECK(r.out.find("live: no reply") != std::string::npos);
  CHECK(with->terminate() == 0);
  CHECK(without->terminate() == 0);
  fs::remove_all(root);
}

TEST_CASE("control_socket_search_get_and_hostile_clients") {
  char tmpl[] = "/tmp/servent-node-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  fs::create_directories(root / "a");
  fs::create_directories(root / "b");
  const std::string content(300'000, 'n');
  std::ofstream(root / "a" / "via the node.bin", std::ios::binary) << content;
  auto a = std::make_unique<Process>(std::vector<std::string>{SERVENT_BIN, "run", "--min-peers", "0", "--listen",
                                                               "127.0.0.1:0", "--share", (root / "a").string(),
                                                               "--state-dir", (root / "sa").string()},
                                     (root / "erra").string());
  auto ma = a->wait_for(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
  REQUIRE(ma);
  REQUIRE(a->wait_for(std::regex("^hashed 1 file"), 10s));
  auto b = std::make_unique<Process>(std::vector<std::string>{SERVENT_BIN, "run", "--min-peers", "0", "--listen",
                                                               "127.0.0.1:0", "--share", (root / "b").string(),
                                                               "--state-dir", (root / "sb").string(), "--connect",
                                                               "127.0.0.1:" + std::string((*ma)[1])},
                                     (root / "errb").string());
  REQUIRE(b->wait_for(std::regex("^peer up "), 10s));
  const auto sock = root / "sb" / "control.sock";
  // Only the owner may use it.
  CHECK((fs::status(sock).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));

  // Search and get through the node.
  auto found = sv::test::run({SERVENT_BIN, "search", "via", "node", "--node", (root / "sb").string(), "--timeout",
                              "1500ms", "--json"},
                             20s);
  REQUIRE(found.status == 0);
  const std::string hit = found.out.substr(0, found.out.find('\n'));
  CHECK(hit.find("\"name\":\"via the node.bin\"") != std::string::npos);
  auto got = sv::test::run({SERVENT_BIN, "get", hit, "--node", (root / "sb").string(), "-o", (root / "out").string()}, 30s);
  CHECK(got.status == 0);
  CHECK(read_file(root / "out" / "via the node.bin") == content);

  // A client sending garbage gets errors; the node goes on answering.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const std::string hostile = "garbage\n{\"cmd\":\"explode\",\"id\":1}\n" + std::string(100'000, 'x') +
                                "\n{\"cmd\":\"stats\",\"id\":2}\n";
    REQUIRE(::send(fd, hostile.data(), hostile.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(hostile.size()));
    std::string got_back;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (got_back.find("\"stats\"") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      char buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got_back.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    CHECK(got_back.find("not a JSON object") != std::string::npos);
    CHECK(got_back.find("unknown command 'explode'") != std::string::npos);
    CHECK(got_back.find("longer than") != std::string::npos);
    CHECK(got_back.find("\"stats\"") != std::string::npos);
  }
  // Another user is turned away (when the test runs as root, as nobody).
  if (::getuid() == 0) {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
      int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
      ::_exit(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ? 1 : 0);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);  // refused
  }
  CHECK(b->terminate() == 0);
  CHECK(a->terminate() == 0);
  CHECK_FALSE(fs::exists(sock));  // removed on exit
  fs::remove_all(root);
}

TEST_CASE("rescan_answers_at_once_and_hashes_on_the_thread_pool") {
  char tmpl[] = "/tmp/servent-rescan-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  fs::create_directories(root / "share");
  auto node = std::make_unique<Process>(std::vector<std::string>{SERVENT_BIN, "run", "--min-peers", "0", "--listen",
                                                                  "127.0.0.1:0", "--share", (root / "share").string(),
                                                                  "--state-dir", (root / "state").string()},
                                        (root / "err").string());
  REQUIRE(node->wait_for(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s));
  const auto sock = root / "state" / "control.sock";
  // A large new file (sparse: hashing it still reads every byte).
  {
    std::ofstream big(root / "share" / "new big file.bin", std::ios::binary);
    big.seekp(256 * 1024 * 1024 - 1);
    big.put('!');
  }
  // The reply names the file to hash instead of waiting for it.
  const std::string reply = control_call(sock, R"({"id":1,"cmd":"rescan"})");
  INFO(reply);
  CHECK(reply.find(R"("ok":true)") != std::string::npos);
  CHECK(reply.find(R"("files":1)") != std::string::npos);
  CHECK(reply.find(R"("to_hash":1)") != std::string::npos);
  // The node answers while it hashes, and the stats say when it is done.
  bool hashed = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!hashed && std::chrono::steady_clock::now() < deadline) {
    const std::string stats = control_call(sock, R"({"id":2,"cmd":"stats"})");
    REQUIRE(stats.find(R"("ok":true)") != std::string::npos);
    hashed = stats.find(R"("hashing_done":1)") != std::string::npos && stats.find(R"("hashing_total":1)") != std::string::npos;
    if (!hashed) std::this_thread::sleep_for(50ms);  // polling a state another process changes, bounded
  }
  CHECK(hashed);
  // Its urn:sha1 is known now: the library counts it as hashed.
  const std::string stats = control_call(sock, R"({"id":3,"cmd":"stats"})");
  CHECK(stats.find(R"("hashed":1)") != std::string::npos);
  CHECK(node->terminate() == 0);
  fs::remove_all(root);
}

namespace {

// An ultrapeer that applies gtk-gnutella's rule to its leaf: an identical
// query (same text, or same urn:sha1) again within 1,700 s is dropped and
// counted as throttled. Any other query is answered with one hit.
class ThrottlingUltrapeer {
 public:
  ThrottlingUltrapeer() {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ThrottlingUltrapeer() {
    stop_ = true;
    thread_.join();
    ::close(listen_);
  }
  std::uint16_t port() const { return port_; }
  int answered() const { return answered_; }
  int throttled() const { return throttled_; }

 private:
  void serve() {
    int fd = -1;
    std::string in;
    bool established = false;
    std::map<std::string, std::chrono::steady_clock::time_point> seen;
    while (!stop_) {
      pollfd p{fd >= 0 ? fd : listen_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      if (fd < 0) {
        fd = ::accept(listen_, nullptr, nullptr);
        continue;
      }
      char buf[65536];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
      if (!established) {
        // Its CONNECT, then (after our 200) its own 200: two header blocks.
        const auto end = in.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        const bool connect = in.starts_with("GNUTELLA CONNECT");
        in.erase(0, end + 4);
        if (connect) {
          const std::string ok = "GNUTELLA/0.6 200 OK\r\nUser-Agent: throttling-up/1\r\nX-Ultrapeer: True\r\n\r\n";
          ::send(fd, ok.data(), ok.size(), MSG_NOSIGNAL);
          continue;
        }
        established = true;
      }
      gn::Framer framer;
      framer.feed(sv::wire::as_bytes(in));
      std::size_t used = 0;
      while (auto f = framer.next()) {
        used += gn::kHeaderSize + f->payload.size();
        if (f->header.type != static_cast<std::uint8_t>(gn::Type::Query) || f->header.hops != 0) continue;
        auto q = gn::decode_query(f->payload);
        if (!q) continue;
        std::string key = q->criteria;
        for (const auto& u : gn::decode_extensions(q->extensions).urns) {
          if (u.starts_with("urn:sha1:")) key = u;
        }
        const auto now = std::chrono::steady_clock::now();
        auto it = seen.find(key);
        if (it != seen.end() && now - it->second < 1700s) {
          ++throttled_;
          continue;
        }
        seen[key] = now;
        ++answered_;
        gn::QueryHit hit;
        hit.port = 6346;
        hit.ip = 0x7f000063;  // 127.0.0.99
        hit.speed = 100;
        hit.results.push_back(gn::HitResult{5, 4242, "wanted file.mp3", {}});
        hit.servent_id.bytes.fill(0x5a);
        sv::wire::Bytes payload;
        gn::encode_query_hit(payload, hit);
        const auto bytes = gn::encode_descriptor(
            gn::Header{f->header.id, static_cast<std::uint8_t>(gn::Type::QueryHit), 7, 0, 0}, payload);
        ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      }
      in.erase(0, used);
    }
    if (fd >= 0) ::close(fd);
  }
  int listen_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0}, throttled_{0};
};

}  // namespace

TEST_CASE("a_repeated_search_still_lists_the_file_behind_an_ultrapeer_that_drops_repeats") {
  ThrottlingUltrapeer up;
  sv::test::TempDir dir("servent-requery");
  auto node = std::make_unique<Process>(
      std::vector<std::string>{SERVENT_BIN, "run", "--listen", "127.0.0.1:0", "--connect",
                               "127.0.0.1:" + std::to_string(up.port()), "--state-dir", (dir.path / "state").string()},
      (dir.path / "err").string());
  REQUIRE(node->wait_for(std::regex("^peer up 127\\.0\\.0\\.1:" + std::to_string(up.port())), 10s));
  auto search = [&] {
    return sv::test::run({SERVENT_BIN, "search", "wanted", "file", "--node", (dir.path / "state").string(), "--timeout",
                          "1500ms", "--json"},
                         20s);
  };
  const auto first = search();
  CHECK(first.status == 0);
  CHECK(first.out.find("\"name\":\"wanted file.mp3\"") != std::string::npos);
  CHECK(first.out.find("\"earlier\"") == std::string::npos);
  // The same search again: still listed (from the first query), and the
  // ultrapeer never saw a repeat to throttle.
  const auto second = search();
  CHECK(second.status == 0);
  CHECK(second.out.find("\"name\":\"wanted file.mp3\"") != std::string::npos);
  CHECK(second.out.find("\"earlier\":true") != std::string::npos);
  CHECK(up.answered() == 1);
  CHECK(up.throttled() == 0);
  // Other words still reach it.
  auto other = sv::test::run({SERVENT_BIN, "search", "other", "words", "--node", (dir.path / "state").string(),
                              "--timeout", "1500ms", "--json"},
                             20s);
  CHECK(other.out.find("\"name\":\"wanted file.mp3\"") != std::string::npos);
  CHECK(up.answered() == 2);
  CHECK(node->terminate() == 0);
}
