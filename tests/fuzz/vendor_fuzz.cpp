// libFuzzer target: bytes as a vendor message payload (0x31/0x32) and as an
// HSEP payload (0xCD). Properties: a vendor message that decodes re-encodes
// byte-identical; a Messages-Supported list that decodes re-encodes to the
// same body; the counted lists decode only at exactly their length; HSEP
// hops stay within the cap.
#include <cstdint>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/gnutella/vendor.hpp"

namespace gn = sv::wire::gnutella;
using sv::wire::Bytes;
using sv::wire::ByteView;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  if (auto vm = gn::decode_vendor(in)) {
    Bytes again;
    gn::encode_vendor(again, *vm);
    FUZZ_CHECK(again == Bytes(in.begin(), in.end()));
    (void)gn::vendor_message_name(vm->vendor, vm->id);
    if (auto list = gn::decode_messages_supported(vm->body)) {
      FUZZ_CHECK(gn::encode_messages_supported(*list) == vm->body);
      FUZZ_CHECK(vm->body.size() == 2 + list->size() * 8);
    }
    if (auto f = gn::decode_features_supported(vm->body)) FUZZ_CHECK(vm->body.size() == 2 + f->size() * 6);
    if (auto q = gn::decode_query_status(vm->body)) FUZZ_CHECK(vm->body.size() == 2);
  } else {
    FUZZ_CHECK(size < 8);
  }
  if (auto h = gn::decode_hsep(in, 16)) {
    FUZZ_CHECK(!h->empty() && h->size() <= 16 && h->size() * 24 == size);
  }
  return 0;
}
