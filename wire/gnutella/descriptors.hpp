// Gnutella 0.4 descriptors: the 23-byte header and the five payloads.
//
// Source: "The Gnutella Protocol Specification v0.4" (Clip2), section
// "Gnutella Protocol Messages"; 0.6 message types from the Gnutella 0.6 RFC
// draft, section 3. All integers are little-endian EXCEPT IPv4 addresses,
// which are in network (big-endian) order.
//
// Decoders take exactly one payload (the header says how long it is) and never
// read past it; encoders cannot fail.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire::gnutella {

// A 16-byte identifier. Two strong types so a DescriptorID and a ServentID
// cannot be mixed up.
template <typename Tag>
struct Id16 {
  std::array<std::uint8_t, 16> bytes{};
  auto operator<=>(const Id16&) const = default;
  std::string hex() const { return to_hex(bytes); }
  static std::optional<Id16> from_hex(std::string_view h) {
    Bytes b;
    if (h.size() != 32 || !wire::from_hex(h, b)) return std::nullopt;
    Id16 id;
    std::copy(b.begin(), b.end(), id.bytes.begin());
    return id;
  }
};
struct GuidTag {};
struct ServentIdTag {};
using Guid = Id16<GuidTag>;            // DescriptorID (a.k.a. MUID)
using ServentId = Id16<ServentIdTag>;  // the servent GUID in QueryHit/Push

struct Id16Hash {
  template <typename Tag>
  std::size_t operator()(const Id16<Tag>& id) const {
    // The IDs are random: two 64-bit halves mixed are a good hash.
    std::uint64_t a = 0, b = 0;
    for (int i = 0; i < 8; ++i) a |= std::uint64_t{id.bytes[i]} << (8 * i);
    for (int i = 0; i < 8; ++i) b |= std::uint64_t{id.bytes[8 + i]} << (8 * i);
    return static_cast<std::size_t>(a * 0x9E3779B97F4A7C15ull ^ b);
  }
};

// Payload Descriptor values (0.4 §"Descriptor Header"; 0.6 draft §3 for Bye,
// QRP and vendor messages).
enum class Type : std::uint8_t {
  Ping = 0x00,
  Pong = 0x01,
  Bye = 0x02,
  Qrp = 0x30,
  Vendor = 0x31,
  StdVendor = 0x32,
  Push = 0x40,
  Query = 0x80,
  QueryHit = 0x81,
};
std::string_view type_name(std::uint8_t type);

//  Descriptor header (0.4 §"Descriptor Header"):
//   0               16      17    18     19             23
//   +---------------+-------+-----+------+--------------+
//   | DescriptorID  | PDesc | TTL | Hops | PayloadLen LE|
//   +---------------+-------+-----+------+--------------+
inline constexpr std::size_t kHeaderSize = 23;
static_assert(kHeaderSize == 16 + 1 + 1 + 1 + 4);

struct Header {
  Guid id;
  std::uint8_t type = 0;
  std::uint8_t ttl = 0;
  std::uint8_t hops = 0;
  std::uint32_t payload_length = 0;
  bool operator==(const Header&) const = default;
};

// NeedMore when fewer than 23 bytes are given.
// Inline: the framer calls it for every descriptor.
inline Result<Header> decode_header(ByteView b) {
  if (b.size() < kHeaderSize) return WireError::NeedMore;
  Header h;
  std::memcpy(h.id.bytes.data(), b.data(), 16);
  h.type = b[16];
  h.ttl = b[17];
  h.hops = b[18];
  h.payload_length = get_le32(b.data() + 19);
  return h;
}
void encode_header(Bytes& out, const Header& h);

//  Pong (0.4 §"Pong"), 14 bytes + optional GGEP block (0.6):
//   0      2        6              10            14
//   | Port | IP(net)| FilesShared  | KBShared    | [GGEP...]
struct Pong {
  std::uint16_t port = 0;
  std::uint32_t ip = 0;  // host order value of the network-order address
  std::uint32_t files_shared = 0;
  std::uint32_t kb_shared = 0;
  Bytes extensions;  // GGEP block kept verbatim
  bool operator==(const Pong&) const = default;
};
Result<Pong> decode_pong(ByteView payload);
void encode_pong(Bytes& out, const Pong& p);

//  Query (0.4 §"Query"), 3+ bytes:
//   0           2
//   | MinSpeed  | Criteria ... NUL | [extensions: urn:/GGEP, 0x1C separated]
// On 0.6 links MinSpeed is a flag field (bit 15 set); see kQueryFlag*.
inline constexpr std::uint16_t kQueryFlagMarker = 0x8000;   // "flags in use"
inline constexpr std::uint16_t kQueryFlagFirewalled = 0x4000;
inline constexpr std::uint16_t kQueryFlagXml = 0x2000;
inline constexpr std::uint16_t kQueryFlagLeafGuided = 0x1000;
inline constexpr std::uint16_t kQueryFlagGgepH = 0x0800;
inline constexpr std::uint16_t kQueryFlagOob = 0x0400;
struct Query {
  std::uint16_t min_speed = 0;
  std::string criteria;
  Bytes extensions;  // everything after the criteria NUL, verbatim
  bool operator==(const Query&) const = default;
};
Result<Query> decode_query(ByteView payload);
// The same into an existing Query, reusing its storage; false when malformed
// (`q` is then unspecified).
bool decode_query_into(ByteView payload, Query& q);
void encode_query(Bytes& out, const Query& q);

//  QueryHit (0.4 §"QueryHit"), 11 + results + [trailer] + 16 bytes:
//   0    1      3        7       11
//   | N  | Port | IP(net)| Speed | Result x N ... | [Trailer] | ServentID(16)
//  Result: FileIndex[4] FileSize[4] Name NUL Extensions NUL
//  Trailer (0.4 §"QueryHit", "BearShare trailer"): VendorCode[4]
//  OpenDataSize[1] OpenData[OpenDataSize] PrivateData[rest]
struct HitResult {
  std::uint32_t index = 0;
  std::uint32_t size = 0;
  std::string name;
  Bytes extensions;  // between the two NULs (urn:, GGEP), verbatim
  bool operator==(const HitResult&) const = default;
};
struct HitTrailer {
  std::array<std::uint8_t, 4> vendor{};
  Bytes open_data;
  Bytes private_data;
  bool operator==(const HitTrailer&) const = default;
};
// Open data flag bits (first byte = enable mask, second = values), 0.4 trailer.
inline constexpr std::uint8_t kOpenDataPush = 0x01;
inline constexpr std::uint8_t kOpenDataBusy = 0x04;
inline constexpr std::uint8_t kOpenDataUploaded = 0x08;
inline constexpr std::uint8_t kOpenDataSpeed = 0x10;
inline constexpr std::uint8_t kOpenDataGgep = 0x20;
struct QueryHit {
  std::uint16_t port = 0;
  std::uint32_t ip = 0;
  std::uint32_t speed = 0;
  std::vector<HitResult> results;
  std::optional<HitTrailer> trailer;
  ServentId servent_id;
  bool operator==(const QueryHit&) const = default;
};
inline constexpr std::size_t kQueryHitMinSize = 11 + 16;
static_assert(kQueryHitMinSize == 27);
Result<QueryHit> decode_query_hit(ByteView payload);
// The same into an existing QueryHit, reusing its storage (a decoder that
// sees millions of hits allocates nothing per hit); false when malformed.
bool decode_query_hit_into(ByteView payload, QueryHit& h);
void encode_query_hit(Bytes& out, const QueryHit& h);
// Reads only the last 16 bytes: what routing needs, without a full decode.
Result<ServentId> peek_query_hit_servent(ByteView payload);

//  Push (0.4 §"Push"), 26 bytes:
//   0            16          20       24     26
//   | ServentID  | FileIndex | IP(net)| Port | [GGEP]
struct Push {
  ServentId servent_id;
  std::uint32_t file_index = 0;
  std::uint32_t ip = 0;
  std::uint16_t port = 0;
  Bytes extensions;
  bool operator==(const Push&) const = default;
};
inline constexpr std::size_t kPushSize = 26;
Result<Push> decode_push(ByteView payload);
void encode_push(Bytes& out, const Push& p);

// A whole descriptor (header + payload) as one buffer.
Bytes encode_descriptor(const Header& h, ByteView payload);

std::string ipv4_to_string(std::uint32_t ip);
std::optional<std::uint32_t> ipv4_from_string(std::string_view s);

}  // namespace sv::wire::gnutella
