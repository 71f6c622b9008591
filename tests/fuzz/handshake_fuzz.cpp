// libFuzzer target: bytes as a Gnutella handshake block (0.6 draft §2.2) and
// as a GIV line (0.4 §"Firewalled servents"). Properties: a decoded block
// never claims more bytes than it was given, a prefix of it is NeedMore, the
// same bytes with more after them decode the same; a decoded GIV encodes back
// to a GIV that decodes equal.
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/gnutella/giv.hpp"
#include "wire/gnutella/handshake.hpp"

namespace gn = sv::wire::gnutella;
using sv::wire::ByteView;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView in(data, size);
  auto hs = gn::decode_handshake(in, 4096);
  if (hs) {
    FUZZ_CHECK(hs->consumed > 0 && hs->consumed <= size && hs->consumed <= 4096);
    FUZZ_CHECK(hs->headers.all().size() <= hs->consumed);
    if (hs->consumed > 1) FUZZ_CHECK(gn::decode_handshake(in.first(hs->consumed - 1), 4096).need_more());
    auto again = gn::decode_handshake(in.first(hs->consumed), 4096);
    FUZZ_CHECK(again && again->consumed == hs->consumed && again->status == hs->status &&
               again->headers.all() == hs->headers.all());
    if (hs->kind == gn::Handshake::Kind::Response && !hs->is_04()) {
      // What we would answer with the same headers parses to the same headers.
      const std::string ours = gn::encode_response06(hs->status, hs->reason, hs->headers);
      auto back = gn::decode_handshake(sv::wire::as_bytes(ours), 64 * 1024);
      FUZZ_CHECK(back && back->status == hs->status && back->headers.all().size() == hs->headers.all().size());
    }
  } else if (hs.need_more()) {
    FUZZ_CHECK(size < 4096);
  }
  auto giv = gn::decode_giv(in, 1024);
  if (giv) {
    FUZZ_CHECK(giv->consumed > 0 && giv->consumed <= size);
    const std::string enc = gn::encode_giv(*giv);
    auto back = gn::decode_giv(sv::wire::as_bytes(enc), 64 * 1024);
    FUZZ_CHECK(back && *back == *giv && back->consumed == enc.size());
  }
  return 0;
}
