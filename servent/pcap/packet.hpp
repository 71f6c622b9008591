// Link, IP and TCP/UDP headers of captured packets (pure parsing; the capture
// file itself is read by libpcap in capture.cpp).
//  Link types: Ethernet (DLT 1, with 802.1Q tags), Linux cooked SLL (113) and
//  SLL2 (276), BSD loopback NULL (0) and LOOP (108), raw IP (12, 14, 101).
//  IPv4 (RFC 791; fragments are not reassembled and are reported) and IPv6
//  (RFC 8200, skipping hop-by-hop/routing/destination-option headers).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "wire/common/bytes.hpp"

namespace sv::pcap {

struct Address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // v4 in the first 4
  auto operator<=>(const Address&) const = default;
  std::string to_string() const;
};

struct Packet {
  Address src, dst;
  std::uint8_t proto = 0;  // 6 TCP, 17 UDP
  std::uint16_t sport = 0, dport = 0;
  // TCP only
  std::uint32_t seq = 0, ack = 0;
  bool syn = false, fin = false, rst = false;
  wire::ByteView payload;
  bool fragment = false;  // an IPv4 fragment: not decoded further
};

enum class ParseError { None, Truncated, NotIp, NotTcpUdp, UnknownLink };

// Parses `frame` of link type `linktype`; `payload` points into `frame`.
std::optional<Packet> parse_packet(int linktype, wire::ByteView frame, ParseError& error);

}  // namespace sv::pcap
