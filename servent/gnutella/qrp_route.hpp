// Query routing with QRP tables (QRP 0.1; Ultrapeers 1.0 §4): what the
// tables say once applied, how ours is built from the library, the messages
// that bring a peer's copy up to date, and whether a query may match.
//
// A table is kept as a presence bitmap of 2^bits slots ("some shared file has
// a word hashing here"), the only thing routing needs; wire::gnutella::QrpTable
// keeps a peer's distances while its patches arrive.
//
// What goes in our table (and what a query is checked against):
//  - every keyword of every shared name (share::keywords: lower-case ASCII
//    letters and digits, UTF-8 kept whole) and its prefixes down to
//    kQrpMinWord characters, since our library matches a query word against
//    the start of a name word ("hell" finds "hello.txt");
//  - "urn:sha1:<base32>" of every hashed file (HUGE 0.94 §3.1), as
//    gtk-gnutella puts them.
// A query matches when each of its words of kQrpMinWord or more characters
// is present (shorter words say too little to route on); a query naming a
// urn:sha1 matches by that urn alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "share/library.hpp"
#include "wire/common/bytes.hpp"
#include "wire/gnutella/descriptors.hpp"
#include "wire/gnutella/huge.hpp"
#include "wire/gnutella/qrp.hpp"

namespace sv {

inline constexpr std::size_t kQrpMinWord = 3;

class QrpBits {
 public:
  QrpBits() = default;
  explicit QrpBits(int bits);
  // The slots a peer's table marks present (empty when it is not ready).
  static QrpBits from_table(const wire::gnutella::QrpTable& t);

  int bits() const { return bits_; }
  std::uint32_t slots() const { return bits_ == 0 ? 0 : std::uint32_t{1} << bits_; }
  bool empty() const { return bits_ == 0; }
  void set(std::uint32_t slot) { words_[slot >> 6] |= std::uint64_t{1} << (slot & 63); }
  bool test(std::uint32_t slot) const { return (words_[slot >> 6] >> (slot & 63)) & 1; }
  void add_word(std::string_view w) { set(wire::gnutella::qrp_hash(w, bits_)); }
  bool has_word(std::string_view w) const { return bits_ != 0 && test(wire::gnutella::qrp_hash(w, bits_)); }
  // ORs `other` in, whatever its size: a word's slot in a smaller table is
  // its slot in a bigger one shifted right, so a slot of a bigger table folds
  // onto one slot here and a slot of a smaller one covers a range; the result
  // answers yes for every word either table does (and maybe a few more).
  void merge(const QrpBits& other);
  std::size_t count() const;
  bool operator==(const QrpBits&) const = default;

 private:
  int bits_ = 0;
  std::vector<std::uint64_t> words_;
};

// Our own table: every shared file's words (with prefixes) and urn.
QrpBits qrp_table_for(const share::Library& library, int bits);

// The QRP payloads that bring a peer holding `from` to `to`: a RESET and a
// full PATCH when `from` is null or of another size, else a PATCH of the
// differences (none when nothing changed). The PATCH is 4-bit, zlib, split
// into messages of at most `max_chunk` data bytes (QRP 0.1 §"PATCH").
// Present slots are distance 1, absent ones `infinity`.
std::vector<wire::Bytes> qrp_update(const QrpBits* from, const QrpBits& to, std::uint8_t infinity,
                                    std::size_t max_chunk = 4096);

// What a query is routed on, worked out once per query rather than once per
// table it meets: the sha1 urns it names (HUGE text urns or GGEP "H"), and
// when it names none, its criteria's keywords.
struct QueryTerms {
  std::vector<share::Sha1> sha1s;
  std::vector<std::string> words;
};
QueryTerms query_terms(std::string_view criteria, const wire::gnutella::Extensions& ext);
QueryTerms query_terms(const wire::gnutella::Query& q);

// Whether a query may find something behind a peer with table `t`.
bool qrp_matches(const QrpBits& t, const QueryTerms& q);

}  // namespace sv
