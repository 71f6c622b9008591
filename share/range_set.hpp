// A set of byte offsets kept as disjoint, sorted half-open intervals
// [first, end). Used for the parts of a download we have, and for what each
// source supplied.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sv::share {

struct Interval {
  std::uint64_t first = 0;
  std::uint64_t end = 0;  // exclusive
  std::uint64_t size() const { return end - first; }
  bool operator==(const Interval&) const = default;
};

class RangeSet {
 public:
  void add(std::uint64_t first, std::uint64_t end);
  void remove(std::uint64_t first, std::uint64_t end);
  bool contains(std::uint64_t first, std::uint64_t end) const;
  std::uint64_t total() const { return total_; }
  // The first `[first, end)` gap of [0, size) not in the set, at or after `from`.
  std::optional<Interval> first_gap(std::uint64_t size, std::uint64_t from = 0) const;
  // Every gap of [0, size).
  std::vector<Interval> gaps(std::uint64_t size) const;
  // Length of the contiguous run starting at 0.
  std::uint64_t prefix() const;
  std::vector<Interval> intervals() const;
  bool empty() const { return map_.empty(); }
  void clear() {
    map_.clear();
    total_ = 0;
  }
  // "a-b,c-d" (end exclusive) and back; parse returns nullopt on bad text.
  std::string to_string() const;
  static std::optional<RangeSet> parse(const std::string& s);
  bool operator==(const RangeSet& o) const { return map_ == o.map_; }

 private:
  std::map<std::uint64_t, std::uint64_t> map_;  // first -> end
  std::uint64_t total_ = 0;
};

}  // namespace sv::share
