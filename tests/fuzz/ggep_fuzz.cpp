// libFuzzer target: bytes as a GGEP block (GGEP 0.51: flags, ID, length
// bytes, COBS and deflate). Properties: a decoded block never uses more than
// it was given nor inflates past the bound; its extensions encode to a block
// that decodes to the same extensions; COBS encoding round-trips any bytes.
#include <cstdint>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/gnutella/ggep.hpp"
#include "wire/gnutella/huge.hpp"

namespace gn = sv::wire::gnutella;
using sv::wire::Bytes;
using sv::wire::ByteView;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteView in(data, size);
  constexpr std::size_t kMaxData = 16 * 1024;
  auto g = gn::decode_ggep(in, kMaxData);
  if (g) {
    FUZZ_CHECK(g->consumed <= size);
    FUZZ_CHECK(!g->extensions.empty());
    std::size_t total = 0;
    for (const auto& e : g->extensions) {
      FUZZ_CHECK(!e.id.empty() && e.id.size() <= 15);
      total += e.data.size();
    }
    FUZZ_CHECK(total <= kMaxData * g->extensions.size());
    Bytes enc;
    gn::encode_ggep(enc, g->extensions);
    auto back = gn::decode_ggep(enc, kMaxData);
    FUZZ_CHECK(back && back->consumed == enc.size());
    FUZZ_CHECK(back->extensions.size() == g->extensions.size());
    for (std::size_t i = 0; i < g->extensions.size(); ++i) {
      FUZZ_CHECK(back->extensions[i].id == g->extensions[i].id);
      FUZZ_CHECK(back->extensions[i].data == g->extensions[i].data);
    }
  }
  Bytes cobs = gn::cobs_encode(in);
  for (auto b : cobs) FUZZ_CHECK(b != 0);
  auto un = gn::cobs_decode(cobs);
  FUZZ_CHECK(un && Bytes(in.begin(), in.end()) == *un);
  // The HUGE extension block splitter keeps every byte somewhere.
  auto ext = gn::decode_extensions(in);
  std::size_t kept = ext.ggep ? ext.ggep->size() : 0;
  for (const auto& u : ext.urns) kept += u.size();
  for (const auto& o : ext.other) kept += o.size();
  FUZZ_CHECK(kept <= size);
  // The urns it names: the text ones, then at most one from GGEP "H".
  const auto urns = gn::all_urns(ext);
  FUZZ_CHECK(urns.size() == ext.urns.size() || urns.size() == ext.urns.size() + 1);
  if (urns.size() > ext.urns.size()) FUZZ_CHECK(urns.back().size() == 9 + 32 && urns.back().starts_with("urn:sha1:"));
  return 0;
}
