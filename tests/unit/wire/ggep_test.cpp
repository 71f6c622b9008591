#include <doctest/doctest.h>

#include "unit/wire/vectors.hpp"
#include "wire/common/zlib_stream.hpp"
#include "wire/gnutella/descriptors.hpp"
#include "wire/gnutella/ggep.hpp"
#include "wire/gnutella/huge.hpp"

using namespace sv;
using namespace sv::wire::gnutella;
namespace vec = sv::test::vec;

TEST_CASE("ggep_decodes_gtk_gnutella_pong_extensions") {
  auto pong = decode_pong(vec::payload_of(vec::kPong));
  auto g = decode_ggep(pong->extensions);
  REQUIRE(g.ok());
  REQUIRE(g->extensions.size() == 4);
  CHECK(g->extensions[0].id == "VC");
  CHECK(g->extensions[0].data == test::hex("47544b4783"));  // "GTKG" + version byte
  CHECK(g->extensions[1].id == "UP");
  CHECK(g->extensions[1].data == test::hex("02ff32"));
  CHECK(g->extensions[2].id == "DU");
  CHECK(g->extensions[3].id == "TLS");
  CHECK(g->extensions[3].data.empty());
  CHECK(g->consumed == pong->extensions.size());
  wire::Bytes again;
  encode_ggep(again, g->extensions);
  CHECK(again == pong->extensions);
}

TEST_CASE("ggep_decodes_gtk_gnutella_hit_result_and_trailer_blocks") {
  auto hit = decode_query_hit(vec::payload_of(vec::kQueryHit));
  auto ext = decode_extensions(hit->results[0].extensions);
  REQUIRE(ext.ggep);
  auto g = decode_ggep(*ext.ggep);
  REQUIRE(g.ok());
  CHECK(g->find("TT") != nullptr);
  CHECK(g->find("TT")->data.size() == 24);  // tiger tree root
  CHECK(g->find("CT") != nullptr);
  auto priv = decode_ggep(hit->trailer->private_data);
  REQUIRE(priv.ok());
  REQUIRE(priv->extensions.size() == 3);
  CHECK(priv->extensions[0].id == "GTKGV");
  CHECK(priv->extensions[1].id == "TLS");
  CHECK(priv->extensions[2].id == "BH");
  wire::Bytes again;
  encode_ggep(again, priv->extensions);
  CHECK(again == hit->trailer->private_data);
}

TEST_CASE("ggep_round_trips_cobs_deflate_and_long_lengths") {
  std::vector<GgepExtension> exts;
  exts.push_back({"A", wire::Bytes{0, 1, 0, 0, 2}, false, true});
  exts.push_back({"ZIP", wire::Bytes(5000, 'z'), true, false});
  exts.push_back({"BOTH", wire::Bytes(300, 0), true, true});
  exts.push_back({"LONG", wire::Bytes(70000, 7), false, false});
  exts.push_back({"123456789012345", {}, false, false});
  wire::Bytes out;
  encode_ggep(out, exts);
  auto back = decode_ggep(out, 100000);
  REQUIRE(back.ok());
  CHECK(back->extensions == exts);
  CHECK(back->consumed == out.size());
  // COBS-encoded extensions carry no NUL byte on the wire.
  wire::Bytes cobs_only;
  encode_ggep(cobs_only, {exts[0]});
  CHECK(std::find(cobs_only.begin(), cobs_only.end(), 0) == cobs_only.end());
}

TEST_CASE("cobs_round_trips_every_zero_pattern") {
  for (std::size_t n = 0; n < 600; n += 7) {
    wire::Bytes in(n, 0);
    for (std::size_t i = 0; i < n; ++i) in[i] = static_cast<std::uint8_t>((i * 37) % 5 == 0 ? 0 : i);
    auto enc = cobs_encode(in);
    CHECK(std::find(enc.begin(), enc.end(), 0) == enc.end());
    auto dec = cobs_decode(enc);
    REQUIRE(dec.ok());
    CHECK(*dec == in);
  }
}

TEST_CASE("ggep_with_lengths_overrunning_the_bytes_is_malformed") {
  auto pong = decode_pong(vec::payload_of(vec::kPong));
  const auto& block = pong->extensions;
  for (std::size_t n = 0; n < block.size(); ++n) {
    CHECK(decode_ggep(wire::ByteView(block).first(n)).error() == wire::WireError::Malformed);
  }
  CHECK_FALSE(decode_ggep(test::hex("c3 81 41 7f")).ok());        // length byte with neither flag
  CHECK_FALSE(decode_ggep(test::hex("c3 81 41 bf bf bf")).ok());  // more than three length bytes
  CHECK_FALSE(decode_ggep(test::hex("c3 80 40")).ok());           // empty ID
  CHECK_FALSE(decode_ggep(test::hex("c3 91 41 40")).ok());        // reserved bit set
  CHECK_FALSE(decode_ggep(test::hex("c3 81 41 45 01")).ok());     // 5 bytes announced, 1 present
  CHECK(decode_ggep(test::hex("c3 81 41 41 01")).ok());
}

TEST_CASE("ggep_deflate_bomb_is_bounded") {
  GgepExtension bomb{"Z", wire::Bytes(10 * 1024 * 1024, 0), true, false};
  wire::Bytes out;
  encode_ggep(out, {bomb});
  CHECK(out.size() < 20000);  // 10 MiB of zeros deflate to a few KiB
  CHECK(decode_ggep(out, 64 * 1024).error() == wire::WireError::TooLarge);
}

TEST_CASE("zlib_stream_round_trips_in_pieces") {
  wire::Deflater d;
  wire::Bytes compressed;
  std::string all;
  for (int i = 0; i < 100; ++i) {
    std::string msg = "descriptor number " + std::to_string(i) + " ";
    all += msg;
    d.write(wire::as_bytes(msg), compressed);
  }
  wire::Inflater inf;
  std::string back;
  for (std::size_t i = 0; i < compressed.size(); i += 7) {
    auto r = inf.read(wire::ByteView(compressed).subspan(i, std::min<std::size_t>(7, compressed.size() - i)),
                      [&](wire::ByteView p) {
                        back.append(wire::as_chars(p));
                        return true;
                      });
    REQUIRE(r.ok());
  }
  CHECK(back == all);
  wire::Inflater bad;
  CHECK_FALSE(bad.read(test::hex("78 9c ff ff ff ff"), [](wire::ByteView) { return true; }).ok());
}
