#include "servent/gnutella/host_cache.hpp"

#include <algorithm>
#include <sstream>

#include "wire/common/text.hpp"

namespace sv {

bool HostCache::usable(Endpoint e) {
  const std::uint32_t first = e.ip >> 24;
  return e.port != 0 && first != 0 && first < 224;
}

void HostCache::index(Endpoint e, Entry& en) {
  // Newest first: a refreshed host usually goes to the front (a hint).
  en.at_time = by_time_.insert(by_time_.begin(), {en.seen, e});
  ultrapeers_ += en.up;
  if (!en.picked_as_up()) return;
  en.at_up = by_time_up_.insert(by_time_up_.begin(), {en.seen, e});
  if (en.room) en.at_room = by_time_room_.insert(by_time_room_.begin(), {en.seen, e});
}

void HostCache::unindex(Entry& en) {
  by_time_.erase(en.at_time);
  ultrapeers_ -= en.up;
  if (!en.picked_as_up()) return;
  by_time_up_.erase(en.at_up);
  if (en.room) by_time_room_.erase(en.at_room);
}

void HostCache::add(Endpoint e, Instant seen) {
  if (!usable(e)) return;
  auto [it, fresh] = hosts_.try_emplace(e, Entry{seen, false, false});
  changes_ += fresh;
  if (!fresh) {
    if (seen <= it->second.seen) return;
    unindex(it->second);
    it->second.seen = seen;
  }
  index(e, it->second);
  while (hosts_.size() > capacity_) remove(std::prev(by_time_.end())->second);
}

void HostCache::remove(Endpoint e) {
  auto it = hosts_.find(e);
  if (it == hosts_.end()) return;
  unindex(it->second);
  if (it->second.rest_until != Instant{}) resting_.erase(it->second.at_rest);
  hosts_.erase(it);
}

void HostCache::rest(Endpoint e, Instant until) {
  auto it = hosts_.find(e);
  if (it == hosts_.end()) return;
  Entry& en = it->second;
  unindex(en);
  if (en.rest_until != Instant{}) resting_.erase(en.at_rest);
  en.rest_until = until;
  en.at_rest = resting_.insert({until, e}).first;
  index(e, en);
  ++changes_;
}

void HostCache::wake(Endpoint e) {
  auto it = hosts_.find(e);
  if (it == hosts_.end() || it->second.rest_until == Instant{}) return;
  Entry& en = it->second;
  unindex(en);
  resting_.erase(en.at_rest);
  en.rest_until = Instant{};
  index(e, en);
  ++changes_;
}

void HostCache::wake_due(Instant now) {
  while (!resting_.empty() && resting_.begin()->first <= now) wake(resting_.begin()->second);
}

void HostCache::mark_ultrapeer(Endpoint e, bool up) {
  auto it = hosts_.find(e);
  if (it == hosts_.end() || it->second.up == up) return;
  ++changes_;
  unindex(it->second);
  it->second.up = up;
  index(e, it->second);
}

void HostCache::mark_leaf_room(Endpoint e, bool room) {
  auto it = hosts_.find(e);
  if (it == hosts_.end()) return;
  // Room again: its rest is over.
  if (room) wake(e);
  if (it->second.room == room) return;
  ++changes_;
  unindex(it->second);
  it->second.room = room;
  index(e, it->second);
}

std::vector<Endpoint> HostCache::recent(std::size_t n, const std::vector<Endpoint>& except, Pick pick) const {
  std::vector<Endpoint> skip(except);
  std::sort(skip.begin(), skip.end());
  std::vector<Endpoint> out;
  const auto& order = pick == Pick::Any ? by_time_ : pick == Pick::Ultrapeers ? by_time_up_ : by_time_room_;
  for (const auto& [t, e] : order) {
    if (out.size() >= n) break;
    if (!std::binary_search(skip.begin(), skip.end(), e)) out.push_back(e);
  }
  return out;
}

std::string HostCache::to_text() const {
  std::ostringstream o;
  for (const auto& [t, e] : by_time_) {
    o << e.to_string() << '\t' << t.since_epoch.count() << (is_ultrapeer(e) ? "\tU" : "") << '\n';
  }
  return o.str();
}

void HostCache::load(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    auto e = Endpoint::parse(line.substr(0, tab));
    if (!e) continue;
    std::int64_t ms = 0;
    if (tab != std::string::npos) {
      try {
        ms = std::stoll(line.substr(tab + 1));
      } catch (...) {
      }
    }
    add(*e, Instant{Duration(ms)});
    mark_ultrapeer(*e, line.ends_with("\tU"));
  }
}

void HostCache::add_list(std::string_view list, Instant seen, bool ultrapeers) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = wire::trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (auto e = Endpoint::parse(item)) {
      add(*e, seen);
      if (ultrapeers) mark_ultrapeer(*e, true);
    }
  }
}

std::string HostCache::format_list(const std::vector<Endpoint>& hosts) {
  std::string s;
  for (const auto& e : hosts) {
    if (!s.empty()) s += ",";
    s += e.to_string();
  }
  return s;
}

}  // namespace sv
