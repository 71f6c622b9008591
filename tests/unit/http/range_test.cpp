#include <doctest/doctest.h>

#include "http/range.hpp"

using namespace sv::http;
using K = RangeRequest::Kind;

TEST_CASE("range_cases") {
  struct Case {
    const char* header;
    std::uint64_t size;
    K kind;
    std::uint64_t first, last;
  };
  const Case cases[] = {
      {"bytes=0-99", 1000, K::Satisfiable, 0, 99},
      {"bytes=100-", 1000, K::Satisfiable, 100, 999},
      {"bytes=-100", 1000, K::Satisfiable, 900, 999},
      {"bytes=-5000", 1000, K::Satisfiable, 0, 999},
      {"bytes=990-5000", 1000, K::Satisfiable, 990, 999},
      {"bytes=999-999", 1000, K::Satisfiable, 999, 999},
      {"BYTES = 1-2", 1000, K::Satisfiable, 1, 2},
      {"bytes=1000-", 1000, K::Unsatisfiable, 0, 0},
      {"bytes=5000-6000", 1000, K::Unsatisfiable, 0, 0},
      {"bytes=-0", 1000, K::Unsatisfiable, 0, 0},
      {"bytes=0-", 0, K::Unsatisfiable, 0, 0},
      {"bytes=5-1", 1000, K::None, 0, 0},
      {"bytes=0-1,5-6", 1000, K::None, 0, 0},
      {"items=0-1", 1000, K::None, 0, 0},
      {"bytes=abc", 1000, K::None, 0, 0},
      {"bytes=99999999999999999999999-", 1000, K::None, 0, 0},
  };
  for (const auto& c : cases) {
    CAPTURE(c.header);
    auto r = parse_range(c.header, c.size);
    CHECK(r.kind == c.kind);
    if (c.kind == K::Satisfiable) {
      CHECK(r.range.first == c.first);
      CHECK(r.range.last == c.last);
    }
  }
}

TEST_CASE("content_range_accepts_standard_and_shareaza_forms") {
  auto a = parse_content_range("bytes 0-99/1000");
  REQUIRE(a);
  CHECK(a->range == ByteRange{0, 99});
  CHECK(a->total == 1000);
  // Shareaza, seen in ndpi_gnutella_streams_trimmed.pcap.
  auto b = parse_content_range("bytes=0-1048575/3234212");
  REQUIRE(b);
  CHECK(b->range.last == 1048575);
  CHECK(b->total == 3234212);
  CHECK_FALSE(parse_content_range("bytes 5-1/10"));
  CHECK_FALSE(parse_content_range("bytes 0-10/10"));
  CHECK(format_content_range({0, 99}, 1000) == "bytes 0-99/1000");
}
