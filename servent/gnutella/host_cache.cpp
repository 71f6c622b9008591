#include "servent/gnutella/host_cache.hpp"

#include <algorithm>
#include <sstream>

#include "wire/common/text.hpp"

namespace sv {

bool HostCache::usable(Endpoint e) {
  const std::uint32_t first = e.ip >> 24;
  return e.port != 0 && first != 0 && first < 224;
}

void HostCache::add(Endpoint e, Instant seen) {
  if (!usable(e)) return;
  auto& t = hosts_[e];
  if (seen > t) t = seen;
  while (hosts_.size() > capacity_) {
    auto oldest = std::min_element(hosts_.begin(), hosts_.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    ultrapeers_.erase(oldest->first);
    hosts_.erase(oldest);
  }
}

void HostCache::mark_ultrapeer(Endpoint e, bool up) {
  if (!up) {
    ultrapeers_.erase(e);
  } else if (hosts_.count(e) != 0) {
    ultrapeers_.insert(e);
  }
}

std::vector<Endpoint> HostCache::recent(std::size_t n, const std::vector<Endpoint>& except,
                                        bool ultrapeers_only) const {
  std::vector<std::pair<Instant, Endpoint>> all;
  auto consider = [&](Endpoint e, Instant t) {
    if (std::find(except.begin(), except.end(), e) == except.end()) all.emplace_back(t, e);
  };
  if (ultrapeers_only) {
    for (const Endpoint& e : ultrapeers_) {
      if (auto it = hosts_.find(e); it != hosts_.end()) consider(e, it->second);
    }
  } else {
    all.reserve(hosts_.size());
    for (const auto& [e, t] : hosts_) consider(e, t);
  }
  // Only the n newest need ordering.
  const std::size_t k = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                    [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::vector<Endpoint> out;
  out.reserve(k);
  for (std::size_t i = 0; i < k; ++i) out.push_back(all[i].second);
  return out;
}

std::string HostCache::to_text() const {
  std::ostringstream o;
  for (const auto& [e, t] : hosts_) {
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
