#include <doctest/doctest.h>

#include "unit/wire/vectors.hpp"
#include "wire/gnutella/handshake.hpp"

using namespace sv;
using namespace sv::wire::gnutella;
namespace vec = sv::test::vec;

TEST_CASE("handshake_decodes_04_connect_and_ok") {
  auto c = decode_handshake(wire::as_bytes(kConnect04));
  REQUIRE(c.ok());
  CHECK(c->kind == Handshake::Kind::Connect);
  CHECK(c->is_04());
  CHECK(c->bare_lf);
  CHECK(c->consumed == kConnect04.size());
  auto ok = decode_handshake(wire::as_bytes(kOk04));
  REQUIRE(ok.ok());
  CHECK(ok->kind == Handshake::Kind::Response);
  CHECK(ok->status == 200);
  CHECK(ok->is_04());
}

TEST_CASE("handshake_decodes_captured_06_connect") {
  auto c = decode_handshake(wire::as_bytes(vec::kConnect06));
  REQUIRE(c.ok());
  CHECK(c->kind == Handshake::Kind::Connect);
  CHECK(c->major == 0);
  CHECK(c->minor == 6);
  CHECK_FALSE(c->bare_lf);
  CHECK(c->headers.get("user-agent") == "InteropProbe/0.1");
  CHECK(c->headers.get("X-Ultrapeer") == "False");
  CHECK(c->headers.get("Listen-IP") == "127.0.0.4:6399");
  CHECK(c->consumed == vec::kConnect06.size());
}

TEST_CASE("handshake_decodes_gtk_gnutella_200_and_403") {
  auto ok = decode_handshake(wire::as_bytes(vec::kGtkgOk06));
  REQUIRE(ok.ok());
  CHECK(ok->status == 200);
  CHECK(ok->reason == "OK");
  CHECK(ok->headers.get("User-Agent") == "gtk-gnutella/1.2.3 (2024-03-03; Topless; Linux x86_64)");
  CHECK(ok->headers.get("X-Ultrapeer") == "True");
  CHECK(ok->headers.get("GUID") == "d912310278b4f0d4fb0bf49b1cfc42b4");
  CHECK(ok->headers.get("X-Features") == "tls/1.0, browse/1.0, sflag/0.1, HSEP/0.2");
  CHECK(ok->headers.all().size() == 19);
  auto no = decode_handshake(wire::as_bytes(vec::kGtkgRefused06));
  REQUIRE(no.ok());
  CHECK(no->status == 403);
  CHECK(no->reason == "Normal nodes refused");
}

TEST_CASE("handshake_every_truncated_prefix_is_need_more") {
  for (auto s : {vec::kConnect06, vec::kGtkgOk06, vec::kFinal06, kConnect04, kOk04}) {
    for (std::size_t n = 0; n < s.size(); ++n) {
      CAPTURE(n);
      CHECK(decode_handshake(wire::as_bytes(s.substr(0, n))).need_more());
    }
  }
}

TEST_CASE("handshake_consumes_only_its_block") {
  // gtk-gnutella sends descriptors right behind the final 200: they are not ours.
  std::string s(vec::kFinal06);
  s += "\xe0\x41 binary";
  auto r = decode_handshake(wire::as_bytes(s));
  REQUIRE(r.ok());
  CHECK(r->consumed == vec::kFinal06.size());
}

TEST_CASE("handshake_rejects_garbage_at_first_byte") {
  CHECK(decode_handshake(wire::as_bytes("X")).error() == wire::WireError::Malformed);
  CHECK(decode_handshake(wire::as_bytes("GNUTELLX")).error() == wire::WireError::Malformed);
  CHECK(decode_handshake(wire::as_bytes("GNUTELLA GARBAGE\r\n\r\n")).error() == wire::WireError::Malformed);
  CHECK(decode_handshake(wire::as_bytes("GNUTELLA/0.6 2x0 OK\r\n\r\n")).error() == wire::WireError::Malformed);
  CHECK(decode_handshake(wire::as_bytes("GNUTELLA/0.6 200 OK\r\nNoColon\r\n\r\n")).error() ==
        wire::WireError::Malformed);
}

TEST_CASE("handshake_without_end_is_too_large") {
  std::string s = "GNUTELLA CONNECT/0.6\r\nX-Pad: " + std::string(kMaxHandshakeSize, 'a');
  CHECK(decode_handshake(wire::as_bytes(s)).error() == wire::WireError::TooLarge);
}

TEST_CASE("handshake_folds_continuation_lines_and_joins_repeats") {
  auto r = decode_handshake(wire::as_bytes("GNUTELLA CONNECT/0.6\r\nX-Try: 1.2.3.4:1,\r\n 5.6.7.8:2\r\nX-Try: 9.9.9.9:3\r\n\r\n"));
  REQUIRE(r.ok());
  CHECK(r->headers.get("x-try") == "1.2.3.4:1, 5.6.7.8:2, 9.9.9.9:3");
}

TEST_CASE("handshake_encode_round_trips") {
  wire::Headers h;
  h.add("User-Agent", "servent/0.1");
  h.add("X-Ultrapeer", "False");
  auto c = encode_connect06(h);
  auto back = decode_handshake(wire::as_bytes(c));
  REQUIRE(back.ok());
  CHECK(back->headers == h);
  auto resp = encode_response06(503, "Busy", h);
  auto rb = decode_handshake(wire::as_bytes(resp));
  REQUIRE(rb.ok());
  CHECK(rb->status == 503);
  CHECK(rb->reason == "Busy");
  CHECK(rb->headers == h);
}

TEST_CASE("json_quote_keeps_utf8_and_escapes_everything_else") {
  CHECK(wire::json_quote("plain") == "\"plain\"");
  CHECK(wire::json_quote("a\"b\\c\n") == "\"a\\\"b\\\\c\\n\"");
  CHECK(wire::json_quote("caf\xc3\xa9 \xe2\x82\xac") == "\"caf\xc3\xa9 \xe2\x82\xac\"");  // é €
  CHECK(wire::json_quote("bad \xff\xc3 end") == "\"bad \\u00ff\\u00c3 end\"");
  CHECK(wire::json_quote(std::string("\x01\x1b[31m", 6)) == "\"\\u0001\\u001b[31m\"");
}
