#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "servent/core/types.hpp"
#include "servent/pcap/reassembly.hpp"

using namespace sv;
using namespace sv::pcap;

namespace {
struct Out {
  std::string data;
  std::vector<std::uint64_t> gaps;
  StreamReassembler r{[this](wire::ByteView b, std::uint64_t) { data.append(wire::as_chars(b)); },
                      [this](std::uint64_t n, std::uint64_t) {
                        gaps.push_back(n);
                        data.append(n, '?');
                      }};
};
}  // namespace

TEST_CASE("reassembly_orders_out_of_order_retransmitted_and_overlapping_segments") {
  const std::string text = "GNUTELLA CONNECT/0.6\r\nUser-Agent: x\r\n\r\n";
  const std::uint32_t isn = 0xFFFFFFF0u;  // wraps around in the middle
  // Segments of 5 bytes, plus overlapping duplicates.
  struct Seg {
    std::uint32_t seq;
    std::string data;
  };
  std::vector<Seg> segs;
  for (std::size_t i = 0; i < text.size(); i += 5) segs.push_back({isn + 1 + static_cast<std::uint32_t>(i), text.substr(i, 5)});
  segs.push_back({isn + 1 + 3, text.substr(3, 9)});  // overlaps two segments
  segs.push_back({isn + 1, text.substr(0, 5)});      // retransmission
  Rng rng(5);
  for (int round = 0; round < 200; ++round) {
    std::vector<Seg> order = segs;
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    Out o;
    o.r.segment(isn, true, {}, 1);
    for (const auto& s : order) o.r.segment(s.seq, false, wire::as_bytes(s.data), 2);
    o.r.finish(3);
    CHECK(o.data == text);
    CHECK(o.gaps.empty());
  }
}

TEST_CASE("reassembly_reports_a_hole_that_never_fills") {
  Out o;
  o.r.segment(100, true, {}, 1);
  o.r.segment(101, false, wire::as_bytes("abc"), 2);
  o.r.segment(110, false, wire::as_bytes("xyz"), 3);  // 6 bytes missing before it
  CHECK(o.data == "abc");
  o.r.finish(4);
  CHECK(o.gaps == std::vector<std::uint64_t>{6});
  CHECK(o.data == "abc??????xyz");
}

TEST_CASE("reassembly_starts_mid_stream_and_bounds_waiting_segments") {
  std::string got;
  std::uint64_t gap = 0;
  StreamReassembler r([&](wire::ByteView b, std::uint64_t) { got.append(wire::as_chars(b)); },
                      [&](std::uint64_t n, std::uint64_t) { gap += n; }, 10);
  r.segment(5000, false, wire::as_bytes("first"), 1);  // no SYN seen
  r.segment(5010, false, wire::as_bytes("0123456789"), 2);
  r.segment(5020, false, wire::as_bytes("abcdefghij"), 3);  // over the bound: skip the hole
  CHECK(gap == 5);
  CHECK(got == "first0123456789abcdefghij");
}
