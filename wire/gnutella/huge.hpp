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

}  // namespace sv::wire::gnutella
