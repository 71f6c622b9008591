// Identifier arithmetic on a ring of 2^bits ids (Chord §4.1; Pastry and
// Kelips use the same ids). Ids travel as 20 big-endian bytes (wire/dht);
// on a ring of fewer than 160 bits (tests, small simulations) only the low
// `bits` bits are used and the rest are zero.
#pragma once

#include <string>

#include "servent/core/types.hpp"
#include "wire/dht/rpc.hpp"

namespace sv::dht {

using wire::dht::NodeId;

class Ring {
 public:
  explicit Ring(int bits = 160) : bits_(bits < 1 ? 1 : bits > 160 ? 160 : bits) {}
  int bits() const { return bits_; }

  // The id reduced to the ring (the high 160 - bits bits cleared).
  NodeId reduce(NodeId id) const {
    const int clear = 160 - bits_;
    for (int i = 0; i < clear / 8; ++i) id[static_cast<std::size_t>(i)] = 0;
    if (clear % 8) id[static_cast<std::size_t>(clear / 8)] &= static_cast<std::uint8_t>(0xFF >> (clear % 8));
    return id;
  }
  // (id + 2^i) mod 2^bits, for 0 <= i < bits (a finger's start).
  NodeId add_pow2(const NodeId& id, int i) const {
    NodeId out = id;
    int byte = 19 - i / 8;
    unsigned carry = 1u << (i % 8);
    for (; byte >= 0 && carry; --byte) {
      const unsigned s = out[static_cast<std::size_t>(byte)] + carry;
      out[static_cast<std::size_t>(byte)] = static_cast<std::uint8_t>(s);
      carry = s >> 8;
    }
    return reduce(out);
  }
  // x in the open interval (a, b) going clockwise; a == b: every id but a.
  static bool between(const NodeId& a, const NodeId& x, const NodeId& b) {
    if (a < b) return a < x && x < b;
    return x > a || x < b;  // wraps (or a == b: the whole ring but a)
  }
  // x in (a, b]: who owns x when b's predecessor is a.
  static bool between_right(const NodeId& a, const NodeId& x, const NodeId& b) {
    return x == b || between(a, x, b);
  }
  // Clockwise distance from a to b on this ring (mod 2^bits), as a double
  // (enough to compare and to average: 53 bits of precision on any ring).
  double distance(const NodeId& a, const NodeId& b) const {
    // b - a mod 2^160, byte by byte from the low end, then reduced.
    NodeId diff{};
    int borrow = 0;
    for (int i = 19; i >= 0; --i) {
      const auto at = static_cast<std::size_t>(i);
      const int v = b[at] - a[at] - borrow;
      borrow = v < 0;
      diff[at] = static_cast<std::uint8_t>(v + (borrow ? 256 : 0));
    }
    double d = 0;
    for (std::uint8_t byte : reduce(diff)) d = d * 256 + byte;
    return d;
  }

 private:
  int bits_;
};

// An id's short form for people: the first 8 hex digits (of the used bits).
std::string short_id(const NodeId& id);

}  // namespace sv::dht
