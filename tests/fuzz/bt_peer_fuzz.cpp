// libFuzzer target: bytes as a BitTorrent connection (handshake, then
// messages). Properties: every message that decodes re-encodes to exactly
// its bytes; a decoded length never passes the cap; bitfields, BEP 10
// handshakes and ut_metadata messages inside decode without harm, and a
// bitfield that decodes re-encodes the same.
#include <cstdint>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/bt/peer.hpp"

namespace bt = sv::wire::bt;
using sv::wire::Bytes;
using sv::wire::ByteView;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView in(data, size);
  if (auto hs = bt::decode_handshake(in)) {
    Bytes again;
    bt::encode_handshake(again, *hs);
    FUZZ_CHECK(again == Bytes(in.begin(), in.begin() + bt::kHandshakeSize));
    in = in.subspan(bt::kHandshakeSize);
  }
  constexpr std::size_t kCap = 1 << 15;
  for (;;) {
    auto r = bt::decode_peer_message(in, kCap);
    if (!r) break;
    FUZZ_CHECK(r->consumed >= 4 && r->consumed <= kCap + 4 && r->consumed <= in.size());
    FUZZ_CHECK(bt::encode_peer_message(r->msg) == Bytes(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(r->consumed)));
    const auto& m = r->msg;
    if (m.type == bt::MsgType::Bitfield) {
      const std::size_t pieces = m.data.size() * 8;
      if (auto bits = bt::decode_bitfield(m.data, pieces)) FUZZ_CHECK(bt::msg_bitfield(*bits).data == m.data);
    }
    if (m.type == bt::MsgType::Extended) {
      if (m.ext_id == 0) {
        if (auto eh = bt::decode_ext_handshake(m.data)) (void)bt::encode_ext_handshake(*eh);
      } else if (auto md = bt::decode_metadata_msg(m.data)) {
        FUZZ_CHECK(md->type >= 0 && md->type <= 2 && md->data.size() <= bt::kMetadataPiece);
      }
    }
    in = in.subspan(r->consumed);
  }
  return 0;
}
