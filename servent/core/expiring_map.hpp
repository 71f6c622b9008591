// A bounded map whose entries expire: the duplicate-descriptor cache and the
// reverse-path routing tables (0.4 spec §"Descriptor Routing").
//
// insert() is O(1) amortised; an entry lives until it is older than `ttl` or
// until `capacity` newer entries have pushed it out (oldest first), so memory
// is bounded whatever the traffic.
#pragma once

#include <cstddef>
#include <deque>
#include <unordered_map>

#include "servent/core/types.hpp"

namespace sv {

template <typename K, typename V, typename Hash>
class ExpiringMap {
 public:
  ExpiringMap(std::size_t capacity, Duration ttl) : capacity_(capacity), ttl_(ttl) {}

  // Inserts when absent and returns true; returns false (and keeps the old
  // value) when the key is present and not expired.
  bool insert(const K& key, const V& value, Instant now) {
    expire(now);
    auto [it, inserted] = map_.try_emplace(key, Entry{value, now, seq_});
    if (!inserted) return false;
    order_.push_back({key, seq_});
    ++seq_;
    while (map_.size() > capacity_) evict_for_room();
    return true;
  }
  // Inserts or overwrites.
  void put(const K& key, const V& value, Instant now) {
    expire(now);
    auto& e = map_[key];
    e = Entry{value, now, seq_};
    order_.push_back({key, seq_});
    ++seq_;
    while (map_.size() > capacity_) evict_for_room();
    // Overwrites leave stale order entries; keep the queue bounded too.
    while (order_.size() > 2 * capacity_ + 16) evict_front();
  }
  const V* find(const K& key, Instant now) const {
    auto it = map_.find(key);
    if (it == map_.end() || now - it->second.at > ttl_) return nullptr;
    return &it->second.value;
  }
  void expire(Instant now) {
    while (!order_.empty()) {
      auto it = map_.find(order_.front().key);
      if (it != map_.end() && it->second.seq == order_.front().seq && now - it->second.at <= ttl_) break;
      evict_front();
    }
  }
  std::size_t size() const { return map_.size(); }
  std::size_t capacity() const { return capacity_; }
  // Entries pushed out by the capacity before their time (the bound was hit).
  std::uint64_t evicted() const { return evicted_; }

 private:
  struct Entry {
    V value;
    Instant at;
    std::uint64_t seq;
  };
  struct Order {
    K key;
    std::uint64_t seq;
  };
  void evict_for_room() {
    const auto before = map_.size();
    evict_front();
    evicted_ += before - map_.size();
  }
  void evict_front() {
    auto& o = order_.front();
    auto it = map_.find(o.key);
    if (it != map_.end() && it->second.seq == o.seq) map_.erase(it);
    order_.pop_front();
  }
  std::unordered_map<K, Entry, Hash> map_;
  std::deque<Order> order_;
  std::size_t capacity_;
  Duration ttl_;
  std::uint64_t seq_ = 0;
  std::uint64_t evicted_ = 0;
};

}  // namespace sv
