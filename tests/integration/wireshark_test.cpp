// Wire compatibility checked by a decoder we did not write: Wireshark's
// Gnutella and HTTP dissectors (tshark), on the real gtk-gnutella captures and
// on a capture of our own servents made here on the loopback interface. Its
// limits (see README): it binds to tcp/6346 (so "Decode As" is used), does not
// parse 0.6 handshakes, GGEP or deflated links; these run on plain links.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "integration/process.hpp"
#include "servent/pcap/capture.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sv::test::Process;

namespace {


std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

// (frame, guid, type, ttl, hops, length) for each descriptor.
using Row = std::tuple<std::uint64_t, std::string, int, int, int, std::uint64_t>;

std::pair<std::multiset<Row>, std::size_t> tshark_descriptors(const std::string& file, const std::vector<int>& ports) {
  std::vector<std::string> argv = {"tshark", "-n", "-r", file};
  std::string only_ports;
  for (int p : ports) {
    argv.push_back("-d");
    argv.push_back("tcp.port==" + std::to_string(p) + ",gnutella");
    only_ports += (only_ports.empty() ? "" : ",") + std::to_string(p);
  }
  argv.insert(argv.end(), {"-Y", "gnutella and tcp.port in {" + only_ports + "}", "-T", "fields", "-E", "separator=/t",
                           "-E", "occurrence=a", "-e", "frame.number", "-e", "gnutella.header.id", "-e",
                           "gnutella.header.payload", "-e", "gnutella.header.ttl", "-e", "gnutella.header.hops", "-e",
                           "gnutella.header.size", "-e", "_ws.malformed"});
  auto r = sv::test::run(argv, 60s);
  REQUIRE(r.status == 0);
  std::multiset<Row> rows;
  std::size_t malformed = 0;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto f = split(line, '\t');
    if (f.size() < 7) continue;
    if (!f[6].empty()) ++malformed;
    if (f[1].empty()) continue;  // a handshake frame: the dissector shows no descriptor
    auto ids = split(f[1], ','), types = split(f[2], ','), ttls = split(f[3], ','), hops = split(f[4], ','),
         sizes = split(f[5], ',');
    for (std::size_t i = 0; i < ids.size(); ++i) {
      std::string id = ids[i];
      id.erase(std::remove(id.begin(), id.end(), ':'), id.end());
      rows.insert({std::stoull(f[0]), id, std::stoi(types.at(i)), std::stoi(ttls.at(i)), std::stoi(hops.at(i)),
                   std::stoull(sizes.at(i))});
    }
  }
  return {rows, malformed};
}

std::multiset<Row> our_descriptors(const std::string& file, const std::vector<int>& ports) {
  std::multiset<Row> rows;
  sv::pcap::decode_file(file, [&](sv::pcap::Message&& m) {
    if (m.raw.empty() || m.deflated || m.stream < 0) return;
    const int type = m.raw[16];  // Wireshark shows the header of every type
    bool on_port = false;
    for (int p : ports) {
      on_port = on_port || m.src.ends_with(":" + std::to_string(p)) || m.dst.ends_with(":" + std::to_string(p));
    }
    if (!on_port) return;
    rows.insert({m.frame, sv::wire::to_hex(sv::wire::ByteView(m.raw).first(16)), type, m.raw[17], m.raw[18],
                 sv::wire::get_le32(m.raw.data() + 19)});
  });
  return rows;
}


}  // namespace

TEST_CASE("wireshark_decodes_the_gtk_gnutella_captures_as_we_do") {
  if (!sv::test::have_tool("tshark")) {
    MESSAGE("SKIPPED: tshark is not installed (scripts/test installs it)");
    return;
  }
  for (const char* name : {"01_leaf_handshake_ping_query_hit_plain.pcap", "03_leaf_offers_deflate_but_gtkg_deflate_disabled.pcap",
                           "08_push_giv_callback_download.pcap", "09_probe_as_UP_spontaneous_qrp_vendor_hsep_ping_70s.pcap",
                           "10_gtkg_initiates_connect_to_probe_UP.pcap",
                           "14_minimal_06_handshakes_normal_refused_bare_UP_accepted.pcap", "own_servents.pcapng"}) {
    CAPTURE(std::string(name));
    const std::string file = std::string(SERVENT_FIXTURES) + "/" + name;
    const std::vector<int> ports = {6350, 6398, 6399, 47346, 47347};
    auto [theirs, malformed] = tshark_descriptors(file, ports);
    auto ours = our_descriptors(file, ports);
    CHECK(!ours.empty());
    CHECK(theirs == ours);
    if (theirs != ours) {
      for (const auto& r : theirs) {
        if (!ours.count(r)) MESSAGE("only wireshark: frame ", std::get<0>(r), " type ", std::get<2>(r), " len ", std::get<5>(r));
      }
      for (const auto& r : ours) {
        if (!theirs.count(r)) MESSAGE("only ours: frame ", std::get<0>(r), " type ", std::get<2>(r), " len ", std::get<5>(r));
      }
    }
  }
}

TEST_CASE("wireshark_decodes_our_own_servents_traffic_captured_on_loopback") {
  if (!sv::test::have_tool("tshark") || !sv::test::have_tool("dumpcap")) {
    MESSAGE("SKIPPED: tshark/dumpcap are not installed (scripts/test installs them)");
    return;
  }
  char tmpl[] = "/tmp/servent-ws-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  const std::uint16_t pa = sv::test::free_port(), pb = sv::test::free_port(), pc = sv::test::free_port();
  const std::string cap = (root / "own.pcapng").string();
  Process dump({"dumpcap", "-i", "lo", "-q", "-f",
                "tcp port " + std::to_string(pa) + " or tcp port " + std::to_string(pb) + " or tcp port " +
                    std::to_string(pc),
                "-w", cap},
               "-");
  auto started = dump.wait_for(std::regex("Capturing on"), 10s);
  if (!started) {
    MESSAGE("SKIPPED: cannot capture on the loopback interface here (needs CAP_NET_RAW)");
    fs::remove_all(root);
    return;
  }
  // "Capturing on" comes before packets really flow: knock on a port of the
  // filter (nothing listens yet) until the knock shows up in the file.
  {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(pc);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // refused: SYN + RST on the wire
      ::close(fd);
      std::this_thread::sleep_for(100ms);  // polling a file another process writes, bounded
      seen = sv::pcap::decode_file(cap, [](sv::pcap::Message&&) {}).frames > 0;
    }
    REQUIRE(seen);
  }
  fs::create_directories(root / "a");
  fs::create_directories(root / "b");
  std::ofstream(root / "a" / "wireshark cross check.bin", std::ios::binary) << std::string(200'000, 'w');
  auto run = [&](const std::string& name, std::uint16_t port, std::vector<std::string> extra) {
    std::vector<std::string> argv = {SERVENT_BIN, "run", "--no-deflate", "--min-peers", "0", "--listen",
                                     "127.0.0.1:" + std::to_string(port), "--share", (root / name).string(),
                                     "--state-dir", (root / ("s" + name)).string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(argv, (root / ("err" + name)).string());
  };
  // Two ultrapeers; the search joins b as a leaf.
  auto a = run("a", pa, {"--mode", "ultrapeer"});
  REQUIRE(a->wait_for(std::regex("^hashed 1 file"), 10s));
  auto b = run("b", pb, {"--mode", "ultrapeer", "--connect", "127.0.0.1:" + std::to_string(pa)});
  REQUIRE(b->wait_for(std::regex("^peer up "), 10s));
  auto found = sv::test::run({SERVENT_BIN, "search", "wireshark", "cross", "--connect", "127.0.0.1:" + std::to_string(pb),
                              "--no-deflate", "--timeout", "1s", "--json"},
                             20s);
  REQUIRE(found.out.find("wireshark cross check.bin") != std::string::npos);
  // An HTTP transfer on a port of its own, for the HTTP dissector.
  fs::create_directories(root / "c");
  std::ofstream(root / "c" / "web.bin", std::ios::binary) << std::string(70'000, 'h');
  auto c = run("c", pc, {});
  REQUIRE(c->wait_for(std::regex("^hashed 1 file"), 10s));
  auto got = sv::test::run({"curl", "-s", "-o", "/dev/null", "-r", "0-999", "http://127.0.0.1:" + std::to_string(pc) + "/get/1/web.bin"}, 20s);
  REQUIRE(got.status == 0);
  got = sv::test::run({"curl", "-s", "-o", "/dev/null", "http://127.0.0.1:" + std::to_string(pc) + "/get/1/web.bin"}, 20s);
  REQUIRE(got.status == 0);
  CHECK(b->terminate() == 0);
  CHECK(a->terminate() == 0);
  CHECK(c->terminate() == 0);
  // libpcap hands packets over in blocks: wait (bounded) until the last
  // transfer is in the file before stopping dumpcap.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    int bodies = 0;
    sv::pcap::decode_file(cap, [&](sv::pcap::Message&& m) { bodies += m.kind == "body"; });
    if (bodies >= 2 || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(100ms);  // polling a file another process writes, bounded
  }
  dump.stop_with(SIGINT);

  const std::vector<int> gnutella_ports = {pa, pb};
  auto [theirs, malformed] = tshark_descriptors(cap, gnutella_ports);
  auto ours = our_descriptors(cap, gnutella_ports);
  CHECK(ours.size() >= 6);  // pings, pongs, the query, its hit
  CHECK(theirs == ours);
  for (const auto& r : theirs) {
    if (!ours.count(r)) MESSAGE("only wireshark: frame ", std::get<0>(r), " type ", std::get<2>(r), " len ", std::get<5>(r));
  }
  for (const auto& r : ours) {
    if (!theirs.count(r)) MESSAGE("only ours: frame ", std::get<0>(r), " type ", std::get<2>(r), " len ", std::get<5>(r));
  }
  CHECK(malformed == 0);
  std::set<int> types;
  for (const auto& r : ours) types.insert(std::get<2>(r));
  CHECK(types.count(0x80) == 1);
  CHECK(types.count(0x81) == 1);

  // HTTP: Wireshark's status codes and Content-Lengths against ours.
  auto r = sv::test::run({"tshark", "-n", "-r", cap, "-d", "tcp.port==" + std::to_string(pc) + ",http", "-Y",
                          "http.response", "-T", "fields", "-E", "separator=/t", "-e", "frame.number", "-e",
                          "http.response.code", "-e", "http.content_length_header", "-e", "_ws.malformed"},
                         60s);
  REQUIRE(r.status == 0);
  std::multiset<std::tuple<std::uint64_t, int, std::uint64_t>> ws_http, our_http;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto f = split(line, '\t');
    REQUIRE(f.size() >= 4);
    CHECK(f[3].empty());
    ws_http.insert({std::stoull(f[0]), std::stoi(f[1]), std::stoull(f[2])});
  }
  // Wireshark shows a response in the frame that ends its body; we report the
  // head when it arrives and the body when it ends: pair them.
  std::optional<std::pair<int, std::uint64_t>> head;
  sv::pcap::decode_file(cap, [&](sv::pcap::Message&& m) {
    if (m.proto != "http" || !m.src.ends_with(":" + std::to_string(pc))) return;
    if (m.kind == "response") {
      std::uint64_t len = 0;
      auto at = m.info.find("Content-Length: ");
      if (at != std::string::npos) len = std::stoull(m.info.substr(at + 16));
      head = {std::stoi(m.info.substr(9, 3)), len};
    } else if (m.kind == "body" && head) {
      our_http.insert({m.frame, head->first, head->second});
      head.reset();
    }
  });
  CHECK(our_http.size() == 2);
  if (our_http.size() != 2) {
    sv::pcap::decode_file(cap, [&](sv::pcap::Message&& m) { MESSAGE(m.src, " ", m.proto, " ", m.kind, " ", m.info); });
    MESSAGE("pc=", pc);
  }
  CHECK(ws_http == our_http);
  if (ws_http != our_http || our_http.size() != 2) {
    MESSAGE("capture kept in ", cap);
  } else {
    fs::remove_all(root);
  }
}
