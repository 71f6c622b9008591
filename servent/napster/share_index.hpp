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
// - md5s are not kept: servers send zeros in their place (201/204/212).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sv::napster {

struct ShareRecord {
  std::string name;
  std::uint64_t size = 0;
  std::uint32_t owner = 0;  // the server's user slot
  std::uint32_t bitrate = 0, freq = 0, length = 0;
  bool live = false;
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
  std::vector<std::vector<std::uint32_t>> postings_;
};

}  // namespace sv::napster
