// The Napster server's file index: every share of every logged-in user, and
// an inverted index from words to shares, so a search costs the length of
// its rarest word's posting list, not the number of shares.
//
// - Words are runs of ASCII letters and digits (lower-cased) of at least two
//   characters, taken from the last `path_depth` components of the name
//   ('\\' and '/' separate components), as opennap-ng's index_path_depth.
// - Share ids only grow, so every posting list is sorted and lists intersect
//   by galloping. A removed share is a tombstone until more than half of the
//   table is dead; then live shares are renumbered densely and the postings
//   rebuilt (amortised O(1) per removal; on_compacted tells the owner).
// - A common word (in more than 1/32 of the shares) also has a bitmap over
//   ids (no bigger than its list), so intersecting with it costs a bit test.
// - md5s are not kept: servers send zeros in their place (201/204/212).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sv::napster {

// One share: its name and a caller's text (the server keeps the rest of the
// share's 201 line there, so a search copies bytes instead of formatting
// them) in one allocation, and the numbers searches filter on. 32 bytes plus
// the text.
class ShareRecord {
 public:
  ShareRecord() = default;
  ShareRecord(std::string_view name, std::string_view extra, std::uint64_t size, std::uint32_t owner,
              std::uint32_t bitrate, std::uint32_t freq, std::uint32_t length);
  std::string_view name() const;
  std::string_view extra() const;
  bool live() const { return text_ != nullptr; }
  const void* text_address() const { return text_.get(); }  // for prefetching
  void clear() { text_.reset(); }

  std::uint64_t size = 0;
  std::uint32_t owner = 0;  // the server's user slot
  std::uint32_t bitrate = 0, freq = 0, length = 0;

 private:
  std::unique_ptr<char[]> text_;  // [u16 name length][u16 extra length][name][extra]
};

class ShareIndex {
 public:
  explicit ShareIndex(std::size_t path_depth = 2) : path_depth_(path_depth) {}

  // Returns the new share's id.
  std::uint32_t add(ShareRecord r);
  // Tombstones the share; ids stay valid until maybe_compact().
  void remove(std::uint32_t id);
  // Compacts when more than half of the table is dead (renumbering ids and
  // calling on_compacted). Call when no ids are held in flight.
  void maybe_compact();
  // nullptr for unknown or removed ids.
  const ShareRecord* get(std::uint32_t id) const;

  // Calls `visit` for live shares containing every word of `words` (each
  // already normalised with words_of), newest first, until it returns false.
  // No words: nothing is visited.
  void search(const std::vector<std::string>& words, const std::function<bool(std::uint32_t, const ShareRecord&)>& visit) const;

  std::size_t live() const { return live_; }
  std::uint64_t total_bytes() const { return bytes_; }
  std::size_t distinct_words() const { return dict_.size(); }
  // Posting entries looked at by every search so far (the cost of searching).
  std::uint64_t candidates() const { return candidates_; }
  // Compaction renumbered the shares: anything keyed by id must be rebuilt
  // (for_each gives every live share with its new id).
  std::function<void()> on_compacted;
  void for_each(const std::function<void(std::uint32_t, const ShareRecord&)>& fn) const;

  // The index words of a name (path-depth rule above), or of a query phrase
  // (depth 0: every word). Lower-cased, deduplicated, in order.
  static std::vector<std::string> words_of(std::string_view text, std::size_t path_depth);

 private:
  void compact();
  std::uint32_t word_id(const std::string& w);

  std::size_t path_depth_;
  std::vector<ShareRecord> shares_;  // indexed by id
  std::size_t live_ = 0;
  std::uint64_t bytes_ = 0;
  std::unordered_map<std::string, std::uint32_t> dict_;
  // A word's shares: their ids in order, and for a common word (more than
  // one share in 32 has it) also a bitmap over ids, so that testing a
  // candidate against it is one bit rather than a search in a long list.
  struct Posting {
    std::vector<std::uint32_t> ids;
    std::vector<std::uint64_t> bits;
    bool has(std::uint32_t id) const { return (id >> 6) < bits.size() && (bits[id >> 6] >> (id & 63) & 1); }
  };
  void add_posting(Posting& p, std::uint32_t id);
  std::vector<Posting> postings_;
  mutable std::uint64_t candidates_ = 0;
};

}  // namespace sv::napster
