#include "servent/torrent/picker.hpp"

#include <algorithm>

namespace sv::torrent {

namespace {
constexpr std::uint8_t kFree = 0, kRequested = 1, kReceived = 2;
}

PiecePicker::PiecePicker(std::uint32_t pieces, std::uint32_t piece_length, std::uint64_t total_length,
                         std::uint64_t seed, std::uint32_t block_size, std::uint32_t random_first)
    : piece_length_(piece_length),
      total_(total_length),
      block_size_(block_size),
      random_first_(random_first),
      rng_(seed),
      have_(pieces, false),
      avail_(pieces, 0),
      partial_(pieces) {}

std::uint32_t PiecePicker::piece_size(std::uint32_t piece) const {
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * piece_length_;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(piece_length_, total_ - start));
}

std::uint32_t PiecePicker::blocks_in(std::uint32_t piece) const {
  return (piece_size(piece) + block_size_ - 1) / block_size_;
}

void PiecePicker::add_peer_pieces(const std::vector<bool>& bits) {
  for (std::size_t i = 0; i < bits.size() && i < avail_.size(); ++i) avail_[i] += bits[i];
}

void PiecePicker::remove_peer_pieces(const std::vector<bool>& bits) {
  for (std::size_t i = 0; i < bits.size() && i < avail_.size(); ++i) {
    if (bits[i] && avail_[i] > 0) --avail_[i];
  }
}

void PiecePicker::add_peer_piece(std::uint32_t piece) {
  if (piece < avail_.size()) ++avail_[piece];
}

PiecePicker::Partial& PiecePicker::partial(std::uint32_t piece) {
  auto& p = partial_[piece];
  if (!p) {
    const std::uint32_t n = blocks_in(piece);
    p = Partial{std::vector<std::uint8_t>(n, kFree), std::vector<std::vector<std::uint64_t>>(n), 0};
    started_.push_back(piece);
  }
  return *p;
}

std::optional<Block> PiecePicker::from_partial(std::uint32_t piece, std::uint64_t peer, bool endgame) {
  Partial& p = *partial_[piece];
  for (std::uint32_t b = 0; b < p.state.size(); ++b) {
    const bool take = p.state[b] == kFree ||
                      (endgame && p.state[b] == kRequested &&
                       std::find(p.owners[b].begin(), p.owners[b].end(), peer) == p.owners[b].end());
    if (!take) continue;
    p.state[b] = kRequested;
    p.owners[b].push_back(peer);
    const std::uint32_t begin = b * block_size_;
    return Block{piece, begin, std::min(block_size_, piece_size(piece) - begin)};
  }
  return std::nullopt;
}

bool PiecePicker::all_requested() const {
  if (started_.size() + have_count_ < have_.size()) return false;  // some missing piece not started
  for (std::uint32_t piece : started_) {
    const Partial& p = *partial_[piece];
    if (std::find(p.state.begin(), p.state.end(), kFree) != p.state.end()) return false;
  }
  return true;
}

std::optional<Block> PiecePicker::pick(const std::vector<bool>& peer_bits, std::uint64_t peer) {
  auto peer_has = [&](std::uint32_t i) { return i < peer_bits.size() && peer_bits[i]; };
  // 1. Finish what is started.
  for (std::uint32_t piece : started_) {
    if (!peer_has(piece)) continue;
    if (auto b = from_partial(piece, peer, false)) return b;
  }
  // 2./3. A new piece: random while we have few, then the rarest.
  std::optional<std::uint32_t> best;
  std::uint32_t best_avail = UINT32_MAX;
  std::uint64_t ties = 0;
  const bool random = have_count_ < random_first_;
  for (std::uint32_t i = 0; i < have_.size(); ++i) {
    if (have_[i] || partial_[i] || !peer_has(i)) continue;
    const std::uint32_t a = random ? 0 : avail_[i];
    if (a < best_avail) {
      best_avail = a;
      best = i;
      ties = 1;
    } else if (a == best_avail && rng_.below(++ties) == 0) {
      best = i;  // reservoir sampling: each tie equally likely
    }
  }
  if (best) {
    partial(*best);
    return from_partial(*best, peer, false);
  }
  // 4. Endgame.
  if (!endgame_ && all_requested()) endgame_ = true;
  if (endgame_) {
    for (std::uint32_t piece : started_) {
      if (!peer_has(piece)) continue;
      if (auto b = from_partial(piece, peer, true)) return b;
    }
  }
  return std::nullopt;
}

void PiecePicker::abort(const Block& b, std::uint64_t peer) {
  if (b.piece >= partial_.size() || !partial_[b.piece] || b.begin % block_size_ != 0) return;
  Partial& p = *partial_[b.piece];
  const std::uint32_t i = b.begin / block_size_;
  if (i >= p.state.size()) return;
  std::erase(p.owners[i], peer);
  if (p.state[i] == kRequested && p.owners[i].empty()) p.state[i] = kFree;
}

void PiecePicker::abort_peer(std::uint64_t peer) {
  for (std::uint32_t piece : started_) {
    Partial& p = *partial_[piece];
    for (std::size_t i = 0; i < p.state.size(); ++i) {
      std::erase(p.owners[i], peer);
      if (p.state[i] == kRequested && p.owners[i].empty()) p.state[i] = kFree;
    }
  }
}

bool PiecePicker::wanted(const Block& b) const {
  if (b.piece >= have_.size() || have_[b.piece] || !partial_[b.piece] || b.begin % block_size_ != 0) return false;
  const Partial& p = *partial_[b.piece];
  const std::uint32_t i = b.begin / block_size_;
  if (i >= p.state.size() || p.state[i] == kReceived) return false;
  return b.length == std::min(block_size_, piece_size(b.piece) - b.begin);
}

bool PiecePicker::received(const Block& b) {
  if (!wanted(b)) return false;
  Partial& p = *partial_[b.piece];
  const std::uint32_t i = b.begin / block_size_;
  p.state[i] = kReceived;
  ++p.received;
  return p.received == p.state.size();
}

std::vector<std::uint64_t> PiecePicker::other_requesters(const Block& b, std::uint64_t peer) const {
  std::vector<std::uint64_t> out;
  if (b.piece >= partial_.size() || !partial_[b.piece] || b.begin % block_size_ != 0) return out;
  const Partial& p = *partial_[b.piece];
  const std::uint32_t i = b.begin / block_size_;
  if (i >= p.owners.size()) return out;
  for (std::uint64_t o : p.owners[i]) {
    if (o != peer) out.push_back(o);
  }
  return out;
}

void PiecePicker::piece_passed(std::uint32_t piece) {
  if (piece >= have_.size() || have_[piece]) return;
  have_[piece] = true;
  ++have_count_;
  partial_[piece].reset();
  std::erase(started_, piece);
}

void PiecePicker::piece_failed(std::uint32_t piece) {
  if (piece >= have_.size() || !partial_[piece]) return;
  Partial& p = *partial_[piece];
  std::fill(p.state.begin(), p.state.end(), kFree);
  for (auto& o : p.owners) o.clear();
  p.received = 0;
  endgame_ = false;
}

}  // namespace sv::torrent
