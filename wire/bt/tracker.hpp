// Trackers: HTTP announce and scrape (BEP 3 "trackers", BEP 23 compact peer
// lists, BEP 48 scrape), UDP announce (BEP 15), and magnet links (BEP 9).
//
// HTTP announce: GET <announce>?info_hash=<20 bytes %-escaped>&peer_id=...&port=N
//   &uploaded=N&downloaded=N&left=N&compact=1[&event=started|completed|stopped][&numwant=N]
// Response: d interval i..e [min interval] [complete] [incomplete]
//             peers  <6 bytes per IPv4 peer: address, port, big-endian>   (compact, BEP 23)
//                  | l d ip s, port i, [peer id s] e ... e                (the original form)
//           or d failure reason s e
//
// UDP (BEP 15), all big-endian:
//   connect request   <protocol_id 0x41727101980: 8><action 0: 4><transaction: 4>
//   connect response  <action 0: 4><transaction: 4><connection_id: 8>
//   announce request  <connection_id: 8><action 1: 4><transaction: 4><info_hash: 20><peer_id: 20>
//                     <downloaded: 8><left: 8><uploaded: 8><event: 4><ip: 4><key: 4><num_want: 4><port: 2>  = 98 bytes
//   announce response <action 1: 4><transaction: 4><interval: 4><leechers: 4><seeders: 4><peers: 6 each>
//   scrape request    <connection_id: 8><action 2: 4><transaction: 4><info_hash: 20>...
//   scrape response   <action 2: 4><transaction: 4>(<seeders: 4><completed: 4><leechers: 4>)...
//   error             <action 3: 4><transaction: 4><message>
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wire/bt/bencode.hpp"
#include "wire/bt/ids.hpp"
#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire::bt {

struct PeerAddr {
  std::uint32_t ip = 0;  // host order
  std::uint16_t port = 0;
  bool operator==(const PeerAddr&) const = default;
};

enum class AnnounceEvent : std::uint8_t { None = 0, Completed = 1, Started = 2, Stopped = 3 };  // BEP 15's numbers
std::string_view to_string(AnnounceEvent e);  // "" for None

struct Announce {
  Sha1 info_hash{};
  PeerId peer_id{};
  std::uint16_t port = 0;
  std::uint64_t uploaded = 0, downloaded = 0, left = 0;
  AnnounceEvent event = AnnounceEvent::None;
  std::uint32_t numwant = 50;  // UDP: 0xFFFFFFFF (-1) asks for the tracker's default
  std::uint32_t key = 0;
  std::uint32_t ip = 0;  // UDP: 0 = the sender's address
};

struct AnnounceReply {
  std::string failure;  // non-empty: the tracker refused
  std::uint32_t interval = 1800;
  std::uint32_t min_interval = 0;
  std::uint32_t complete = 0, incomplete = 0;
  std::vector<PeerAddr> peers;
};

// "?info_hash=...&..." appended to the announce URL (which may already have a query).
std::string announce_url(std::string_view announce, const Announce& a);
// The query string of a request the tracker received (path already split off).
std::optional<Announce> decode_announce_query(std::string_view query);
std::optional<AnnounceReply> decode_announce_reply(ByteView body);
Bytes encode_announce_reply(const AnnounceReply& r, bool compact = true);

// Scrape: the /scrape URL for an /announce URL (BEP 48: only when the last
// path component starts with "announce"); the reply's files dictionary.
std::optional<std::string> scrape_url(std::string_view announce);
struct ScrapeEntry {
  Sha1 info_hash{};
  std::uint32_t complete = 0, downloaded = 0, incomplete = 0;
};
Bytes encode_scrape_reply(const std::vector<ScrapeEntry>& files);
std::optional<std::vector<ScrapeEntry>> decode_scrape_reply(ByteView body);

std::string percent_encode(ByteView b);  // unreserved bytes as they are, others %XX
std::optional<std::string> percent_decode(std::string_view s);

// Compact peers (BEP 23), and back.
std::vector<PeerAddr> decode_compact_peers(ByteView b);  // a trailing partial entry is ignored
void encode_compact_peers(Bytes& out, const std::vector<PeerAddr>& peers);

// UDP tracker (BEP 15).
inline constexpr std::uint64_t kUdpProtocolId = 0x41727101980ull;
enum class UdpAction : std::uint32_t { Connect = 0, Announce = 1, Scrape = 2, Error = 3 };
struct UdpPacket {
  UdpAction action = UdpAction::Connect;
  std::uint32_t transaction = 0;
  std::uint64_t connection_id = 0;  // requests; connect response
  Announce announce;                // announce request
  std::vector<Sha1> scrape;         // scrape request
  AnnounceReply reply;              // announce response (complete = seeders, incomplete = leechers)
  std::vector<ScrapeEntry> scraped; // scrape response
  std::string message;              // error
};
// A request as a tracker reads it; a response as a client reads it.
Result<UdpPacket> decode_udp_request(ByteView in);
Result<UdpPacket> decode_udp_response(ByteView in);
Bytes encode_udp_request(const UdpPacket& p);
Bytes encode_udp_response(const UdpPacket& p);

// magnet:?xt=urn:btih:<40 hex | 32 base32>&dn=<name>&tr=<tracker>...&x.pe=<host:port>... (BEP 9)
struct Magnet {
  Sha1 info_hash{};
  std::string name;
  std::vector<std::string> trackers;
  std::vector<std::string> peers;  // x.pe
};
std::optional<Magnet> decode_magnet(std::string_view uri);
std::string encode_magnet(const Magnet& m);

std::string to_hex(const Sha1& h);
std::optional<Sha1> sha1_from_hex(std::string_view hex);

}  // namespace sv::wire::bt
