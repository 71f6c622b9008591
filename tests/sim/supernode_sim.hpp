// The supernode experiment on the simulator (tests/sim and bench/sim run
// it): the same nodes, files and queries as
//  - a flat network: every node an ultrapeer-to-ultrapeer relay on a random
//    graph (each dials 3 others), queries flooded with TTL 7; or
//  - an ultrapeer network: every node in auto mode, joining over time from a
//    few random addresses it was given (as from a host cache), ultrapeers
//    elected by the nodes themselves, QRP, dynamic querying;
// with files placed by a Zipf law (a file of popularity rank r is shared by
// a number of nodes proportional to 1/r^s) and queries for files drawn by the
// same law (and some for files nobody has).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "servent/core/types.hpp"

namespace sv::sim {

struct SupernodeSimConfig {
  std::size_t nodes = 10000;
  bool flat = false;
  std::size_t queries = 200;
  std::size_t catalogue = 5000;       // distinct files
  std::size_t files_per_node = 4;
  double zipf_s = 1.0;
  Duration join_over = 10min;         // nodes arrive evenly over this
  Duration settle = 20min;            // then the network settles
  double churn_per_minute = 0;        // share of nodes replaced each simulated minute, after settling
  Duration churn_for = 30min;
  int qrp_bits = 13;                  // small tables keep 10,000 nodes in memory
  std::uint64_t seed = 1;
  std::optional<Duration> promote_uptime;  // unset: the auto mode's own (experiments change it)
  bool trace = false;                      // the network's shape on stderr: 10 times while joining, each minute settling, every 20 s of churn
};

struct SupernodeSimResult {
  bool flat = false;
  std::size_t nodes = 0;
  std::size_t ultrapeers = 0;          // at the end
  std::size_t queries = 0;
  std::size_t answered = 0;            // queries with at least one result
  std::size_t answerable = 0;          // queries for a file some live node shares
  std::size_t orphan_askers = 0;       // queries asked by a leaf that had no ultrapeer then
  double results_per_query = 0;
  double query_messages_per_query = 0; // Query descriptors sent, all nodes, per query
  double query_messages_per_node = 0;  // the same per node
  // Of those, per query: sent by a leaf (to its ultrapeers), by an
  // ultrapeer to a leaf (QRP let it through), between ultrapeers.
  double from_leaves_per_query = 0, to_leaves_per_query = 0, between_ultrapeers_per_query = 0;
  std::vector<std::size_t> settle_samples;  // ultrapeers each minute of the settle phase
  // Ultrapeers counted each simulated minute of the churn phase (or once).
  std::vector<std::size_t> ultrapeer_samples;
  Duration shortest_role_gap{Duration::max()};  // between two role changes of one node
  std::size_t role_changes = 0;
  std::size_t bootstrap_promotions = 0;         // by the "no ultrapeer anywhere" rule
  std::size_t leaves_without_ultrapeer = 0;     // at the end, among live leaves
  double wall_seconds = 0;
  std::uint64_t events = 0;
  // Every core counter summed over every node that ever ran (name, total).
  std::vector<std::pair<std::string, std::uint64_t>> counters;
};

SupernodeSimResult run_supernode_sim(const SupernodeSimConfig& cfg);

}  // namespace sv::sim
