// libFuzzer target: bytes as a .torrent file. Properties: whatever decodes
// has pieces for exactly its length, files that tile the total from offset
// 0, only safe path components, an info span inside the input that is itself
// one bencoded dictionary; re-encoding what decoded decodes to the same.
#include <cstdint>

#include "tests/fuzz/fuzz_check.hpp"
#include "wire/bt/metainfo.hpp"

namespace bt = sv::wire::bt;
using sv::wire::ByteView;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  auto r = bt::decode_metainfo(in);
  const auto* m = std::get_if<bt::Metainfo>(&r);
  if (!m) return 0;
  FUZZ_CHECK(m->piece_length > 0);
  FUZZ_CHECK(m->pieces.size() == (m->total_length + m->piece_length - 1) / m->piece_length);
  std::uint64_t at = 0;
  for (const auto& f : m->files) {
    FUZZ_CHECK(f.offset == at);
    at += f.length;
    FUZZ_CHECK(!f.path.empty());
    for (const auto& c : f.path) FUZZ_CHECK(bt::safe_path_component(c));
  }
  FUZZ_CHECK(at == m->total_length);
  FUZZ_CHECK(m->info_begin < m->info_end && m->info_end <= size);
  auto info = bt::decode_bencode_exact(in.subspan(m->info_begin, m->info_end - m->info_begin));
  FUZZ_CHECK(std::holds_alternative<bt::Value>(info) && std::get<bt::Value>(info).dict());
  auto again = bt::decode_metainfo(bt::encode_metainfo(*m));
  FUZZ_CHECK(std::holds_alternative<bt::Metainfo>(again));
  const auto& b = std::get<bt::Metainfo>(again);
  FUZZ_CHECK(b.pieces == m->pieces && b.total_length == m->total_length && b.name == m->name &&
             b.files.size() == m->files.size());
  return 0;
}
