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
  // A 160-bit number as three words: bytes 0-7, 8-15 and 16-19 of its
  // big-endian form. Compared exactly (and fast: the hot loops of routing
  // sort candidates by it).
  struct Gap {
    std::uint64_t hi = 0, mid = 0;
    std::uint32_t lo = 0;
    auto operator<=>(const Gap&) const = default;
    bool zero() const { return (hi | mid | lo) == 0; }
    // The index of the highest bit set (-1 for zero): the gap is >= 2^i
    // exactly when top_bit() >= i.
    int top_bit() const {
      if (hi) return 96 + 63 - __builtin_clzll(hi);
      if (mid) return 32 + 63 - __builtin_clzll(mid);
      if (lo) return 31 - __builtin_clz(lo);
      return -1;
    }
  };
  // (b - a) mod 2^bits: the clockwise distance from a to b.
  Gap gap(const NodeId& a, const NodeId& b) const {
    const Gap d = sub(load(b), load(a));
    return Gap{d.hi & mask_.hi, d.mid & mask_.mid, d.lo & mask_.lo};
  }
  // The same as an id (20 big-endian bytes).
  NodeId minus(const NodeId& b, const NodeId& a) const {
    NodeId out;
    store(gap(a, b), out);
    return out;
  }
  // Clockwise distance from a to b on this ring (mod 2^bits), as a double
  // (enough to average and to compare: 53 bits of precision on any ring).
  double distance(const NodeId& a, const NodeId& b) const {
    const Gap d = gap(a, b);
    return static_cast<double>(d.hi) * 0x1p96 + static_cast<double>(d.mid) * 0x1p32 + static_cast<double>(d.lo);
  }

 private:
  static Gap load(const NodeId& id) {
    Gap w;
    for (int i = 0; i < 8; ++i) w.hi = w.hi << 8 | id[static_cast<std::size_t>(i)];
    for (int i = 8; i < 16; ++i) w.mid = w.mid << 8 | id[static_cast<std::size_t>(i)];
    for (int i = 16; i < 20; ++i) w.lo = w.lo << 8 | id[static_cast<std::size_t>(i)];
    return w;
  }
  static void store(const Gap& w, NodeId& id) {
    for (int i = 0; i < 8; ++i) id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(w.hi >> (56 - 8 * i));
    for (int i = 0; i < 8; ++i) id[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(w.mid >> (56 - 8 * i));
    for (int i = 0; i < 4; ++i) id[static_cast<std::size_t>(16 + i)] = static_cast<std::uint8_t>(w.lo >> (24 - 8 * i));
  }
  // x - y mod 2^160, with borrows between the words.
  static Gap sub(const Gap& x, const Gap& y) {
    Gap d;
    d.lo = x.lo - y.lo;
    const std::uint64_t b0 = x.lo < y.lo;
    d.mid = x.mid - y.mid - b0;
    const std::uint64_t b1 = x.mid < y.mid || (x.mid == y.mid && b0);
    d.hi = x.hi - y.hi - b1;
    return d;
  }
  // The low `bits` bits of 160, as words.
  static Gap mask_for(int bits) {
    Gap m;
    const int clear = 160 - bits;  // high bits cleared, from the top of hi
    m.hi = clear >= 64 ? 0 : ~std::uint64_t{0} >> clear;
    m.mid = clear <= 64 ? ~std::uint64_t{0} : clear >= 128 ? 0 : ~std::uint64_t{0} >> (clear - 64);
    m.lo = clear <= 128 ? ~std::uint32_t{0} : static_cast<std::uint32_t>(~std::uint32_t{0} >> (clear - 128));
    return m;
  }
  int bits_;
  Gap mask_ = mask_for(bits_);
};

// An id's short form for people: the first 8 hex digits (of the used bits).
std::string short_id(const NodeId& id);

}  // namespace sv::dht
