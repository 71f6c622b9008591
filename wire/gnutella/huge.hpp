// The extension block of Queries and QueryHit results (HUGE 0.94 §3, GGEP
// 0.51 §2): items separated by 0x1C. A GGEP block (magic 0xC3) runs to the
// end of the block, since its own bytes may contain 0x1C.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "wire/common/bytes.hpp"

namespace sv::wire::gnutella {

inline constexpr std::uint8_t kExtensionSeparator = 0x1C;
inline constexpr std::uint8_t kGgepMagic = 0xC3;

struct Extensions {
  std::vector<std::string> urns;   // "urn:sha1:...", or the bare "urn:" (asks for URNs in hits)
  std::optional<Bytes> ggep;       // the GGEP block, verbatim, magic included
  std::vector<Bytes> other;        // anything else (e.g. XML), verbatim
};

// Never fails: unknown items are kept in `other`. A trailing NUL some
// servents add is ignored.
Extensions decode_extensions(ByteView block);
Bytes encode_extensions(const Extensions& e);

// Every urn a block names: its HUGE text urns as they are, then the digest
// in GGEP "H" (gtk-gnutella's doc/gnutella/GGEP, "The 'H' GGEP Extension": a
// hash type byte, 0x01 SHA1 followed by its 20 bytes, or 0x02 a bitprint,
// the SHA1 then the 24-byte Tiger tree root) as "urn:sha1:<base32>".
// Shareaza sends a hash query's digest there only; gtk-gnutella puts it in
// the hits for a query that says it reads it. Other hash types, other
// lengths and a malformed GGEP block add nothing.
std::vector<std::string> all_urns(const Extensions& e);

// Files of 4 GiB and more. A QueryHit result's size field is 32 bits (0.4
// §"QueryHit"); for a file that does not fit, it holds 0xFFFFFFFF and the
// result's GGEP block carries "LF" (large file): the 64-bit size in
// little-endian with its high zero bytes stripped (1..8 bytes), COBS-encoded
// when a byte is zero, since the block sits between NULs. This is what
// gtk-gnutella sends (and reads) and LimeWire's GGEP extension list names.
inline constexpr std::uint32_t kSize32Escape = 0xFFFFFFFF;
constexpr std::uint32_t size32_for(std::uint64_t size) {
  return size >= kSize32Escape ? kSize32Escape : static_cast<std::uint32_t>(size);
}
Bytes encode_lf(std::uint64_t size);
// nullopt when empty or longer than 8 bytes.
std::optional<std::uint64_t> decode_lf(ByteView data);
// Appends a GGEP block with "LF" for `size` to a result's extension block
// (after a 0x1C separator when the block has items already).
void append_lf(Bytes& extensions, std::uint64_t size);
// A result's real size: LF when its block carries a valid one, else the
// 32-bit field.
std::uint64_t result_size(std::uint32_t size32, ByteView extensions);

}  // namespace sv::wire::gnutella
