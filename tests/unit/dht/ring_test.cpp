// Identifier arithmetic on the ring (servent/dht/ring.hpp), on a 160-bit
// ring and on small ones (the distances must wrap at 2^bits, not 2^160).
#include <doctest/doctest.h>

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
