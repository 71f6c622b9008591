#include <doctest/doctest.h>

#include "unit/wire/vectors.hpp"
#include "wire/gnutella/giv.hpp"

using namespace sv;
using namespace sv::wire::gnutella;
namespace vec = sv::test::vec;

TEST_CASE("giv_decodes_gtk_gnutella_giv") {
  auto g = decode_giv(wire::as_bytes(vec::kGiv));
  REQUIRE(g.ok());
  CHECK(g->file_index == 1);
  CHECK(g->servent_id.hex() == "d912310278b4f0d4fb0bf49b1cfc42b4");
  CHECK(g->name == "file");
  CHECK(g->consumed == vec::kGiv.size());
  CHECK(encode_giv(*g) == vec::kGiv);
}

TEST_CASE("giv_accepts_uppercase_hex_and_crlf") {
  auto g = decode_giv(wire::as_bytes("GIV 7:D912310278B4F0D4FB0BF49B1CFC42B4/My Song.mp3\r\n\r\n"));
  REQUIRE(g.ok());
  CHECK(g->file_index == 7);
  CHECK(g->name == "My Song.mp3");
}

TEST_CASE("giv_every_truncated_prefix_is_need_more") {
  for (std::size_t n = 0; n < vec::kGiv.size(); ++n) {
    CHECK(decode_giv(wire::as_bytes(vec::kGiv.substr(0, n))).need_more());
  }
}

TEST_CASE("giv_rejects_bad_lines") {
  CHECK_FALSE(decode_giv(wire::as_bytes("GET / HTTP/1.0\r\n\r\n")).ok());
  CHECK_FALSE(decode_giv(wire::as_bytes("GIV x:d912310278b4f0d4fb0bf49b1cfc42b4/f\n\n")).ok());
  CHECK_FALSE(decode_giv(wire::as_bytes("GIV 1:d912310278b4f0d4fb0bf49b1cfc42/f\n\n")).ok());
  CHECK_FALSE(decode_giv(wire::as_bytes("GIV 1:z912310278b4f0d4fb0bf49b1cfc42b4/f\n\n")).ok());
  CHECK(decode_giv(wire::as_bytes("GIV 1:" + std::string(5000, 'a'))).error() == wire::WireError::TooLarge);
}
