#include <doctest/doctest.h>

#include <vector>

#include "servent/core/types.hpp"
#include "share/range_set.hpp"

using namespace sv::share;

TEST_CASE("range_set_merges_and_splits") {
  RangeSet s;
  s.add(10, 20);
  s.add(30, 40);
  s.add(20, 30);  // bridges both
  CHECK(s.intervals() == std::vector<Interval>{{10, 40}});
  CHECK(s.total() == 30);
  s.remove(15, 25);
  CHECK(s.intervals() == std::vector<Interval>{{10, 15}, {25, 40}});
  CHECK(s.total() == 20);
  CHECK(s.contains(25, 40));
  CHECK_FALSE(s.contains(14, 16));
  CHECK(s.gaps(50) == std::vector<Interval>{{0, 10}, {15, 25}, {40, 50}});
  CHECK(s.first_gap(50, 12) == Interval{15, 25});
  CHECK(s.prefix() == 0);
  s.add(0, 10);
  CHECK(s.prefix() == 15);
  CHECK(RangeSet::parse(s.to_string()) == s);
  CHECK_FALSE(RangeSet::parse("5-3"));
  CHECK_FALSE(RangeSet::parse("x"));
  CHECK(RangeSet::parse("")->empty());
}

TEST_CASE("range_set_matches_a_bitmap_under_random_operations") {
  sv::Rng rng(3);
  RangeSet s;
  std::vector<bool> bits(200, false);
  for (int step = 0; step < 5000; ++step) {
    auto a = rng.below(200), b = rng.below(201);
    if (a > b) std::swap(a, b);
    const bool add = rng.below(3) != 0;
    if (add) {
      s.add(a, b);
    } else {
      s.remove(a, b);
    }
    for (auto i = a; i < b; ++i) bits[i] = add;
    std::uint64_t total = 0;
    for (bool x : bits) total += x;
    REQUIRE(s.total() == total);
  }
  for (std::uint64_t i = 0; i < 200; ++i) CHECK(s.contains(i, i + 1) == bits[i]);
}
