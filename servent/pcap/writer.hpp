// Writes classic pcap files (libpcap format 2.4): for tests and benches that
// need captures made to measure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sv::pcap {

// An IPv4 + TCP packet (20 + 20 bytes of headers, no options, checksums 0:
// decoders do not check them). Addresses in host order.
std::string ipv4_tcp_packet(std::uint32_t src, std::uint16_t sport, std::uint32_t dst, std::uint16_t dport,
                            std::uint32_t seq, std::uint8_t flags, std::string_view payload);
// An IPv4 + UDP datagram (28 bytes of headers, no checksum).
std::string ipv4_udp_packet(std::uint32_t src, std::uint16_t sport, std::uint32_t dst, std::uint16_t dport,
                            std::string_view payload);
inline constexpr std::uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpPsh = 0x08, kTcpAck = 0x10;

class PcapWriter {
 public:
  // linktype 101 (raw IP) or 1 (Ethernet: a 14-byte header is added).
  explicit PcapWriter(int linktype = 101);
  void packet(std::uint32_t micros, std::string_view ip_packet);
  const std::string& bytes() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  int linktype_;
  std::string out_;
};

}  // namespace sv::pcap
