// Roles (Ultrapeers 1.0) and query routing by QRP tables in GnutellaCore.
#include <doctest/doctest.h>

#include "servent/gnutella/qrp_route.hpp"
#include "unit/core/gnutella_harness.hpp"
#include "unit/wire/vectors.hpp"
#include "wire/gnutella/ggep.hpp"
#include "wire/gnutella/huge.hpp"

using namespace sv;
using namespace sv::test;
namespace gn = sv::wire::gnutella;

namespace {

constexpr std::string_view kAsLeaf = "X-Ultrapeer: False\r\nX-Query-Routing: 0.1\r\n";
constexpr std::string_view kAsUltrapeer = "X-Ultrapeer: True\r\nX-Query-Routing: 0.1\r\n";
constexpr std::string_view kAsLastHopUltrapeer =
    "X-Ultrapeer: True\r\nX-Query-Routing: 0.1\r\nX-Ultrapeer-Query-Routing: 0.1\r\n";

GnutellaConfig config(NodeMode mode) {
  GnutellaConfig c;
  c.mode = mode;
  return c;
}

int status_of(const std::string& answer) {
  auto r = gn::decode_handshake(wire::as_bytes(answer));
  return r ? r->status : -1;
}

// What a peer would send to give us `words` as its table.
std::vector<wire::Bytes> table_messages(std::initializer_list<std::string_view> words, int bits = 12) {
  QrpBits t(bits);
  for (auto w : words) t.add_word(w);
  return qrp_update(nullptr, t, 7);
}

void send_qrp(Harness& h, ConnId c, const wire::Bytes& payload, std::uint8_t hops = 0) {
  h.feed(c, descriptor(gn::Type::Qrp, 1, hops, payload, static_cast<std::uint8_t>(payload.size())));
}

void send_table(Harness& h, ConnId c, std::initializer_list<std::string_view> words) {
  for (const auto& m : table_messages(words)) send_qrp(h, c, m);
}

// The QRP messages sent to `c`, applied to a table as the peer would.
gn::QrpTable received_table(Harness& h, ConnId c, std::size_t* resets = nullptr, std::size_t* patches = nullptr) {
  gn::QrpTable t;
  for (const auto& [hdr, payload] : h.take_descriptors(c)) {
    if (hdr.type != static_cast<std::uint8_t>(gn::Type::Qrp)) continue;
    CHECK(hdr.ttl == 1);
    CHECK(hdr.hops == 0);
    auto m = gn::decode_qrp(payload);
    REQUIRE(m);
    if (resets && std::holds_alternative<gn::QrpReset>(*m)) ++*resets;
    if (patches && std::holds_alternative<gn::QrpPatch>(*m)) ++*patches;
    CHECK(t.apply(*m) == gn::QrpTable::Error::None);
  }
  return t;
}

std::size_t queries(Harness& h, ConnId c) {
  std::size_t n = 0;
  for (const auto& [hdr, payload] : h.take_descriptors(c)) n += hdr.type == static_cast<std::uint8_t>(gn::Type::Query);
  return n;
}

}  // namespace

TEST_CASE("a_leaf_takes_ultrapeers_up_to_its_limit_and_refuses_leaves_as_a_shielded_leaf") {
  Harness h(config(NodeMode::Leaf));
  CHECK(h.core.role() == Role::Leaf);
  for (std::uint64_t i = 1; i <= 3; ++i) CHECK(status_of(h.peer_06(ConnId{i}, kAsUltrapeer)) == 200);
  CHECK(h.core.established() == 3);
  // A fourth ultrapeer, and any leaf: "503 Shielded leaf node", with where
  // else to go.
  const std::string fourth = h.peer_06(ConnId{4}, kAsUltrapeer);
  CHECK(fourth.starts_with("GNUTELLA/0.6 503 Shielded leaf node\r\n"));
  const std::string leaf = h.peer_06(ConnId{5}, kAsLeaf);
  CHECK(leaf.starts_with("GNUTELLA/0.6 503 Shielded leaf node\r\n"));
  CHECK(leaf.find("X-Ultrapeer: False") != std::string::npos);
  CHECK(h.closed(ConnId{4}));
  CHECK(h.closed(ConnId{5}));
  CHECK(h.core.stat(GnutellaCore::kRefusedShielded) == 2);
  CHECK(h.core.established() == 3);
  for (const auto& p : h.core.peers()) {
    if (p.established) CHECK(p.link == "parent");
  }
}

TEST_CASE("an_ultrapeer_holds_max_leaves_and_max_ultrapeers_and_says_503_with_x_try_ultrapeers_beyond") {
  GnutellaConfig cfg = config(NodeMode::Ultrapeer);
  cfg.max_leaves = 2;
  cfg.max_ultrapeers = 1;
  Harness h(cfg);
  h.core.host_cache().add(Endpoint{0x7f000063, 6346}, h.now);
  h.core.host_cache().mark_ultrapeer(Endpoint{0x7f000063, 6346}, true);
  h.core.host_cache().add(Endpoint{0x7f000064, 6346}, h.now);  // not known as an ultrapeer
  CHECK(status_of(h.peer_06(ConnId{1}, kAsLeaf)) == 200);
  CHECK(status_of(h.peer_06(ConnId{2}, kAsLeaf)) == 200);
  const std::string third = h.peer_06(ConnId{3}, kAsLeaf);
  CHECK(third.starts_with("GNUTELLA/0.6 503 Too many leaves\r\n"));
  CHECK(third.find("X-Try-Ultrapeers: 127.0.0.99:6346\r\n") != std::string::npos);
  CHECK(third.find("X-Try: 127.0.0.100:6346\r\n") != std::string::npos);  // ultrapeers only in the former
  CHECK(status_of(h.peer_06(ConnId{4}, kAsUltrapeer)) == 200);
  CHECK(h.peer_06(ConnId{5}, kAsUltrapeer).starts_with("GNUTELLA/0.6 503 Too many ultrapeers\r\n"));
  CHECK(h.core.stat(GnutellaCore::kRefusedLeavesFull) == 1);
  CHECK(h.core.stat(GnutellaCore::kRefusedUltrapeersFull) == 1);
  std::map<std::string, int> kinds;
  for (const auto& p : h.core.peers()) {
    if (p.established) ++kinds[std::string(p.link)];
  }
  CHECK(kinds["leaf"] == 2);
  CHECK(kinds["ultrapeer"] == 1);
}

TEST_CASE("auto_mode_starts_as_a_leaf_and_becomes_the_ultrapeer_a_leaf_asks_for_when_it_has_none") {
  Harness h(config(NodeMode::Auto));
  CHECK(h.core.role() == Role::Leaf);
  const std::string answer = h.peer_06(ConnId{1}, kAsLeaf);
  CHECK(status_of(answer) == 200);
  CHECK(answer.find("X-Ultrapeer: True") != std::string::npos);
  CHECK(h.core.role() == Role::Ultrapeer);
  CHECK(h.core.stat(GnutellaCore::kRoleChanges) == 1);
  bool changed = false;
  while (auto e = h.core.poll_event()) changed |= std::holds_alternative<event::RoleChanged>(*e);
  CHECK(changed);
}

TEST_CASE("auto_mode_with_an_ultrapeer_of_its_own_stays_a_leaf_and_refuses_leaves") {
  Harness h(config(NodeMode::Auto));
  CHECK(status_of(h.peer_06(ConnId{1}, kAsUltrapeer)) == 200);
  CHECK(h.peer_06(ConnId{2}, kAsLeaf).starts_with("GNUTELLA/0.6 503 Shielded leaf node"));
  CHECK(h.core.role() == Role::Leaf);
  CHECK(h.core.stat(GnutellaCore::kRoleChanges) == 0);
}

TEST_CASE("a_leaf_dialling_another_leaf_closes_and_a_peer_changing_its_role_in_its_final_answer_is_closed") {
  SUBCASE("leaf to leaf") {
    Harness h(config(NodeMode::Leaf));
    ConnId c = h.connect_out(Endpoint{0x7f000005, 6346});
    h.take_text(c);
    h.feed(c, "GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: False\r\n\r\n");
    CHECK(h.closed(c));
    CHECK(h.core.stat(GnutellaCore::kCloseLeafToLeaf) == 1);
    CHECK(h.core.established() == 0);
  }
  SUBCASE("a leaf that says it is an ultrapeer after all") {
    Harness h(config(NodeMode::Ultrapeer));
    h.peer_06(ConnId{1}, kAsLeaf, "X-Ultrapeer: True\r\n");
    CHECK(h.closed(ConnId{1}));
    CHECK(h.core.stat(GnutellaCore::kCloseRoleLie) == 1);
    CHECK(h.core.established() == 0);
  }
}

TEST_CASE("a_leaf_rests_an_ultrapeer_that_was_full_and_tries_the_next_until_busy_rest_or_a_pong_says_it_has_room") {
  GnutellaConfig cfg = config(NodeMode::Leaf);
  cfg.min_peers = 8;
  Harness h(cfg);
  // One ultrapeer it has (a leaf with none asks the full ones again sooner:
  // the next test).
  REQUIRE(h.peer_06(ConnId{100}, "X-Ultrapeer: True\r\n").starts_with("GNUTELLA/0.6 200"));
  std::vector<Endpoint> ups;
  for (std::uint32_t i = 0; i < 5; ++i) {
    ups.push_back(Endpoint{0x7f000010 + i, 6346});
    h.core.host_cache().add(ups.back(), h.now);
    h.core.host_cache().mark_ultrapeer(ups.back(), true);
  }
  auto dials = [&](Endpoint e) {
    std::vector<ConnId> ids;
    for (const auto& c : h.out.connects) {
      if (c.to == e) ids.push_back(c.conn);
    }
    return ids;
  };
  auto refuse = [&](ConnId c, Endpoint e) {
    h.core.handle_connected(c, e, Direction::Outbound, h.now);
    h.drain();
    h.take_text(c);
    h.feed(c, "GNUTELLA/0.6 503 Too many leaves\r\nX-Ultrapeer: True\r\n\r\n");
    REQUIRE(h.closed(c));
    h.core.handle_closed(c, CloseReason::HandshakeRefused, h.now);
    h.core.handle_timeout(h.now);  // (its poll_timeout says now: a candidate is waiting)
    h.drain();
  };
  h.core.handle_timeout(h.now);
  h.drain();
  CHECK(h.out.connects.size() == 2);  // leaf_ultrapeers at a time, with the one it has
  // Each full one is put aside and the next candidate dialled at once.
  for (int round = 0; round < 5; ++round) {
    for (const Endpoint& e : ups) {
      for (ConnId c : dials(e)) {
        if (!h.closed(c)) refuse(c, e);
      }
    }
  }
  for (const Endpoint& e : ups) CHECK(dials(e).size() == 1);
  CHECK(h.core.stat(GnutellaCore::kConnectAttempts) == 5);
  // Not again while they rest (they were retried every few seconds with a
  // backoff before, by every leaf short of ultrapeers)...
  for (int s = 0; s < 24; ++s) {
    h.now = h.now + 10s;
    h.core.handle_timeout(h.now);
    h.drain();
  }
  CHECK(h.out.connects.size() == 5);
  // ... unless a Pong says one has leaf slots free again (GGEP UP: version,
  // free leaf slots, free ultrapeer slots) ...
  h.core.host_cache().mark_leaf_room(ups[2], true);
  h.core.handle_timeout(h.now);
  h.drain();
  CHECK(dials(ups[2]).size() == 2);
  CHECK(h.out.connects.size() == 6);
  // ... and after busy_rest every one of them is worth asking again (one
  // more dial: the one it has and ups[2]'s, still pending, make three).
  h.now = h.now + cfg.busy_rest;
  h.core.handle_timeout(h.now);
  h.drain();
  CHECK(h.out.connects.size() == 7);
}

TEST_CASE("a_leaf_without_any_ultrapeer_asks_the_full_one_rested_longest_again_every_tenth_of_busy_rest") {
  // It has no link to hear of other ultrapeers from, and a refusal names
  // ultrapeers with room (X-Try-Ultrapeers); one at a time, not all it knows.
  GnutellaConfig cfg = config(NodeMode::Leaf);
  cfg.min_peers = 8;
  Harness h(cfg);
  for (std::uint32_t i = 0; i < 3; ++i) {
    h.core.host_cache().add(Endpoint{0x7f000010 + i, 6346}, h.now);
    h.core.host_cache().mark_ultrapeer(Endpoint{0x7f000010 + i, 6346}, true);
  }
  h.core.handle_timeout(h.now);
  h.drain();
  REQUIRE(h.out.connects.size() == 3);
  auto refuse = [&](const action::Connect& c, std::string_view extra = "") {
    h.core.handle_connected(c.conn, c.to, Direction::Outbound, h.now);
    h.drain();
    h.take_text(c.conn);
    h.feed(c.conn, "GNUTELLA/0.6 503 Too many leaves\r\nX-Ultrapeer: True\r\n" + std::string(extra) + "\r\n");
    h.core.handle_closed(c.conn, CloseReason::HandshakeRefused, h.now);
    h.core.handle_timeout(h.now);  // (its poll_timeout says now when a candidate waits)
    h.drain();
  };
  for (const auto& c : std::vector(h.out.connects)) {
    refuse(c);
    h.now = h.now + 1s;  // (the first refused rests longest)
  }
  const Instant refused = h.now;
  auto run_to = [&](Instant end) {
    while (h.now < end) {
      h.now = h.now + 1s;
      h.core.handle_timeout(h.now);
      h.drain();
    }
  };
  run_to(refused + (cfg.busy_rest / 10 - 4s));
  CHECK(h.out.connects.size() == 3);
  run_to(refused + cfg.busy_rest / 10);
  REQUIRE(h.out.connects.size() == 4);
  CHECK(h.out.connects[3].to == h.out.connects[0].to);  // the one rested longest
  // Full still, but it names one with room: that one is dialled at once.
  refuse(h.out.connects[3], "X-Try-Ultrapeers: 127.0.0.40:6346\r\n");
  REQUIRE(h.out.connects.size() == 5);
  CHECK(h.out.connects[4].to == (Endpoint{0x7f000028, 6346}));
}

TEST_CASE("a_leaf_sends_its_table_on_connect_and_a_patch_when_its_library_changes") {
  GnutellaConfig cfg = config(NodeMode::Leaf);
  cfg.qrp_check_interval = 5s;
  Harness h(cfg);
  h.lib.add_virtual("Interop Test File.txt", 1000);
  ConnId up = h.connect_out(Endpoint{0x7f000005, 6346});
  h.take_text(up);
  h.feed(up, "GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: True\r\nX-Query-Routing: 0.1\r\n\r\n");
  REQUIRE(h.core.established() == 1);
  CHECK(h.take_handshake(up).starts_with("GNUTELLA/0.6 200 OK\r\n"));
  std::size_t resets = 0, patches = 0;
  gn::QrpTable t = received_table(h, up, &resets, &patches);
  CHECK(resets == 1);
  CHECK(patches >= 1);
  REQUIRE(t.ready());
  CHECK(t.slots() == 65536);
  CHECK(t.infinity() == 7);
  for (const char* w : {"interop", "test", "file", "txt", "inter", "fil"}) {
    CAPTURE(w);
    CHECK(t.has_word(w));
  }
  CHECK_FALSE(t.has_word("zebra"));
  // Nothing changed: no message at the next check.
  h.now = h.now + 5s;
  h.core.handle_timeout(h.now);
  h.drain();
  CHECK(h.core.stat(GnutellaCore::kQrpSent) == resets + patches);
  // A new file: a PATCH (no RESET) that adds its words to what the peer has.
  h.lib.add_virtual("zebra crossing.ogg", 2000);
  h.now = h.now + 5s;
  h.core.handle_timeout(h.now);
  h.drain();
  gn::QrpTable before = t;
  std::size_t resets2 = 0, patches2 = 0;
  for (const auto& [hdr, payload] : h.take_descriptors(up)) {
    if (hdr.type != static_cast<std::uint8_t>(gn::Type::Qrp)) continue;
    auto m = gn::decode_qrp(payload);
    REQUIRE(m);
    resets2 += std::holds_alternative<gn::QrpReset>(*m);
    patches2 += std::holds_alternative<gn::QrpPatch>(*m);
    CHECK(t.apply(*m) == gn::QrpTable::Error::None);
  }
  CHECK(resets2 == 0);
  CHECK(patches2 >= 1);
  CHECK(t.has_word("zebra"));
  CHECK(t.has_word("crossing"));
  CHECK(t.has_word("interop"));
  CHECK(t.present_slots() > before.present_slots());
}

TEST_CASE("an_ultrapeer_sends_a_query_only_to_the_leaves_whose_tables_match") {
  Harness h(config(NodeMode::Ultrapeer));
  ConnId alpha{1}, beta{2}, silent{3}, up{4};
  h.peer_06(alpha, kAsLeaf);
  h.peer_06(beta, kAsLeaf);
  h.peer_06(silent, kAsLeaf);  // sends no table: gets no query
  h.peer_06(up, kAsUltrapeer);
  send_table(h, alpha, {"alpha", "song", "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB"});
  send_table(h, beta, {"beta", "song"});
  CHECK(h.core.stat(GnutellaCore::kQrpTablesIn) == 2);
  for (ConnId c : {alpha, beta, silent, up}) h.take_descriptors(c);

  auto from_up = [&](const std::string& words, std::uint8_t id, wire::Bytes ext = {}) {
    gn::Query q;
    q.min_speed = 0x8000;
    q.criteria = words;
    q.extensions = std::move(ext);
    wire::Bytes p;
    gn::encode_query(p, q);
    h.feed(up, descriptor(gn::Type::Query, 3, 1, p, id));
  };
  from_up("alpha song", 10);
  CHECK(queries(h, alpha) == 1);
  CHECK(queries(h, beta) == 0);
  CHECK(queries(h, silent) == 0);
  from_up("song", 11);
  CHECK(queries(h, alpha) == 1);
  CHECK(queries(h, beta) == 1);
  from_up("gamma", 12);
  CHECK(queries(h, alpha) + queries(h, beta) + queries(h, silent) == 0);
  // A urn query by its urn, whatever the words.
  const std::string urn = "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";
  from_up("beta", 13, wire::Bytes(urn.begin(), urn.end()));
  CHECK(queries(h, alpha) == 1);
  CHECK(queries(h, beta) == 0);
  // The same urn as Shareaza sends it: only in GGEP "H" (type 1, SHA1).
  const auto sha = share::parse_sha1_urn(urn);
  REQUIRE(sha);
  from_up("", 15, ggep_h_extensions(*sha));
  CHECK(queries(h, alpha) == 1);
  CHECK(queries(h, beta) == 0);
  CHECK(h.core.stat(GnutellaCore::kQueriesToLeaves) == 5);
  CHECK(h.core.stat(GnutellaCore::kQueriesQrpFiltered) > 0);
  // A leaf's own query reaches the other leaves by their tables too, and the
  // ultrapeer neighbour by flooding.
  gn::Query q;
  q.min_speed = 0x8000;
  q.criteria = "beta";
  wire::Bytes p;
  gn::encode_query(p, q);
  h.feed(alpha, descriptor(gn::Type::Query, 3, 0, p, 14));
  CHECK(queries(h, beta) == 1);
  CHECK(queries(h, up) == 1);
  CHECK(queries(h, alpha) == 0);
}

TEST_CASE("a_querys_terms_are_its_urns_once_each_or_else_its_words") {
  const std::string urn = "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";
  const auto sha = share::parse_sha1_urn(urn);
  REQUIRE(sha);
  gn::Query q;
  q.criteria = "Alpha  song";
  auto terms = query_terms(q);
  CHECK(terms.sha1s.empty());
  CHECK(terms.words == std::vector<std::string>{"alpha", "song"});
  // The same file as a text urn and in GGEP "H": one urn, and no words to route on.
  q.extensions = ggep_h_extensions(*sha, urn);
  terms = query_terms(q);
  REQUIRE(terms.sha1s.size() == 1);
  CHECK(terms.sha1s.front() == *sha);
  CHECK(terms.words.empty());
  QrpBits t(12);
  t.add_word("alpha");
  t.add_word("song");
  CHECK_FALSE(qrp_matches(t, terms));
  t.add_word(urn);
  CHECK(qrp_matches(t, terms));
  // Two different files: either one is a match.
  auto other = *sha;
  other[0] ^= 1;
  q.extensions = ggep_h_extensions(other, urn);
  terms = query_terms(q);
  CHECK(terms.sha1s.size() == 2);
  CHECK(qrp_matches(t, terms));
  // Only words shorter than kQrpMinWord say too little to hold it back; no
  // word at all and no urn asks for nothing.
  q.extensions.clear();
  q.criteria = "ab";
  CHECK(qrp_matches(t, query_terms(q)));
  q.criteria = " ";
  CHECK_FALSE(qrp_matches(t, query_terms(q)));
}

TEST_CASE("gtk_gnutellas_table_from_capture_09_routes_its_words_to_it_as_a_leaf") {
  Harness h(config(NodeMode::Ultrapeer));
  ConnId gtkg{1}, up{2};
  h.peer_06(gtkg, kAsLeaf);
  h.peer_06(up, kAsUltrapeer);
  send_qrp(h, gtkg, vec::kQrpReset);
  send_qrp(h, gtkg, vec::kQrpPatch);
  CHECK(h.core.stat(GnutellaCore::kQrpTablesIn) == 1);
  for (const auto& p : h.core.peers()) {
    if (p.conn == gtkg) {
      CHECK(p.qrp_slots == 16384);
      CHECK(p.qrp_present == 14);
    }
  }
  h.take_descriptors(gtkg);
  auto from_up = [&](const char* words, std::uint8_t id) {
    h.feed(up, descriptor(gn::Type::Query, 3, 1, query_payload(words), id));
    return queries(h, gtkg);
  };
  CHECK(from_up("interop test", 20) == 1);
  CHECK(from_up("hello", 21) == 1);
  CHECK(from_up("zebra", 22) == 0);
  CHECK(from_up("hello zebra", 23) == 0);
}

TEST_CASE("hsep_goes_to_the_peers_that_announce_it_with_gtk_gnutellas_captured_horizon_counted_in") {
  // Two files, 6 KiB between them: our own hop is (1, 2, 6).
  Harness h(config(NodeMode::Ultrapeer));
  h.lib.add_virtual("one.txt", 4096);
  h.lib.add_virtual("two.txt", 2048 + 100);
  ConnId a{1}, gtkg{2}, plain{3};
  constexpr std::string_view kHsep = "X-Features: sflag/0.1,HSEP/0.2\r\n";  // as capture 09's probe said it
  const std::string answer = h.peer_06(a, std::string(kAsUltrapeer) + std::string(kHsep));
  CHECK(answer.find("X-Features: HSEP/0.2\r\n") != std::string::npos);
  h.peer_06(gtkg, std::string(kAsUltrapeer) + std::string(kHsep));
  h.peer_06(plain, kAsUltrapeer);  // no X-Features: no HSEP
  auto hsep_sent = [&](ConnId c) {
    std::vector<std::vector<gn::HsepHop>> got;
    for (const auto& [hdr, payload] : h.take_descriptors(c)) {
      if (hdr.type != gn::kTypeHsep) continue;
      CHECK(hdr.ttl == 1);
      CHECK(hdr.hops == 0);
      auto hops = gn::decode_hsep(payload);
      REQUIRE(hops);
      got.push_back(*hops);
    }
    return got;
  };
  auto tick = [&] {
    h.now = h.now + 30s;
    h.core.handle_timeout(h.now);
    h.drain();
  };
  for (ConnId c : {a, gtkg, plain}) h.take_descriptors(c);
  tick();
  // Within 2 hops: us and our two other peers (not heard from yet: one node
  // each); further hops add nothing and are left out.
  using Hops = std::vector<gn::HsepHop>;
  CHECK(hsep_sent(a) == std::vector<Hops>{{{1, 2, 6}, {3, 2, 6}}});
  CHECK(hsep_sent(gtkg) == std::vector<Hops>{{{1, 2, 6}, {3, 2, 6}}});
  CHECK(hsep_sent(plain).empty());
  // gtk-gnutella's HSEP from capture 09, byte for byte: (1, 2, 113).
  gn::Header hdr;
  hdr.id.bytes.fill(9);
  hdr.type = gn::kTypeHsep;
  hdr.ttl = 1;
  h.feed(gtkg, gn::encode_descriptor(hdr, vec::kHsep));
  CHECK(h.core.stat(GnutellaCore::kHsepIn) == 1);
  for (const auto& p : h.core.peers()) CHECK(p.hsep == (p.conn == gtkg ? Hops{{1, 2, 113}} : Hops{}));
  tick();
  CHECK(hsep_sent(a) == std::vector<Hops>{{{1, 2, 6}, {3, 4, 119}}});
  CHECK(hsep_sent(gtkg).empty());  // nothing new for it: not sent again
  CHECK(h.core.stat(GnutellaCore::kHsepSent) == 3);
  // A first hop of other than one node, or hops that shrink: dropped.
  wire::Bytes two = vec::kHsep;
  two[0] = 2;
  h.feed(gtkg, gn::encode_descriptor(hdr, two));
  wire::Bytes shrinking = gn::encode_hsep({{1, 5, 100}, {2, 4, 200}});
  h.feed(gtkg, gn::encode_descriptor(hdr, shrinking));
  CHECK(h.core.stat(GnutellaCore::kDropHsepMalformed) == 2);
  tick();
  CHECK(hsep_sent(a).empty());  // what gtk-gnutella said before still counts
  CHECK_FALSE(h.closed(gtkg));
}

TEST_CASE("last_hop_qrp_an_ultrapeer_neighbour_gets_ttl_1_queries_only_when_its_table_matches") {
  Harness h(config(NodeMode::Ultrapeer));
  ConnId from{1}, last_hop{2}, plain{3};
  h.peer_06(from, kAsUltrapeer);
  h.peer_06(last_hop, kAsLastHopUltrapeer);
  h.peer_06(plain, kAsUltrapeer);  // sends no table: gets everything
  send_table(h, last_hop, {"gamma"});
  for (ConnId c : {from, last_hop, plain}) h.take_descriptors(c);
  // TTL 2 arriving: relayed with TTL 1, the last hop.
  h.feed(from, descriptor(gn::Type::Query, 2, 1, query_payload("delta"), 30));
  CHECK(queries(h, last_hop) == 0);
  CHECK(queries(h, plain) == 1);
  h.feed(from, descriptor(gn::Type::Query, 2, 1, query_payload("gamma"), 31));
  CHECK(queries(h, last_hop) == 1);
  CHECK(queries(h, plain) == 1);
  // With TTL to spare the table says nothing about what lies beyond.
  h.feed(from, descriptor(gn::Type::Query, 4, 1, query_payload("delta"), 32));
  CHECK(queries(h, last_hop) == 1);
}

TEST_CASE("an_ultrapeer_sends_its_neighbours_its_own_table_merged_with_its_leaves_tables") {
  GnutellaConfig cfg = config(NodeMode::Ultrapeer);
  cfg.qrp_check_interval = 5s;
  Harness h(cfg);
  h.lib.add_virtual("own words.txt", 100);
  ConnId leaf{1};
  h.peer_06(leaf, kAsLeaf);
  send_table(h, leaf, {"leafword"});
  ConnId up{2};
  h.peer_06(up, kAsLastHopUltrapeer);
  gn::QrpTable t = received_table(h, up);
  REQUIRE(t.ready());
  CHECK(t.has_word("own"));
  CHECK(t.has_word("words"));
  CHECK(t.has_word("leafword"));
  CHECK_FALSE(t.has_word("elsewhere"));
  // A new leaf table: the neighbour gets a patch at the next check.
  ConnId leaf2{3};
  h.peer_06(leaf2, kAsLeaf);
  send_table(h, leaf2, {"elsewhere"});
  h.now = h.now + 5s;
  h.core.handle_timeout(h.now);
  h.drain();
  for (const auto& [hdr, payload] : h.take_descriptors(up)) {
    if (hdr.type != static_cast<std::uint8_t>(gn::Type::Qrp)) continue;
    auto m = gn::decode_qrp(payload);
    REQUIRE(m);
    CHECK(std::holds_alternative<gn::QrpPatch>(*m));
    CHECK(t.apply(*m) == gn::QrpTable::Error::None);
  }
  CHECK(t.has_word("elsewhere"));
  CHECK(t.has_word("leafword"));
}

TEST_CASE("hostile_qrp_and_role_input_is_counted_and_the_link_closed_where_the_spec_says") {
  GnutellaConfig cfg = config(NodeMode::Ultrapeer);
  cfg.qrp_max_slots = 1u << 16;
  Harness h(cfg);
  ConnId watcher{100};
  h.peer_06(watcher, kAsUltrapeer);
  auto still_serving = [&] {
    h.take_descriptors(watcher);
    h.feed(watcher, descriptor(gn::Type::Ping, 1, 0, {}, 77));
    bool pong = false;
    for (const auto& [hdr, p] : h.take_descriptors(watcher)) pong |= hdr.type == static_cast<std::uint8_t>(gn::Type::Pong);
    CHECK(pong);
  };
  ConnId leaf{1};
  h.peer_06(leaf, kAsLeaf);
  SUBCASE("a patch before any reset") {
    send_qrp(h, leaf, table_messages({"x"}).back());
    CHECK(h.core.stat(GnutellaCore::kCloseQrpError) == 1);
  }
  SUBCASE("a table bigger than we hold") {
    wire::Bytes r;
    gn::encode_qrp(r, gn::QrpReset{1u << 20, 7});
    send_qrp(h, leaf, r);
    CHECK(h.core.stat(GnutellaCore::kCloseQrpError) == 1);
  }
  SUBCASE("a patch whose data overruns the table") {
    send_qrp(h, leaf, table_messages({"x"}).front());  // RESET, 4096 slots
    gn::QrpPatch p{1, 1, gn::kQrpCompressorNone, 4, wire::Bytes(4096, 0)};  // twice the data
    wire::Bytes m;
    gn::encode_qrp(m, p);
    send_qrp(h, leaf, m);
    CHECK(h.core.stat(GnutellaCore::kCloseQrpError) == 1);
  }
  SUBCASE("a zlib bomb") {
    send_qrp(h, leaf, table_messages({"x"}).front());
    gn::QrpPatch p{1, 1, gn::kQrpCompressorZlib, 4, wire::deflate_bytes(wire::Bytes(64u << 20, 0))};
    wire::Bytes m;
    gn::encode_qrp(m, p);
    send_qrp(h, leaf, m);
    CHECK(h.core.stat(GnutellaCore::kCloseQrpError) == 1);
  }
  SUBCASE("a sequence number out of order") {
    send_qrp(h, leaf, table_messages({"x"}).front());
    gn::QrpPatch p{2, 2, gn::kQrpCompressorNone, 4, wire::Bytes(1024, 0)};
    wire::Bytes m;
    gn::encode_qrp(m, p);
    send_qrp(h, leaf, m);
    CHECK(h.core.stat(GnutellaCore::kCloseQrpError) == 1);
  }
  SUBCASE("an unknown variant") {
    send_qrp(h, leaf, wire::Bytes{0x07, 1, 2, 3});
    CHECK(h.core.stat(GnutellaCore::kCloseQrpMalformed) == 1);
  }
  SUBCASE("a table reset every second") {
    for (int i = 0; i < 10 && !h.closed(leaf); ++i) {
      for (const auto& m : table_messages({"x"})) send_qrp(h, leaf, m);
      h.now = h.now + 1s;
    }
    CHECK(h.core.stat(GnutellaCore::kCloseQrpResets) == 1);
    CHECK(h.core.stat(GnutellaCore::kQrpTablesIn) == 4);  // the first and the tolerated three
  }
  SUBCASE("a leaf relaying what others sent") {
    h.feed(leaf, descriptor(gn::Type::Query, 3, 2, query_payload("relayed"), 50));
    h.feed(leaf, descriptor(gn::Type::Ping, 3, 1, {}, 51));
    CHECK(h.core.stat(GnutellaCore::kDropRelayedByLeaf) == 2);
    CHECK(queries(h, watcher) == 0);
    CHECK_FALSE(h.closed(leaf));
  }
  SUBCASE("a relayed QRP message") {
    send_qrp(h, leaf, table_messages({"x"}).front(), 1);
    CHECK(h.core.stat(GnutellaCore::kQrpIgnored) == 1);
    CHECK_FALSE(h.closed(leaf));
  }
  if (h.core.stat(GnutellaCore::kCloseQrpError) + h.core.stat(GnutellaCore::kCloseQrpMalformed) +
          h.core.stat(GnutellaCore::kCloseQrpResets) >
      0) {
    CHECK(h.closed(leaf));
  }
  still_serving();
}

TEST_CASE("a_leaf_ignores_qrp_from_its_ultrapeer_and_relays_nothing") {
  Harness h(config(NodeMode::Leaf));
  ConnId a{1}, b{2};
  h.peer_06(a, kAsUltrapeer);
  h.peer_06(b, kAsUltrapeer);
  h.take_descriptors(b);
  send_qrp(h, a, vec::kQrpReset);
  CHECK(h.core.stat(GnutellaCore::kQrpIgnored) == 1);
  CHECK_FALSE(h.closed(a));
  h.feed(a, descriptor(gn::Type::Query, 5, 1, query_payload("anything"), 60));
  h.feed(a, descriptor(gn::Type::Ping, 5, 1, {}, 61));
  CHECK(h.take_descriptors(b).empty());
}

TEST_CASE("tcp_connect_back_a_leaf_asks_once_and_its_ultrapeer_connects_once_then_closes") {
  // The leaf: nobody has connected to it yet, so it asks its new ultrapeer.
  Harness leaf(config(NodeMode::Leaf));
  ConnId up = leaf.connect_out(Endpoint{0x7f000005, 6346});
  leaf.take_text(up);
  leaf.feed(up, "GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: True\r\n\r\n");
  leaf.take_handshake(up);
  std::optional<wire::Bytes> asked;
  for (const auto& [hdr, p] : leaf.take_descriptors(up)) {
    auto vm = gn::decode_vendor(p);
    if (hdr.type == 0x31 && vm && vm->vendor == gn::kVendorBear && vm->id == gn::kVmConnectBack) asked = vm->body;
  }
  REQUIRE(asked);
  CHECK(*asked == wire::Bytes{0xca, 0x18});  // port 6346, little-endian
  CHECK(leaf.core.stat(GnutellaCore::kConnectBacksAsked) == 1);

  // The ultrapeer: connects to the leaf's address and port, once.
  Harness h(config(NodeMode::Ultrapeer));
  ConnId l{1};
  h.peer_06(l, "X-Ultrapeer: False\r\n");
  wire::Bytes m;
  gn::encode_vendor(m, gn::VendorMessage{gn::kVendorBear, gn::kVmConnectBack, 1, wire::Bytes{0xd2, 0x04}});
  h.feed(l, descriptor(gn::Type::Vendor, 1, 0, m, 5));
  REQUIRE(h.out.connects.size() == 1);
  CHECK(h.out.connects[0].to == Endpoint{0x7f000002, 1234});
  h.feed(l, descriptor(gn::Type::Vendor, 1, 0, m, 6));  // again: once per link
  CHECK(h.out.connects.size() == 1);
  CHECK(h.core.stat(GnutellaCore::kConnectBacksRefused) == 1);
  // The connect succeeds: closed at once, nothing sent, the leaf is reachable.
  const ConnId back = h.out.connects[0].conn;
  h.core.handle_connected(back, Endpoint{0x7f000002, 1234}, Direction::Outbound, h.now);
  h.drain();
  CHECK(h.closed(back));
  CHECK(h.take_text(back).empty());
  CHECK(h.core.stat(GnutellaCore::kConnectBacksDone) == 1);
  CHECK(h.core.reputation().find(Endpoint{0x7f000002, 1234})->reachable);
  // Not our leaf (an ultrapeer neighbour), or a malformed port: refused.
  ConnId n{2};
  h.peer_06(n, "X-Ultrapeer: True\r\n");
  h.feed(n, descriptor(gn::Type::Vendor, 1, 0, m, 7));
  CHECK(h.core.stat(GnutellaCore::kConnectBacksRefused) == 2);
  CHECK(h.out.connects.size() == 1);
}
