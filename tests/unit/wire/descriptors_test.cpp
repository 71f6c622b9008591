#include <doctest/doctest.h>

#include "unit/wire/vectors.hpp"
#include "wire/gnutella/descriptors.hpp"

using namespace sv;
using namespace sv::wire::gnutella;
namespace vec = sv::test::vec;

TEST_CASE("header_decodes_gtk_gnutella_ping") {
  auto h = decode_header(vec::kPing);
  REQUIRE(h.ok());
  CHECK(h->id.hex() == "e0415c0df2a7b333ffa4a3946caff200");
  CHECK(h->type == 0x00);
  CHECK(h->ttl == 1);
  CHECK(h->hops == 0);
  CHECK(h->payload_length == 0);
  wire::Bytes out;
  encode_header(out, *h);
  CHECK(out == vec::kPing);
}

TEST_CASE("header_truncated_prefixes_need_more") {
  for (std::size_t n = 0; n < kHeaderSize; ++n) {
    CHECK(decode_header(wire::ByteView(vec::kQuery).first(n)).need_more());
  }
}

TEST_CASE("payload_length_is_little_endian") {
  // 0x00010203 written LE must read back as such (a big-endian read would not).
  Header h;
  h.payload_length = 0x00010203;
  wire::Bytes out;
  encode_header(out, h);
  CHECK(out[19] == 0x03);
  CHECK(out[22] == 0x00);
  CHECK(decode_header(out)->payload_length == 0x00010203);
}

TEST_CASE("pong_decodes_gtk_gnutella_pong_with_ggep") {
  auto p = decode_pong(vec::payload_of(vec::kPong));
  REQUIRE(p.ok());
  CHECK(p->port == 6350);
  CHECK(ipv4_to_string(p->ip) == "127.0.0.1");  // network order on the wire
  CHECK(p->files_shared == 2);
  CHECK(p->kb_shared == 128);
  CHECK(p->extensions.size() == 41 - 14);
  CHECK(p->extensions[0] == 0xc3);  // GGEP magic
  wire::Bytes out;
  encode_pong(out, *p);
  CHECK(out == wire::Bytes(vec::payload_of(vec::kPong).begin(), vec::payload_of(vec::kPong).end()));
}

TEST_CASE("pong_shorter_than_14_bytes_is_malformed") {
  auto pl = vec::payload_of(vec::kPong);
  for (std::size_t n = 0; n < 14; ++n) CHECK(decode_pong(pl.first(n)).error() == wire::WireError::Malformed);
}

TEST_CASE("query_decodes_gtk_probe_query") {
  auto q = decode_query(vec::payload_of(vec::kQuery));
  REQUIRE(q.ok());
  CHECK(q->min_speed == 0x8000);
  CHECK(q->criteria == "interop");
  CHECK(q->extensions == test::text(std::string_view("urn:\0", 5)));
  wire::Bytes out;
  encode_query(out, *q);
  CHECK(out == wire::Bytes(vec::payload_of(vec::kQuery).begin(), vec::payload_of(vec::kQuery).end()));
}

TEST_CASE("query_without_criteria_terminator_is_malformed") {
  CHECK_FALSE(decode_query(test::hex("0000")).ok());
  CHECK_FALSE(decode_query(test::hex("0000 6162")).ok());
  CHECK(decode_query(test::hex("0000 00")).ok());
}

TEST_CASE("query_hit_decodes_gtk_gnutella_hit") {
  auto h = decode_query_hit(vec::payload_of(vec::kQueryHit));
  REQUIRE(h.ok());
  CHECK(h->port == 6350);
  CHECK(ipv4_to_string(h->ip) == "127.0.0.1");
  CHECK(h->speed == 16);
  REQUIRE(h->results.size() == 1);
  CHECK(h->results[0].index == 2);
  CHECK(h->results[0].size == 116000);
  CHECK(h->results[0].name == "interop_test_file.txt");
  std::string ext(h->results[0].extensions.begin(), h->results[0].extensions.end());
  CHECK(ext.starts_with("urn:sha1:DDYNWMEKM4DXLFRYVF2FJQJWVMM4DADB\x1c"));
  REQUIRE(h->trailer.has_value());
  CHECK(std::string(h->trailer->vendor.begin(), h->trailer->vendor.end()) == "GTKG");
  CHECK(h->trailer->open_data == test::hex("2c21"));
  CHECK(h->trailer->private_data.size() == 33);
  CHECK(h->servent_id.hex() == "d912310278b4f0d4fb0bf49b1cfc42b4");
  CHECK(peek_query_hit_servent(vec::payload_of(vec::kQueryHit))->hex() == h->servent_id.hex());
  wire::Bytes out;
  encode_query_hit(out, *h);
  CHECK(out == wire::Bytes(vec::payload_of(vec::kQueryHit).begin(), vec::payload_of(vec::kQueryHit).end()));
}

TEST_CASE("query_hit_every_truncation_is_rejected_or_smaller") {
  // Cutting bytes out of a hit must never crash, and never decode to the same hit.
  auto pl = vec::payload_of(vec::kQueryHit);
  auto full = decode_query_hit(pl);
  for (std::size_t n = 0; n < pl.size(); ++n) {
    auto r = decode_query_hit(pl.first(n));
    if (r.ok()) CHECK_FALSE(*r == *full);
  }
  for (std::size_t n = 0; n < kQueryHitMinSize; ++n) CHECK_FALSE(decode_query_hit(pl.first(n)).ok());
}

TEST_CASE("query_hit_with_more_results_than_bytes_is_malformed") {
  wire::Bytes pl(vec::payload_of(vec::kQueryHit).begin(), vec::payload_of(vec::kQueryHit).end());
  pl[0] = 200;  // claims 200 results
  CHECK(decode_query_hit(pl).error() == wire::WireError::Malformed);
}

TEST_CASE("query_hit_round_trips_without_trailer_and_with_many_results") {
  QueryHit h;
  h.port = 6346;
  h.ip = 0x0a000001;
  h.speed = 1000;
  for (std::uint32_t i = 0; i < 40; ++i) h.results.push_back({i, i * 1000, "file " + std::to_string(i) + ".mp3", {}});
  h.servent_id.bytes.fill(0xab);
  wire::Bytes out;
  encode_query_hit(out, h);
  auto back = decode_query_hit(out);
  REQUIRE(back.ok());
  CHECK(*back == h);
}

TEST_CASE("push_decodes_capture_push") {
  auto p = decode_push(vec::payload_of(vec::kPush));
  REQUIRE(p.ok());
  CHECK(p->servent_id.hex() == "d912310278b4f0d4fb0bf49b1cfc42b4");
  CHECK(p->file_index == 1);
  CHECK(ipv4_to_string(p->ip) == "127.0.0.10");
  CHECK(p->port == 6399);
  wire::Bytes out;
  encode_push(out, *p);
  CHECK(out == wire::Bytes(vec::payload_of(vec::kPush).begin(), vec::payload_of(vec::kPush).end()));
  for (std::size_t n = 0; n < kPushSize; ++n) CHECK_FALSE(decode_push(vec::payload_of(vec::kPush).first(n)).ok());
}

TEST_CASE("ipv4_text_round_trip_and_rejects") {
  CHECK(ipv4_from_string("127.0.0.10") == 0x7f00000au);
  CHECK(ipv4_to_string(0x7f00000a) == "127.0.0.10");
  CHECK_FALSE(ipv4_from_string("256.0.0.1"));
  CHECK_FALSE(ipv4_from_string("1.2.3"));
  CHECK_FALSE(ipv4_from_string("1.2.3.4.5"));
  CHECK_FALSE(ipv4_from_string("1.2.3.x"));
}
