#include <doctest/doctest.h>

#include <algorithm>

#include "unit/wire/vectors.hpp"
#include "wire/gnutella/descriptors.hpp"
#include "wire/gnutella/ggep.hpp"
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

TEST_CASE("a_ggep_h_digest_is_a_sha1_urn_whether_plain_sha1_or_bitprint") {
  // urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5 as 20 bytes (base32 decoded).
  const wire::Bytes sha = test::hex("a9 99 3e 36 47 06 81 6a ba 3e 25 71 78 50 c2 6c 9c d0 d8 9d");
  auto block = [](std::uint8_t type, wire::Bytes digest) {
    wire::Bytes h(1 + digest.size(), type);
    std::copy(digest.begin(), digest.end(), h.begin() + 1);
    Extensions e;
    e.ggep.emplace();
    encode_ggep(*e.ggep, {{"H", h, false, true}});
    return decode_extensions(encode_extensions(e));
  };
  const std::string urn = "urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5";
  CHECK(all_urns(block(0x01, sha)) == std::vector<std::string>{urn});
  wire::Bytes bitprint = sha;
  bitprint.resize(20 + 24, 0x5a);  // then a Tiger tree root
  CHECK(all_urns(block(0x02, bitprint)) == std::vector<std::string>{urn});
  // Text urns come first and are kept as they are.
  Extensions both = block(0x01, sha);
  both.urns = {"urn:", urn};
  CHECK(all_urns(both) == std::vector<std::string>{"urn:", urn, urn});
  // Not a SHA1: an MD5 (type 3), a short digest, a bitprint of SHA1 length,
  // a GGEP block that does not decode.
  CHECK(all_urns(block(0x03, wire::Bytes(16, 1))).empty());
  CHECK(all_urns(block(0x01, wire::Bytes(19, 1))).empty());
  CHECK(all_urns(block(0x02, sha)).empty());
  Extensions bad;
  bad.ggep = test::hex("c3 85 48");
  CHECK(all_urns(bad).empty());
}

TEST_CASE("ggep_lf_carries_sizes_of_4_gib_and_over") {
  using wire::Bytes;
  // Little-endian, high zero bytes stripped (gtk-gnutella's vlint).
  CHECK(encode_lf(0) == Bytes{0x00});
  CHECK(encode_lf(0x1234) == Bytes{0x34, 0x12});
  const std::uint64_t five_gb = 5'000'000'000;  // 0x1_2A05_F200
  CHECK(encode_lf(five_gb) == Bytes{0x00, 0xf2, 0x05, 0x2a, 0x01});
  CHECK(decode_lf(encode_lf(five_gb)) == five_gb);
  CHECK(decode_lf(encode_lf(UINT64_MAX)) == UINT64_MAX);
  CHECK_FALSE(decode_lf(Bytes{}));
  CHECK_FALSE(decode_lf(Bytes(9, 0x01)));
  // The 32-bit field: the size below 0xFFFFFFFF, the escape from there on.
  CHECK(size32_for(0xFFFFFFFEull) == 0xFFFFFFFEu);
  CHECK(size32_for(0xFFFFFFFFull) == kSize32Escape);
  CHECK(size32_for(five_gb) == kSize32Escape);

  // In a result: after the urn, a GGEP block whose LF is COBS-encoded (the
  // size has a zero byte, and the block lies between NULs).
  const std::string urn = "urn:sha1:DDYNWMEKM4DXLFRYVF2FJQJWVMM4DADB";
  Bytes ext(urn.begin(), urn.end());
  append_lf(ext, five_gb);
  CHECK(std::find(ext.begin(), ext.end(), 0) == ext.end());
  const Bytes expected_block = {0xc3, 0x80 | 0x40 | 2, 'L', 'F', 0x40 | 6, 0x01, 0x05, 0xf2, 0x05, 0x2a, 0x01};
  const auto e = decode_extensions(ext);
  REQUIRE(e.ggep);
  CHECK(*e.ggep == expected_block);
  CHECK(e.urns.size() == 1);
  CHECK(result_size(kSize32Escape, ext) == five_gb);
  // The whole hit round-trips and keeps both sizes.
  QueryHit h;
  h.results.push_back(HitResult{3, size32_for(five_gb), "big.iso", ext});
  Bytes payload;
  encode_query_hit(payload, h);
  auto back = decode_query_hit(payload);
  REQUIRE(back);
  CHECK(back->results.at(0).size == kSize32Escape);
  CHECK(result_size(back->results[0].size, back->results[0].extensions) == five_gb);
  // Without LF, or with a broken one, the 32-bit field stands.
  CHECK(result_size(1234, {}) == 1234);
  Bytes bad = {0xc3, 0x80 | 2, 'L', 'F', 0x40 | 0};
  CHECK(result_size(kSize32Escape, bad) == kSize32Escape);
}
