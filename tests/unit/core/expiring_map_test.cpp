#include <doctest/doctest.h>

#include "servent/core/expiring_map.hpp"

using namespace sv;

namespace {
struct IntHash {
  std::size_t operator()(int v) const { return std::hash<int>{}(v); }
};
Instant at(int ms) { return Instant{Duration(ms)}; }
}  // namespace

TEST_CASE("expiring_map_rejects_duplicates_until_expiry") {
  ExpiringMap<int, int, IntHash> m(100, Duration(1000));
  CHECK(m.insert(1, 10, at(0)));
  CHECK_FALSE(m.insert(1, 11, at(500)));
  CHECK(*m.find(1, at(500)) == 10);
  CHECK(m.find(1, at(1001)) == nullptr);
  CHECK(m.insert(1, 12, at(1001)));
  CHECK(*m.find(1, at(1001)) == 12);
}

TEST_CASE("expiring_map_is_bounded_oldest_first") {
  ExpiringMap<int, int, IntHash> m(3, Duration(100000));
  for (int i = 0; i < 10; ++i) m.insert(i, i, at(i));
  CHECK(m.size() == 3);
  CHECK(m.find(6, at(10)) == nullptr);
  CHECK(m.find(7, at(10)) != nullptr);
  CHECK(m.find(9, at(10)) != nullptr);
}

TEST_CASE("expiring_map_put_overwrites_and_stays_bounded") {
  ExpiringMap<int, int, IntHash> m(4, Duration(100000));
  for (int i = 0; i < 1000; ++i) m.put(i % 2, i, at(i));
  CHECK(m.size() == 2);
  CHECK(*m.find(1, at(1000)) == 999);
}

TEST_CASE("expiring_map_counts_what_its_bound_pushed_out_not_what_expired") {
  ExpiringMap<int, int, IntHash> m(10, Duration(1000));
  for (int i = 0; i < 15; ++i) m.insert(i, i, at(0));
  CHECK(m.evicted() == 5);
  CHECK(m.size() == 10);
  m.insert(100, 0, at(5000));  // the others expired first: nothing evicted for room
  CHECK(m.evicted() == 5);
  CHECK(m.size() == 1);
}
