// wire/napster: frames and messages, with byte vectors from a real
// opennap-ng 0.50 + TekNap 1.3g session (pcap-fixtures/napster_teknap_opennap_ng.pcap,
// copied from ../shared/captures/napster/teknap-probe-opennap-ng.pcap; each
// vector names its frame number).
#include <doctest/doctest.h>

#include "support/bytes.hpp"
#include "wire/napster/napster.hpp"

using namespace sv;
using namespace sv::wire::napster;
using sv::test::hex;

namespace {

// Frame 4: TekNap's login (2), with two fields after the link type.
const wire::Bytes vLogin = hex(
    "29000200"
    "74656b757365722074656b70772036363939202254656b4e61702d312e336722203020353230312030");
// Frame 6: login ack (3).
const wire::Bytes vLoginAck = hex("0e000300616e6f6e403132372e302e302e31");
// Frame 28: stats (214) "0 0 0".
const wire::Bytes vStats = hex("0500d6003020302030");
// Frame 32: TekNap shares a folder and a file in it (870).
const wire::Bytes vShareDir = hex(
    "5c006603225c746d705c6e61705c746b762d373737385c73686172655c22202254656b6e617020417274697374202d20536861726564"
    "2054756e652e6d703322204e4f4d4435434f4d5055544544203833343030203132382034343130302035");
// Frame 72: search (200).
const wire::Bytes vSearch = hex(
    "2f00c80046494c454e414d4520434f4e5441494e5320225368617265642054756e6522204d41585f524553554c545320313030");
// Frame 73: search result (201).
const wire::Bytes vResult = hex(
    "7f00c900225c746d705c6e61705c746b762d373737385c73686172655c54656b6e617020417274697374202d2053686172656420"
    "54756e652e6d7033222030303030303030303030303030303030303030303030303030303030303030302038333430302031323820"
    "343431303020352074656b757365722031363737373334332030");
// Frame 75: end of search (202).
const wire::Bytes vSearchEnd = hex("0000ca00");
// Frame 77: download request (203).
const wire::Bytes vDownload = hex(
    "4100cb0074656b7573657220225c746d705c6e61705c746b762d373737385c73686172655c54656b6e617020417274697374202d20"
    "5368617265642054756e652e6d703322");
// Frame 78: upload request to the sharer (607), no speed field.
const wire::Bytes vUploadRequest = hex(
    "42005f0270726f626567657420225c746d705c6e61705c746b762d373737385c73686172655c54656b6e617020417274697374202d"
    "205368617265642054756e652e6d703322");
// Frame 82: download ack (204) with TekNap's data port 6778.
const wire::Bytes vDownloadAck = hex(
    "7200cc0074656b75736572203136373737333433203637373820225c746d705c6e61705c746b762d373737385c73686172655c5465"
    "6b6e617020417274697374202d205368617265642054756e652e6d7033222030303030303030303030303030303030303030303030"
    "303030303030303030302030");
// Frame 193: a share (100) as a client written from napster.txt sends it.
const wire::Bytes vShare = hex(
    "5b00640022433a5c70726f62655c50726f626520417274697374202d2050726f62652054756e652e6d70332220303132333435363738"
    "3961626364656630313233343536373839616263646566203632353530203132382034343130302033");
// Frame 272: a 204 for a firewalled sharer (port 0).
const wire::Bytes vAckFirewalled = hex(
    "6400cc0070726f6265667720313637373733343320302022433a5c70726f62655c4669726577616c6c656420417274697374202d20"
    "5075736865642054756e652e6d7033222030303030303030303030303030303030303030303030303030303030303030302038");
// Frame 274: alternate download request (500).
const wire::Bytes vAlt = hex(
    "3600f40170726f626566772022433a5c70726f62655c4669726577616c6c656420417274697374202d205075736865642054756e65"
    "2e6d703322");
// Frame 279: alternate download ack to the firewalled sharer (501).
const wire::Bytes vAltAck = hex(
    "6700f50174656b7573657220313637373733343320363737382022433a5c70726f62655c4669726577616c6c656420417274697374"
    "202d205075736865642054756e652e6d7033222030303030303030303030303030303030303030303030303030303030303030302030");

Frame whole(const wire::Bytes& b) {
  std::size_t used = 0;
  auto f = decode_frame(b, used);
  REQUIRE(f.ok());
  REQUIRE(used == b.size());
  return *f;
}

const std::vector<const wire::Bytes*> kAll = {&vLogin,     &vLoginAck,      &vStats,       &vShareDir, &vSearch,
                                              &vResult,    &vSearchEnd,     &vDownload,    &vUploadRequest,
                                              &vDownloadAck, &vAckFirewalled, &vShare, &vAlt, &vAltAck};

}  // namespace

TEST_CASE("napster_login_from_teknap_decodes") {
  const Frame f = whole(vLogin);
  CHECK(f.type == Type::kLogin);
  auto l = decode_login(f.payload);
  REQUIRE(l.ok());
  CHECK(l->nick == "tekuser");
  CHECK(l->password == "tekpw");
  CHECK(l->port == 6699);
  CHECK(l->client == "TekNap-1.3g");
  CHECK(l->link == 0);
  // Our own encoding (without TekNap's extra fields) decodes the same.
  auto again = decode_login(encode_login(*l));
  REQUIRE(again.ok());
  CHECK(again->client == "TekNap-1.3g");
}

TEST_CASE("napster_server_frames_reencode_byte_identical") {
  CHECK(whole(vLoginAck).payload == "anon@127.0.0.1");
  auto s = decode_stats(whole(vStats).payload);
  REQUIRE(s.ok());
  CHECK(encode_frame(Type::kStats, encode_stats(*s)) == vStats);
  CHECK(whole(vSearchEnd).type == Type::kSearchEnd);
  CHECK(whole(vSearchEnd).payload.empty());

  auto r = decode_search_result(whole(vResult).payload);
  REQUIRE(r.ok());
  CHECK(r->file.name == "\\tmp\\nap\\tkv-7778\\share\\Teknap Artist - Shared Tune.mp3");
  CHECK(r->file.size == 83400);
  CHECK(r->file.bitrate == 128);
  CHECK(r->file.freq == 44100);
  CHECK(r->file.length == 5);
  CHECK(r->nick == "tekuser");
  CHECK(r->ip == 0x7f000001);
  CHECK(r->link == 0);
  CHECK(encode_frame(kSearchResult, encode_search_result(*r)) == vResult);

  auto a = decode_transfer_ack(whole(vDownloadAck).payload);
  REQUIRE(a.ok());
  CHECK(a->nick == "tekuser");
  CHECK(a->ip == 0x7f000001);
  CHECK(a->port == 6778);
  CHECK(a->name == r->file.name);
  CHECK(encode_frame(Type::kDownloadAck, encode_transfer_ack(*a)) == vDownloadAck);

  auto fw = decode_transfer_ack(whole(vAckFirewalled).payload);
  REQUIRE(fw.ok());
  CHECK(fw->port == 0);
  CHECK(fw->link == 8);
  CHECK(encode_frame(Type::kDownloadAck, encode_transfer_ack(*fw)) == vAckFirewalled);

  auto alt = decode_transfer_ack(whole(vAltAck).payload);
  REQUIRE(alt.ok());
  CHECK(alt->port == 6778);
  CHECK(encode_frame(kAltDownloadAck, encode_transfer_ack(*alt)) == vAltAck);

  auto up = decode_nick_file(whole(vUploadRequest).payload);
  REQUIRE(up.ok());
  CHECK(up->nick == "probeget");
  CHECK_FALSE(up->speed.has_value());
  CHECK(encode_frame(Type::kUploadRequest, encode_nick_file(*up)) == vUploadRequest);
}

TEST_CASE("napster_client_frames_reencode_byte_identical") {
  auto q = decode_search(whole(vSearch).payload);
  REQUIRE(q.ok());
  REQUIRE(q->contains.size() == 1);
  CHECK(q->contains[0] == "Shared Tune");
  CHECK(q->max_results == 100);
  CHECK(encode_frame(Type::kSearch, encode_search(*q)) == vSearch);

  auto d = decode_nick_file(whole(vDownload).payload);
  REQUIRE(d.ok());
  CHECK(d->nick == "tekuser");
  CHECK(encode_frame(kDownloadRequest, encode_nick_file(*d)) == vDownload);
  auto alt = decode_nick_file(whole(vAlt).payload);
  REQUIRE(alt.ok());
  CHECK(encode_frame(kAltDownloadRequest, encode_nick_file(*alt)) == vAlt);

  auto e = decode_share(whole(vShare).payload);
  REQUIRE(e.ok());
  CHECK(e->name == "C:\\probe\\Probe Artist - Probe Tune.mp3");
  CHECK(e->md5 == "0123456789abcdef0123456789abcdef");
  CHECK(e->size == 62550);
  CHECK(e->length == 3);
  CHECK(encode_frame(Type::kShare, encode_share(*e)) == vShare);

  auto dir = decode_share_dir(whole(vShareDir).payload);
  REQUIRE(dir.ok());
  REQUIRE(dir->size() == 1);
  CHECK((*dir)[0].name == "\\tmp\\nap\\tkv-7778\\share\\Teknap Artist - Shared Tune.mp3");
  CHECK((*dir)[0].md5 == "NOMD5COMPUTED");
  CHECK((*dir)[0].size == 83400);
  auto file = (*dir)[0];
  file.name = "Teknap Artist - Shared Tune.mp3";
  CHECK(encode_frame(Type::kShareDir, encode_share_dir("\\tmp\\nap\\tkv-7778\\share\\", std::vector<ShareEntry>{file})) == vShareDir);
}

TEST_CASE("napster_every_truncated_prefix_is_need_more") {
  for (const auto* v : kAll) {
    for (std::size_t n = 0; n < v->size(); ++n) {
      std::size_t used = 0;
      CHECK(decode_frame(wire::ByteView(v->data(), n), used).need_more());
    }
  }
}

TEST_CASE("napster_every_chunking_gives_the_same_frames") {
  wire::Bytes stream;
  for (const auto* v : kAll) stream.insert(stream.end(), v->begin(), v->end());
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    Framer f;
    std::size_t seen = 0;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      f.feed(wire::ByteView(stream.data() + at, std::min(chunk, stream.size() - at)));
      for (;;) {
        auto fr = f.next();
        if (!fr) {
          REQUIRE(fr.need_more());
          break;
        }
        REQUIRE(seen < kAll.size());
        const Frame expect = whole(*kAll[seen]);
        CHECK(fr->type == expect.type);
        CHECK(fr->payload == expect.payload);
        ++seen;
      }
    }
    CHECK(seen == kAll.size());
    CHECK(f.buffered() == 0);
  }
}

TEST_CASE("napster_payload_cap_is_2048_and_configurable") {
  std::size_t used = 0;
  wire::Bytes at_cap = encode_frame(Type::kSearch, std::string(2048, 'x'));
  CHECK(decode_frame(at_cap, used).ok());
  wire::Bytes over = encode_frame(Type::kSearch, std::string(2049, 'x'));
  CHECK(decode_frame(over, used).error() == wire::WireError::TooLarge);
  // Known to be too large from the header alone, before the payload arrives.
  CHECK(decode_frame(wire::ByteView(over.data(), 4), used).error() == wire::WireError::TooLarge);
  CHECK(decode_frame(over, used, 4096).ok());
  Framer small(16);
  small.feed(encode_frame(kPing, std::string(17, 'a')));
  CHECK(small.next().error() == wire::WireError::TooLarge);
}

TEST_CASE("napster_ip_is_network_order_bytes_read_little_endian") {
  CHECK(to_napster_ip(0x7f000001) == 16777343u);
  CHECK(from_napster_ip(16777343u) == 0x7f000001u);
  CHECK(to_napster_ip(0xc0a80102) == 0x0201a8c0u);  // 192.168.1.2
}

TEST_CASE("napster_names_with_quotes_spaces_and_backslashes_round_trip") {
  const std::vector<std::string> names = {
      R"(C:\My Music\a "quoted" name.mp3)",
      R"(ends with a quote" )" + std::string("x.mp3"),
      R"(" starts with a quote.mp3)",
      R"(two  spaces and \\ double backslash" "quote space quote.mp3)",
      R"(x)",
  };
  for (const auto& n : names) {
    CAPTURE(n);
    ShareEntry e{n, "0123456789abcdef0123456789abcdef", 5000000000ull, 192, 48000, 301};
    auto s = decode_share(encode_share(e));
    REQUIRE(s.ok());
    CHECK(s->name == n);
    CHECK(s->size == 5000000000ull);
    SearchResult r{e, "nick", 0x0a000001, 4};
    auto rr = decode_search_result(encode_search_result(r));
    REQUIRE(rr.ok());
    CHECK(rr->file.name == n);
    CHECK(rr->nick == "nick");
    CHECK(rr->ip == 0x0a000001);
    auto br = decode_browse_result(encode_browse_result("nick", e));
    REQUIRE(br.ok());
    CHECK(br->file.name == n);
    NickFile nf{"someone", n, 3};
    auto d = decode_nick_file(encode_nick_file(nf));
    REQUIRE(d.ok());
    CHECK(d->name == n);
    CHECK(d->speed == 3u);
    TransferAck t{"sharer", 0x7f000001, 6699, n, "", 8};
    auto ta = decode_transfer_ack(encode_transfer_ack(t));
    REQUIRE(ta.ok());
    CHECK(ta->name == n);
    CHECK(ta->port == 6699);
  }
}

TEST_CASE("napster_search_reads_every_clause") {
  auto q = decode_search(
      R"(FILENAME CONTAINS "free software" MAX_RESULTS 25 FILENAME CONTAINS "song" LINESPEED "AT LEAST" 4 )"
      R"(BITRATE "AT BEST" "192" FREQ "EQUAL TO" "44100")");
  REQUIRE(q.ok());
  CHECK(q->contains == std::vector<std::string>{"free software", "song"});
  CHECK(q->max_results == 25);
  REQUIRE(q->linespeed);
  CHECK(q->linespeed->cmp == Compare::AtLeast);
  CHECK(q->linespeed->value == 4);
  REQUIRE(q->bitrate);
  CHECK(q->bitrate->cmp == Compare::AtBest);
  CHECK(q->bitrate->accepts(128));
  CHECK_FALSE(q->bitrate->accepts(256));
  REQUIRE(q->freq);
  CHECK(q->freq->accepts(44100));
  CHECK_FALSE(q->freq->accepts(48000));
  auto again = decode_search(encode_search(*q));
  REQUIRE(again.ok());
  CHECK(again->contains == q->contains);
  CHECK(again->bitrate->value == 192);
  // Lower case keywords are accepted as opennap does.
  CHECK(decode_search(R"(filename contains "x" max_results 3)").ok());
}

TEST_CASE("napster_unparsable_arguments_are_malformed") {
  CHECK_FALSE(decode_login("nick").ok());
  CHECK_FALSE(decode_login(R"(nick pw notaport "c" 0)").ok());
  CHECK_FALSE(decode_login(R"(nick pw 70000 "c" 0)").ok());
  CHECK_FALSE(decode_share(R"("name.mp3" md5 size 128 44100 3)").ok());
  CHECK_FALSE(decode_share(R"(name.mp3 md5 1 128 44100 3)").ok());
  CHECK_FALSE(decode_share(R"("" md5 1 128 44100 3)").ok());
  CHECK_FALSE(decode_share(R"("a.mp3" md5 1 128 44100)").ok());
  CHECK_FALSE(decode_share(std::string("\"a\0b.mp3\" m 1 2 3 4", 19)).ok());
  CHECK_FALSE(decode_search(R"(FILENAME CONTAINS "unterminated MAX_RESULTS 3)").ok());
  CHECK_FALSE(decode_search(R"(FILENAME "x")").ok());
  CHECK_FALSE(decode_search(R"(MAX_RESULTS many)").ok());
  CHECK_FALSE(decode_search(R"(BITRATE "ABOUT" "128")").ok());
  CHECK_FALSE(decode_search(R"(SOMETHING ELSE)").ok());
  CHECK_FALSE(decode_nick_file("nick").ok());
  CHECK_FALSE(decode_nick_file(R"(nick "")").ok());
  CHECK_FALSE(decode_transfer_ack(R"(nick 1 2 "f" md5)").ok());
  CHECK_FALSE(decode_stats("1 2").ok());
  CHECK_FALSE(decode_share_dir(R"("dir\" "f.mp3" md5 1 2 3)").ok());
  CHECK(parse_u64("18446744073709551615") == 18446744073709551615ull);
  CHECK_FALSE(parse_u64("18446744073709551616"));
  CHECK_FALSE(parse_u64("-1"));
  CHECK_FALSE(parse_u64("+1"));
}

TEST_CASE("napster_describe_names_each_message") {
  CHECK(describe(whole(vResult)).starts_with("search-result \"\\tmp\\nap"));
  CHECK(describe(whole(vResult)).find("ip=127.0.0.1") != std::string::npos);
  CHECK(describe(whole(vStats)) == "stats users=0 files=0 gb=0");
  CHECK(describe(Frame{7777, "x"}) == "type-7777 x");
}
