#include <doctest/doctest.h>

#include "servent/pcap/packet.hpp"
#include "support/bytes.hpp"

using namespace sv;
using namespace sv::pcap;

namespace {
// IPv4 + TCP 127.0.0.1:40000 -> 127.0.0.2:6346, seq 1000, PSH|ACK, payload "hi".
wire::Bytes ipv4_tcp() {
  return test::hex(
      "4500 002a 0001 4000 4006 0000 7f000001 7f000002"  // IPv4, total 42, DF, TCP
      "9c40 18ca 000003e8 00000000 5018 ffff 0000 0000"  // TCP, data offset 5
      "6869");
}
}  // namespace

TEST_CASE("packet_parses_every_link_type") {
  const auto ip = ipv4_tcp();
  struct Case {
    int linktype;
    wire::Bytes prefix;
  };
  const Case cases[] = {
      {1, test::hex("000000000001 000000000002 0800")},                 // Ethernet
      {1, test::hex("000000000001 000000000002 8100 0005 0800")},       // Ethernet + 802.1Q
      {113, test::hex("0000 0304 0006 000000000000 0000 0800")},        // Linux SLL
      {276, test::hex("0800 0000 00000001 0304 00 06 000000000000 0000")}, // Linux SLL2
      {0, test::hex("02000000")},                                        // BSD NULL (AF_INET, host order)
      {108, test::hex("00000002")},                                      // LOOP (network order)
      {101, {}},                                                          // raw IP
  };
  for (const auto& c : cases) {
    CAPTURE(c.linktype);
    wire::Bytes frame = c.prefix;
    frame.insert(frame.end(), ip.begin(), ip.end());
    ParseError e;
    auto p = parse_packet(c.linktype, frame, e);
    REQUIRE(p);
    CHECK(p->src.to_string() == "127.0.0.1");
    CHECK(p->dst.to_string() == "127.0.0.2");
    CHECK(p->sport == 40000);
    CHECK(p->dport == 6346);
    CHECK(p->seq == 1000);
    CHECK(wire::as_chars(p->payload) == "hi");
  }
}

TEST_CASE("packet_parses_ipv6_with_an_extension_header_and_udp") {
  auto frame = test::hex(
      "6000 0000 0012 00 40"                       // IPv6, payload 18, next = hop-by-hop
      "00000000000000000000000000000001"           // ::1
      "00000000000000000000000000000001"
      "11 00 0000 00000000"                        // hop-by-hop, next = UDP, 8 bytes
      "1f90 18ca 000a 0000 6f6b");                 // UDP 8080 -> 6346, "ok"
  ParseError e;
  auto p = parse_packet(101, frame, e);
  REQUIRE(p);
  CHECK(p->proto == 17);
  CHECK(p->src.to_string() == "[0:0:0:0:0:0:0:1]");
  CHECK(p->dport == 6346);
  CHECK(wire::as_chars(p->payload) == "ok");
}

TEST_CASE("packet_cut_anywhere_is_reported_not_misread") {
  const auto ip = ipv4_tcp();
  for (std::size_t n = 0; n < ip.size(); ++n) {
    ParseError e;
    auto p = parse_packet(101, wire::ByteView(ip).first(n), e);
    if (n < 40) {
      CHECK_FALSE(p);
      CHECK(e == ParseError::Truncated);
    } else {
      REQUIRE(p);  // headers complete: the payload is what was captured
      CHECK(p->payload.size() == n - 40);
    }
  }
  ParseError e;
  CHECK_FALSE(parse_packet(999, ip, e));
  CHECK(e == ParseError::UnknownLink);
}
