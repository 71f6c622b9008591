// The Query Routing Protocol, message 0x30 (QRP 0.1: "Query Routing for the
// Gnutella Network", LimeWire 2002; gtk-gnutella doc/gnutella/ultrapeer-qrp).
//
//  RESET  Variant[1]=0x00 TableLength[4] LE Infinity[1]            (6 bytes)
//  PATCH  Variant[1]=0x01 SeqNo[1] SeqSize[1] Compressor[1] EntryBits[1] Data
//         SeqNo runs 1..SeqSize; the Data of the whole sequence, joined and
//         inflated when Compressor is 1 (zlib; 0 is none), holds one signed
//         delta per table entry, EntryBits 4 (high nibble first) or 8 bits.
//
// A table has TableLength slots, each a distance that starts at Infinity
// ("nothing here"); a patch adds its deltas; a slot below Infinity says some
// shared file has a word hashing there. A word hashes (§"Hashing") by
// XOR-folding its lower-cased bytes into 32 bits, 8 bits at a time, times
// 0x4F1BBCDC, keeping the top log2(TableLength) bits.
#pragma once

#include <string_view>
#include <variant>
#include <vector>

#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire::gnutella {

inline constexpr std::uint8_t kQrpReset = 0x00;
inline constexpr std::uint8_t kQrpPatch = 0x01;
inline constexpr std::uint8_t kQrpCompressorNone = 0x00;
inline constexpr std::uint8_t kQrpCompressorZlib = 0x01;

struct QrpReset {
  std::uint32_t table_length = 0;
  std::uint8_t infinity = 0;
  bool operator==(const QrpReset&) const = default;
};
struct QrpPatch {
  std::uint8_t seq_no = 0;
  std::uint8_t seq_size = 0;
  std::uint8_t compressor = 0;
  std::uint8_t entry_bits = 0;
  Bytes data;
  bool operator==(const QrpPatch&) const = default;
};
using QrpMessage = std::variant<QrpReset, QrpPatch>;

// Malformed: empty, a RESET that is not 6 bytes, a PATCH under 5 bytes;
// Unsupported: another variant.
Result<QrpMessage> decode_qrp(ByteView payload);
void encode_qrp(Bytes& out, const QrpMessage& m);

// §"Hashing": the slot of `word` in a table of 2^bits slots (bits 1..32).
std::uint32_t qrp_hash(std::string_view word, int bits);
// log2 of a table length that is a power of two, else -1.
int qrp_bits(std::uint32_t table_length);

// One peer's table as it sends it: RESETs and PATCH sequences applied in
// order, with limits (table size, inflated size) for what a peer may ask.
class QrpTable {
 public:
  enum class Error {
    None,
    PatchBeforeReset,
    BadTableLength,  // zero, not a power of two, or over max_slots
    BadInfinity,     // 0 or 1: no slot could say "present"
    BadSequence,     // SeqNo out of order, SeqSize changing in a sequence
    BadEntryBits,    // not 4 or 8
    BadCompressor,
    BadData,         // does not inflate, or not exactly one entry per slot
    TooLarge,        // a sequence's data over the cap
  };
  explicit QrpTable(std::uint32_t max_slots = 1u << 21) : max_slots_(max_slots) {}

  Error apply(const QrpMessage& m);
  // A whole PATCH sequence has been applied since the last RESET.
  bool ready() const { return ready_; }
  std::uint32_t slots() const { return static_cast<std::uint32_t>(table_.size()); }
  std::uint8_t infinity() const { return infinity_; }
  int bits() const { return bits_; }
  std::size_t present_slots() const;
  bool present(std::uint32_t slot) const { return slot < table_.size() && table_[slot] < infinity_; }
  // A word is in the table when its slot is present.
  bool has_word(std::string_view word) const { return ready_ && present(qrp_hash(word, bits_)); }

 private:
  Error fail(Error e);
  std::uint32_t max_slots_;
  std::vector<std::int8_t> table_;
  std::uint8_t infinity_ = 0;
  int bits_ = 0;
  bool reset_ = false, ready_ = false;
  // The PATCH sequence being received.
  std::uint8_t next_seq_ = 1, seq_size_ = 0, compressor_ = 0, entry_bits_ = 0;
  Bytes pending_;
};

std::string_view to_string(QrpTable::Error e);

}  // namespace sv::wire::gnutella
