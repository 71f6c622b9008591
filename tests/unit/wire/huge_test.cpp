#include <doctest/doctest.h>

#include "unit/wire/vectors.hpp"
#include "wire/gnutella/descriptors.hpp"
#include "wire/gnutella/huge.hpp"

using namespace sv;
using namespace sv::wire::gnutella;
namespace vec = sv::test::vec;

TEST_CASE("extensions_of_gtk_gnutella_query_ask_for_urns") {
  auto q = decode_query(vec::payload_of(vec::kQuery));
  auto e = decode_extensions(q->extensions);
  REQUIRE(e.urns.size() == 1);
  CHECK(e.urns[0] == "urn:");
  CHECK_FALSE(e.ggep);
}

TEST_CASE("extensions_of_gtk_gnutella_hit_hold_urn_then_ggep") {
  auto h = decode_query_hit(vec::payload_of(vec::kQueryHit));
  const auto& block = h->results.at(0).extensions;
  auto e = decode_extensions(block);
  REQUIRE(e.urns.size() == 1);
  CHECK(e.urns[0] == "urn:sha1:DDYNWMEKM4DXLFRYVF2FJQJWVMM4DADB");
  REQUIRE(e.ggep);
  CHECK(e.ggep->front() == 0xc3);
  CHECK(encode_extensions(e) == block);
}

TEST_CASE("extensions_keep_unknown_items_and_round_trip") {
  Extensions e;
  e.urns = {"urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5"};
  e.other = {test::text("<?xml version='1.0'?>")};
  e.ggep = test::hex("c3 82 48 40");
  auto b = encode_extensions(e);
  auto back = decode_extensions(b);
  CHECK(back.urns == e.urns);
  CHECK(back.other == e.other);
  CHECK(back.ggep == e.ggep);
  CHECK(decode_extensions({}).urns.empty());
}
