#include "servent/pcap/packet.hpp"

#include <algorithm>
#include <cstdio>

namespace sv::pcap {

std::string Address::to_string() const {
  char buf[64];
  if (!v6) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes[0], bytes[1], bytes[2], bytes[3]);
    return buf;
  }
  std::string s = "[";
  for (int i = 0; i < 16; i += 2) {
    if (i) s += ':';
    std::snprintf(buf, sizeof buf, "%x", (bytes[i] << 8) | bytes[i + 1]);
    s += buf;
  }
  return s + "]";
}

namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

std::optional<Packet> parse_transport(Packet pkt, std::uint8_t proto, wire::ByteView b, ParseError& error) {
  pkt.proto = proto;
  if (proto == 6) {
    if (b.size() < 20) return error = ParseError::Truncated, std::nullopt;
    const std::size_t off = static_cast<std::size_t>(b[12] >> 4) * 4;
    if (off < 20 || off > b.size()) return error = ParseError::Truncated, std::nullopt;
    pkt.sport = be16(b.data());
    pkt.dport = be16(b.data() + 2);
    pkt.seq = wire::get_be32(b.data() + 4);
    pkt.ack = wire::get_be32(b.data() + 8);
    const std::uint8_t flags = b[13];
    pkt.fin = flags & 0x01;
    pkt.syn = flags & 0x02;
    pkt.rst = flags & 0x04;
    pkt.payload = b.subspan(off);
    return pkt;
  }
  if (proto == 17) {
    if (b.size() < 8) return error = ParseError::Truncated, std::nullopt;
    pkt.sport = be16(b.data());
    pkt.dport = be16(b.data() + 2);
    const std::size_t len = be16(b.data() + 4);
    pkt.payload = b.subspan(8, len >= 8 && len <= b.size() ? len - 8 : b.size() - 8);
    return pkt;
  }
  error = ParseError::NotTcpUdp;
  return std::nullopt;
}

std::optional<Packet> parse_ip(wire::ByteView b, ParseError& error) {
  if (b.empty()) return error = ParseError::Truncated, std::nullopt;
  Packet pkt;
  const int version = b[0] >> 4;
  if (version == 4) {
    if (b.size() < 20) return error = ParseError::Truncated, std::nullopt;
    const std::size_t ihl = static_cast<std::size_t>(b[0] & 15) * 4;
    std::size_t total = be16(b.data() + 2);
    if (ihl < 20 || total < ihl) return error = ParseError::Truncated, std::nullopt;
    if (total > b.size()) total = b.size();  // snaplen-cut packet: keep what there is
    if (total < ihl) return error = ParseError::Truncated, std::nullopt;  // cut inside the IP options
    std::copy_n(b.data() + 12, 4, pkt.src.bytes.begin());
    std::copy_n(b.data() + 16, 4, pkt.dst.bytes.begin());
    const std::uint16_t frag = be16(b.data() + 6);
    if ((frag & 0x1FFF) != 0 || (frag & 0x2000) != 0) {
      pkt.fragment = true;
      pkt.proto = b[9];
      return pkt;
    }
    return parse_transport(pkt, b[9], b.subspan(ihl, total - ihl), error);
  }
  if (version == 6) {
    if (b.size() < 40) return error = ParseError::Truncated, std::nullopt;
    pkt.src.v6 = pkt.dst.v6 = true;
    std::copy_n(b.data() + 8, 16, pkt.src.bytes.begin());
    std::copy_n(b.data() + 24, 16, pkt.dst.bytes.begin());
    std::size_t len = be16(b.data() + 4);
    std::uint8_t next = b[6];
    wire::ByteView rest = b.subspan(40, std::min(len, b.size() - 40));
    // Extension headers: hop-by-hop 0, routing 43, destination options 60.
    while (next == 0 || next == 43 || next == 60) {
      if (rest.size() < 8) return error = ParseError::Truncated, std::nullopt;
      const std::size_t ext = (static_cast<std::size_t>(rest[1]) + 1) * 8;
      if (ext > rest.size()) return error = ParseError::Truncated, std::nullopt;
      next = rest[0];
      rest = rest.subspan(ext);
    }
    if (next == 44) {
      pkt.fragment = true;
      return pkt;
    }
    return parse_transport(pkt, next, rest, error);
  }
  error = ParseError::NotIp;
  return std::nullopt;
}

}  // namespace

std::optional<Packet> parse_packet(int linktype, wire::ByteView f, ParseError& error) {
  error = ParseError::None;
  switch (linktype) {
    case 1: {  // Ethernet II, with any 802.1Q / 802.1ad tags
      if (f.size() < 14) return error = ParseError::Truncated, std::nullopt;
      std::size_t off = 12;
      std::uint16_t type = be16(f.data() + off);
      while ((type == 0x8100 || type == 0x88A8) && f.size() >= off + 6) {
        off += 4;
        type = be16(f.data() + off);
      }
      if (type != 0x0800 && type != 0x86DD) return error = ParseError::NotIp, std::nullopt;
      return parse_ip(f.subspan(off + 2), error);
    }
    case 113: {  // Linux cooked v1: 16-byte header, protocol at 14
      if (f.size() < 16) return error = ParseError::Truncated, std::nullopt;
      const std::uint16_t type = be16(f.data() + 14);
      if (type != 0x0800 && type != 0x86DD) return error = ParseError::NotIp, std::nullopt;
      return parse_ip(f.subspan(16), error);
    }
    case 276: {  // Linux cooked v2: 20-byte header, protocol first
      if (f.size() < 20) return error = ParseError::Truncated, std::nullopt;
      const std::uint16_t type = be16(f.data());
      if (type != 0x0800 && type != 0x86DD) return error = ParseError::NotIp, std::nullopt;
      return parse_ip(f.subspan(20), error);
    }
    case 0:
    case 108:  // 4-byte address family, host or network order
      if (f.size() < 4) return error = ParseError::Truncated, std::nullopt;
      return parse_ip(f.subspan(4), error);
    case 12:
    case 14:
    case 101:
      return parse_ip(f, error);
    default:
      error = ParseError::UnknownLink;
      return std::nullopt;
  }
}

}  // namespace sv::pcap
