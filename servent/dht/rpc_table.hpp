// The RPCs a DHT node has asked and not yet had answered: each with the
// datagram (to send again on a retry), its deadline and what it was for.
//
// Flat: the request ids and deadlines in two small arrays side by side, the
// entries in a third, removal by moving the last into the gap. A node has a
// few RPCs out at a time (a client at most a few hundred), so a scan of one
// contiguous array of ids beats a hash table and a tree of deadlines, whose
// nodes are each a cache miss and an allocation per request: in a
// simulation of 100,000 nodes every datagram touches one of these tables.
// The earliest deadline is kept, and found again by a scan only when the
// entry that held it leaves.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "servent/core/types.hpp"

namespace sv::dht {

template <class Info>
class RpcTable {
 public:
  struct Entry {
    Info info;
    SharedBuffer datagram;
    Instant deadline;
    int tries = 0;
    std::uint64_t request = 0;
  };

  // A fresh request id: a counter under random high bits (an answer to an
  // id we never used is dropped as unexpected).
  std::uint64_t next_id(Rng& rng) { return next_++ ^ (rng.next() << 32); }
  void add(Entry e) {
    if (ids_.empty() || e.deadline < earliest_) earliest_ = e.deadline;
    ids_.push_back(e.request);
    deadlines_.push_back(e.deadline);
    entries_.push_back(std::move(e));
  }
  Entry* find(std::uint64_t request) {
    const std::size_t at = index_of(request);
    return at == kNone ? nullptr : &entries_[at];
  }
  // (the request must be pending: find() first)
  Entry take(std::uint64_t request) { return remove(index_of(request)); }
  // The entry with the earliest passed deadline (the lowest request id
  // among equal deadlines), removed.
  std::optional<Entry> take_expired(Instant now) {
    if (ids_.empty() || earliest_ > now) return std::nullopt;
    std::size_t best = 0;
    for (std::size_t i = 1; i < ids_.size(); ++i) {
      if (deadlines_[i] < deadlines_[best] || (deadlines_[i] == deadlines_[best] && ids_[i] < ids_[best])) best = i;
    }
    return remove(best);
  }
  std::optional<Instant> next_deadline() const {
    if (ids_.empty()) return std::nullopt;
    return earliest_;
  }
  std::size_t size() const { return ids_.size(); }

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t index_of(std::uint64_t request) const {
    for (std::size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] == request) return i;
    }
    return kNone;
  }
  Entry remove(std::size_t at) {
    Entry e = std::move(entries_[at]);
    const std::size_t last = ids_.size() - 1;
    if (at != last) {
      ids_[at] = ids_[last];
      deadlines_[at] = deadlines_[last];
      entries_[at] = std::move(entries_[last]);
    }
    ids_.pop_back();
    deadlines_.pop_back();
    entries_.pop_back();
    if (e.deadline == earliest_ && !ids_.empty()) {
      earliest_ = deadlines_.front();
      for (const Instant d : deadlines_) earliest_ = std::min(earliest_, d);
    }
    return e;
  }

  std::uint64_t next_ = 1;
  std::vector<std::uint64_t> ids_;
  std::vector<Instant> deadlines_;
  std::vector<Entry> entries_;
  Instant earliest_{};
};

}  // namespace sv::dht
