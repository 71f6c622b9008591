// wire/dht: the one RPC datagram Chord, Kelips and Pastry speak over UDP.
// One UDP datagram carries one message; every integer is big-endian; nodes
// and keys are 160-bit ids (SHA-1; tests may use fewer bits of the ring, the
// wire always carries 20 bytes).
//
// Header (kHeaderSize = 40 bytes):
//   offset size field
//    0     2    magic 'S' 'D'
//    2     1    version (kVersion; any other: Unsupported)
//    3     1    type: a request's Type, or (0x80 | its Type) for the response
//    4     1    overlay: 1 Chord, 2 Kelips, 3 Pastry (a node ignores the others')
//    5     1    flags: bit 0 the sender is leaving (it will not answer again);
//                bit 1 (Store) a replica: keep it, do not copy it on;
//                (Gossip, Kelips) a note of the homes of a value just
//                copied: taken in, answered with an empty Gossip; the
//                other bits are 0 (set: Malformed)
//    6     8    request id, chosen by the requester, echoed by the response
//   14    20    sender id
//   34     4    sender IPv4 address, network order (where it listens; 0: use
//                the datagram's source address)
//   38     2    sender port (0: the datagram's source port)
//   40    ...   body, by type (below); nothing may follow it (Malformed)
// A datagram is whole or nothing: a short one is Malformed (there is no
// NeedMore), one over kMaxDatagram is TooLarge (it fits one IPv6 minimum-MTU
// packet with its headers, so it is never fragmented).
//
// Body elements:
//   Id    20 bytes
//   Node  26 bytes: id (20), IPv4 (4, network order), port (2)
//   Nodes count (1, at most kMaxNodes), then count Nodes
//   Value length (2, at most kMaxValue), then length bytes
//
// Bodies:                    request                      response (type | 0x80)
//   Ping        0x01         -                            -
//   FindNode    0x02         target Id                    owner (1: 0 or 1: the first node
//                                                          owns the target), Nodes closer to it
//   Neighbours  0x03         -                            has-predecessor (1: 0 or 1), [Node],
//                                                          Nodes (successor list, leaf set or group)
//   Notify      0x04         - (the sender may be our      -
//                            predecessor)
//   Store       0x05         key Id, lifetime seconds (4),  status (1: StoreStatus)
//                            Value
//   Get         0x06         key Id                       Values (count (1), count Values), Nodes
//                                                          closer to the key (when it has none)
//   Gossip      0x07         entries (count (1), each: Node, heartbeat (4), round trip ms (2)),
//                            tuples (count (1), each: key Id, home Node)   the same (push-pull)
//   Leave       0x08         Nodes (whom to use instead)   -
//   Error       0x7F         (never a request)            code (1: ErrorCode), so 0xFF on the wire
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire::dht {

inline constexpr std::size_t kHeaderSize = 40;
inline constexpr std::size_t kNodeSize = 26;
inline constexpr std::size_t kMaxDatagram = 1200;
inline constexpr std::size_t kMaxNodes = 40;   // 40 x 26 = 1,040 bytes
inline constexpr std::size_t kMaxValue = 512;  // a value (a URN's sources, a name): larger ones are refused
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::uint8_t kResponse = 0x80;
inline constexpr std::uint8_t kFlagLeaving = 0x01;
inline constexpr std::uint8_t kFlagReplica = 0x02;  // (Store: a replica; Gossip: a note of homes)
inline constexpr std::uint8_t kFlagsKnown = kFlagLeaving | kFlagReplica;

using NodeId = std::array<std::uint8_t, 20>;

enum class Overlay : std::uint8_t { Chord = 1, Kelips = 2, Pastry = 3 };
enum class Type : std::uint8_t {
  Ping = 0x01,
  FindNode = 0x02,
  Neighbours = 0x03,
  Notify = 0x04,
  Store = 0x05,
  Get = 0x06,
  Gossip = 0x07,
  Leave = 0x08,
  Error = 0x7F,  // only as a response: 0xFF on the wire
};
enum class StoreStatus : std::uint8_t { Stored = 0, NotResponsible = 1, Full = 2, TooLarge = 3 };
// NotJoined: the node is still joining and knows no ring to route in.
enum class ErrorCode : std::uint8_t { Malformed = 1, Unsupported = 2, WrongOverlay = 3, Overloaded = 4, NotJoined = 5 };

std::string_view to_string(Type t);
std::string_view to_string(Overlay o);

struct NodeRef {
  NodeId id{};
  std::uint32_t ip = 0;  // host order value of the network-order address (127.0.0.1 = 0x7f000001)
  std::uint16_t port = 0;
  bool operator==(const NodeRef&) const = default;
};

struct GossipEntry {
  NodeRef node;
  std::uint32_t heartbeat = 0;
  std::uint16_t rtt_ms = 0;  // the sender's last measured round trip to it (0: unknown)
  bool operator==(const GossipEntry&) const = default;
};

struct Tuple {  // Kelips: a key and the node that stores it
  NodeId key{};
  NodeRef home;
  bool operator==(const Tuple&) const = default;
};

// One message; which fields count depends on type and response (the table
// above); the others stay at their defaults and are not encoded.
struct Message {
  Type type = Type::Ping;
  bool response = false;
  Overlay overlay = Overlay::Chord;
  std::uint8_t flags = 0;
  std::uint64_t request = 0;
  NodeRef sender;
  NodeId key{};                          // FindNode target; Store, Get key
  bool owner = false;                    // FindNode response
  std::optional<NodeRef> predecessor;    // Neighbours response
  std::vector<NodeRef> nodes;            // FindNode, Neighbours, Get responses; Leave
  std::uint32_t lifetime = 0;            // Store: seconds
  std::vector<Bytes> values;             // Store: exactly one; Get response: any
  StoreStatus status = StoreStatus::Stored;
  ErrorCode error = ErrorCode::Malformed;
  std::vector<GossipEntry> entries;      // Gossip (both ways)
  std::vector<Tuple> tuples;             // Gossip (both ways)
  bool operator==(const Message&) const = default;
};

// The datagram for `m`. Lists longer than the format allows (kMaxNodes,
// 255 entries, kMaxValue bytes) are cut to fit, and so is the whole to
// kMaxDatagram: lists lose their last elements first (nodes, then tuples,
// entries, values), so what is sent always decodes.
Bytes encode_message(const Message& m);
// Malformed: short, bad magic, reserved bits, an unknown type or status,
// counts past the end, bytes after the body; TooLarge: over kMaxDatagram or
// a value over kMaxValue; Unsupported: another version or overlay number.
Result<Message> decode_message(ByteView datagram);
// The response header for `request` (same type, overlay, request id) from `self`.
Message response_to(const Message& request, const NodeRef& self);

}  // namespace sv::wire::dht
