// The RPCs a DHT node has asked and not yet had answered: each with the
// datagram (to send again on a retry), its deadline and what it was for.
// Deadlines are kept in order, so the next timer and the late ones are
// found without a scan (a client with a thousand operations in flight, or
// a simulated node among 100,000, asks often).
#pragma once

#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "servent/core/types.hpp"
#include "wire/common/bytes.hpp"

namespace sv::dht {

template <class Info>
class RpcTable {
 public:
  struct Entry {
    Info info;
    wire::Bytes datagram;
    Instant deadline;
    int tries = 0;
    std::uint64_t request = 0;
  };

  // A fresh request id: a counter under random high bits (an answer to an
  // id we never used is dropped as unexpected).
  std::uint64_t next_id(Rng& rng) { return next_++ ^ (rng.next() << 32); }
  void add(Entry e) {
    deadlines_.emplace(e.deadline, e.request);
    const std::uint64_t id = e.request;
    pending_[id] = std::move(e);
  }
  Entry* find(std::uint64_t request) {
    auto it = pending_.find(request);
    return it == pending_.end() ? nullptr : &it->second;
  }
  Entry take(std::uint64_t request) {
    auto it = pending_.find(request);
    Entry e = std::move(it->second);
    pending_.erase(it);
    deadlines_.erase({e.deadline, e.request});
    return e;
  }
  // The oldest entry whose deadline has passed, removed.
  std::optional<Entry> take_expired(Instant now) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const std::uint64_t id = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;
      Entry e = std::move(it->second);
      pending_.erase(it);
      return e;
    }
    return std::nullopt;
  }
  std::optional<Instant> next_deadline() const {
    if (deadlines_.empty()) return std::nullopt;
    return deadlines_.begin()->first;
  }
  std::size_t size() const { return pending_.size(); }

 private:
  std::uint64_t next_ = 1;
  std::unordered_map<std::uint64_t, Entry> pending_;
  std::set<std::pair<Instant, std::uint64_t>> deadlines_;
};

}  // namespace sv::dht
