#include "servent/gnutella/reputation.hpp"

#include <algorithm>
#include <sstream>

#include "wire/gnutella/descriptors.hpp"

namespace sv {

namespace {
std::int64_t secs(Instant now) {
  return std::chrono::duration_cast<std::chrono::seconds>(now.since_epoch).count();
}
}  // namespace

int ReputationBook::Record::score() const {
  std::int64_t s = kStart;
  s += static_cast<std::int64_t>(std::min<std::uint64_t>(uptime_s / 60, 400));
  s += std::min<std::int64_t>(20 * static_cast<std::int64_t>(served_us), 300);
  s += std::min<std::int64_t>(5 * static_cast<std::int64_t>(we_served), 100);
  if (reachable) s += 100;
  s -= 50 * static_cast<std::int64_t>(errors);
  s -= static_cast<std::int64_t>(std::min<std::uint64_t>(drops / 100, 200));
  return static_cast<int>(std::clamp<std::int64_t>(s, 0, kMax));
}

std::string ReputationBook::key(Endpoint e) {
  std::string k = wire::gnutella::ipv4_to_string(e.ip);
  if (e.port != 0) k += ":" + std::to_string(e.port);
  return k;
}

ReputationBook::Record& ReputationBook::at(Endpoint peer, Instant now) {
  const std::string k = key(peer);
  auto [it, fresh] = book_.try_emplace(k);
  it->second.last_seen = secs(now);
  if (fresh) bound(&k);
  return book_.at(k);
}

ReputationBook::Record& ReputationBook::by_ip(std::uint32_t ip, Instant now) {
  const std::string prefix = wire::gnutella::ipv4_to_string(ip);
  for (auto it = book_.lower_bound(prefix); it != book_.end() && it->first.starts_with(prefix); ++it) {
    const std::string_view rest = std::string_view(it->first).substr(prefix.size());
    if (rest.empty() || rest.front() == ':') {
      it->second.last_seen = secs(now);
      return it->second;
    }
  }
  return at(Endpoint{ip, 0}, now);
}

void ReputationBook::bound(const std::string* keep) {
  while (book_.size() > capacity_) {
    auto oldest = book_.end();
    for (auto it = book_.begin(); it != book_.end(); ++it) {
      if (keep && it->first == *keep) continue;
      if (oldest == book_.end() || it->second.last_seen < oldest->second.last_seen) oldest = it;
    }
    book_.erase(oldest);
  }
}

void ReputationBook::link_time(Endpoint peer, Duration up, Instant now) {
  at(peer, now).uptime_s += static_cast<std::uint64_t>(std::max<std::int64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(up).count(), 0));
}
void ReputationBook::served_us(std::uint32_t ip, Instant now) { ++by_ip(ip, now).served_us; }
void ReputationBook::we_served(std::uint32_t ip, Instant now) { ++by_ip(ip, now).we_served; }
void ReputationBook::reachable(Endpoint peer, Instant now) { at(peer, now).reachable = true; }
void ReputationBook::error(Endpoint peer, Instant now) { ++at(peer, now).errors; }
void ReputationBook::drops(Endpoint peer, std::uint64_t n, Instant now) {
  if (n > 0) at(peer, now).drops += n;
}

const ReputationBook::Record* ReputationBook::find(Endpoint peer) const {
  auto it = book_.find(key(peer));
  return it == book_.end() ? nullptr : &it->second;
}

int ReputationBook::score(Endpoint peer) const {
  const Record* r = find(peer);
  return r ? r->score() : kStart;
}

std::string ReputationBook::save() const {
  std::ostringstream out;
  for (const auto& [k, r] : book_) {
    out << k << ' ' << r.uptime_s << ' ' << r.served_us << ' ' << r.we_served << ' ' << (r.reachable ? 1 : 0) << ' '
        << r.errors << ' ' << r.drops << ' ' << r.last_seen << '\n';
  }
  return out.str();
}

std::size_t ReputationBook::load(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string k;
    Record r;
    int reach = 0;
    if (!(l >> k >> r.uptime_s >> r.served_us >> r.we_served >> reach >> r.errors >> r.drops >> r.last_seen)) continue;
    if (k.empty() || k.size() > 21) continue;
    r.reachable = reach != 0;
    book_[k] = r;
    ++n;
  }
  bound(nullptr);
  return n;
}

}  // namespace sv
