// libFuzzer target: bytes as one DHT datagram (wire/dht/rpc.hpp).
// Properties: the decoder is strict, so whatever decodes re-encodes to the
// very same bytes; what is refused is refused with a reason, never a crash.
#include <algorithm>
#include <cstdint>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/dht/rpc.hpp"

namespace dht = sv::wire::dht;
using sv::wire::Bytes;
using sv::wire::ByteView;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  auto m = dht::decode_message(in);
  if (!m) {
    FUZZ_CHECK(m.error() != sv::wire::WireError::NeedMore);  // a datagram is whole or nothing
    return 0;
  }
  const Bytes again = dht::encode_message(*m);
  FUZZ_CHECK(again.size() == size && std::equal(again.begin(), again.end(), in.begin()));
  auto back = dht::decode_message(again);
  FUZZ_CHECK(back.ok() && *back == *m);
  return 0;
}
