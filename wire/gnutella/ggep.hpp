// GGEP, the Gnutella Generic Extension Protocol (GGEP 0.51).
//
//  Block:      0xC3 magic, then extensions until one has the Last flag.
//  Extension:  Flags[1] ID[1..15] DataLength[1..3] Data
//   Flags  bit7 Last | bit6 COBS-encoded | bit5 deflated | bit4 reserved (0) |
//          bits 3..0 ID length (1..15)
//   DataLength  6 bits per byte, most significant first; every byte but the
//          last has 0x80 set, the last has 0x40 set (so no byte is 0x00).
//   Data   after deflate (if flagged) and then COBS (if flagged).
// decode_ggep() returns each extension's data decoded (inflated, un-COBSed);
// unknown IDs are kept. A block whose lengths overrun the bytes is Malformed;
// one inflating above `max_data` is TooLarge.
#pragma once

#include <string>
#include <vector>

#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire::gnutella {

inline constexpr std::uint8_t kGgepBlockMagic = 0xC3;
inline constexpr std::size_t kGgepMaxDataLength = (1u << 18) - 1;  // 3 length bytes of 6 bits

struct GgepExtension {
  std::string id;
  Bytes data;
  bool compressed = false;  // was (or should be) deflated on the wire
  bool cobs = false;        // was (or should be) COBS-encoded on the wire
  bool operator==(const GgepExtension&) const = default;
};

struct GgepBlock {
  std::vector<GgepExtension> extensions;
  std::size_t consumed = 0;  // bytes of the input the block used
  const GgepExtension* find(std::string_view id) const;
};

Result<GgepBlock> decode_ggep(ByteView b, std::size_t max_data = 64 * 1024);
// Encodes the extensions (at least one); each uses COBS / deflate as flagged.
void encode_ggep(Bytes& out, const std::vector<GgepExtension>& exts);

Bytes cobs_encode(ByteView in);
Result<Bytes> cobs_decode(ByteView in);

}  // namespace sv::wire::gnutella
