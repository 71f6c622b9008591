// Who may download from us (BEP 3 "choking", the BitTorrent paper's
// tit-for-tat, as libtorrent's unchoke_sort does it), a pure function the
// core calls every `interval` (10 s):
//
//  - regular slots (4): the interested peers that sent us the most in the
//    last interval; when we are a seed, the ones we sent the most to (they
//    take what we give fastest); a snubbed peer (sent us nothing for 60 s
//    while we wanted something) gets no regular slot while leeching;
//  - one optimistic unchoke, moved every third call (30 s) to a random
//    interested peer that is choked, new peers three times as likely (they
//    have nothing to trade yet): how a newcomer gets its first pieces and
//    how we find better partners.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "servent/core/types.hpp"

namespace sv::torrent {

struct ChokePeer {
  std::uint64_t id = 0;
  bool interested = false;     // in us
  std::uint64_t down_rate = 0;  // bytes/s it sent us lately
  std::uint64_t up_rate = 0;    // bytes/s we sent it lately
  bool snubbed = false;
  bool is_new = false;          // connected within the last optimistic period
};

struct ChokeResult {
  std::vector<std::uint64_t> unchoked;  // regular slots, best first
  std::optional<std::uint64_t> optimistic;
};

// `rotate`: pick a new optimistic peer (else keep `optimistic` while it is
// still interested and choked by the regular slots).
ChokeResult choke(const std::vector<ChokePeer>& peers, bool seeding, std::size_t slots,
                  std::optional<std::uint64_t> optimistic, bool rotate, Rng& rng);

}  // namespace sv::torrent
