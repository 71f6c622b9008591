#include "share/range_set.hpp"

#include <charconv>

namespace sv::share {

void RangeSet::add(std::uint64_t first, std::uint64_t end) {
  if (first >= end) return;
  auto it = map_.upper_bound(first);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= first) {
      first = prev->first;
      if (prev->second > end) end = prev->second;
      total_ -= prev->second - prev->first;
      it = map_.erase(prev);
    }
  }
  while (it != map_.end() && it->first <= end) {
    if (it->second > end) end = it->second;
    total_ -= it->second - it->first;
    it = map_.erase(it);
  }
  map_.emplace(first, end);
  total_ += end - first;
}

void RangeSet::remove(std::uint64_t first, std::uint64_t end) {
  if (first >= end) return;
  auto it = map_.upper_bound(first);
  if (it != map_.begin()) --it;
  while (it != map_.end() && it->first < end) {
    const std::uint64_t a = it->first, b = it->second;
    if (b <= first) {
      ++it;
      continue;
    }
    it = map_.erase(it);
    total_ -= b - a;
    if (a < first) {
      map_.emplace(a, first);
      total_ += first - a;
    }
    if (b > end) {
      it = map_.emplace(end, b).first;
      total_ += b - end;
      ++it;
    }
  }
}

bool RangeSet::contains(std::uint64_t first, std::uint64_t end) const {
  if (first >= end) return true;
  auto it = map_.upper_bound(first);
  if (it == map_.begin()) return false;
  --it;
  return it->first <= first && it->second >= end;
}

std::optional<Interval> RangeSet::first_gap(std::uint64_t size, std::uint64_t from) const {
  std::uint64_t pos = from;
  auto it = map_.upper_bound(pos);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (prev->second > pos) pos = prev->second;
  }
  if (pos >= size) return std::nullopt;
  std::uint64_t end = it == map_.end() ? size : std::min(it->first, size);
  return Interval{pos, end};
}

std::vector<Interval> RangeSet::gaps(std::uint64_t size) const {
  std::vector<Interval> out;
  std::uint64_t pos = 0;
  while (auto g = first_gap(size, pos)) {
    out.push_back(*g);
    pos = g->end;
  }
  return out;
}

std::uint64_t RangeSet::prefix() const {
  if (map_.empty() || map_.begin()->first != 0) return 0;
  return map_.begin()->second;
}

std::vector<Interval> RangeSet::intervals() const {
  std::vector<Interval> out;
  for (const auto& [a, b] : map_) out.push_back({a, b});
  return out;
}

std::string RangeSet::to_string() const {
  std::string s;
  for (const auto& [a, b] : map_) {
    if (!s.empty()) s += ',';
    s += std::to_string(a) + "-" + std::to_string(b);
  }
  return s;
}

std::optional<RangeSet> RangeSet::parse(const std::string& s) {
  RangeSet out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    std::string_view item(s.data() + pos, comma - pos);
    auto dash = item.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    std::uint64_t a = 0, b = 0;
    auto r1 = std::from_chars(item.data(), item.data() + dash, a);
    auto r2 = std::from_chars(item.data() + dash + 1, item.data() + item.size(), b);
    if (r1.ec != std::errc{} || r2.ec != std::errc{} || r1.ptr != item.data() + dash ||
        r2.ptr != item.data() + item.size() || a >= b) {
      return std::nullopt;
    }
    out.add(a, b);
    pos = comma + 1;
  }
  return out;
}

}  // namespace sv::share
