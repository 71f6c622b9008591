// Piece selection and choking, the pure decisions of the torrent core.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "servent/torrent/choker.hpp"
#include "servent/torrent/picker.hpp"

using namespace sv;
using namespace sv::torrent;

namespace {

std::vector<bool> all(std::size_t n) { return std::vector<bool>(n, true); }

}  // namespace

TEST_CASE("picker_cuts_pieces_into_16_kib_blocks_and_the_last_piece_short") {
  PiecePicker p(3, 40000, 100000, 1);
  CHECK(p.piece_size(0) == 40000);
  CHECK(p.piece_size(2) == 20000);
  CHECK(p.blocks_in(0) == 3);  // 16384 + 16384 + 7232
  CHECK(p.blocks_in(2) == 2);
  // Every block of the torrent comes out exactly once from one peer, then nothing.
  std::map<std::uint32_t, std::uint64_t> bytes;
  std::set<std::pair<std::uint32_t, std::uint32_t>> seen;
  while (auto b = p.pick(all(3), 7)) {
    CHECK(seen.insert({b->piece, b->begin}).second);
    CHECK(b->length <= 16384);
    bytes[b->piece] += b->length;
  }
  CHECK(bytes[0] == 40000);
  CHECK(bytes[2] == 20000);
  CHECK(seen.size() == 8);
}

TEST_CASE("picker_finishes_started_pieces_then_picks_the_rarest") {
  PiecePicker p(6, 16384, 6 * 16384, 3, 16384, 0);  // no random first pieces
  // Availability: piece 4 is on one peer, the others on three.
  p.add_peer_pieces({true, true, true, true, false, true});
  p.add_peer_pieces({true, true, true, true, false, true});
  p.add_peer_pieces(all(6));
  auto b = p.pick(all(6), 1);
  REQUIRE(b);
  CHECK(b->piece == 4);  // the rarest
  // A peer without piece 4: a rarest among the rest (all tied at 3).
  auto c = p.pick({true, true, true, true, false, true}, 2);
  REQUIRE(c);
  CHECK(c->piece != 4);
  // A two-block piece: the second block of a started piece comes before any new piece.
  PiecePicker q(4, 32768, 4 * 32768, 5, 16384, 0);
  q.add_peer_pieces(all(4));
  auto first = q.pick(all(4), 1);
  auto second = q.pick(all(4), 2);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(second->piece == first->piece);
  CHECK(second->begin == 16384);
}

TEST_CASE("picker_draws_the_first_pieces_at_random") {
  // With random_first 4 and nothing yet, the first pieces of different
  // pickers spread over the torrent instead of all taking the rarest.
  std::set<std::uint32_t> firsts;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    PiecePicker p(50, 16384, 50 * 16384, seed);
    p.add_peer_pieces(all(50));
    p.add_peer_piece(0);  // piece 0 is the most common: rarest-first would avoid it, random does not care
    firsts.insert(p.pick(all(50), 1)->piece);
  }
  CHECK(firsts.size() >= 10);
}

TEST_CASE("picker_blocks_arrive_complete_pieces_and_failures_are_wanted_again") {
  PiecePicker p(2, 32768, 65536, 9, 16384, 0);
  p.add_peer_pieces(all(2));
  const auto a = *p.pick(all(2), 1);
  const auto b = *p.pick(all(2), 1);
  REQUIRE(a.piece == b.piece);
  CHECK_FALSE(p.received(Block{a.piece, 100, 16384}));  // not on a block boundary
  CHECK_FALSE(p.received(Block{a.piece, 0, 1000}));     // wrong length
  CHECK_FALSE(p.received(Block{1 - a.piece, 0, 16384}));  // a piece not started
  CHECK_FALSE(p.received(a));
  CHECK_FALSE(p.received(a));  // a duplicate is not wanted
  CHECK(p.received(b));        // the piece is whole
  p.piece_failed(a.piece);     // ... and did not hash
  auto again = p.pick(all(2), 2);
  REQUIRE(again);
  CHECK(again->piece == a.piece);
  CHECK(again->begin == 0);
  CHECK(p.received(*again) == false);
  CHECK(p.received(*p.pick(all(2), 2)));
  p.piece_passed(a.piece);
  CHECK(p.have(a.piece));
  CHECK(p.have_count() == 1);
  CHECK_FALSE(p.wanted(Block{a.piece, 0, 16384}));
}

TEST_CASE("picker_aborted_requests_go_to_another_peer_and_endgame_duplicates_the_last") {
  PiecePicker p(1, 32768, 32768, 2, 16384, 0);
  p.add_peer_pieces(all(1));
  const auto a = *p.pick(all(1), 1);
  const auto b = *p.pick(all(1), 1);
  CHECK_FALSE(p.in_endgame());
  // Peer 1 chokes us: its blocks are free again.
  p.abort_peer(1);
  const auto c = *p.pick(all(1), 2);
  CHECK(c == a);
  // Every block requested: peer 3 gets a duplicate of one (endgame), never
  // the same block twice itself.
  const auto d = *p.pick(all(1), 2);
  CHECK(d == b);
  auto e = p.pick(all(1), 3);
  REQUIRE(e);
  CHECK(p.in_endgame());
  auto f = p.pick(all(1), 3);
  REQUIRE(f);
  CHECK_FALSE(*f == *e);
  CHECK_FALSE(p.pick(all(1), 3));
  // When one copy arrives, the other requester is named (to cancel).
  CHECK(p.other_requesters(*e, 3) == std::vector<std::uint64_t>{2});
  CHECK_FALSE(p.received(*e));
  CHECK(p.received(*f));
  // A peer with nothing we need gets nothing.
  PiecePicker q(2, 16384, 32768, 1);
  CHECK_FALSE(q.pick({false, false}, 1));
}

TEST_CASE("choker_unchokes_the_best_four_by_rate_and_one_optimistic") {
  Rng rng(1);
  std::vector<ChokePeer> peers;
  for (std::uint64_t i = 1; i <= 8; ++i) peers.push_back({i, true, i * 1000, (9 - i) * 1000, false, false});
  peers[7].snubbed = true;  // peer 8, the fastest, sent nothing lately
  auto r = choke(peers, false, 4, std::nullopt, true, rng);
  CHECK(r.unchoked == std::vector<std::uint64_t>{7, 6, 5, 4});  // leeching: by download rate, snubbed out
  REQUIRE(r.optimistic);
  CHECK(std::find(r.unchoked.begin(), r.unchoked.end(), *r.optimistic) == r.unchoked.end());
  // Seeding: by upload rate, snubbing does not matter.
  auto s = choke(peers, true, 4, std::nullopt, true, rng);
  CHECK(s.unchoked == std::vector<std::uint64_t>{1, 2, 3, 4});
  // Between rotations the optimistic peer stays.
  auto kept = choke(peers, false, 4, r.optimistic, false, rng);
  CHECK(kept.optimistic == r.optimistic);
  // Not interested peers get nothing; with no one left, no optimistic.
  for (auto& p : peers) p.interested = false;
  auto none = choke(peers, false, 4, r.optimistic, false, rng);
  CHECK(none.unchoked.empty());
  CHECK_FALSE(none.optimistic);
}

TEST_CASE("choker_optimistic_unchoke_favours_new_peers_three_to_one") {
  Rng rng(7);
  std::vector<ChokePeer> peers{{1, true, 0, 0, false, true}, {2, true, 0, 0, false, false}};
  std::map<std::uint64_t, int> count;
  for (int i = 0; i < 4000; ++i) ++count[*choke(peers, false, 0, std::nullopt, true, rng).optimistic];
  CHECK(count[1] > 2700);
  CHECK(count[1] < 3300);
}
