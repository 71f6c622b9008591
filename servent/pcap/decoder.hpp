// Decodes the Gnutella, HTTP, GIV and Napster conversations of a capture into
// messages, one per handshake block, descriptor, HTTP head, body, GIV line,
// Napster frame or transfer step, UDP datagram or gap. TCP connections are numbered in order of appearance
// (like Wireshark's tcp.stream); a message carries the frame in which its last
// byte arrived.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "servent/pcap/packet.hpp"
#include "servent/pcap/recent_ids.hpp"
#include "wire/gnutella/descriptors.hpp"

namespace sv::pcap {

// One decoded field: name and its value already encoded as JSON.
using Field = std::pair<std::string, std::string>;

struct Message {
  std::uint64_t frame = 0;
  double time = 0;           // seconds since the first packet
  std::int64_t stream = -1;  // TCP stream number, -1 for UDP
  std::string src, dst;      // "ip:port"
  std::string proto;         // gnutella, http, giv, napster, napster-data, tcp
  std::string kind;          // handshake, Ping, Pong, ..., request, response, body, GIV, gap
  std::string info;          // the rest of the text line
  std::vector<Field> fields; // for --json
  wire::Bytes raw;           // descriptors: header + payload exactly as captured
  wire::Bytes block;         // handshakes, HTTP request heads and Napster frames: the bytes to replay them
  std::optional<wire::gnutella::Guid> guid;  // descriptors
  bool deflated = false;     // arrived on a deflated link
  // Spec violations found in this message: (code, explanation).
  std::vector<std::pair<std::string, std::string>> violations;
};

struct DecoderStats {
  std::uint64_t packets = 0, tcp = 0, udp = 0, other = 0, truncated = 0, fragments = 0;
  std::uint64_t streams = 0, gaps = 0, gap_bytes = 0, retransmitted = 0, messages = 0;
};

// What each Message carries besides its text: JSON fields and the raw
// descriptor bytes cost time, so a text decode goes without them.
struct DecodeOptions {
  bool fields = true;
  bool raw = true;
  bool text = true;  // the info line (check and replay do not need it)
  // TCP ports whose conversations are Napster client-server frames from the
  // first byte (without them, Napster is recognised by its first frame).
  std::vector<std::uint16_t> napster_ports;
};

class Decoder {
 public:
  explicit Decoder(std::function<void(Message&&)> out, DecodeOptions options = {});
  ~Decoder();
  void packet(const Packet& p, std::uint64_t frame, double time);
  void not_decoded(ParseError e);  // a frame parse_packet refused
  void finish(std::uint64_t last_frame);
  const DecoderStats& stats() const { return stats_; }

  struct Conn;
  struct Dir;

 private:
  std::function<void(Message&&)> out_;
  DecodeOptions options_;
  std::map<std::tuple<Address, std::uint16_t, Address, std::uint16_t>, std::unique_ptr<Conn>> conns_;
  std::int64_t next_stream_ = 0;
  double first_time_ = -1;
  double now_ = 0;  // time of the packet being decoded
  DecoderStats stats_;
  // Pings/Queries seen, for unmatched replies: the newest kMaxRequests only,
  // so a huge capture does not hold every GUID (at most twice that many).
  static constexpr std::size_t kMaxRequests = 1 << 17;
  RecentIds requests_{kMaxRequests};
  Message scratch_;  // the message being built (see Dir::base)
  wire::gnutella::Query query_;  // decoded payloads, reused likewise
  wire::gnutella::QueryHit hit_;
  void close(std::map<std::tuple<Address, std::uint16_t, Address, std::uint16_t>, std::unique_ptr<Conn>>::iterator it,
             std::uint64_t frame);
  friend struct Conn;
  friend struct Dir;
};

std::string json_quote(std::string_view s);
// A short printable form of a name or header value (escapes, cut at `max`).
std::string printable(std::string_view s, std::size_t max = 120);

}  // namespace sv::pcap
