// The BitTorrent peer wire (BEP 3 "peer protocol", BEP 6 fast extension,
// BEP 10 extension protocol, BEP 9 ut_metadata). All integers big-endian.
//
// Handshake, 68 bytes, each side once:
//   0  pstrlen = 19
//   1  pstr    "BitTorrent protocol"
//  20  reserved[8]   bit 0x04 of byte 7: fast extension (BEP 6);
//                    bit 0x10 of byte 5: extension protocol (BEP 10);
//                    bit 0x01 of byte 7: DHT (BEP 5)
//  28  info_hash[20]
//  48  peer_id[20]
//
// Then messages: <length: 4><id: 1><payload: length-1>; length 0 is a keep-alive.
//   0 choke  1 unchoke  2 interested  3 not interested           (no payload)
//   4 have          <index: 4>
//   5 bitfield      <bits: one per piece, high bit first, spare bits 0>
//   6 request       <index: 4><begin: 4><length: 4>
//   7 piece         <index: 4><begin: 4><block>
//   8 cancel        <index: 4><begin: 4><length: 4>
//   9 port          <port: 2>                                    (BEP 5)
//  13 suggest piece <index: 4>  14 have all  15 have none        (BEP 6)
//  16 reject request <index: 4><begin: 4><length: 4>  17 allowed fast <index: 4>
//  20 extended      <extended id: 1><bencoded dictionary>[<trailing bytes>]  (BEP 10; id 0 is the handshake)
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wire/bt/bencode.hpp"
#include "wire/bt/ids.hpp"
#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire::bt {

inline constexpr std::size_t kHandshakeSize = 68;
inline constexpr std::string_view kProtocol = "BitTorrent protocol";
inline constexpr std::uint32_t kBlockSize = 16384;       // what every client requests
inline constexpr std::uint32_t kMaxRequestLength = 131072;  // larger requests are refused

struct Handshake {
  std::array<std::uint8_t, 8> reserved{};
  Sha1 info_hash{};
  PeerId peer_id{};
  bool fast() const { return (reserved[7] & 0x04) != 0; }
  bool extended() const { return (reserved[5] & 0x10) != 0; }
  bool dht() const { return (reserved[7] & 0x01) != 0; }
};

Result<Handshake> decode_handshake(ByteView in);  // NeedMore below 68 bytes
void encode_handshake(Bytes& out, const Handshake& h);
// The first 48 bytes name the torrent (a listener can pick the torrent
// before the peer id arrives); NeedMore below 48.
Result<Sha1> peek_info_hash(ByteView in);

enum class MsgType : std::uint16_t {
  Choke = 0,
  Unchoke = 1,
  Interested = 2,
  NotInterested = 3,
  Have = 4,
  Bitfield = 5,
  Request = 6,
  Piece = 7,
  Cancel = 8,
  Port = 9,
  Suggest = 13,
  HaveAll = 14,
  HaveNone = 15,
  Reject = 16,
  AllowedFast = 17,
  Extended = 20,
  KeepAlive = 256,  // (length 0; no id on the wire, so outside the id byte's range)
};
std::string_view to_string(MsgType t);

struct PeerMessage {
  MsgType type = MsgType::KeepAlive;
  std::uint32_t index = 0, begin = 0, length = 0;  // have, request, piece (length = block size), cancel, ...
  std::uint16_t port = 0;
  std::uint8_t ext_id = 0;  // extended
  Bytes data;               // bitfield bits, piece block, extended payload (after ext_id)
};

struct Framed {
  PeerMessage msg;
  std::size_t consumed;
};

// One message from the front of `in`. NeedMore for a partial one;
// TooLarge when the length passes `max_length` (a block of up to 128 KiB
// plus its header fits the default); Malformed for a message whose payload
// has the wrong size for its id. An id we do not know decodes with its
// payload in `data` (BEP 3: unknown messages are ignored).
Result<Framed> decode_peer_message(ByteView in, std::size_t max_length = kMaxRequestLength + 13);
// The length prefix of the message at the front (NeedMore below 4 bytes).
void encode_peer_message(Bytes& out, const PeerMessage& m);
Bytes encode_peer_message(const PeerMessage& m);

// Message builders.
PeerMessage msg_simple(MsgType t);
PeerMessage msg_have(std::uint32_t index);
PeerMessage msg_request(MsgType t, std::uint32_t index, std::uint32_t begin, std::uint32_t length);  // request, cancel, reject
PeerMessage msg_piece(std::uint32_t index, std::uint32_t begin, Bytes block);
PeerMessage msg_bitfield(const std::vector<bool>& have);
PeerMessage msg_extended(std::uint8_t ext_id, const Value& dict, ByteView trailing = {});

// A bitfield's pieces; nullopt when it is not exactly ceil(pieces/8) bytes or
// a spare bit is set (BEP 3: "drop the connection").
std::optional<std::vector<bool>> decode_bitfield(ByteView bits, std::size_t pieces);

// BEP 10 handshake (extended id 0): {"m": {name: id}, "metadata_size", "v", "p", "reqq"}.
struct ExtHandshake {
  std::vector<std::pair<std::string, std::uint8_t>> m;  // extension name -> the id the sender wants to receive
  std::optional<std::int64_t> metadata_size;
  std::string client;        // "v"
  std::uint16_t port = 0;    // "p"
  std::optional<std::int64_t> reqq;
  std::uint8_t id_of(std::string_view name) const;  // 0: not supported
};
std::optional<ExtHandshake> decode_ext_handshake(ByteView payload);
Value encode_ext_handshake(const ExtHandshake& h);

// BEP 9 ut_metadata: {"msg_type": 0 request | 1 data | 2 reject, "piece": i[, "total_size": n]} + data.
inline constexpr std::size_t kMetadataPiece = 16384;
struct MetadataMsg {
  int type = 0;
  std::int64_t piece = 0;
  std::optional<std::int64_t> total_size;
  Bytes data;  // type 1: the piece's bytes after the dictionary
};
std::optional<MetadataMsg> decode_metadata_msg(ByteView payload);
PeerMessage msg_metadata(std::uint8_t ext_id, const MetadataMsg& m);

}  // namespace sv::wire::bt
