// Dynamic querying: the step logic alone, then an ultrapeer running it for a
// leaf (and a leaf answering Query-Status).
#include <doctest/doctest.h>

#include "servent/gnutella/dynamic_query.hpp"
#include "unit/core/gnutella_harness.hpp"

using namespace sv;
using namespace sv::test;
namespace gn = sv::wire::gnutella;

TEST_CASE("horizon_counts_the_ultrapeers_a_link_reaches") {
  CHECK(DynamicQuery::horizon(32, 1) == 1);
  CHECK(DynamicQuery::horizon(32, 2) == 1 + 31);
  CHECK(DynamicQuery::horizon(32, 3) == 1 + 31 + 31 * 31);
  CHECK(DynamicQuery::horizon(1, 4) == 4);
}

TEST_CASE("a_dynamic_query_probes_then_widens_one_link_at_a_time_until_it_has_enough") {
  DqConfig cfg;
  cfg.wanted = 100;
  cfg.probe_links = 3;
  cfg.max_ttl = 4;
  cfg.hop_wait = 2s;
  std::vector<DynamicQuery::Link> links;
  for (std::uint64_t i = 1; i <= 8; ++i) links.push_back({ConnId{i}, 10});
  Instant t{Duration(0)};
  DynamicQuery dq(links, cfg, t);
  auto probe = dq.step(0, t);
  REQUIRE(probe.size() == 3);
  for (const auto& s : probe) CHECK(s.ttl == 1);
  CHECK(dq.step(0, t + 1s).empty());  // waiting for the probe's hits
  // Nothing came back: at most one result from the 3 hosts reached, so this
  // link's share (100 / 6 links left) needs 50 hosts: TTL 3 (1 + 9 + 81).
  auto wide = dq.step(0, t + 2s);
  REQUIRE(wide.size() == 1);
  CHECK(wide[0].ttl == 3);
  CHECK(dq.next_step() == t + 2s + 6s);
  // Still nothing from 94 hosts: the next link reaches as far as allowed.
  auto wider = dq.step(0, t + 8s);
  REQUIRE(wider.size() == 1);
  CHECK(wider[0].ttl == 4);
  CHECK(dq.next_step() == t + 8s + 8s);
  // Plenty per host so far: a small TTL is enough for the next one.
  DynamicQuery dq2(links, cfg, t);
  dq2.step(0, t);
  auto narrow = dq2.step(60, t + 2s);  // 60 results from 3 hosts
  REQUIRE(narrow.size() == 1);
  CHECK(narrow[0].ttl == 1);
  CHECK(dq2.step(100, t + 10s).empty());
  CHECK(dq2.end() == DynamicQuery::End::Satisfied);
  // Links of today's degree (25 ultrapeers each) and nothing found: the
  // steps still widen to the largest TTL (a mesh grown over time is several
  // hops across, and a rare file's holders lie beyond TTL 3).
  std::vector<DynamicQuery::Link> dense;
  for (std::uint64_t i = 1; i <= 25; ++i) dense.push_back({ConnId{i}, 25});
  DynamicQuery dq4(dense, cfg, t);
  REQUIRE(dq4.step(0, t).size() == 3);
  std::vector<std::uint8_t> ttls;
  while (dq4.end() == DynamicQuery::End::Running && ttls.size() < 4) {
    for (const auto& s : dq4.step(0, dq4.next_step())) ttls.push_back(s.ttl);
  }
  CHECK(ttls == std::vector<std::uint8_t>{2, 3, 4, 4});
  // By default they go on to TTL 5, gtk-gnutella's largest.
  DqConfig widest = cfg;
  widest.max_ttl = DqConfig{}.max_ttl;
  DynamicQuery dq5(dense, widest, t);
  REQUIRE(dq5.step(0, t).size() == 3);
  ttls.clear();
  while (dq5.end() == DynamicQuery::End::Running && ttls.size() < 5) {
    for (const auto& s : dq5.step(0, dq5.next_step())) ttls.push_back(s.ttl);
  }
  CHECK(ttls == std::vector<std::uint8_t>{2, 3, 4, 5, 5});
  // Every link used: exhausted.
  DynamicQuery dq3({{ConnId{1}, 10}}, cfg, t);
  CHECK(dq3.step(0, t).size() == 1);
  CHECK(dq3.step(0, t + 1h).empty());
  CHECK(dq3.end() == DynamicQuery::End::Exhausted);
}

namespace {

constexpr std::string_view kGuidingLeaf = "X-Ultrapeer: False\r\nX-Query-Routing: 0.1\r\n";
constexpr std::string_view kNeighbour = "X-Ultrapeer: True\r\nX-Degree: 10\r\n";

wire::Bytes vendor(const gn::VendorMessage& m) {
  wire::Bytes p;
  gn::encode_vendor(p, m);
  return p;
}

wire::Bytes supports_query_status() {
  return vendor({gn::kVendorGeneric, gn::kVmMessagesSupported, 0,
                 gn::encode_messages_supported({{gn::kVendorBear, gn::kVmQueryStatusRequest, 1},
                                                {gn::kVendorBear, gn::kVmQueryStatusResponse, 1}})});
}

wire::Bytes hit_with(std::size_t n) {
  gn::QueryHit h;
  h.port = 6346;
  h.ip = 0x7f000009;
  for (std::size_t i = 0; i < n; ++i) h.results.push_back({static_cast<std::uint32_t>(i), 10, "x.txt", {}});
  wire::Bytes p;
  gn::encode_query_hit(p, h);
  return p;
}

// A leaf that answers Query-Status, and six ultrapeer neighbours.
std::vector<ConnId> guiding_leaf_and_neighbours(Harness& h, ConnId leaf) {
  h.peer_06(leaf, kGuidingLeaf);
  h.feed(leaf, descriptor(gn::Type::Vendor, 1, 0, supports_query_status(), 9));
  std::vector<ConnId> ups;
  for (std::uint64_t i = 10; i < 16; ++i) {
    ups.push_back(ConnId{i});
    h.peer_06(ConnId{i}, kNeighbour);
  }
  return ups;
}

struct Sends {
  std::map<std::uint64_t, std::uint8_t> ttl;  // link -> TTL of the query it got
};

Sends queries_sent(Harness& h, const std::vector<ConnId>& links) {
  Sends s;
  for (ConnId c : links) {
    for (const auto& [hdr, p] : h.take_descriptors(c)) {
      if (hdr.type == static_cast<std::uint8_t>(gn::Type::Query)) s.ttl[c.value] = hdr.ttl;
    }
  }
  return s;
}

}  // namespace

TEST_CASE("an_ultrapeer_runs_a_leafs_query_as_a_dynamic_query_and_stops_at_the_wanted_results") {
  GnutellaConfig cfg;
  cfg.mode = NodeMode::Ultrapeer;
  cfg.dq.leaf_wanted = 20;  // at each of the leaf's 3 ultrapeers
  cfg.dq.hop_wait = 2s;
  Harness h(cfg);
  ConnId leaf{1};
  const std::vector<ConnId> ups = guiding_leaf_and_neighbours(h, leaf);
  queries_sent(h, ups);
  h.take_descriptors(leaf);
  // The leaf's query (leaf-guided): a probe with TTL 1 on three links.
  h.feed(leaf, descriptor(gn::Type::Query, 3, 0, query_payload("wanted", 0x8000 | 0x1000), 42));
  auto probe = queries_sent(h, ups);
  CHECK(probe.ttl.size() == 3);
  for (const auto& [c, ttl] : probe.ttl) CHECK(ttl == 1);
  CHECK(h.core.stat(GnutellaCore::kDqStarted) == 1);
  // Five results come back through one of them, routed to the leaf.
  gn::Guid id;
  id.bytes.fill(42);
  h.feed(ConnId{probe.ttl.begin()->first}, descriptor(gn::Type::QueryHit, 6, 1, hit_with(5), 42));
  std::size_t hits = 0;
  for (const auto& [hdr, p] : h.take_descriptors(leaf)) hits += hdr.type == static_cast<std::uint8_t>(gn::Type::QueryHit);
  CHECK(hits == 1);
  // Next step: one more link, and the leaf is asked how many it kept.
  h.now = h.now + 2s;
  h.core.handle_timeout(h.now);
  h.drain();
  auto second = queries_sent(h, ups);
  REQUIRE(second.ttl.size() == 1);
  CHECK(probe.ttl.count(second.ttl.begin()->first) == 0);
  bool asked = false;
  for (const auto& [hdr, p] : h.take_descriptors(leaf)) {
    if (hdr.type != static_cast<std::uint8_t>(gn::Type::Vendor)) continue;
    auto vm = gn::decode_vendor(p);
    REQUIRE(vm);
    asked |= vm->vendor == gn::kVendorBear && vm->id == gn::kVmQueryStatusRequest && hdr.id == id;
  }
  CHECK(asked);
  CHECK(h.core.stat(GnutellaCore::kQueryStatusRequests) == 1);
  // The leaf says it kept 59 (from its 3 ultrapeers): our share, 19, is not
  // enough; 60 is.
  wire::Bytes body;
  wire::put_le16(body, 59);
  h.feed(leaf, descriptor(gn::Type::Vendor, 1, 0, vendor({gn::kVendorBear, gn::kVmQueryStatusResponse, 1, body}), 42));
  h.core.handle_timeout(h.now);
  CHECK(h.core.stat(GnutellaCore::kDqSatisfied) == 0);
  body.clear();
  wire::put_le16(body, 60);
  h.feed(leaf, descriptor(gn::Type::Vendor, 1, 0, vendor({gn::kVendorBear, gn::kVmQueryStatusResponse, 1, body}), 42));
  h.now = h.now + 1h;
  h.core.handle_timeout(h.now);
  h.drain();
  CHECK(queries_sent(h, ups).ttl.empty());
  CHECK(h.core.stat(GnutellaCore::kDqSatisfied) == 1);
  CHECK(h.core.stat(GnutellaCore::kDqSends) == 4);
}

TEST_CASE("a_leaf_saying_stop_ends_its_dynamic_query_and_a_malformed_status_is_counted") {
  GnutellaConfig cfg;
  cfg.mode = NodeMode::Ultrapeer;
  cfg.dq.hop_wait = 2s;
  Harness h(cfg);
  ConnId leaf{1};
  const std::vector<ConnId> ups = guiding_leaf_and_neighbours(h, leaf);
  h.feed(leaf, descriptor(gn::Type::Query, 3, 0, query_payload("stop me", 0x8000 | 0x1000), 43));
  queries_sent(h, ups);
  h.feed(leaf, descriptor(gn::Type::Vendor, 1, 0, vendor({gn::kVendorBear, gn::kVmQueryStatusResponse, 1, {1}}), 43));
  CHECK(h.core.stat(GnutellaCore::kDropVendorMalformed) == 1);
  h.feed(leaf, descriptor(gn::Type::Vendor, 1, 0, vendor({gn::kVendorBear, gn::kVmQueryStatusResponse, 1, {0xff, 0xff}}), 43));
  h.now = h.now + 2s;
  h.core.handle_timeout(h.now);
  h.drain();
  CHECK(queries_sent(h, ups).ttl.empty());
  CHECK(h.core.stat(GnutellaCore::kDqStopped) == 1);
  CHECK_FALSE(h.closed(leaf));
  // Vendor messages of every length from the leaf: none closes the link.
  for (std::size_t n = 0; n < 12; ++n) h.feed(leaf, descriptor(gn::Type::Vendor, 1, 0, wire::Bytes(n, 0x42), 50));
  CHECK_FALSE(h.closed(leaf));
  CHECK(h.core.stat(GnutellaCore::kDropVendorMalformed) == 1 + 8);
}

TEST_CASE("a_leaf_answers_its_ultrapeers_query_status_with_the_results_it_has") {
  GnutellaConfig cfg;
  cfg.mode = NodeMode::Leaf;
  Harness h(cfg);
  ConnId up{1};
  h.peer_06(up, "X-Ultrapeer: True\r\n");
  const gn::Guid id = h.core.search(Search{"anything", 3, {}}, h.now).guid;
  h.drain();
  bool guided = false;
  for (const auto& [hdr, p] : h.take_descriptors(up)) {
    if (hdr.type == static_cast<std::uint8_t>(gn::Type::Query)) guided = gn::decode_query(p)->min_speed & 0x1000;
  }
  CHECK(guided);
  auto status = [&](const gn::Guid& q) -> int {
    h.feed(up, gn::encode_descriptor(gn::Header{q, static_cast<std::uint8_t>(gn::Type::Vendor), 1, 0, 0},
                                     vendor({gn::kVendorBear, gn::kVmQueryStatusRequest, 1, {}})));
    int answer = -1;
    for (const auto& [hdr, p] : h.take_descriptors(up)) {
      auto vm = gn::decode_vendor(p);
      if (hdr.type == static_cast<std::uint8_t>(gn::Type::Vendor) && vm && vm->id == gn::kVmQueryStatusResponse) {
        CHECK(hdr.id == q);
        answer = *gn::decode_query_status(vm->body);
      }
    }
    return answer;
  };
  CHECK(status(id) == 0);
  h.feed(up, gn::encode_descriptor(gn::Header{id, static_cast<std::uint8_t>(gn::Type::QueryHit), 5, 1, 0}, hit_with(7)));
  CHECK(status(id) == 7);
  gn::Guid other;
  other.bytes.fill(9);
  CHECK(status(other) == 0xFFFF);  // not our query: stop
  CHECK(h.core.stat(GnutellaCore::kQueryStatusAnswers) == 3);
}
