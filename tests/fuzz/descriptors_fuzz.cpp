// libFuzzer target: bytes as a Gnutella stream. The framer yields the same
// descriptors whether the bytes come whole or in pieces, and every payload
// that decodes re-encodes to exactly its bytes: decode(encode(x)) == x and
// encode(decode(b)) == b (0.4 §"Descriptor Header" and each payload's section).
#include <cstdint>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/gnutella/framer.hpp"

namespace gn = sv::wire::gnutella;
using sv::wire::Bytes;
using sv::wire::ByteView;

namespace {

void payload_round_trip(const gn::Header& h, ByteView p) {
  Bytes out;
  switch (static_cast<gn::Type>(h.type)) {
    case gn::Type::Pong:
      if (auto x = gn::decode_pong(p)) {
        gn::encode_pong(out, *x);
        FUZZ_CHECK(Bytes(p.begin(), p.end()) == out);
      }
      break;
    case gn::Type::Query:
      if (auto x = gn::decode_query(p)) {
        gn::encode_query(out, *x);
        FUZZ_CHECK(Bytes(p.begin(), p.end()) == out);
        auto again = gn::decode_query(out);
        FUZZ_CHECK(again && again->criteria == x->criteria && again->extensions == x->extensions);
      }
      break;
    case gn::Type::QueryHit:
      if (auto x = gn::decode_query_hit(p)) {
        FUZZ_CHECK(x->results.size() == p[0]);
        gn::encode_query_hit(out, *x);
        FUZZ_CHECK(Bytes(p.begin(), p.end()) == out);
        auto again = gn::decode_query_hit(out);
        FUZZ_CHECK(again && *again == *x);
        // The reuse path gives the same as a fresh decode.
        gn::QueryHit reused;
        reused.results.resize(300);
        FUZZ_CHECK(gn::decode_query_hit_into(p, reused) && reused == *x);
        auto sid = gn::peek_query_hit_servent(p);
        FUZZ_CHECK(sid && *sid == x->servent_id);
      }
      break;
    case gn::Type::Push:
      if (auto x = gn::decode_push(p)) {
        gn::encode_push(out, *x);
        FUZZ_CHECK(Bytes(p.begin(), p.end()) == out);
      }
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t piece = 1 + data[0] % 64;  // the first byte chooses the chunking
  ByteView in(data + 1, size - 1);
  gn::Framer whole(4096), pieces(4096);
  whole.feed(in);
  std::vector<Bytes> a, b;
  bool whole_error = false;
  for (;;) {
    auto f = whole.next();
    if (!f) {
      whole_error = !f.need_more();
      break;
    }
    FUZZ_CHECK(f->payload.size() == f->header.payload_length);
    FUZZ_CHECK(f->header.payload_length <= 4096);
    Bytes enc = gn::encode_descriptor(f->header, f->payload);
    FUZZ_CHECK(enc.size() == gn::kHeaderSize + f->payload.size());
    auto h = gn::decode_header(enc);
    FUZZ_CHECK(h && h->id == f->header.id && h->type == f->header.type && h->ttl == f->header.ttl &&
               h->hops == f->header.hops && h->payload_length == f->header.payload_length);
    payload_round_trip(f->header, f->payload);
    a.push_back(std::move(enc));
  }
  bool piece_error = false;
  for (std::size_t i = 0; i < in.size() && !piece_error; i += piece) {
    pieces.feed(in.subspan(i, std::min(piece, in.size() - i)));
    FUZZ_CHECK(pieces.buffered() <= in.size());
    for (;;) {
      auto f = pieces.next();
      if (!f) {
        piece_error = !f.need_more();
        break;
      }
      b.push_back(gn::encode_descriptor(f->header, f->payload));
    }
  }
  FUZZ_CHECK(a == b);
  FUZZ_CHECK(whole_error == piece_error);
  return 0;
}
