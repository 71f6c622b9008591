#include "servent/torrent/choker.hpp"

#include <algorithm>

namespace sv::torrent {

ChokeResult choke(const std::vector<ChokePeer>& peers, bool seeding, std::size_t slots,
                  std::optional<std::uint64_t> optimistic, bool rotate, Rng& rng) {
  std::vector<const ChokePeer*> ranked;
  for (const auto& p : peers) {
    if (p.interested && (seeding || !p.snubbed)) ranked.push_back(&p);
  }
  // Ties by id, so the same rates give the same answer.
  std::sort(ranked.begin(), ranked.end(), [&](const ChokePeer* a, const ChokePeer* b) {
    const std::uint64_t ra = seeding ? a->up_rate : a->down_rate, rb = seeding ? b->up_rate : b->down_rate;
    return ra != rb ? ra > rb : a->id < b->id;
  });
  ChokeResult r;
  for (std::size_t i = 0; i < ranked.size() && i < slots; ++i) r.unchoked.push_back(ranked[i]->id);
  auto regular = [&](std::uint64_t id) { return std::find(r.unchoked.begin(), r.unchoked.end(), id) != r.unchoked.end(); };
  // Keep the optimistic peer between rotations while it still wants to be.
  if (!rotate && optimistic) {
    const auto it = std::find_if(peers.begin(), peers.end(), [&](const ChokePeer& p) { return p.id == *optimistic; });
    if (it != peers.end() && it->interested && !regular(it->id)) {
      r.optimistic = it->id;
      return r;
    }
  }
  // A new one: interested, not in a regular slot; new peers weigh 3.
  std::uint64_t total = 0;
  for (const auto& p : peers) {
    if (p.interested && !regular(p.id)) total += p.is_new ? 3 : 1;
  }
  if (total == 0) return r;
  std::uint64_t at = rng.below(total);
  for (const auto& p : peers) {
    if (!p.interested || regular(p.id)) continue;
    const std::uint64_t w = p.is_new ? 3 : 1;
    if (at < w) {
      r.optimistic = p.id;
      break;
    }
    at -= w;
  }
  return r;
}

}  // namespace sv::torrent
