#include "servent/pcap/writer.hpp"

namespace sv::pcap {

namespace {
void le32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
void be16(std::string& s, std::uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v));
}
void be32(std::string& s, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>(v >> (8 * i)));
}

// The 20-byte IPv4 header (RFC 791 §3.1) of a packet carrying `rest` bytes
// of protocol `proto`; checksum 0, which decoders do not check.
std::string ipv4_header(std::uint8_t proto, std::uint32_t src, std::uint32_t dst, std::size_t rest) {
  std::string p;
  p.reserve(20 + rest);
  p += '\x45';  // IPv4, 20-byte header
  p += '\0';
  be16(p, static_cast<std::uint16_t>(20 + rest));
  be16(p, 0);       // id
  be16(p, 0x4000);  // DF
  p += '\x40';      // TTL 64
  p += static_cast<char>(proto);
  be16(p, 0);       // checksum
  be32(p, src);
  be32(p, dst);
  return p;
}

}  // namespace

std::string ipv4_udp_packet(std::uint32_t src, std::uint16_t sport, std::uint32_t dst, std::uint16_t dport,
                            std::string_view payload) {
  std::string p = ipv4_header(17, src, dst, 8 + payload.size());
  be16(p, sport);
  be16(p, dport);
  be16(p, static_cast<std::uint16_t>(8 + payload.size()));
  be16(p, 0);  // checksum (none)
  p.append(payload);
  return p;
}

std::string ipv4_tcp_packet(std::uint32_t src, std::uint16_t sport, std::uint32_t dst, std::uint16_t dport,
                            std::uint32_t seq, std::uint8_t flags, std::string_view payload) {
  std::string p = ipv4_header(6, src, dst, 20 + payload.size());
  be16(p, sport);
  be16(p, dport);
  be32(p, seq);
  be32(p, 0);  // ack
  p += '\x50';  // data offset 5
  p += static_cast<char>(flags);
  be16(p, 0xffff);  // window
  be16(p, 0);       // checksum
  be16(p, 0);       // urgent
  p.append(payload);
  return p;
}

PcapWriter::PcapWriter(int linktype) : linktype_(linktype) {
  le32(out_, 0xa1b2c3d4);
  out_ += std::string("\x02\x00\x04\x00", 4);  // version 2.4
  le32(out_, 0);                               // timezone
  le32(out_, 0);                               // sigfigs
  le32(out_, 65535);                           // snaplen
  le32(out_, static_cast<std::uint32_t>(linktype));
}

void PcapWriter::packet(std::uint32_t micros, std::string_view ip) {
  const std::size_t len = ip.size() + (linktype_ == 1 ? 14 : 0);
  le32(out_, micros / 1'000'000);
  le32(out_, micros % 1'000'000);
  le32(out_, static_cast<std::uint32_t>(len));
  le32(out_, static_cast<std::uint32_t>(len));
  if (linktype_ == 1) out_ += std::string("\0\0\0\0\0\0\0\0\0\0\0\0\x08\x00", 14);
  out_.append(ip);
}

}  // namespace sv::pcap
