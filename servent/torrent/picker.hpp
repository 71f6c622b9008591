// Which block to ask a peer for next (BEP 3's "piece selection", as the
// BitTorrent paper and libtorrent's piece_picker do it):
//
//  1. strict priority: blocks of a piece already started come first (a
//     partial piece is worth nothing until it is whole and verified);
//  2. random first piece: until we have `random_first` pieces, a new piece is
//     drawn at random among those the peer has (the rarest would be slow to
//     get and we need something to trade soon);
//  3. then local rarest first: the piece fewest of our peers have (ties drawn
//     at random, so that peers do not all start on the same one);
//  4. endgame: once every missing block has been requested, a block already
//     requested from someone else may be requested again (the caller cancels
//     the duplicates when one copy arrives).
//
// Pure: no I/O, no clock; the Rng is injected.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "servent/core/types.hpp"

namespace sv::torrent {

struct Block {
  std::uint32_t piece = 0;
  std::uint32_t begin = 0;
  std::uint32_t length = 0;
  bool operator==(const Block&) const = default;
};

class PiecePicker {
 public:
  PiecePicker(std::uint32_t pieces, std::uint32_t piece_length, std::uint64_t total_length, std::uint64_t seed,
              std::uint32_t block_size = 16384, std::uint32_t random_first = 4);

  std::uint32_t pieces() const { return static_cast<std::uint32_t>(have_.size()); }
  std::uint32_t piece_size(std::uint32_t piece) const;
  std::uint32_t blocks_in(std::uint32_t piece) const;
  bool have(std::uint32_t piece) const { return have_[piece]; }
  std::uint32_t have_count() const { return have_count_; }
  bool complete() const { return have_count_ == have_.size(); }
  const std::vector<bool>& have_bits() const { return have_; }

  // Availability: what our peers have.
  void add_peer_pieces(const std::vector<bool>& bits);
  void remove_peer_pieces(const std::vector<bool>& bits);
  void add_peer_piece(std::uint32_t piece);
  std::uint32_t availability(std::uint32_t piece) const { return avail_[piece]; }

  // The next block to request from a peer that has `peer_bits`, with
  // `peer` naming it (for endgame: never the same block twice to one peer).
  std::optional<Block> pick(const std::vector<bool>& peer_bits, std::uint64_t peer);
  bool in_endgame() const { return endgame_; }

  // A requested block will not come (choke, reject, the peer left).
  void abort(const Block& b, std::uint64_t peer);
  void abort_peer(std::uint64_t peer);
  // A block arrived: true when it completes its piece (the caller verifies
  // it, then calls piece_passed or piece_failed). Blocks we did not ask for,
  // or already have, return false and are counted by the caller.
  bool received(const Block& b);
  bool wanted(const Block& b) const;  // a block of a missing piece, on its boundary, not yet received
  // Peers a received block was also requested from (endgame: send cancels).
  std::vector<std::uint64_t> other_requesters(const Block& b, std::uint64_t peer) const;
  void piece_passed(std::uint32_t piece);
  void piece_failed(std::uint32_t piece);  // every block of it is wanted again
  // Pieces already on disk (resume), verified by the caller.
  void set_have(std::uint32_t piece) { piece_passed(piece); }

 private:
  struct Partial {
    std::vector<std::uint8_t> state;                 // per block: 0 free, 1 requested, 2 received
    std::vector<std::vector<std::uint64_t>> owners;  // per block: peers it was requested from
    std::uint32_t received = 0;
  };
  Partial& partial(std::uint32_t piece);
  std::optional<Block> from_partial(std::uint32_t piece, std::uint64_t peer, bool endgame);
  bool all_requested() const;

  std::uint32_t piece_length_;
  std::uint64_t total_;
  std::uint32_t block_size_;
  std::uint32_t random_first_;
  Rng rng_;
  std::vector<bool> have_;
  std::uint32_t have_count_ = 0;
  std::vector<std::uint32_t> avail_;
  std::vector<std::optional<Partial>> partial_;  // pieces started and not yet passed
  std::vector<std::uint32_t> started_;           // their indices, in the order started
  bool endgame_ = false;
};

}  // namespace sv::torrent
