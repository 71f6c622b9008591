// libFuzzer target: bytes as bencoding. Properties: a value that decodes
// exactly re-encodes to the same bytes (the decoder accepts only canonical
// forms); every value's recorded span re-encodes to those bytes; a failure
// names an offset inside (or, for NeedMore, at the end of) the input.
#include <cstdint>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/bt/bencode.hpp"

namespace bt = sv::wire::bt;
using sv::wire::Bytes;
using sv::wire::ByteView;

namespace {

void check_spans(const bt::Value& v, ByteView in) {
  FUZZ_CHECK(v.begin < v.end && v.end <= in.size());
  FUZZ_CHECK(bt::encode_bencode(v) == Bytes(in.begin() + static_cast<std::ptrdiff_t>(v.begin),
                                            in.begin() + static_cast<std::ptrdiff_t>(v.end)));
  if (const auto* l = v.list()) {
    for (const auto& x : *l) check_spans(x, in);
  } else if (const auto* d = v.dict()) {
    for (const auto& [k, x] : *d) check_spans(x, in);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  bt::BencodeLimits limits;
  limits.max_depth = 32;
  auto r = bt::decode_bencode(in, limits);
  if (const auto* d = std::get_if<bt::Decoded>(&r)) {
    FUZZ_CHECK(d->consumed > 0 && d->consumed <= size);
    check_spans(d->value, in);
  } else {
    const auto& e = std::get<bt::BencodeError>(r);
    FUZZ_CHECK(e.offset <= size);
    if (e.kind == sv::wire::WireError::NeedMore) FUZZ_CHECK(e.offset == size);
    (void)bt::describe(e);
  }
  return 0;
}
