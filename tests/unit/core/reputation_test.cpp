// Reputation (what this node saw of each peer) and auto mode's election.
#include <doctest/doctest.h>

#include "servent/gnutella/reputation.hpp"
#include "unit/core/gnutella_harness.hpp"

using namespace sv;
using namespace sv::test;
namespace gn = sv::wire::gnutella;

TEST_CASE("a_new_peer_starts_at_10_and_earns_or_loses_reputation_only_by_what_we_saw") {
  ReputationBook book;
  const Endpoint a{0x7f000002, 6346}, b{0x7f000003, 6346};
  const Instant t{Duration(0)};
  CHECK(book.score(a) == 10);
  book.link_time(a, 90min, t);
  CHECK(book.score(a) == 10 + 90);
  book.link_time(a, 100h, t);
  CHECK(book.score(a) == 10 + 400);  // uptime counts up to 400
  book.reachable(a, t);
  CHECK(book.score(a) == 510);
  book.served_us(a.ip, t);  // a transfer knows the address only
  book.we_served(a.ip, t);
  CHECK(book.score(a) == 510 + 20 + 5);
  for (int i = 0; i < 30; ++i) book.served_us(a.ip, t);
  CHECK(book.score(a) == 510 + 300 + 5);
  book.error(b, t);
  CHECK(book.score(b) == 0);  // 10 - 50, clamped
  book.drops(a, 5000, t);
  CHECK(book.score(a) == 510 + 300 + 5 - 50);
  // Saved and read back the same; junk lines skipped.
  ReputationBook again;
  CHECK(again.load(book.save() + "garbage line\n1.2.3.4:5 x\n") == 2);
  CHECK(again.score(a) == book.score(a));
  CHECK(again.score(b) == 0);
  // Bounded: the least recently seen go first.
  ReputationBook small(2);
  small.error(Endpoint{1, 1}, Instant{Duration(1)});
  small.error(Endpoint{2, 1}, Instant{Duration(2'000'000'000)});
  small.error(Endpoint{3, 1}, Instant{Duration(3'000'000'000)});
  CHECK(small.size() == 2);
  CHECK(small.find(Endpoint{1, 1}) == nullptr);
  CHECK(small.find(Endpoint{3, 1}) != nullptr);
}

TEST_CASE("the_core_scores_peers_by_link_time_reachability_and_protocol_errors") {
  GnutellaConfig cfg;
  cfg.mode = NodeMode::Ultrapeer;
  cfg.election_interval = 60s;
  Harness h(cfg);
  // An ultrapeer we dialled: it accepted (reachable), then stayed 30 min.
  ConnId out = h.connect_out(Endpoint{0x7f000005, 6346});
  h.take_text(out);
  h.feed(out, "GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: True\r\n\r\n");
  REQUIRE(h.core.established() == 1);
  for (int i = 0; i < 30; ++i) {
    h.now = h.now + 60s;
    h.core.handle_timeout(h.now);
    h.drain();
  }
  CHECK(h.core.reputation().score(Endpoint{0x7f000005, 6346}) == 10 + 100 + 30);
  // A peer saying where it listens, then sending garbage: below where it started.
  h.peer_06(ConnId{50}, "X-Ultrapeer: True\r\nListen-IP: 127.0.0.9:7000\r\n");
  h.feed(ConnId{50}, descriptor(gn::Type::Pong, 3, 0, wire::Bytes(5, 0), 9));
  CHECK(h.closed(ConnId{50}));
  CHECK(h.core.reputation().score(Endpoint{0x7f000009, 7000}) == 0);
  int shown = -1;
  for (const auto& p : h.core.peers()) {
    if (p.conn == out) shown = p.reputation;
  }
  CHECK(shown == 140);
}

TEST_CASE("a_leaf_dials_known_ultrapeers_first_and_the_best_reputed_first") {
  GnutellaConfig cfg;
  cfg.mode = NodeMode::Leaf;
  cfg.min_peers = 1;
  cfg.leaf_ultrapeers = 1;
  Harness h(cfg);
  const Endpoint plain{0x7f000011, 6346}, poor{0x7f000012, 6346}, good{0x7f000013, 6346};
  auto& hosts = h.core.host_cache();
  hosts.add(good, h.now);
  hosts.add(poor, h.now);
  hosts.add(plain, h.now + 1s);  // the most recent, but not known as an ultrapeer
  hosts.mark_ultrapeer(good, true);
  hosts.mark_ultrapeer(poor, true);
  h.core.reputation().link_time(good, 2h, h.now);
  h.core.handle_timeout(h.now);
  h.drain();
  REQUIRE(h.out.connects.size() == 1);
  CHECK(h.out.connects[0].to == good);
}

namespace {

GnutellaConfig electing() {
  GnutellaConfig c;
  c.mode = NodeMode::Auto;
  c.election_interval = 60s;
  c.promote_uptime = 5min;
  c.promote_chance = 1;
  c.demote_idle = 10min;
  c.role_hold = 10min;
  return c;
}

void run_for(Harness& h, Duration d) {
  const Instant end = h.now + d;
  while (h.now < end) {
    h.now = h.now + 30s;
    h.core.handle_timeout(h.now);
    h.drain();
  }
}

}  // namespace

TEST_CASE("auto_promotes_a_reachable_leaf_that_finds_no_ultrapeer_once_it_has_been_up_long_enough") {
  Harness h(electing());
  h.core.handle_timeout(h.now);
  // An ultrapeer of its own (known by its Listen-IP, so the bootstrap rule
  // does not apply), and someone connected to us: we are reachable.
  CHECK(h.peer_06(ConnId{1}, "X-Ultrapeer: True\r\nListen-IP: 127.0.0.30:6346\r\n").starts_with("GNUTELLA/0.6 200"));
  CHECK(h.peer_06(ConnId{2}, "X-Ultrapeer: False\r\n").starts_with("GNUTELLA/0.6 503 Shielded leaf node"));
  run_for(h, 10min);
  CHECK(h.core.role() == Role::Leaf);  // served: no reason to change
  // Our ultrapeer goes away and no other answers: after two checks without
  // one, we become one.
  h.core.handle_closed(ConnId{1}, CloseReason::PeerClosed, h.now);
  h.drain();
  run_for(h, 1min);
  CHECK(h.core.role() == Role::Leaf);
  run_for(h, 3min);
  CHECK(h.core.role() == Role::Ultrapeer);
  CHECK(h.core.stat(GnutellaCore::kPromotions) == 1);
  CHECK(h.core.stat(GnutellaCore::kPromotionsBootstrap) == 0);
}

TEST_CASE("auto_never_changes_role_faster_than_the_hysteresis_and_demotes_without_leaves") {
  Harness h(electing());
  h.core.handle_timeout(h.now);
  // Bootstrap: a leaf makes it an ultrapeer at once; the leaf goes away.
  CHECK(h.peer_06(ConnId{1}, "X-Ultrapeer: False\r\n").starts_with("GNUTELLA/0.6 200"));
  CHECK(h.core.role() == Role::Ultrapeer);
  const Instant promoted = h.now;
  h.core.handle_closed(ConnId{1}, CloseReason::PeerClosed, h.now);
  h.peer_06(ConnId{2}, "X-Ultrapeer: True\r\n");  // another ultrapeer around
  Instant demoted{Duration(0)};
  for (int i = 0; i < 60 && h.core.role() == Role::Ultrapeer; ++i) {
    run_for(h, 30s);
    demoted = h.now;
  }
  CHECK(h.core.role() == Role::Leaf);
  CHECK(demoted - promoted >= 10min);
  CHECK(h.core.stat(GnutellaCore::kDemotions) == 1);
  // Leaves ask again at once: no promotion inside the hold time.
  h.peer_06(ConnId{3}, "X-Ultrapeer: True\r\n");
  for (std::uint64_t i = 4; i < 8; ++i) h.peer_06(ConnId{i}, "X-Ultrapeer: False\r\n");
  run_for(h, 8min);
  CHECK(h.core.role() == Role::Leaf);
  CHECK(h.core.stat(GnutellaCore::kRoleChanges) == 2);
}

TEST_CASE("a_leaf_short_of_ultrapeers_that_finds_only_nearly_full_ones_counts_as_demand_and_promotes") {
  // One parent whose leaf slots are nearly full (or not), and every other
  // ultrapeer we dial nearly full too: we leave their last slots to leaves
  // that have none, and that refusal is what tells us leaves need more
  // ultrapeers. With a parent that has room, the same refusals are no demand.
  for (const bool parent_full : {true, false}) {
    CAPTURE(parent_full);
    GnutellaConfig cfg = electing();
    cfg.min_peers = 1;  // (a leaf then looks for its leaf_ultrapeers)
    Harness h(cfg);
    h.core.handle_timeout(h.now);
    const std::string needed = parent_full ? "True" : "False";
    REQUIRE(h.peer_06(ConnId{1}, "X-Ultrapeer: True\r\nX-Ultrapeer-Needed: " + needed + "\r\nListen-IP: 127.0.0.30:6346\r\n")
                .starts_with("GNUTELLA/0.6 200"));
    run_for(h, 6min);  // up long enough, served by one parent: no demand yet
    REQUIRE(h.core.role() == Role::Leaf);
    std::uint64_t declined = 0;
    for (std::uint32_t k = 0; k < 6 && h.core.role() == Role::Leaf; ++k) {
      // An ultrapeer we hear of (as from a Pong): dialled from the cache.
      const Endpoint up{0x7f000040 + k, 6346};
      h.core.host_cache().add(up, h.now);
      h.core.host_cache().mark_ultrapeer(up, true);
      for (const auto& cc : h.out.connects) h.core.handle_closed(cc.conn, CloseReason::ConnectFailed, h.now);
      h.out.connects.clear();
      h.core.handle_timeout(h.now);
      h.drain();
      REQUIRE(h.out.connects.size() == 1);
      REQUIRE(h.out.connects[0].to == up);
      const ConnId out = h.out.connects[0].conn;
      h.core.handle_connected(out, up, Direction::Outbound, h.now);
      h.drain();
      h.take_text(out);
      h.feed(out, "GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: True\r\nX-Ultrapeer-Needed: True\r\n\r\n");
      CHECK(h.closed(out));  // we leave its last slots to leaves without one
      CHECK(h.core.stat(GnutellaCore::kCloseEnoughUltrapeers) == ++declined);
      h.core.handle_closed(out, CloseReason::Normal, h.now);
      h.drain();
      run_for(h, 1min);
    }
    CHECK(h.core.role() == (parent_full ? Role::Ultrapeer : Role::Leaf));
    CHECK(h.core.stat(GnutellaCore::kPromotions) == (parent_full ? 1u : 0u));
    // (full: two checks of demand, then the chance; not all six dials needed)
    CHECK(declined == (parent_full ? 3u : 6u));
  }
}
