// Dynamic querying (LimeWire's "Dynamic Querying" proposal, as gtk-gnutella's
// dq.c does it): an ultrapeer sends a leaf's query (or its own) to its
// ultrapeer neighbours one at a time instead of flooding all of them, and
// stops as soon as enough results came back.
//
//  1. probe: TTL 1 on up to `probe_links` links (their leaves answer by QRP),
//     keeping at least one link for step 2;
//  2. then one link per step: from the results per host reached so far, the
//     results still wanted and the links left, the TTL whose horizon should
//     bring this link's share (a link of degree d reaches 1 + (d-1) + ... +
//     (d-1)^(ttl-1) ultrapeers); no results yet: as if one had come (the
//     rate is at most that), so each unanswered step reaches further, up
//     to `max_ttl`;
//  3. each step waits `hop_wait` per TTL for the hits to come back;
//  4. done at `wanted` results, when every link has carried the query, after
//     `max_time`, or when the leaf says stop (Query-Status-Response 0xFFFF).
//
// Sans-I/O: the core asks for the next step with the results so far and
// sends the query where it is told.
#pragma once

#include <optional>
#include <vector>

#include "servent/core/types.hpp"

namespace sv {

struct DqConfig {
  std::size_t wanted = 150;      // results for our own query
  // For a leaf's query, at each of the (about 3) ultrapeers it asks: a
  // third each (gtk-gnutella's DQ_LEAF_RESULTS); the leaf's own count of
  // what it kept (Query-Status) is shared out the same way.
  std::size_t leaf_wanted = 50;
  std::size_t leaf_ultrapeers = 3;
  std::size_t probe_links = 3;
  // The largest TTL a step uses (never more than the query itself had
  // left): five, as gtk-gnutella's dq.c (DQ_MAX_TTL). A mesh of ultrapeers
  // that joined over time is not a random graph (at 10,000 nodes, 937
  // ultrapeers of degree 24 lie up to 6 hops apart, most 3 or 4, where a
  // random graph would put nearly all within 3), and the core an early
  // leaf's ultrapeers sit in has had the query from the first steps: a step
  // through a link that had it goes no further (a duplicate is dropped), so
  // only the steps through fresh links carry it out, and they must reach
  // across. The last hop costs little: an ultrapeer sends a TTL-1 query only
  // to the neighbours whose QRP table matches.
  std::uint8_t max_ttl = 5;
  Duration hop_wait = 2400ms;
  Duration max_time = 300s;
};

class DynamicQuery {
 public:
  struct Link {
    ConnId conn;
    std::size_t degree;  // its X-Degree (ultrapeer links it keeps)
  };
  struct Send {
    ConnId conn;
    std::uint8_t ttl;
  };
  enum class End : std::uint8_t { Running, Satisfied, Exhausted, TimedOut, Stopped };

  DynamicQuery(std::vector<Link> links, const DqConfig& config, Instant now);

  // The sends due now (empty when it is not time yet or it has ended);
  // `results` is how many results came back so far.
  std::vector<Send> step(std::size_t results, Instant now);
  void stop() { end_ = End::Stopped; }
  // A link went away before it was used.
  void drop_link(ConnId c);
  End end() const { return end_; }
  Instant next_step() const { return next_; }
  std::size_t hosts_reached() const { return hosts_; }
  std::size_t links_left() const { return links_.size(); }

  // Ultrapeers a link of `degree` reaches with `ttl`.
  static std::size_t horizon(std::size_t degree, std::uint8_t ttl);

 private:
  DqConfig config_;
  std::vector<Link> links_;  // not used yet, best first
  Instant started_, next_;
  std::size_t hosts_ = 0;
  bool probed_ = false;
  End end_ = End::Running;
};

}  // namespace sv
