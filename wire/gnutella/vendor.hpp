// Vendor messages (0.6 draft, "Vendor Messages"; types 0x31 and 0x32) and
// HSEP (type 0xCD, "Horizon Size Estimation Protocol" 0.2).
//
//  Vendor message  Vendor[4] ID[2] LE Version[2] LE Body
//  Messages-Supported  (vendor 0000, id 0):  Count[2] LE, then Count times
//                      Vendor[4] ID[2] LE Version[2] LE
//  Features-Supported  (vendor 0000, id 10): Count[2] LE, then Count times
//                      Feature[4] Version[2] LE
//  Query-Status-Request  (BEAR/11 v1): empty body; the descriptor's GUID is
//                      the query's. An ultrapeer asks a leaf how many results
//                      of a dynamic query it has (LimeWire's leaf guidance).
//  Query-Status-Response (BEAR/12 v1): Hits[2] LE, the results the leaf kept
//                      for that query; 0xFFFF asks the ultrapeer to stop.
//  HSEP            per hop 1..n: Nodes[8] Files[8] KiB[8], all LE.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire::gnutella {

using VendorCode = std::array<std::uint8_t, 4>;
inline constexpr VendorCode kVendorGeneric = {0, 0, 0, 0};
inline constexpr VendorCode kVendorBear = {'B', 'E', 'A', 'R'};
inline constexpr std::uint16_t kVmMessagesSupported = 0;
inline constexpr std::uint16_t kVmFeaturesSupported = 10;
inline constexpr std::uint16_t kVmHopsFlow = 4;
inline constexpr std::uint16_t kVmConnectBack = 7;
inline constexpr std::uint16_t kVmQueryStatusRequest = 11;
inline constexpr std::uint16_t kVmQueryStatusResponse = 12;
inline constexpr std::uint16_t kQueryStatusStop = 0xFFFF;
inline constexpr std::uint8_t kTypeHsep = 0xCD;  // the HSEP message's descriptor type

struct VendorMessage {
  VendorCode vendor{};
  std::uint16_t id = 0;
  std::uint16_t version = 0;
  Bytes body;
  bool operator==(const VendorMessage&) const = default;
};
// Malformed: under 8 bytes.
Result<VendorMessage> decode_vendor(ByteView payload);
void encode_vendor(Bytes& out, const VendorMessage& m);

struct SupportedMessage {
  VendorCode vendor{};
  std::uint16_t id = 0;
  std::uint16_t version = 0;
  bool operator==(const SupportedMessage&) const = default;
};
struct SupportedFeature {
  std::array<std::uint8_t, 4> name{};
  std::uint16_t version = 0;
  bool operator==(const SupportedFeature&) const = default;
};
// Malformed: a body whose length is not exactly what its count says.
Result<std::vector<SupportedMessage>> decode_messages_supported(ByteView body);
Bytes encode_messages_supported(const std::vector<SupportedMessage>& list);
Result<std::vector<SupportedFeature>> decode_features_supported(ByteView body);

// Malformed: not 2 bytes.
Result<std::uint16_t> decode_query_status(ByteView body);

struct HsepHop {
  std::uint64_t nodes = 0, files = 0, kib = 0;
  bool operator==(const HsepHop&) const = default;
};
// Malformed: empty, not a multiple of 24 bytes, or more than `max_hops` hops.
Result<std::vector<HsepHop>> decode_hsep(ByteView payload, std::size_t max_hops = 16);
// HSEP 0.2 (gtk-gnutella's hsep.c, after Schuerger's draft): message type
// 0xCD, TTL 1, hops 0; per hop 1..n a triple of little-endian 64-bit
// (nodes, files, KiB) reachable within that many hops through the sender.
Bytes encode_hsep(const std::vector<HsepHop>& hops);

std::string_view vendor_message_name(const VendorCode& vendor, std::uint16_t id);

}  // namespace sv::wire::gnutella
