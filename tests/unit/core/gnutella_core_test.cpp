// GnutellaCore with a fake outbox and hand-moved time.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "unit/core/gnutella_harness.hpp"

using namespace sv;
using namespace sv::test;
namespace gn = sv::wire::gnutella;

TEST_CASE("accepts_06_handshake_with_user_agent_and_x_ultrapeer") {
  Harness h;
  ConnId c{1};
  h.core.handle_connected(c, Endpoint{0x7f000002, 5000}, Direction::Inbound, h.now);
  h.feed(c, "GNUTELLA CONNECT/0.6\r\nUser-Agent: test/1\r\nX-Ultrapeer: False\r\n\r\n");
  auto resp = gn::decode_handshake(wire::as_bytes(h.take_text(c)));
  REQUIRE(resp.ok());
  CHECK(resp->status == 200);
  CHECK(resp->headers.get("User-Agent") == "servent/0.1");
  // An ultrapeer taking a leaf, with the headers gtk-gnutella sends
  // (captures 09 and 10).
  CHECK(resp->headers.get("X-Ultrapeer") == "True");
  CHECK(resp->headers.get("X-Query-Routing") == "0.1");
  CHECK(resp->headers.get("X-Ultrapeer-Query-Routing") == "0.1");
  CHECK(resp->headers.get("X-Degree") == "32");
  CHECK(resp->headers.get("X-Max-TTL") == "7");
  CHECK(resp->headers.get("X-Dynamic-Querying") == "0.1");
  CHECK(resp->headers.get("Vendor-Message") == "0.2");
  CHECK(resp->headers.has("X-Ultrapeer-Needed"));
  CHECK(resp->headers.get("Remote-IP") == "127.0.0.2");
  CHECK(h.core.established() == 0);
  h.feed(c, "GNUTELLA/0.6 200 OK\r\n\r\n");
  CHECK(h.core.established() == 1);
  CHECK(h.core.stat(GnutellaCore::kHandshakes06) == 1);
}

TEST_CASE("accepts_04_handshake") {
  Harness h;
  ConnId c{1};
  h.core.handle_connected(c, Endpoint{0x7f000002, 5000}, Direction::Inbound, h.now);
  h.feed(c, gn::kConnect04);
  CHECK(h.take_text(c).starts_with(gn::kOk04));  // then our Ping to learn the neighbourhood
  CHECK(h.core.established() == 1);
  CHECK(h.core.stat(GnutellaCore::kHandshakes04) == 1);
}

TEST_CASE("descriptors_right_behind_the_handshake_are_processed") {
  Harness h;
  ConnId c{1};
  h.core.handle_connected(c, Endpoint{0x7f000002, 5000}, Direction::Inbound, h.now);
  std::string all(gn::kConnect04);
  auto ping = descriptor(gn::Type::Ping, 1, 0, {});
  all.append(ping.begin(), ping.end());
  h.feed(c, all);
  CHECK(h.take_text(c).starts_with(gn::kOk04));
  CHECK(h.core.stat(GnutellaCore::kPingsIn) == 1);
}

TEST_CASE("connects_with_06_then_falls_back_to_04_when_peer_closes") {
  Harness h;
  const Endpoint peer{0x7f000003, 6346};
  const ConnId c1 = h.connect_out(peer);
  CHECK((c1.value & kCoreConnIdBit) != 0);
  CHECK(h.take_text(c1).starts_with("GNUTELLA CONNECT/0.6\r\n"));
  // An old 0.4 servent closes on a CONNECT/0.6 it does not understand.
  h.core.handle_closed(c1, CloseReason::PeerClosed, h.now);
  h.core.handle_timeout(h.now);
  h.drain();
  REQUIRE(h.out.connects.size() == 2);
  const ConnId c2 = h.out.connects[1].conn;
  h.core.handle_connected(c2, peer, Direction::Outbound, h.now);
  h.drain();
  CHECK(h.take_text(c2) == gn::kConnect04);
  h.feed(c2, gn::kOk04);
  CHECK(h.core.established() == 1);
  CHECK(h.core.stat(GnutellaCore::kConnectFallback04) == 1);
}

TEST_CASE("outbound_06_sends_final_200_and_reconnects_with_backoff") {
  Harness h;
  const Endpoint peer{0x7f000003, 6346};
  ConnId c = h.connect_out(peer);
  h.take_text(c);
  h.feed(c, "GNUTELLA/0.6 200 OK\r\nUser-Agent: other/2\r\n\r\n");
  auto final = gn::decode_handshake(wire::as_bytes(h.take_text(c)));
  REQUIRE(final.ok());
  CHECK(final->status == 200);
  CHECK(final->headers.has("X-Ultrapeer"));
  CHECK(h.core.established() == 1);
  // Connection refused twice: the retry waits 1 s, then 2 s.
  h.core.handle_closed(c, CloseReason::PeerClosed, h.now);
  REQUIRE(h.core.poll_timeout() == h.now + 1s);
  h.now = h.now + 1s;
  h.core.handle_timeout(h.now);
  h.drain();
  ConnId c2 = h.out.connects.at(1).conn;
  h.core.handle_closed(c2, CloseReason::ConnectFailed, h.now);
  CHECK(h.core.poll_timeout() == h.now + 2s);
}

TEST_CASE("refused_06_handshake_is_closed_and_counted") {
  Harness h;
  const Endpoint peer{0x7f000003, 6346};
  ConnId c = h.connect_out(peer);
  h.feed(c, "GNUTELLA/0.6 403 Normal nodes refused\r\n\r\n");
  CHECK(h.closed(c));
  CHECK(h.core.stat(GnutellaCore::kCloseHandshakeRefused) == 1);
}

TEST_CASE("ping_is_answered_with_own_pong_and_flooded_to_others") {
  Harness h;
  auto a = h.peer(), b = h.peer(), c = h.peer();
  h.feed(a, descriptor(gn::Type::Ping, 3, 1, {}));
  auto to_a = h.take_descriptors(a);
  REQUIRE(to_a.size() == 1);
  CHECK(to_a[0].first.type == 0x01);
  CHECK(to_a[0].first.ttl == 2);  // hops + 1
  CHECK(to_a[0].first.hops == 0);
  auto pong = gn::decode_pong(to_a[0].second);
  REQUIRE(pong.ok());
  CHECK(pong->port == 6346);
  CHECK(pong->ip == 0x7f000001);
  for (auto other : {b, c}) {
    auto d = h.take_descriptors(other);
    REQUIRE(d.size() == 1);
    CHECK(d[0].first.type == 0x00);
    CHECK(d[0].first.ttl == 2);
    CHECK(d[0].first.hops == 2);
  }
}

TEST_CASE("a_node_nobody_can_reach_offers_no_pong_of_its_own_and_marks_its_hits") {
  // A short-lived search node (no listener: port 0) and a --firewalled one.
  for (bool firewalled : {false, true}) {
    CAPTURE(firewalled);
    share::Library lib;
    lib.add_virtual("song.mp3", 1234);
    GnutellaConfig cfg = Harness::ultrapeer();
    cfg.firewalled = firewalled;
    cfg.advertised = Endpoint{0x7f000001, static_cast<std::uint16_t>(firewalled ? 6346 : 0)};
    GnutellaCore core(lib, cfg, 7);
    ConnId a{1}, b{2};
    Outbox out;
    auto drain = [&] {
      while (auto act = core.poll_action()) {
        if (auto* snd = std::get_if<action::Send>(&*act)) {
          auto& v = out.sent[snd->conn.value];
          v.insert(v.end(), snd->bytes->begin(), snd->bytes->end());
        } else if (auto* bc = std::get_if<action::Broadcast>(&*act)) {
          for (ConnId c : bc->conns) {
            auto& v = out.sent[c.value];
            v.insert(v.end(), bc->bytes->begin(), bc->bytes->end());
          }
        }
      }
    };
    Instant now{Duration(1000)};
    for (ConnId c : {a, b}) {
      core.handle_connected(c, Endpoint{0x7f000002, static_cast<std::uint16_t>(40000 + c.value)}, Direction::Inbound, now);
      core.handle_bytes(c, wire::as_bytes("GNUTELLA CONNECT/0.6\r\nUser-Agent: t/1\r\nX-Ultrapeer: True\r\n\r\n"), now);
      core.handle_bytes(c, wire::as_bytes("GNUTELLA/0.6 200 OK\r\n\r\n"), now);
    }
    drain();
    out.sent.clear();
    core.handle_bytes(a, descriptor(gn::Type::Ping, 3, 0, {}), now);
    core.handle_bytes(a, descriptor(gn::Type::Query, 3, 0, query_payload("song"), 9), now);
    drain();
    gn::Framer f;
    f.feed(out.sent[a.value]);
    int pongs = 0, hits = 0;
    while (auto r = f.next()) {
      pongs += r->header.type == 0x01;
      if (r->header.type == 0x81) {
        ++hits;
        auto qh = gn::decode_query_hit(r->payload);
        REQUIRE(qh.ok());
        REQUIRE(qh->trailer);
        REQUIRE(qh->trailer->open_data.size() >= 2);
        CHECK((qh->trailer->open_data[0] & 0x01) == 0x01);  // push flag: reach us by Push only
      }
    }
    CHECK(pongs == 0);
    CHECK(hits == 1);
    CHECK(core.stat(GnutellaCore::kPongsWithheld) == 1);
    // The Ping still travels on to the other peer.
    gn::Framer fb;
    fb.feed(out.sent[b.value]);
    bool forwarded = false;
    while (auto r = fb.next()) forwarded = forwarded || r->header.type == 0x00;
    CHECK(forwarded);
  }
}

TEST_CASE("duplicate_descriptor_is_dropped_not_forwarded_twice") {
  Harness h;
  auto a = h.peer(), b = h.peer(), c = h.peer();
  h.feed(a, descriptor(gn::Type::Query, 3, 0, query_payload("nothing")));
  h.feed(b, descriptor(gn::Type::Query, 3, 0, query_payload("nothing")));
  CHECK(h.take_descriptors(c).size() == 1);
  CHECK(h.take_descriptors(a).empty());
  CHECK(h.core.stat(GnutellaCore::kDropDuplicate) == 1);
}

TEST_CASE("ttl_one_is_not_forwarded_and_ttl_zero_is_dropped") {
  Harness h;
  auto a = h.peer(), b = h.peer();
  h.feed(a, descriptor(gn::Type::Query, 1, 0, query_payload("x"), 1));
  CHECK(h.take_descriptors(b).empty());
  h.feed(a, descriptor(gn::Type::Query, 0, 0, query_payload("x"), 2));
  CHECK(h.core.stat(GnutellaCore::kDropTtlZero) == 1);
}

TEST_CASE("ttl_255_is_clamped_to_max_ttl") {
  GnutellaConfig cfg = Harness::ultrapeer();
  cfg.max_ttl = 7;
  Harness h(cfg);
  auto a = h.peer(), b = h.peer();
  h.feed(a, descriptor(gn::Type::Query, 255, 2, query_payload("x")));
  auto d = h.take_descriptors(b);
  REQUIRE(d.size() == 1);
  CHECK(d[0].first.ttl + d[0].first.hops <= 7);
  CHECK(d[0].first.ttl == 4);  // clamped to 7 - 2 = 5, then forwarded with TTL-1
  CHECK(h.core.stat(GnutellaCore::kTtlClamped) == 1);
  h.feed(a, descriptor(gn::Type::Query, 1, 9, query_payload("x"), 7));
  CHECK(h.core.stat(GnutellaCore::kDropHopsExceeded) == 1);
}

TEST_CASE("query_min_speed_is_rewritten_per_link_version") {
  Harness h;
  auto from = h.peer();
  auto v06 = h.peer(false);
  auto v04 = h.peer(true);
  h.feed(from, descriptor(gn::Type::Query, 3, 0, query_payload("abc", 0x8000 | 0x0400), 1));
  CHECK(gn::decode_query(h.take_descriptors(v06).at(0).second)->min_speed == (0x8000 | 0x0400));
  CHECK(gn::decode_query(h.take_descriptors(v04).at(0).second)->min_speed == 0);
  h.feed(v04, descriptor(gn::Type::Query, 3, 0, query_payload("abc", 0), 2));
  CHECK(gn::decode_query(h.take_descriptors(v06).at(0).second)->min_speed == 0x8000);
}

TEST_CASE("own_search_sets_flag_bit_and_receives_hits") {
  GnutellaConfig cfg = Harness::ultrapeer();
  cfg.dynamic_querying = false;  // flooded with the TTL asked for
  Harness h(cfg);
  auto a = h.peer();
  gn::Guid id = h.core.search(Search{"song", 5, {}}, h.now).guid;
  h.drain();
  auto d = h.take_descriptors(a);
  REQUIRE(d.size() == 1);
  CHECK(d[0].first.id == id);
  CHECK(d[0].first.ttl == 5);
  CHECK(d[0].first.hops == 0);
  CHECK((gn::decode_query(d[0].second)->min_speed & 0x8000) != 0);
  gn::Header hh{id, 0x81, 4, 1, 0};
  h.feed(a, gn::encode_descriptor(hh, hit_payload(0x77)));
  auto ev = h.core.poll_event();
  while (ev && !std::holds_alternative<event::Hit>(*ev)) ev = h.core.poll_event();
  REQUIRE(ev);
  const auto& hit = std::get<event::Hit>(*ev);
  CHECK(hit.result.name == "song.mp3");
  CHECK(hit.source == Endpoint{0x7f000009, 6346});
}

TEST_CASE("query_hit_routes_back_on_reverse_path_only") {
  Harness h;
  auto a = h.peer(), b = h.peer(), c = h.peer();
  h.feed(a, descriptor(gn::Type::Query, 5, 0, query_payload("song"), 9));
  h.take_descriptors(b);
  h.take_descriptors(c);
  h.feed(b, descriptor(gn::Type::QueryHit, 5, 0, hit_payload(0x55), 9));
  auto back = h.take_descriptors(a);
  REQUIRE(back.size() == 1);
  CHECK(back[0].first.type == 0x81);
  CHECK(back[0].first.ttl == 4);
  CHECK(back[0].first.hops == 1);
  CHECK(back[0].second == hit_payload(0x55));
  CHECK(h.take_descriptors(c).empty());
  CHECK(h.take_descriptors(b).empty());
}

TEST_CASE("reply_for_unknown_descriptor_id_is_dropped_and_counted") {
  Harness h;
  auto a = h.peer(), b = h.peer();
  h.feed(a, descriptor(gn::Type::QueryHit, 5, 0, hit_payload(1), 0x42));
  h.feed(a, descriptor(gn::Type::Pong, 5, 0, wire::Bytes(14, 0), 0x43));
  CHECK(h.take_descriptors(b).empty());
  CHECK(h.core.stat(GnutellaCore::kDropHitUnroutable) == 1);
  CHECK(h.core.stat(GnutellaCore::kDropPongUnroutable) == 1);
  CHECK_FALSE(h.closed(a));
}

TEST_CASE("push_is_routed_by_servent_id_along_the_hit_path") {
  Harness h;
  auto asker = h.peer(), source_side = h.peer(), other = h.peer();
  h.feed(asker, descriptor(gn::Type::Query, 5, 0, query_payload("song"), 9));
  h.feed(source_side, descriptor(gn::Type::QueryHit, 5, 0, hit_payload(0x55), 9));
  h.take_descriptors(asker);
  h.take_descriptors(other);
  h.take_descriptors(source_side);
  gn::Push p;
  p.servent_id.bytes.fill(0x55);
  p.file_index = 3;
  p.ip = 0x7f000001;
  p.port = 7000;
  wire::Bytes pp;
  gn::encode_push(pp, p);
  h.feed(asker, descriptor(gn::Type::Push, 5, 0, pp, 10));
  auto d = h.take_descriptors(source_side);
  REQUIRE(d.size() == 1);
  CHECK(d[0].first.type == 0x40);
  CHECK(gn::decode_push(d[0].second)->file_index == 3);
  CHECK(h.take_descriptors(other).empty());
  p.servent_id.bytes.fill(0x66);
  pp.clear();
  gn::encode_push(pp, p);
  h.feed(asker, descriptor(gn::Type::Push, 5, 0, pp, 11));
  CHECK(h.core.stat(GnutellaCore::kDropPushUnroutable) == 1);
}

TEST_CASE("query_matching_library_is_answered_and_split_into_several_hits") {
  Harness h;
  for (int i = 0; i < 50; ++i) h.lib.add_virtual("song number " + std::to_string(i) + ".mp3", 1000 + i);
  h.lib.add_virtual("other.txt", 5);
  auto a = h.peer();
  h.feed(a, descriptor(gn::Type::Query, 3, 2, query_payload("song"), 3));
  auto d = h.take_descriptors(a);
  REQUIRE(d.size() >= 2);
  std::size_t results = 0;
  for (auto& [hdr, pl] : d) {
    CHECK(hdr.type == 0x81);
    CHECK(hdr.ttl == 3);  // hops + 1
    CHECK(pl.size() <= 4000);
    auto hit = gn::decode_query_hit(pl);
    REQUIRE(hit.ok());
    CHECK(hit->servent_id == h.core.servent_id());
    CHECK(hit->port == 6346);
    REQUIRE(hit->trailer);
    CHECK(std::string(hit->trailer->vendor.begin(), hit->trailer->vendor.end()) == "SRVT");
    for (auto& r : hit->results) CHECK(r.name.starts_with("song number"));
    results += hit->results.size();
  }
  CHECK(results == 50);
  CHECK(h.core.stat(GnutellaCore::kQueriesAnswered) == 1);
}

TEST_CASE("plain_04_min_speed_above_ours_gets_no_answer") {
  Harness h;
  h.lib.add_virtual("song.mp3", 10);
  auto a = h.peer(true);
  h.feed(a, descriptor(gn::Type::Query, 3, 0, query_payload("song", 5000), 1));
  CHECK(h.take_descriptors(a).empty());
  h.feed(a, descriptor(gn::Type::Query, 3, 0, query_payload("song", 10), 2));
  CHECK(h.take_descriptors(a).size() == 1);
}

TEST_CASE("hostile_input_closes_with_named_counters") {
  SUBCASE("garbage instead of a handshake") {
    Harness h;
    ConnId c{1};
    h.core.handle_connected(c, {}, Direction::Inbound, h.now);
    h.feed(c, "GNUTELLA-NOT\r\n\r\n");
    CHECK(h.closed(c));
    CHECK(h.core.stat(GnutellaCore::kCloseHandshakeMalformed) == 1);
  }
  SUBCASE("header announcing a 4 GiB payload") {
    Harness h;
    auto a = h.peer();
    auto d = descriptor(gn::Type::Query, 3, 0, {});
    d[19] = d[20] = d[21] = d[22] = 0xff;
    h.feed(a, d);
    CHECK(h.closed(a));
    CHECK(h.core.stat(GnutellaCore::kClosePayloadTooLarge) == 1);
  }
  SUBCASE("payload shorter than its descriptor needs") {
    Harness h;
    auto a = h.peer(), b = h.peer(), c = h.peer();
    h.feed(a, descriptor(gn::Type::Pong, 3, 0, wire::Bytes(5, 0)));
    h.feed(b, descriptor(gn::Type::Push, 3, 0, wire::Bytes(20, 0)));
    h.feed(c, descriptor(gn::Type::QueryHit, 3, 0, wire::Bytes(10, 0)));
    CHECK(h.closed(a));
    CHECK(h.closed(b));
    CHECK(h.closed(c));
    CHECK(h.core.stat(GnutellaCore::kClosePayloadMalformed) == 3);
  }
  SUBCASE("bye") {
    Harness h;
    auto a = h.peer();
    h.feed(a, descriptor(gn::Type::Bye, 1, 0, test::hex("c800") ));
    CHECK(h.closed(a));
    CHECK(h.core.stat(GnutellaCore::kCloseBye) == 1);
  }
  SUBCASE("handshake that never finishes") {
    Harness h;
    ConnId c{1};
    h.core.handle_connected(c, {}, Direction::Inbound, h.now);
    h.feed(c, "GNUTELLA CONNECT/0.6\r\nUser-Agent: slow");
    REQUIRE(h.core.poll_timeout());
    h.now = *h.core.poll_timeout();
    h.core.handle_timeout(h.now);
    h.drain();
    CHECK(h.closed(c));
    CHECK(h.core.stat(GnutellaCore::kCloseHandshakeTimeout) == 1);
  }
}

TEST_CASE("full_servent_answers_503_on_06") {
  GnutellaConfig cfg = Harness::ultrapeer();
  cfg.max_connections = 1;
  Harness h(cfg);
  h.peer();
  ConnId c{99};
  h.core.handle_connected(c, {}, Direction::Inbound, h.now);
  h.feed(c, "GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: False\r\n\r\n");
  auto r = gn::decode_handshake(wire::as_bytes(h.take_text(c)));
  REQUIRE(r.ok());
  CHECK(r->status == 503);
  CHECK(h.closed(c));
  CHECK(h.core.stat(GnutellaCore::kCloseFull) == 1);
}

TEST_CASE("closed_peer_no_longer_receives_floods") {
  Harness h;
  auto a = h.peer(), b = h.peer();
  h.core.handle_closed(b, CloseReason::PeerClosed, h.now);
  h.feed(a, descriptor(gn::Type::Ping, 3, 0, {}));
  CHECK(h.out.sent[b.value].empty());
  CHECK(h.core.established() == 1);
}

TEST_CASE("query_by_urn_is_answered_with_that_file_and_hits_carry_urns") {
  Harness h;
  const auto sha = share::sha1_of("the content");
  h.lib.add_virtual("first song.mp3", 11, sha);
  h.lib.add_virtual("second song.mp3", 12);
  auto a = h.peer();
  gn::Query q;
  q.min_speed = 0x8000;
  q.criteria = "";
  wire::put_string(q.extensions, share::sha1_urn(sha));
  wire::Bytes p;
  gn::encode_query(p, q);
  h.feed(a, descriptor(gn::Type::Query, 3, 0, p, 5));
  auto d = h.take_descriptors(a);
  REQUIRE(d.size() == 1);
  auto hit = gn::decode_query_hit(d[0].second);
  REQUIRE(hit->results.size() == 1);
  CHECK(hit->results[0].name == "first song.mp3");
  auto ext = gn::decode_extensions(hit->results[0].extensions);
  REQUIRE(ext.urns.size() == 1);
  CHECK(ext.urns[0] == share::sha1_urn(sha));
  // A keyword query gets both, the hashed one with its urn.
  h.feed(a, descriptor(gn::Type::Query, 3, 0, query_payload("song"), 6));
  auto both = gn::decode_query_hit(h.take_descriptors(a).at(0).second);
  REQUIRE(both->results.size() == 2);
  CHECK(gn::decode_extensions(both->results[0].extensions).urns.size() == 1);
  CHECK(both->results[1].extensions.empty());
  // An unknown urn gets nothing, even though the criteria would match.
  gn::Query q2 = q;
  q2.criteria = "song";
  q2.extensions.clear();
  wire::put_string(q2.extensions, share::sha1_urn(share::sha1_of("other")));
  wire::Bytes p2;
  gn::encode_query(p2, q2);
  h.feed(a, descriptor(gn::Type::Query, 3, 0, p2, 7));
  CHECK(h.take_descriptors(a).empty());
  // Shareaza's hash query: its SHA1 in GGEP "H" only; and with the text urn
  // as well, still the one file.
  for (const std::string& text : {std::string(), share::sha1_urn(sha)}) {
    gn::Query q3 = q;
    q3.extensions = ggep_h_extensions(sha, text);
    wire::Bytes p3;
    gn::encode_query(p3, q3);
    h.feed(a, descriptor(gn::Type::Query, 3, 0, p3, text.empty() ? 8 : 9));
    auto d3 = h.take_descriptors(a);
    REQUIRE(d3.size() == 1);
    auto hit3 = gn::decode_query_hit(d3[0].second);
    REQUIRE(hit3->results.size() == 1);
    CHECK(hit3->results[0].name == "first song.mp3");
  }
}


// ---- 0.6 extras: deflated links (gtk-gnutella's own zlib streams), Bye, GGEP, hit cap ----
#include "unit/wire/vectors_deflate.hpp"
#include "wire/common/zlib_stream.hpp"
#include "wire/gnutella/ggep.hpp"

namespace {
std::string inflate_all(const wire::Bytes& z) {
  wire::Inflater inf;
  std::string out;
  auto r = inf.read(z, [&](wire::ByteView p) {
    out.append(wire::as_chars(p));
    return true;
  });
  REQUIRE(r.ok());
  return out;
}
}  // namespace

TEST_CASE("inflates_gtk_gnutella_deflated_link_as_the_connecting_side") {
  Harness h;
  const Endpoint gtkg{0x7f000001, 6350};
  ConnId c = h.connect_out(gtkg);
  auto connect = gn::decode_handshake(wire::as_bytes(h.take_text(c)));
  REQUIRE(connect.ok());
  CHECK(connect->headers.get("Accept-Encoding") == "deflate");
  CHECK(connect->headers.get("Bye-Packet") == "0.1");
  // gtk-gnutella's 200 (Content-Encoding: deflate), then its deflated Pong
  // and QueryHit (frames 16, 22, 26 of capture 02).
  h.feed(c, test::vec02::kGtkgOkDeflate);
  auto final = gn::decode_handshake(wire::as_bytes(h.take_text(c)));
  REQUIRE(final.ok());
  CHECK(final->headers.get("Content-Encoding") == "deflate");
  CHECK(h.core.stat(GnutellaCore::kLinksCompressedIn) == 1);
  CHECK(h.core.stat(GnutellaCore::kLinksCompressedOut) == 1);
  h.feed(c, test::vec02::kGtkgDeflatedPong);
  h.feed(c, test::vec02::kGtkgDeflatedHit);
  CHECK(h.core.stat(GnutellaCore::kPongsIn) == 1);
  CHECK(h.core.stat(GnutellaCore::kHitsIn) == 1);
  CHECK(h.core.stat(GnutellaCore::kDropBadGgep) == 0);  // its GGEP blocks are valid
  CHECK_FALSE(h.closed(c));
}

TEST_CASE("answers_a_deflated_ping_as_the_accepting_side") {
  Harness h;
  ConnId c{1};
  h.core.handle_connected(c, Endpoint{0x7f000047, 48999}, Direction::Inbound, h.now);
  h.feed(c, test::vec02::kProbeConnectDeflate);
  auto ok = gn::decode_handshake(wire::as_bytes(h.take_text(c)));
  REQUIRE(ok.ok());
  CHECK(ok->headers.get("Content-Encoding") == "deflate");  // the probe accepts it
  h.feed(c, test::vec02::kProbeFinalDeflate);
  h.feed(c, test::vec02::kProbeDeflatedPing);
  CHECK(h.core.stat(GnutellaCore::kPingsIn) == 1);
  // Our Ping and Messages-Supported (sent on connecting) and our Pong go
  // back deflated.
  auto plain = inflate_all(h.out.sent[c.value]);
  gn::Framer f;
  f.feed(wire::as_bytes(plain));
  std::vector<std::uint8_t> types;
  while (auto fr = f.next()) types.push_back(fr->header.type);
  CHECK(types == std::vector<std::uint8_t>{0x00, 0x31, 0x01});
  CHECK(f.buffered() == 0);
}

TEST_CASE("deflate_bomb_and_corrupt_streams_close_the_link") {
  SUBCASE("bomb") {
    Harness h;
    ConnId c{1};
    h.core.handle_connected(c, {}, Direction::Inbound, h.now);
    h.feed(c, "GNUTELLA CONNECT/0.6\r\nAccept-Encoding: deflate\r\n\r\n");
    h.feed(c, "GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n");
    // 64 MiB of one repeated Ping, deflated to well under 100 KiB.
    wire::Deflater d(9);
    wire::Bytes z;
    auto ping = descriptor(gn::Type::Ping, 1, 0, {});
    wire::Bytes block;
    for (int i = 0; i < 4096; ++i) block.insert(block.end(), ping.begin(), ping.end());
    for (int i = 0; i < 700; ++i) d.write(block, z);
    CHECK(z.size() < 400'000);
    h.feed(c, z);
    CHECK(h.closed(c));
    CHECK(h.core.stat(GnutellaCore::kCloseDeflateBomb) == 1);
    CHECK(h.core.stat(GnutellaCore::kPingsIn) < 100'000);  // stopped early, not after 2.9 million
  }
  SUBCASE("corrupt") {
    Harness h;
    ConnId c{1};
    h.core.handle_connected(c, {}, Direction::Inbound, h.now);
    h.feed(c, "GNUTELLA CONNECT/0.6\r\n\r\n");
    h.feed(c, "GNUTELLA/0.6 200 OK\r\nContent-Encoding: deflate\r\n\r\n");
    h.feed(c, test::hex("78 9c ff ff ff ff ff"));
    CHECK(h.closed(c));
    CHECK(h.core.stat(GnutellaCore::kCloseDeflateError) == 1);
  }
}

TEST_CASE("bye_is_read_and_sent") {
  Harness h;
  auto a = h.peer();
  // Our peers are 0.6 with Bye-Packet? The harness's peer did not say so:
  // a malformed descriptor then closes without a Bye.
  wire::Bytes bye_payload;
  wire::put_le16(bye_payload, 502);
  wire::put_string(bye_payload, "Going away");
  bye_payload.push_back(0);
  h.feed(a, descriptor(gn::Type::Bye, 1, 0, bye_payload));
  CHECK(h.closed(a));
  h.core.handle_closed(a, CloseReason::Bye, h.now);
  std::string detail;
  while (auto e = h.core.poll_event()) {
    if (auto* d = std::get_if<event::PeerDown>(&*e)) detail = d->detail;
  }
  CHECK(detail == "502 Going away");

  ConnId b{50};
  h.core.handle_connected(b, {}, Direction::Inbound, h.now);
  h.feed(b, "GNUTELLA CONNECT/0.6\r\nBye-Packet: 0.1\r\n\r\n");
  h.feed(b, "GNUTELLA/0.6 200 OK\r\n\r\n");
  h.take_text(b);
  h.core.shutdown(h.now);
  h.drain();
  auto d = h.take_descriptors(b);
  REQUIRE(d.size() == 1);
  CHECK(d[0].first.type == 0x02);
  CHECK(d[0].first.ttl == 1);
  CHECK(wire::get_le16(d[0].second.data()) == 200);
  CHECK(h.closed(b));
  CHECK(h.core.stat(GnutellaCore::kByesSent) == 1);
}

TEST_CASE("descriptors_with_bad_ggep_are_dropped_not_relayed") {
  Harness h;
  auto a = h.peer(), b = h.peer();
  h.feed(a, descriptor(gn::Type::Ping, 3, 0, test::hex("c3 81 41 45 01"), 1));  // length overruns
  gn::Query q;
  q.min_speed = 0x8000;
  q.criteria = "x";
  q.extensions = test::hex("c3 82 41 42 7f");
  wire::Bytes p;
  gn::encode_query(p, q);
  h.feed(a, descriptor(gn::Type::Query, 3, 0, p, 2));
  CHECK(h.take_descriptors(b).empty());
  CHECK(h.core.stat(GnutellaCore::kDropBadGgep) == 2);
  CHECK_FALSE(h.closed(a));
  // A good GGEP Ping is relayed with its block unchanged.
  wire::Bytes good;
  gn::encode_ggep(good, {{"SCP", {1}, false, false}});
  h.feed(a, descriptor(gn::Type::Ping, 3, 0, good, 3));
  auto d = h.take_descriptors(b);
  REQUIRE(d.size() == 1);
  CHECK(d[0].second == good);
}

TEST_CASE("ten_thousand_hits_for_one_query_are_capped_and_counted") {
  GnutellaConfig cfg = Harness::ultrapeer();
  cfg.max_hits_per_search = 500;
  Harness h(cfg);
  auto a = h.peer();
  gn::Guid id = h.core.search(Search{"x", 3, {}}, h.now).guid;
  h.drain();
  std::size_t events = 0;
  for (int i = 0; i < 400; ++i) {
    gn::QueryHit hit;
    hit.port = 1;
    hit.ip = 0x7f000009;
    for (int r = 0; r < 25; ++r) hit.results.push_back({static_cast<std::uint32_t>(r), 1, "f", {}});
    hit.servent_id.bytes.fill(static_cast<std::uint8_t>(i));
    wire::Bytes p;
    gn::encode_query_hit(p, hit);
    h.feed(a, gn::encode_descriptor(gn::Header{id, 0x81, 3, 0, 0}, p));
    while (auto e = h.core.poll_event()) events += std::holds_alternative<event::Hit>(*e);
  }
  CHECK(events == 500);
  CHECK(h.core.stat(GnutellaCore::kDropHitsOverCap) == 10'000 - 500);
}

// ---- host discovery: host cache, pong caching, X-Try ----

TEST_CASE("host_cache_keeps_usable_hosts_newest_first_and_round_trips") {
  HostCache hc(3);
  hc.add(Endpoint{0x0a000001, 6346}, Instant{Duration(1)});
  hc.add(Endpoint{0x0a000002, 6346}, Instant{Duration(3)});
  hc.add(Endpoint{0x0a000003, 6346}, Instant{Duration(2)});
  hc.add(Endpoint{0, 6346}, Instant{Duration(9)});           // 0.0.0.0/8
  hc.add(Endpoint{0xE0000001, 6346}, Instant{Duration(9)});  // multicast
  hc.add(Endpoint{0x0a000004, 0}, Instant{Duration(9)});     // no port
  CHECK(hc.size() == 3);
  hc.add(Endpoint{0x0a000005, 1}, Instant{Duration(4)});     // pushes out the oldest
  CHECK_FALSE(hc.contains(Endpoint{0x0a000001, 6346}));
  CHECK(hc.recent(2) == std::vector<Endpoint>{{0x0a000005, 1}, {0x0a000002, 6346}});
  HostCache back;
  back.load(hc.to_text() + "garbage line\n");
  CHECK(back.recent(10) == hc.recent(10));
  back.add_list("1.2.3.4:5, 6.7.8.9:10,bad", Instant{Duration(100)});
  CHECK(back.contains(Endpoint{0x01020304, 5}));
  CHECK(back.contains(Endpoint{0x0607080a - 1, 10}));
}


TEST_CASE("a_resting_ultrapeer_is_left_out_of_the_ultrapeer_picks_until_its_rest_ends_or_it_says_it_has_room") {
  using Pick = HostCache::Pick;
  HostCache hc;
  const Endpoint a{0x0a000001, 6346}, b{0x0a000002, 6346};
  hc.add(a, Instant{Duration(2)});
  hc.add(b, Instant{Duration(1)});
  hc.mark_ultrapeer(a, true);
  hc.mark_ultrapeer(b, true);
  const auto before = hc.changes();
  hc.rest(a, Instant{std::chrono::seconds(10)});
  CHECK(hc.changes() > before);
  CHECK(hc.resting(a));
  CHECK(hc.recent(5, {}, Pick::Ultrapeers) == std::vector<Endpoint>{b});
  CHECK(hc.recent(5) == std::vector<Endpoint>{a, b});  // still a known host
  CHECK(hc.ultrapeers() == 2);
  CHECK(hc.is_ultrapeer(a));
  hc.wake_due(Instant{std::chrono::seconds(10) - Duration(1)});
  CHECK(hc.recent(5, {}, Pick::Ultrapeers) == std::vector<Endpoint>{b});
  hc.wake_due(Instant{std::chrono::seconds(10)});
  CHECK_FALSE(hc.resting(a));
  CHECK(hc.recent(5, {}, Pick::Ultrapeers) == std::vector<Endpoint>{a, b});
  // Room again ends the rest at once.
  hc.rest(a, Instant{std::chrono::seconds(20)});
  CHECK(hc.recent(5, {}, Pick::UltrapeersWithRoom).empty());
  hc.mark_leaf_room(a, true);
  CHECK_FALSE(hc.resting(a));
  CHECK(hc.recent(5, {}, Pick::UltrapeersWithRoom) == std::vector<Endpoint>{a});
  // Seen again while resting, it stays out; forgotten, its rest goes with it.
  hc.mark_leaf_room(a, false);
  hc.rest(a, Instant{std::chrono::seconds(30)});
  hc.add(a, Instant{Duration(5)});
  CHECK(hc.recent(5, {}, Pick::Ultrapeers) == std::vector<Endpoint>{b});
  hc.remove(a);
  CHECK(hc.ultrapeers() == 1);
  hc.wake_due(Instant{std::chrono::seconds(60)});
  hc.add(a, Instant{Duration(6)});
  CHECK_FALSE(hc.resting(a));
  CHECK_FALSE(hc.is_ultrapeer(a));
}
TEST_CASE("pings_are_answered_from_the_pong_cache_instead_of_flooded") {
  Harness h;
  auto a = h.peer(), b = h.peer(), c = h.peer();
  // The Ping we sent b when it connected comes back answered with a Pong
  // from a servent two hops away.
  ConnId bc = b;
  (void)bc;
  // Find the GUID of our Ping to b: re-ping b explicitly via a fresh peer pass.
  h.core.ping(3, h.now);
  h.drain();
  auto to_b = h.take_descriptors(b);
  REQUIRE(!to_b.empty());
  const gn::Guid our_ping = to_b.back().first.id;
  h.take_descriptors(a);
  h.take_descriptors(c);
  gn::Pong far{6346, 0x0a0000aa, 10, 1000, {}};
  wire::Bytes pp;
  gn::encode_pong(pp, far);
  h.feed(b, gn::encode_descriptor(gn::Header{our_ping, 0x01, 3, 1, 0}, pp));
  CHECK(h.core.host_cache().contains(Endpoint{0x0a0000aa, 6346}));
  // a pings with TTL 3: it gets our Pong and the cached one; nobody else sees the Ping.
  h.feed(a, descriptor(gn::Type::Ping, 3, 0, {}, 0x31));
  auto d = h.take_descriptors(a);
  REQUIRE(d.size() == 2);
  CHECK(gn::decode_pong(d[1].second)->ip == 0x0a0000aa);
  CHECK(d[1].first.hops == 2);
  CHECK(h.take_descriptors(b).empty());
  CHECK(h.take_descriptors(c).empty());
  CHECK(h.core.stat(GnutellaCore::kPingsNotFlooded) == 1);
  // b itself gets no echo of its own pong; with nothing else cached the Ping floods.
  h.feed(b, descriptor(gn::Type::Ping, 3, 0, {}, 0x32));
  CHECK(h.take_descriptors(b).size() == 1);
  CHECK(h.take_descriptors(a).size() == 1);
}

namespace {
// An inbound 0.6 peer (from 10.0.0.1:5000) that listens at 10.0.0.1:6346 and
// names another ultrapeer, 10.0.0.7:6346.
ConnId peer_listening_at_10_0_0_1(Harness& h) {
  ConnId a{1};
  h.core.handle_connected(a, Endpoint{0x0a000001, 5000}, Direction::Inbound, h.now);
  h.feed(a, "GNUTELLA CONNECT/0.6\r\nListen-IP: 10.0.0.1:6346\r\nX-Try-Ultrapeers: 10.0.0.7:6346\r\n\r\n");
  h.feed(a, "GNUTELLA/0.6 200 OK\r\n\r\n");
  return a;
}
}  // namespace

TEST_CASE("a_peer_that_connected_to_us_is_not_dialled_again_at_its_listen_address") {
  GnutellaConfig cfg = Harness::ultrapeer();
  cfg.min_peers = 3;
  Harness h(cfg);
  const ConnId a = peer_listening_at_10_0_0_1(h);
  h.core.handle_timeout(h.now);
  h.drain();
  // Short of min_peers, it dials what it learned, but not 10.0.0.1:6346:
  // linked with it already (two links to one peer carry everything twice).
  REQUIRE(h.out.connects.size() == 1);
  CHECK(h.out.connects[0].to == Endpoint{0x0a000007, 6346});
  // Once that link is gone, it may be dialled.
  h.core.handle_closed(a, CloseReason::PeerClosed, h.now);
  h.core.handle_timeout(h.now);
  h.drain();
  REQUIRE(h.out.connects.size() == 2);
  CHECK(h.out.connects[1].to == Endpoint{0x0a000001, 6346});
}

TEST_CASE("refusal_offers_x_try_and_learned_hosts_are_dialled") {
  GnutellaConfig cfg = Harness::ultrapeer();
  cfg.max_connections = 1;
  cfg.min_peers = 2;
  Harness h(cfg);
  // A peer tells us where it listens.
  const ConnId a = peer_listening_at_10_0_0_1(h);
  CHECK(h.core.host_cache().contains(Endpoint{0x0a000001, 6346}));
  CHECK(h.core.host_cache().contains(Endpoint{0x0a000007, 6346}));
  // Full: the next one is refused with somewhere else to try.
  ConnId b{2};
  h.core.handle_connected(b, Endpoint{0x0a000009, 5001}, Direction::Inbound, h.now);
  h.feed(b, "GNUTELLA CONNECT/0.6\r\n\r\n");
  auto r = gn::decode_handshake(wire::as_bytes(h.take_text(b)));
  REQUIRE(r.ok());
  CHECK(r->status == 503);
  CHECK(r->headers.get("X-Try-Ultrapeers")->find("10.0.0.7:6346") != std::string::npos);
  // Both leave; below min_peers the servent dials the hosts it learned.
  h.core.handle_closed(b, CloseReason::Normal, h.now);
  h.core.handle_closed(a, CloseReason::PeerClosed, h.now);
  h.core.handle_timeout(h.now);
  h.drain();
  auto dialled = [&](Endpoint e) {
    std::vector<ConnId> ids;
    for (const auto& c : h.out.connects) {
      if (c.to == e) ids.push_back(c.conn);
    }
    return ids;
  };
  REQUIRE(dialled(Endpoint{0x0a000007, 6346}).size() == 1);
  CHECK(dialled(Endpoint{0x0a000001, 6346}).size() == 1);
  CHECK(h.core.stat(GnutellaCore::kCacheConnects) == 2);
  // 10.0.0.7 never answers: after two tries it is forgotten.
  h.core.handle_closed(dialled(Endpoint{0x0a000007, 6346})[0], CloseReason::ConnectFailed, h.now);
  h.now = h.now + 10s;
  h.core.handle_timeout(h.now);
  h.drain();
  REQUIRE(dialled(Endpoint{0x0a000007, 6346}).size() == 2);
  h.core.handle_closed(dialled(Endpoint{0x0a000007, 6346})[1], CloseReason::ConnectFailed, h.now);
  CHECK_FALSE(h.core.host_cache().contains(Endpoint{0x0a000007, 6346}));
}

TEST_CASE("remote_ip_tells_a_servent_without_an_address_what_to_advertise") {
  share::Library lib;
  GnutellaCore core(lib, GnutellaConfig{}, 1);
  Instant now{Duration(5)};
  ConnId c{1};
  core.handle_connected(c, Endpoint{0x0a000001, 1}, Direction::Inbound, now);
  core.handle_bytes(c, wire::as_bytes("GNUTELLA CONNECT/0.6\r\nRemote-IP: 192.0.2.44\r\n\r\n"), now);
  CHECK(core.config().advertised.ip == 0xC000022C);
}

TEST_CASE("hits_for_mp3s_carry_bitrate_frequency_and_length") {
  char tmpl[] = "/tmp/servent-mp3-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  {
    std::string f;
    for (int i = 0; i < 1000; ++i) {
      std::string fr(417, '\0');
      fr[0] = '\xff';
      fr[1] = '\xfb';
      fr[2] = '\x90';
      f += fr;
    }
    std::FILE* out = std::fopen((dir + "/Some Band - Tune.mp3").c_str(), "wb");
    std::fwrite(f.data(), 1, f.size(), out);
    std::fclose(out);
  }
  Harness h;
  h.lib = share::Library({dir}, "");
  h.lib.rescan();
  auto a = h.peer();
  h.feed(a, descriptor(gn::Type::Query, 3, 0, query_payload("tune"), 4));
  auto d = h.take_descriptors(a);
  REQUIRE(d.size() == 1);
  auto hit = gn::decode_query_hit(d[0].second);
  REQUIRE(hit->results.size() == 1);
  auto ext = gn::decode_extensions(hit->results[0].extensions);
  REQUIRE(ext.other.size() == 1);
  CHECK(std::string(ext.other[0].begin(), ext.other[0].end()) == "128 kbps 44.1 kHz 0:26");
  std::filesystem::remove_all(dir);
}

TEST_CASE("a_file_of_4_gib_or_more_is_answered_with_ggep_lf") {
  Harness h;
  const std::uint64_t big = (std::uint64_t{5} << 30) + 7;  // 5 GiB + 7
  h.lib.add_virtual("big image.iso", big);
  h.lib.add_virtual("small image.iso", 0xFFFFFFFEull);
  auto a = h.peer(true);
  h.feed(a, descriptor(gn::Type::Query, 3, 0, query_payload("image"), 1));
  auto d = h.take_descriptors(a);
  REQUIRE(d.size() == 1);
  auto hit = gn::decode_query_hit(d[0].second);
  REQUIRE(hit);
  REQUIRE(hit->results.size() == 2);
  for (const auto& r : hit->results) {
    CAPTURE(r.name);
    if (r.name == "big image.iso") {
      CHECK(r.size == gn::kSize32Escape);
      CHECK(gn::result_size(r.size, r.extensions) == big);
    } else {
      CHECK(r.size == 0xFFFFFFFEu);
      CHECK_FALSE(gn::decode_extensions(r.extensions).ggep);
    }
  }
}

TEST_CASE("an_identical_search_is_not_sent_again_on_a_link_within_the_requery_threshold") {
  GnutellaConfig cfg = Harness::ultrapeer();
  cfg.dynamic_querying = false;  // every link carries it at once
  Harness h(cfg);
  auto a = h.peer();
  auto b = h.peer(true);
  auto queries = [&](ConnId c) {
    std::vector<gn::Header> v;
    for (auto& [hd, payload] : h.take_descriptors(c)) {
      if (hd.type == static_cast<std::uint8_t>(gn::Type::Query)) v.push_back(hd);
    }
    return v;
  };
  const auto first = h.core.search(Search{"free song", 7, {}}, h.now);
  h.drain();
  CHECK_FALSE(first.repeat);
  CHECK(first.links == 2);
  CHECK(queries(a).size() == 1);
  CHECK(queries(b).size() == 1);

  // A minute later, the same words: no link gets them again; same id.
  h.now = h.now + 60s;
  const auto again = h.core.search(Search{"free song", 7, {}}, h.now);
  h.drain();
  CHECK(again.repeat);
  CHECK(again.guid == first.guid);
  CHECK(again.links == 0);
  CHECK(again.held_back == 2);
  CHECK(again.full_requery_at == Instant{Duration(1000)} + 1700s);
  CHECK(queries(a).empty());
  CHECK(queries(b).empty());
  CHECK(h.core.stat(GnutellaCore::kQueriesHeldBack) == 2);

  // Other words still go everywhere; a link that came up since gets the
  // repeat (it never carried it), under the first query's id.
  CHECK(h.core.search(Search{"other words", 7, {}}, h.now).links == 2);
  h.drain();
  CHECK(queries(a).size() == 1);
  auto c = h.peer();
  const auto third = h.core.search(Search{"free song", 7, {}}, h.now);
  h.drain();
  CHECK(third.links == 1);
  CHECK(third.held_back == 2);
  auto to_c = queries(c);
  REQUIRE(to_c.size() == 1);
  CHECK(to_c[0].id == first.guid);
  CHECK(queries(a).empty());

  // The same urn:sha1 is the same query whatever the text around it.
  const std::string urn = "urn:sha1:DDYNWMEKM4DXLFRYVF2FJQJWVMM4DADB";
  Search by_urn{"", 7, wire::Bytes(urn.begin(), urn.end())};
  Search by_urn_and_words{"some name", 7, wire::Bytes(urn.begin(), urn.end())};
  CHECK(h.core.search(by_urn, h.now).links == 3);
  h.drain();
  CHECK(h.core.search(by_urn_and_words, h.now).links == 0);

  // Once the threshold has passed for every link, it is a new query again.
  h.now = h.now + 1700s;
  const auto later = h.core.search(Search{"free song", 7, {}}, h.now);
  h.drain();
  CHECK_FALSE(later.repeat);
  CHECK(later.links == 3);
  CHECK(later.guid != first.guid);
}
