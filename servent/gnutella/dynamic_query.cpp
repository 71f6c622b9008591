#include "servent/gnutella/dynamic_query.hpp"

#include <algorithm>

namespace sv {

DynamicQuery::DynamicQuery(std::vector<Link> links, const DqConfig& config, Instant now)
    : config_(config), links_(std::move(links)), started_(now), next_(now) {
  // Best first: the links that see the most of the network.
  std::stable_sort(links_.begin(), links_.end(), [](const Link& a, const Link& b) { return a.degree > b.degree; });
  if (links_.empty()) end_ = End::Exhausted;
}

std::size_t DynamicQuery::horizon(std::size_t degree, std::uint8_t ttl) {
  const std::size_t fan = std::max<std::size_t>(degree, 2) - 1;
  std::size_t total = 0, layer = 1;
  for (std::uint8_t t = 0; t < ttl; ++t) {
    total += layer;
    layer = std::min<std::size_t>(layer * fan, std::size_t{1} << 40);
  }
  return total;
}

void DynamicQuery::drop_link(ConnId c) {
  std::erase_if(links_, [&](const Link& l) { return l.conn == c; });
}

std::vector<DynamicQuery::Send> DynamicQuery::step(std::size_t results, Instant now) {
  std::vector<Send> out;
  if (end_ != End::Running || now < next_) return out;
  if (results >= config_.wanted) {
    end_ = End::Satisfied;
    return out;
  }
  if (links_.empty()) {
    end_ = End::Exhausted;
    return out;
  }
  if (now - started_ >= config_.max_time) {
    end_ = End::TimedOut;
    return out;
  }
  const std::uint8_t max_ttl = std::max<std::uint8_t>(config_.max_ttl, 1);
  if (!probed_) {
    probed_ = true;
    // At least one link stays for widening: with a single link, the first
    // step is already a widening one (with nothing known, the largest TTL).
    const std::size_t n = std::min(config_.probe_links, links_.size() - 1);
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back({links_[i].conn, 1});
      hosts_ += horizon(links_[i].degree, 1);
    }
    links_.erase(links_.begin(), links_.begin() + static_cast<std::ptrdiff_t>(n));
    if (n > 0) {
      next_ = now + config_.hop_wait;
      return out;
    }
  }
  const Link link = links_.front();
  links_.erase(links_.begin());
  // This link's share of what is still wanted, in hosts at the rate seen.
  // With no results yet, all we know is that the hosts reached gave fewer
  // than one between them: the rate is at most 1/hosts, so each unanswered
  // step reaches further than the last, rather than the largest TTL at once
  // (in a dense ultrapeer mesh that reaches every ultrapeer many times over).
  const double rate = static_cast<double>(std::max<std::size_t>(results, 1)) /
                      static_cast<double>(std::max<std::size_t>(hosts_, 1));
  const double share = static_cast<double>(config_.wanted - results) / static_cast<double>(links_.size() + 1);
  const double hosts_needed = share / rate;
  std::uint8_t ttl = 1;
  while (ttl < max_ttl && static_cast<double>(horizon(link.degree, ttl)) < hosts_needed) ++ttl;
  out.push_back({link.conn, ttl});
  hosts_ += horizon(link.degree, ttl);
  next_ = now + config_.hop_wait * ttl;
  return out;
}

}  // namespace sv
