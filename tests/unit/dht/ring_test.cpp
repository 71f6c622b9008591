// Identifier arithmetic on the ring (servent/dht/ring.hpp), on a 160-bit
// ring and on small ones (the distances must wrap at 2^bits, not 2^160).
#include <doctest/doctest.h>

#include <bit>

#include "servent/dht/ring.hpp"

using namespace sv::dht;

namespace {
NodeId small(std::uint32_t v) {
  NodeId id{};
  id[16] = static_cast<std::uint8_t>(v >> 24);
  id[17] = static_cast<std::uint8_t>(v >> 16);
  id[18] = static_cast<std::uint8_t>(v >> 8);
  id[19] = static_cast<std::uint8_t>(v);
  return id;
}
}  // namespace

TEST_CASE("ring_intervals_fingers_and_distances_wrap_at_two_to_the_bits") {
  const Ring r8(8);
  // (250, 5) wraps through 0.
  CHECK(Ring::between(small(250), small(2), small(5)));
  CHECK(Ring::between(small(250), small(255), small(5)));
  CHECK_FALSE(Ring::between(small(250), small(5), small(5)));
  CHECK(Ring::between_right(small(250), small(5), small(5)));
  CHECK_FALSE(Ring::between(small(250), small(100), small(5)));
  // a == b: the whole ring but a.
  CHECK(Ring::between(small(7), small(100), small(7)));
  CHECK_FALSE(Ring::between(small(7), small(7), small(7)));
  // Finger starts: (id + 2^i) mod 2^8.
  CHECK(r8.add_pow2(small(250), 3) == small(2));
  CHECK(r8.add_pow2(small(1), 7) == small(129));
  // Reduced: only the low 8 bits survive.
  CHECK(r8.reduce(small(0x1234)) == small(0x34));
  // Clockwise distances mod 2^8 (a 160-bit wrap would make 250 -> 5 huge).
  CHECK(r8.distance(small(250), small(5)) == 11.0);
  CHECK(r8.distance(small(5), small(250)) == 245.0);
  CHECK(r8.distance(small(9), small(9)) == 0.0);
  const Ring r160;
  NodeId top{};
  top.fill(0xFF);
  CHECK(r160.add_pow2(top, 0) == NodeId{});  // wraps to zero
  CHECK(r160.distance(top, NodeId{}) == 1.0);
}

TEST_CASE("ring_minus_borrows_across_words_and_masks_every_width") {
  // Borrows carry from byte 16 into byte 15 and from byte 8 into byte 7
  // (the three words an id is computed in).
  const Ring r160;
  NodeId b{}, a{};
  b[7] = 1;  // 2^96
  a[19] = 1;
  NodeId want{};
  for (std::size_t i = 8; i < 20; ++i) want[i] = 0xFF;  // 2^96 - 1
  CHECK(r160.minus(b, a) == want);
  CHECK(r160.distance(a, b) == 0x1p96 - 1);
  // Wrapping below zero: 0 - 1 = 2^160 - 1 on the full ring.
  NodeId all{};
  all.fill(0xFF);
  CHECK(r160.minus(NodeId{}, a) == all);
  // On narrower rings the same difference keeps only the low bits, at
  // widths that end inside each word and on their edges.
  for (const int bits : {1, 7, 31, 32, 33, 64, 65, 96, 100, 128, 129, 159}) {
    const Ring r(bits);
    const NodeId d = r.minus(NodeId{}, a);  // 2^bits - 1
    CHECK(d == r.reduce(all));
    int set = 0;
    for (auto byte : d) set += std::popcount(byte);
    CHECK(set == bits);
    CHECK(r.distance(d, NodeId{}) == 1.0);  // (2^bits - 1) + 1 wraps to 0
  }
}
