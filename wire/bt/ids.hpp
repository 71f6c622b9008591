// Fixed-size BitTorrent identifiers: a SHA-1 (info-hash, piece hash) and a
// peer id, both 20 raw bytes.
#pragma once

#include <array>
#include <cstdint>

namespace sv::wire::bt {

using Sha1 = std::array<std::uint8_t, 20>;
using PeerId = std::array<std::uint8_t, 20>;

}  // namespace sv::wire::bt
