// The DescriptorIDs of the newest requests in a capture, for telling replies
// without a request. A capture can hold millions of them, so this is bounded
// and flat: two generations of open-addressed tables of 64-bit fingerprints
// (a GUID's two halves mixed; two different GUIDs share one with chance
// 2^-64). When the current generation holds `per_generation` IDs it becomes
// the old one and the old one is forgotten, so at least the newest
// `per_generation` IDs are always remembered, at most twice that many.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "wire/gnutella/descriptors.hpp"

namespace sv::pcap {

class RecentIds {
 public:
  explicit RecentIds(std::size_t per_generation) : per_generation_(per_generation) {}

  // The table write waits until kPending newer IDs have come: the slot's
  // cache line is fetched meanwhile (the tables are megabytes, visited at
  // random, and a miss costs more than decoding a descriptor).
  void insert(const wire::gnutella::Guid& id) {
    const std::uint64_t k = key(id);
    std::uint64_t& p = pending_[head_++ % kPending];
    if (p != 0) store(p);
    p = k;
    if (!cur_.slots.empty()) __builtin_prefetch(&cur_.slots[slot(cur_, k)], 1);
  }

  bool contains(const wire::gnutella::Guid& id) const {
    const std::uint64_t k = key(id);
    for (std::uint64_t p : pending_) {
      if (p == k) return true;
    }
    return contains_key(cur_, k) || contains_key(old_, k);
  }

  void clear() {
    cur_ = {};
    old_ = {};
    pending_ = {};
    head_ = 0;
  }

 private:
  struct Table {
    std::vector<std::uint64_t> slots;  // 0 = empty; size a power of two, at most half full
    std::size_t count = 0;
  };

  static constexpr std::size_t kPending = 16;

  void store(std::uint64_t k) {
    if (contains_key(cur_, k)) return;
    if (cur_.count == per_generation_) {
      std::swap(cur_, old_);
      cur_.count = 0;
      std::fill(cur_.slots.begin(), cur_.slots.end(), 0);  // storage kept: no allocation in steady state
    }
    if ((cur_.count + 1) * 2 > cur_.slots.size()) grow(cur_);
    put(cur_, k);
  }

  static std::uint64_t key(const wire::gnutella::Guid& id) {
    std::uint64_t a, b;
    std::memcpy(&a, id.bytes.data(), 8);
    std::memcpy(&b, id.bytes.data() + 8, 8);
    const std::uint64_t k = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return k == 0 ? 1 : k;
  }
  static std::size_t slot(const Table& t, std::uint64_t k) { return static_cast<std::size_t>(k >> 7) & (t.slots.size() - 1); }

  static bool contains_key(const Table& t, std::uint64_t k) {
    if (t.slots.empty()) return false;
    const std::size_t mask = t.slots.size() - 1;
    for (std::size_t i = slot(t, k);; i = (i + 1) & mask) {
      if (t.slots[i] == k) return true;
      if (t.slots[i] == 0) return false;
    }
  }
  static void put(Table& t, std::uint64_t k) {
    const std::size_t mask = t.slots.size() - 1;
    std::size_t i = slot(t, k);
    while (t.slots[i] != 0) i = (i + 1) & mask;
    t.slots[i] = k;
    ++t.count;
  }
  static void grow(Table& t) {
    Table bigger;
    bigger.slots.assign(t.slots.empty() ? 64 : t.slots.size() * 2, 0);
    for (std::uint64_t k : t.slots) {
      if (k != 0) put(bigger, k);
    }
    t = std::move(bigger);
  }

  std::size_t per_generation_;
  Table cur_, old_;
  std::array<std::uint64_t, kPending> pending_{};  // newest IDs, not yet in cur_ (0 = none)
  std::size_t head_ = 0;
};

}  // namespace sv::pcap
