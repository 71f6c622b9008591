// Ultrapeers and leaves as real processes on loopback: QRP decides which
// queries reach a leaf, our leaf tells a gtk-gnutella-like ultrapeer its
// table, and gtk-gnutella's own QRP messages (capture 09), replayed byte for
// byte, steer our ultrapeer.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "integration/gnutella_peer.hpp"
#include "integration/process.hpp"
#include "integration/socket_client.hpp"
#include "support/bytes.hpp"
#include "wire/gnutella/framer.hpp"
#include "wire/gnutella/handshake.hpp"
#include "wire/gnutella/qrp.hpp"
#include "wire/gnutella/vendor.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace gn = sv::wire::gnutella;
using nlohmann::json;
using sv::test::control_call;
using sv::test::Process;
using sv::test::read_descriptor;
using sv::test::SocketClient;

namespace {

struct Node {
  std::unique_ptr<Process> proc;
  std::uint16_t port = 0;
  fs::path state;
};

Node start(const fs::path& root, const std::string& name, std::vector<std::string> extra,
           const std::vector<std::pair<std::string, std::string>>& files = {}) {
  fs::create_directories(root / name);
  for (const auto& [file, text] : files) std::ofstream(root / name / file) << text;
  Node n;
  n.state = root / ("state-" + name);
  std::vector<std::string> argv = {SERVENT_BIN, "run", "--listen", "127.0.0.1:0", "--min-peers", "0",
                                   "--share", (root / name).string(), "--state-dir", n.state.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  n.proc = std::make_unique<Process>(argv, (root / ("err-" + name)).string());
  auto m = n.proc->wait_for(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
  REQUIRE(m);
  n.port = static_cast<std::uint16_t>(std::stoi((*m)[1]));
  return n;
}

// `servent peers --json` of a node: its role line, then one object per peer.
std::vector<json> peers_of(const Node& n) {
  auto r = sv::test::run({SERVENT_BIN, "peers", "--json", "--node", n.state.string()}, 10s);
  std::vector<json> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

std::uint64_t gnutella_stat(const Node& n, const std::string& name) {
  const std::string reply = control_call(n.state / "control.sock", R"({"id":1,"cmd":"stats"})");
  if (reply.empty()) return UINT64_MAX;
  return json::parse(reply)["stats"]["gnutella"].value(name, std::uint64_t{0});
}

}  // namespace

TEST_CASE("our_ultrapeer_sends_each_leaf_only_the_queries_its_qrp_table_matches") {
  char tmpl[] = "/tmp/servent-supernode-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  Node up = start(root, "up", {"--mode", "ultrapeer"});
  const std::string up_at = "127.0.0.1:" + std::to_string(up.port);
  Node a = start(root, "a", {"--mode", "leaf", "--connect", up_at}, {{"Alpha Song.txt", "aaaa"}});
  Node b = start(root, "b", {"--mode", "leaf", "--connect", up_at}, {{"Beta Tune.txt", "bbbb"}});
  const std::regex joined("^peer up 127\\.0\\.0\\.1:" + std::to_string(up.port) + " out 0\\.6");
  REQUIRE(a.proc->wait_for(joined, 10s));
  REQUIRE(b.proc->wait_for(joined, 10s));
  // Each leaf's table reaches the ultrapeer right behind its handshake;
  // wait (bounded) until the ultrapeer shows both.
  std::vector<json> peers;
  for (int i = 0; i < 50; ++i) {
    peers = peers_of(up);
    std::size_t tables = 0;
    for (const auto& p : peers) tables += p.value("role", "") == "leaf" && p.value("qrp_present", 0) > 0;
    if (tables == 2) break;
    std::this_thread::sleep_for(100ms);  // polling another process's state, bounded
  }
  REQUIRE(peers.size() == 3);
  CHECK(peers[0]["role"] == "ultrapeer");
  for (std::size_t i = 1; i < peers.size(); ++i) {
    CHECK(peers[i]["role"] == "leaf");
    CHECK(peers[i]["qrp_slots"] == 65536);
    CHECK(peers[i]["qrp_present"].get<int>() > 0);
    CHECK(peers[i]["reputation"].get<int>() >= 10);
  }
  // A search for a's words: a gets the query and answers; b never sees it.
  auto found = sv::test::run(
      {SERVENT_BIN, "search", "alpha", "song", "--connect", up_at, "--timeout", "2s", "--json"}, 20s);
  CHECK(found.out.find("Alpha Song.txt") != std::string::npos);
  CHECK(found.out.find("Beta Tune.txt") == std::string::npos);
  CHECK(gnutella_stat(a, "queries_in") >= 1);
  CHECK(gnutella_stat(b, "queries_in") == 0);
  CHECK(gnutella_stat(up, "queries_to_leaves") >= 1);
  CHECK(gnutella_stat(up, "queries_qrp_filtered") >= 1);
  // And the other way round.
  auto other = sv::test::run({SERVENT_BIN, "search", "tune", "--connect", up_at, "--timeout", "2s", "--json"}, 20s);
  CHECK(other.out.find("Beta Tune.txt") != std::string::npos);
  CHECK(gnutella_stat(b, "queries_in") >= 1);
  // The roles as `servent peers` shows them to a person.
  auto table = sv::test::run({SERVENT_BIN, "peers", "--node", a.state.string()}, 10s);
  CHECK(table.out.find("this node: leaf") != std::string::npos);
  CHECK(table.out.find("ultrapeer") != std::string::npos);
  CHECK(b.proc->terminate() == 0);
  CHECK(a.proc->terminate() == 0);
  CHECK(up.proc->terminate() == 0);
  // The reputation file is written at exit and read at start.
  CHECK(fs::exists(up.state / "reputation"));
  fs::remove_all(root);
}

TEST_CASE("our_leaf_tells_a_gtk_gnutella_like_ultrapeer_its_table_and_answers_what_it_forwards") {
  char tmpl[] = "/tmp/servent-leafqrp-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  sv::test::TestListener ultrapeer;
  Node leaf = start(root, "leaf", {"--mode", "leaf", "--connect", "127.0.0.1:" + std::to_string(ultrapeer.port())},
                    {{"Interop Test File.txt", std::string(1000, 'i')}});
  auto c = ultrapeer.accept();
  REQUIRE(c);
  const std::string hello = c->take_through("\r\n\r\n");
  CHECK(hello.find("X-Ultrapeer: False") != std::string::npos);
  CHECK(hello.find("X-Query-Routing: 0.1") != std::string::npos);
  // Answer as gtk-gnutella does (capture 09's headers).
  REQUIRE(c->send("GNUTELLA/0.6 200 OK\r\nUser-Agent: gtk-gnutella/1.2.3\r\nX-Ultrapeer: True\r\n"
                  "X-Query-Routing: 0.1\r\nX-Ultrapeer-Query-Routing: 0.1\r\nX-Degree: 46\r\nX-Max-TTL: 4\r\n"
                  "X-Dynamic-Querying: 0.1\r\nVendor-Message: 0.2\r\n\r\n"));
  const std::string final_answer = c->take_through("\r\n\r\n");
  CHECK(final_answer.starts_with("GNUTELLA/0.6 200"));
  // Its table: RESET then PATCH, as the ultrapeer applies them.
  gn::QrpTable table;
  gn::Framer f;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool messages_supported = false;
  while (!table.ready() && std::chrono::steady_clock::now() < deadline) {
    f.feed(sv::wire::as_bytes(c->read_at_least(1, 1s)));
    while (auto d = f.next()) {
      if (d->header.type == static_cast<std::uint8_t>(gn::Type::Vendor)) {
        auto vm = gn::decode_vendor(d->payload);
        messages_supported |= vm && vm->id == gn::kVmMessagesSupported;
      }
      if (d->header.type != static_cast<std::uint8_t>(gn::Type::Qrp)) continue;
      CHECK(d->header.ttl == 1);
      auto m = gn::decode_qrp(d->payload);
      REQUIRE(m);
      CHECK(table.apply(*m) == gn::QrpTable::Error::None);
    }
  }
  REQUIRE(table.ready());
  CHECK(messages_supported);
  for (const char* w : {"interop", "test", "file", "txt"}) CHECK(table.has_word(w));
  for (const char* w : {"zebra", "song", "linux"}) CHECK_FALSE(table.has_word(w));
  // What the table matches, the ultrapeer forwards: it is answered.
  gn::Query q;
  q.min_speed = 0x8000;
  q.criteria = "interop test";
  sv::wire::Bytes p;
  gn::encode_query(p, q);
  gn::Guid id;
  id.bytes.fill(0x31);
  const auto query = gn::encode_descriptor(gn::Header{id, static_cast<std::uint8_t>(gn::Type::Query), 1, 2, 0}, p);
  REQUIRE(c->send(std::string(query.begin(), query.end())));
  c->buffer().clear();
  auto hit = read_descriptor(*c, static_cast<std::uint8_t>(gn::Type::QueryHit), 10s);
  REQUIRE(hit);
  CHECK(hit->first.id == id);
  auto decoded = gn::decode_query_hit(hit->second);
  REQUIRE(decoded);
  REQUIRE(decoded->results.size() == 1);
  CHECK(decoded->results[0].name == "Interop Test File.txt");
  CHECK(leaf.proc->terminate() == 0);
  fs::remove_all(root);
}

TEST_CASE("gtk_gnutellas_qrp_messages_replayed_byte_for_byte_decide_what_our_ultrapeer_sends_it") {
  char tmpl[] = "/tmp/servent-gtkqrp-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  Node up = start(root, "up", {"--mode", "ultrapeer", "--no-deflate"});
  // gtk-gnutella as a leaf, then its RESET and PATCH exactly as capture 09
  // carries them (frames 9 and 11: headers with its GUIDs, TTL 1, hops 0).
  SocketClient leaf(up.port);
  REQUIRE(leaf.send("GNUTELLA CONNECT/0.6\r\nUser-Agent: gtk-gnutella/1.2.3 (2024-03-03; Topless; Linux x86_64)\r\n"
                    "X-Ultrapeer: False\r\nX-Query-Routing: 0.2\r\nVendor-Message: 0.2\r\nGGEP: 0.5\r\n\r\n"));
  REQUIRE(leaf.take_through("\r\n\r\n").starts_with("GNUTELLA/0.6 200"));
  REQUIRE(leaf.send("GNUTELLA/0.6 200 OK\r\n\r\n"));
  const auto frame9 = sv::test::hex("24a73102e77dbb8bd054dedc795e3a18 30 01 00 06000000 000040000002");
  const auto frame11 = sv::test::hex(
      "2a523102b0f3a6c16a8ddb125e37ae32 30 01 00 44000000"
      "010101010478daedd5411500400405400df46f29820c0e0e76671ae0fd2f0200569415c0c7c94dab54b33827c8e86d691e4403"
      "6e779488f2ca4bf0c401ed30d4194107db");
  REQUIRE(leaf.send(std::string(frame9.begin(), frame9.end()) + std::string(frame11.begin(), frame11.end())));
  // An ultrapeer neighbour sends three queries: only those gtk-gnutella's
  // table matches reach it, in order.
  SocketClient neighbour(up.port);
  REQUIRE(neighbour.send("GNUTELLA CONNECT/0.6\r\nUser-Agent: neighbour/1\r\nX-Ultrapeer: True\r\n\r\n"));
  REQUIRE(neighbour.take_through("\r\n\r\n").starts_with("GNUTELLA/0.6 200"));
  REQUIRE(neighbour.send("GNUTELLA/0.6 200 OK\r\n\r\n"));
  // The table is in once the ultrapeer has read it: a ping on the leaf's
  // link answered means everything before it was handled.
  gn::Guid ping;
  ping.bytes.fill(0x70);
  const auto ping_bytes = gn::encode_descriptor(gn::Header{ping, 0, 1, 0, 0}, {});
  REQUIRE(leaf.send(std::string(ping_bytes.begin(), ping_bytes.end())));
  REQUIRE(read_descriptor(leaf, static_cast<std::uint8_t>(gn::Type::Pong), 10s));
  auto send_query = [&](const std::string& words, std::uint8_t idb) {
    gn::Query q;
    q.min_speed = 0x8000;
    q.criteria = words;
    sv::wire::Bytes p;
    gn::encode_query(p, q);
    gn::Guid id;
    id.bytes.fill(idb);
    const auto d = gn::encode_descriptor(gn::Header{id, static_cast<std::uint8_t>(gn::Type::Query), 3, 1, 0}, p);
    REQUIRE(neighbour.send(std::string(d.begin(), d.end())));
  };
  send_query("zebra music", 0x41);
  send_query("interop test", 0x42);
  send_query("hello", 0x43);
  std::vector<std::string> got;
  for (int i = 0; i < 2; ++i) {
    auto d = read_descriptor(leaf, static_cast<std::uint8_t>(gn::Type::Query), 10s);
    REQUIRE(d);
    got.push_back(gn::decode_query(d->second)->criteria);
  }
  CHECK(got == std::vector<std::string>{"interop test", "hello"});
  CHECK(gnutella_stat(up, "qrp_tables_in") == 1);
  CHECK(gnutella_stat(up, "queries_qrp_filtered") >= 1);
  CHECK(up.proc->terminate() == 0);
  fs::remove_all(root);
}
