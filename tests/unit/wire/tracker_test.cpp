// Trackers: libtorrent 2.0.8's own HTTP announce and UDP connect/announce
// (captured on loopback, Debian 12 python3-libtorrent, the 7-byte torrent of
// peer_test, info-hash a017d628...) decode; replies, scrapes and magnet
// links round-trip; bad input is refused.
#include <doctest/doctest.h>

#include <string>

#include "wire/bt/tracker.hpp"

using namespace sv::wire;
using namespace sv::wire::bt;
using namespace std::literals;

namespace {

constexpr std::string_view kLibtorrentQuery =
    "info_hash=%a0%17%d6(%1f%d5%12%7f%1f%5cQ%d1%1bF%86%b8~%17%9d%86&peer_id=-LT2000-5eaY3.*kdHXK&port=6881&uploaded=0&"
    "downloaded=0&left=0&corrupt=0&key=66B13285&event=started&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&"
    "redundant=0";
constexpr std::string_view kLibtorrentUdpConnect = "0000041727101980000000005e048e13";
constexpr std::string_view kLibtorrentUdpAnnounce =
    "1122334455667788000000017ec4db2ba017d6281fd5127f1f5c51d11b4686b87e179d862d4c54323030302d35656159332e2a6b6448584b"
    "000000000000000000000000000000000000000000000000000000020000000066b13285000000c81ae102012f";

Bytes unhex(std::string_view h) {
  Bytes b;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) b.push_back(static_cast<std::uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return b;
}

const Sha1 kHash = *sha1_from_hex("a017d6281fd5127f1f5c51d11b4686b87e179d86");

}  // namespace

TEST_CASE("libtorrents_http_announce_decodes") {
  auto a = decode_announce_query(kLibtorrentQuery);
  REQUIRE(a);
  CHECK(a->info_hash == kHash);
  CHECK(std::string(a->peer_id.begin(), a->peer_id.end()) == "-LT2000-5eaY3.*kdHXK");
  CHECK(a->port == 6881);
  CHECK(a->left == 0);
  CHECK(a->event == AnnounceEvent::Started);
  CHECK(a->numwant == 200);
  // Ours carries the same fields, and decodes to them.
  Announce mine = *a;
  mine.uploaded = 5;
  mine.left = 1ull << 40;
  const std::string url = announce_url("http://127.0.0.1:6969/announce", mine);
  REQUIRE(url.starts_with("http://127.0.0.1:6969/announce?info_hash="));
  auto back = decode_announce_query(url.substr(url.find('?') + 1));
  REQUIRE(back);
  CHECK(back->info_hash == mine.info_hash);
  CHECK(back->peer_id == mine.peer_id);
  CHECK(back->uploaded == 5);
  CHECK(back->left == 1ull << 40);
  CHECK(back->event == AnnounceEvent::Started);
  CHECK(announce_url("http://t/a?passkey=x", mine).starts_with("http://t/a?passkey=x&info_hash="));
  // Refused: no info_hash, a short one, no port, a broken escape.
  CHECK_FALSE(decode_announce_query("peer_id=-LT2000-5eaY3.*kdHXK&port=1"));
  CHECK_FALSE(decode_announce_query("info_hash=abc&peer_id=-LT2000-5eaY3.*kdHXK&port=1"));
  CHECK_FALSE(decode_announce_query(std::string(kLibtorrentQuery).replace(kLibtorrentQuery.find("port=6881"), 9, "port=0")));
  CHECK_FALSE(decode_announce_query("info_hash=%a"));
}

TEST_CASE("libtorrents_udp_connect_and_announce_decode") {
  auto c = decode_udp_request(unhex(kLibtorrentUdpConnect));
  REQUIRE(c.ok());
  CHECK(c->action == UdpAction::Connect);
  CHECK(c->transaction == 0x5e048e13);
  CHECK(encode_udp_request(*c) == unhex(kLibtorrentUdpConnect));
  const Bytes raw = unhex(kLibtorrentUdpAnnounce);
  auto a = decode_udp_request(raw);
  REQUIRE(a.ok());
  CHECK(a->action == UdpAction::Announce);
  CHECK(a->connection_id == 0x1122334455667788ull);
  CHECK(a->announce.info_hash == kHash);
  CHECK(a->announce.event == AnnounceEvent::Started);
  CHECK(a->announce.key == 0x66b13285);
  CHECK(a->announce.numwant == 200);
  CHECK(a->announce.port == 6881);
  // (libtorrent appends BEP 41 URL data, which we ignore: our encoding is the 98 bytes before it.)
  CHECK(encode_udp_request(*a) == Bytes(raw.begin(), raw.begin() + 98));
  // Responses round-trip.
  UdpPacket r;
  r.action = UdpAction::Announce;
  r.transaction = 7;
  r.reply.interval = 900;
  r.reply.complete = 2;
  r.reply.incomplete = 3;
  r.reply.peers = {{0x7f000002, 6881}, {0x7f000003, 51413}};
  auto rb = decode_udp_response(encode_udp_response(r));
  REQUIRE(rb.ok());
  CHECK(rb->reply.peers == r.reply.peers);
  CHECK(rb->reply.complete == 2);
  CHECK(rb->reply.incomplete == 3);
  // Refused: short packets, a connect without the magic, an unknown event, too many scrape hashes.
  CHECK(decode_udp_request(Bytes(15, 0)).error() == WireError::Malformed);
  Bytes bad_magic = unhex(kLibtorrentUdpConnect);
  bad_magic[0] = 1;
  CHECK(decode_udp_request(bad_magic).error() == WireError::Malformed);
  Bytes bad_event = raw;
  bad_event[83] = 9;
  CHECK(decode_udp_request(bad_event).error() == WireError::Malformed);
  CHECK(decode_udp_request(Bytes(raw.begin(), raw.begin() + 97)).error() == WireError::Malformed);
  UdpPacket scrape;
  scrape.action = UdpAction::Scrape;
  scrape.connection_id = 1;
  scrape.scrape.assign(75, kHash);
  CHECK(decode_udp_request(encode_udp_request(scrape)).error() == WireError::Malformed);
  scrape.scrape.resize(2);
  auto sb = decode_udp_request(encode_udp_request(scrape));
  REQUIRE(sb.ok());
  CHECK(sb->scrape.size() == 2);
}

TEST_CASE("announce_replies_compact_and_not_and_failures") {
  AnnounceReply r;
  r.interval = 60;
  r.complete = 1;
  r.peers = {{0x7f000002, 6881}};
  auto c = decode_announce_reply(encode_announce_reply(r));
  REQUIRE(c);
  CHECK(c->peers == r.peers);
  CHECK(c->interval == 60);
  auto l = decode_announce_reply(encode_announce_reply(r, false));
  REQUIRE(l);
  CHECK(l->peers == r.peers);
  // The reply libtorrent accepted above, byte for byte.
  auto lt = decode_announce_reply(as_bytes("d8:completei1e10:incompletei0e8:intervali1800e5:peers6:\x7f\x00\x00\x02\x1a\xe1" "e"sv));
  REQUIRE(lt);
  CHECK(lt->peers == std::vector<PeerAddr>{{0x7f000002, 6881}});
  AnnounceReply f;
  f.failure = "unregistered torrent";
  auto fb = decode_announce_reply(encode_announce_reply(f));
  REQUIRE(fb);
  CHECK(fb->failure == "unregistered torrent");
  CHECK_FALSE(decode_announce_reply(as_bytes("d8:intervali5ee")));  // no peers
  CHECK_FALSE(decode_announce_reply(as_bytes("garbage")));
}

TEST_CASE("scrape_urls_and_replies") {
  CHECK(scrape_url("http://t:1/announce") == "http://t:1/scrape");
  CHECK(scrape_url("http://t:1/x/announce.php?k=1") == "http://t:1/x/scrape.php?k=1");
  CHECK_FALSE(scrape_url("http://t:1/a"));
  auto s = decode_scrape_reply(encode_scrape_reply({{kHash, 3, 10, 4}}));
  REQUIRE(s);
  REQUIRE(s->size() == 1);
  CHECK((*s)[0].info_hash == kHash);
  CHECK((*s)[0].downloaded == 10);
  CHECK((*s)[0].incomplete == 4);
}

TEST_CASE("magnet_links_in_hex_and_base32") {
  auto m = decode_magnet("magnet:?xt=urn:btih:a017d6281fd5127f1f5c51d11b4686b87e179d86&dn=one.txt&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce");
  REQUIRE(m);
  CHECK(m->info_hash == kHash);
  CHECK(m->name == "one.txt");
  CHECK(m->trackers == std::vector<std::string>{"http://127.0.0.1:6969/announce"});
  // The same hash in base32 (RFC 4648).
  auto b = decode_magnet("magnet:?xt=urn:btih:UAL5MKA72UJH6H24KHIRWRUGXB7BPHMG");
  REQUIRE(b);
  CHECK(b->info_hash == kHash);
  auto back = decode_magnet(encode_magnet(*m));
  REQUIRE(back);
  CHECK(back->info_hash == kHash);
  CHECK(back->trackers == m->trackers);
  CHECK_FALSE(decode_magnet("magnet:?dn=x"));
  CHECK_FALSE(decode_magnet("magnet:?xt=urn:btih:zz17d6281fd5127f1f5c51d11b4686b87e179d86"));
  CHECK_FALSE(decode_magnet("http://x"));
}
