// QRP (message 0x30): the spec's hash test vectors, and gtk-gnutella's own
// RESET and PATCH from capture 09 decoded into the table it describes.
#include <doctest/doctest.h>

#include <string>

#include "wire/common/text.hpp"
#include "wire/common/zlib_stream.hpp"
#include "unit/wire/vectors.hpp"
#include "wire/gnutella/qrp.hpp"

using namespace sv::wire;
using namespace sv::wire::gnutella;
using sv::test::hex;

namespace {

// Frames 9 and 11 of pcap-fixtures/09_probe_as_UP_spontaneous_qrp_vendor_hsep_ping_70s.pcap
// (payloads after the 23-byte header, as tshark shows them).
const Bytes& kReset = sv::test::vec::kQrpReset;
const Bytes& kPatch = sv::test::vec::kQrpPatch;

}  // namespace

TEST_CASE("qrp_hash_matches_the_spec_test_vectors") {
  struct V {
    const char* word;
    int bits;
    std::uint32_t slot;
  };
  // QRP 0.1, "Hashing": the values every implementation must reproduce.
  const V vectors[] = {
      {"", 13, 0},          {"eb", 13, 6791},        {"ebc", 13, 7082},        {"ebck", 13, 6698},
      {"ebckl", 13, 3179},  {"ebcklm", 13, 3235},    {"ebcklme", 13, 6438},    {"ebcklmen", 13, 1062},
      {"ebcklmenq", 13, 3527}, {"", 16, 0},          {"n", 16, 65003},         {"nd", 16, 54193},
      {"ndf", 16, 4953},    {"ndfl", 16, 58201},     {"ndfla", 16, 34830},     {"ndflal", 16, 36910},
      {"ndflale", 16, 34586}, {"ndflalem", 16, 37658}, {"ndflaleme", 16, 45559}, {"ol2j34lj", 10, 318},
      {"asdfas23", 10, 503}, {"9um3o34fd", 10, 758},  {"a234d", 10, 281},       {"a3f", 10, 767},
      {"3nja9", 10, 581},   {"2459345938032343", 10, 146}, {"7777a88a8a8a8", 10, 342}, {"asdfjklkj3k", 10, 861},
      {"adfk32l", 10, 1011}, {"zzzzzzzzzzz", 10, 944}, {"3NJA9", 10, 581},      {"3nJa9", 10, 581},
  };
  for (const auto& v : vectors) {
    CAPTURE(v.word);
    CAPTURE(v.bits);
    CHECK(qrp_hash(v.word, v.bits) == v.slot);
  }
  CHECK(qrp_bits(16384) == 14);
  CHECK(qrp_bits(1) == 0);
  CHECK(qrp_bits(0) == -1);
  CHECK(qrp_bits(3000) == -1);
}

TEST_CASE("gtk_gnutella_qrp_table_from_capture_09_decodes_exactly") {
  auto reset = decode_qrp(kReset);
  REQUIRE(reset);
  CHECK(std::get<QrpReset>(*reset) == QrpReset{16384, 2});
  auto patch = decode_qrp(kPatch);
  REQUIRE(patch);
  const auto& p = std::get<QrpPatch>(*patch);
  CHECK(p.seq_no == 1);
  CHECK(p.seq_size == 1);
  CHECK(p.compressor == kQrpCompressorZlib);
  CHECK(p.entry_bits == 4);
  CHECK(p.data.size() == 63);
  // Byte-identical re-encoding.
  Bytes again;
  encode_qrp(again, *reset);
  CHECK(again == kReset);
  again.clear();
  encode_qrp(again, *patch);
  CHECK(again == kPatch);

  QrpTable t;
  CHECK(t.apply(*reset) == QrpTable::Error::None);
  CHECK_FALSE(t.ready());
  CHECK(t.apply(*patch) == QrpTable::Error::None);
  REQUIRE(t.ready());
  CHECK(t.slots() == 16384);
  CHECK(t.bits() == 14);
  CHECK(t.infinity() == 2);
  // 14 slots set (counted independently with Python's zlib over the same bytes).
  CHECK(t.present_slots() == 14);
  // Every word of the two shared names is in it, by our hash; others are not.
  for (const char* w : {"hello", "gnutella", "txt", "interop", "test", "file", "INTEROP"}) {
    CAPTURE(w);
    CHECK(t.has_word(w));
  }
  for (const char* w : {"zebra", "music", "linux", "song"}) {
    CAPTURE(w);
    CHECK_FALSE(t.has_word(w));
  }
}

TEST_CASE("qrp_tables_refuse_what_a_hostile_peer_sends") {
  auto make_patch = [](std::uint8_t seq, std::uint8_t size, std::uint8_t comp, std::uint8_t bits, Bytes data) {
    return QrpMessage{QrpPatch{seq, size, comp, bits, std::move(data)}};
  };
  SUBCASE("messages") {
    CHECK(decode_qrp(Bytes{}).error() == WireError::Malformed);
    CHECK(decode_qrp(hex("0000400000")).error() == WireError::Malformed);  // RESET one byte short
    CHECK(decode_qrp(hex("01010101")).error() == WireError::Malformed);    // PATCH header short
    CHECK(decode_qrp(hex("02")).error() == WireError::Unsupported);
  }
  SUBCASE("order and sizes") {
    QrpTable t(1u << 16);
    CHECK(t.apply(make_patch(1, 1, 0, 8, Bytes(1024, 0))) == QrpTable::Error::PatchBeforeReset);
    CHECK(t.apply(QrpReset{3000, 7}) == QrpTable::Error::BadTableLength);
    CHECK(t.apply(QrpReset{1u << 20, 7}) == QrpTable::Error::BadTableLength);  // over max_slots
    CHECK(t.apply(QrpReset{1024, 1}) == QrpTable::Error::BadInfinity);
    REQUIRE(t.apply(QrpReset{1024, 7}) == QrpTable::Error::None);
    CHECK(t.apply(make_patch(2, 2, 0, 8, Bytes(512, 0))) == QrpTable::Error::BadSequence);
    CHECK(t.apply(make_patch(1, 1, 0, 5, Bytes(640, 0))) == QrpTable::Error::BadEntryBits);
    CHECK(t.apply(make_patch(1, 1, 7, 8, Bytes(1024, 0))) == QrpTable::Error::BadCompressor);
    CHECK(t.apply(make_patch(1, 1, 0, 8, Bytes(1000, 0))) == QrpTable::Error::BadData);  // not one entry per slot
    CHECK(t.apply(make_patch(1, 1, 1, 8, Bytes(100, 0xAA))) == QrpTable::Error::BadData);  // not zlib
    CHECK_FALSE(t.ready());
    CHECK(t.present_slots() == 0);
  }
  SUBCASE("a zlib bomb is cut at the table's size") {
    QrpTable t(1u << 16);
    REQUIRE(t.apply(QrpReset{1024, 7}) == QrpTable::Error::None);
    const Bytes bomb = deflate_bytes(Bytes(64 * 1024 * 1024, 0));
    CHECK(t.apply(make_patch(1, 1, 1, 8, bomb)) == QrpTable::Error::TooLarge);
    CHECK_FALSE(t.ready());
  }
  SUBCASE("a sequence in two parts, 8-bit entries, then a patch that takes a slot away") {
    QrpTable t(1u << 16);
    REQUIRE(t.apply(QrpReset{1024, 7}) == QrpTable::Error::None);
    Bytes deltas(1024, 0);
    const std::uint32_t slot = qrp_hash("word", 10);
    deltas[slot] = static_cast<std::uint8_t>(-6);  // 7 - 6 = 1: present
    Bytes z = deflate_bytes(deltas);
    const std::size_t half = z.size() / 2;
    CHECK(t.apply(make_patch(1, 2, 1, 8, Bytes(z.begin(), z.begin() + static_cast<std::ptrdiff_t>(half)))) ==
          QrpTable::Error::None);
    CHECK_FALSE(t.ready());
    CHECK(t.apply(make_patch(2, 2, 1, 8, Bytes(z.begin() + static_cast<std::ptrdiff_t>(half), z.end()))) ==
          QrpTable::Error::None);
    REQUIRE(t.ready());
    CHECK(t.has_word("word"));
    CHECK(t.present_slots() == 1);
    deltas[slot] = 6;  // back to infinity
    CHECK(t.apply(make_patch(1, 1, 0, 8, deltas)) == QrpTable::Error::None);
    CHECK_FALSE(t.has_word("word"));
    CHECK(t.present_slots() == 0);
  }
}
