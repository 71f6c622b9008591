// Hostile and damaged captures: cut files, garbage, unknown pcapng blocks and
// 100,000 unrelated streams. Each gets a clear message; what can be decoded is.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "servent/pcap/capture.hpp"
#include "servent/pcap/writer.hpp"

namespace fs = std::filesystem;
using namespace sv;

namespace {

struct TempFile {
  fs::path path;
  TempFile() {
    char t[] = "/tmp/servent-pcap-XXXXXX";
    int fd = mkstemp(t);
    ::close(fd);
    path = t;
  }
  ~TempFile() { fs::remove(path); }
  void write(const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }
};

void le32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
void le16(std::string& s, std::uint16_t v) {
  s.push_back(static_cast<char>(v));
  s.push_back(static_cast<char>(v >> 8));
}

std::size_t count_messages(const std::string& path, pcap::CaptureResult* res = nullptr) {
  std::size_t n = 0;
  auto r = pcap::decode_file(path, [&](pcap::Message&&) { ++n; });
  if (res) *res = r;
  return n;
}

}  // namespace

TEST_CASE("a_capture_cut_short_decodes_what_is_there_and_says_where_it_stopped") {
  const std::string src = std::string(SERVENT_FIXTURES) + "/08_push_giv_callback_download.pcap";
  std::ifstream in(src, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string whole = ss.str();
  const std::size_t full = count_messages(src);
  std::size_t cut_inside_records = 0;
  for (std::size_t cut = 24; cut < whole.size(); cut += 97) {
    TempFile t;
    t.write(whole.substr(0, cut));
    pcap::CaptureResult res;
    const std::size_t n = count_messages(t.path.string(), &res);
    CHECK(res.opened);
    CHECK(n <= full);
    cut_inside_records += !res.error.empty();
  }
  CHECK(cut_inside_records > 10);
  // The last cut keeps everything but the final frames.
  TempFile t;
  t.write(whole.substr(0, whole.size() - 10));
  pcap::CaptureResult res;
  CHECK(count_messages(t.path.string(), &res) >= full - 2);
  CHECK(res.error.find("truncated") != std::string::npos);
}

TEST_CASE("garbage_is_not_a_capture") {
  TempFile t;
  t.write("GNUTELLA CONNECT/0.6\r\n\r\nthis is not a pcap file at all");
  pcap::CaptureResult res;
  CHECK(count_messages(t.path.string(), &res) == 0);
  CHECK_FALSE(res.opened);
  CHECK_FALSE(res.error.empty());
  CHECK_FALSE(pcap::decode_file("/nonexistent/file.pcap", [](pcap::Message&&) {}).opened);
}

TEST_CASE("pcapng_with_unknown_blocks_still_decodes") {
  auto block = [](std::uint32_t type, const std::string& body) {
    std::string b;
    std::string padded = body;
    while (padded.size() % 4) padded.push_back('\0');
    le32(b, type);
    le32(b, static_cast<std::uint32_t>(12 + padded.size()));
    b += padded;
    le32(b, static_cast<std::uint32_t>(12 + padded.size()));
    return b;
  };
  std::string shb;
  le32(shb, 0x1A2B3C4D);
  le16(shb, 1);
  le16(shb, 0);
  shb += std::string(8, '\xff');  // section length unknown
  std::string idb;
  le16(idb, 101);
  le16(idb, 0);
  le32(idb, 65535);
  std::string file = block(0x0A0D0D0A, shb) + block(1, idb);
  file += block(0x00000BAD, "some block nobody knows about");
  const std::string pkt = pcap::ipv4_tcp_packet(0x7f000001, 40000, 0x7f000002, 6346, 1, 0x18, "GNUTELLA CONNECT/0.4\n\n");
  std::string epb;
  le32(epb, 0);  // interface
  le32(epb, 0);
  le32(epb, 0);
  le32(epb, static_cast<std::uint32_t>(pkt.size()));
  le32(epb, static_cast<std::uint32_t>(pkt.size()));
  epb += pkt;
  file += block(6, epb);
  TempFile t;
  t.write(file);
  std::vector<std::string> kinds;
  auto res = pcap::decode_file(t.path.string(), [&](pcap::Message&& m) { kinds.push_back(m.kind + " " + m.info); });
  CHECK(res.opened);
  REQUIRE(kinds.size() == 1);
  CHECK(kinds[0] == "handshake GNUTELLA CONNECT/0.4");
}

TEST_CASE("a_hundred_thousand_unrelated_streams_and_one_gnutella_conversation") {
  pcap::PcapWriter w;
  std::uint32_t t = 0;
  for (std::uint32_t i = 0; i < 100'000; ++i) {
    const std::uint32_t src = 0x7f010000 + (i >> 8), dst = 0x7f020000 + (i & 255);
    const auto sport = static_cast<std::uint16_t>(1024 + i % 60000);
    w.packet(t, pcap::ipv4_tcp_packet(src, sport, dst, 443, 1000, 0x02, ""));
    w.packet(t, pcap::ipv4_tcp_packet(src, sport, dst, 443, 1001, 0x18, "\x16\x03\x01 not ours, not ours, not ours"));
    if (i % 2) w.packet(t, pcap::ipv4_tcp_packet(src, sport, dst, 443, 1032, 0x11, ""));
    if (i == 50'000) {
      w.packet(t, pcap::ipv4_tcp_packet(0x7f000001, 40000, 0x7f000002, 6346, 7, 0x02, ""));
      w.packet(t, pcap::ipv4_tcp_packet(0x7f000001, 40000, 0x7f000002, 6346, 8, 0x18, "GNUTELLA CONNECT/0.4\n\n"));
      w.packet(t, pcap::ipv4_tcp_packet(0x7f000002, 6346, 0x7f000001, 40000, 90, 0x18, "GNUTELLA OK\n\n"));
    }
    ++t;
  }
  TempFile f;
  f.write(w.take());
  std::vector<std::string> got;
  auto res = pcap::decode_file(f.path.string(), [&](pcap::Message&& m) { got.push_back(m.info); });
  CHECK(res.opened);
  CHECK(res.stats.streams == 100'001);
  CHECK(got == std::vector<std::string>{"GNUTELLA CONNECT/0.4", "GNUTELLA OK"});
}
