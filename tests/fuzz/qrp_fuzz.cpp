// libFuzzer target: bytes as a run of QRP messages (message 0x30), each a
// 2-byte little-endian length and a payload, applied in order to one table as
// an ultrapeer keeps a leaf's. Properties: every message that decodes
// re-encodes byte-identical; a table never holds more slots than its cap, a
// ready one has a power-of-two size, and no input makes it fail other than
// through a named error.
#include <cstdint>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/gnutella/qrp.hpp"

namespace gn = sv::wire::gnutella;
using sv::wire::Bytes;
using sv::wire::ByteView;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::uint32_t kMaxSlots = 1u << 16;
  gn::QrpTable table(kMaxSlots);
  ByteView in(data, size);
  while (in.size() >= 2) {
    const std::size_t len = std::min<std::size_t>(sv::wire::get_le16(in.data()), in.size() - 2);
    const ByteView payload = in.subspan(2, len);
    in = in.subspan(2 + len);
    auto m = gn::decode_qrp(payload);
    if (!m) continue;
    Bytes again;
    gn::encode_qrp(again, *m);
    FUZZ_CHECK(again == Bytes(payload.begin(), payload.end()));
    const auto err = table.apply(*m);
    FUZZ_CHECK(!gn::to_string(err).empty());
    FUZZ_CHECK(table.slots() <= kMaxSlots);
    FUZZ_CHECK(table.present_slots() <= table.slots());
    if (table.ready()) {
      FUZZ_CHECK(gn::qrp_bits(table.slots()) == table.bits());
      (void)table.has_word("word");
    }
  }
  return 0;
}
