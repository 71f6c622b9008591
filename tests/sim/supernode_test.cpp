// The supernode experiment at test size (bench/sim supernode runs it at
// larger sizes and prints the ratios): ultrapeers elected by the nodes
// themselves carry the same queries with fewer messages than TTL-7 flooding
// and answer at least as many; under churn as many ultrapeers remain (within
// 20 %) and no node changes role faster than the hysteresis allows.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "servent/gnutella/gnutella_core.hpp"
#include "sim/supernode_sim.hpp"

using namespace sv;
using namespace sv::sim;

TEST_CASE("elected_ultrapeers_answer_as_many_queries_as_flooding_with_fewer_messages_and_never_flap_under_churn") {
  SupernodeSimConfig cfg;
  // 600 nodes: at 300 the network had 28 ultrapeers, one promotion was
  // 3.6 % of them, and the count drifted by 18-25 % under churn on one seed
  // or another whatever the code (six seeds, two versions); at 600 four
  // seeds stayed within -14 %..+7 %.
  cfg.nodes = 600;
  cfg.queries = 40;
  cfg.catalogue = 1200;
  cfg.join_over = 5min;
  cfg.settle = 15min;
  cfg.churn_for = 11min;
  cfg.flat = true;
  const auto flat = run_supernode_sim(cfg);
  cfg.flat = false;
  cfg.churn_per_minute = 0.10;
  const auto up = run_supernode_sim(cfg);
  MESSAGE("flooding: " << flat.query_messages_per_query << " messages/query, answered " << flat.answered << "/"
                       << flat.queries << "; ultrapeers (" << up.ultrapeer_samples.front() << " of " << cfg.nodes
                       << "): " << up.query_messages_per_query << " messages/query, answered " << up.answered
                       << " (" << up.orphan_askers << " asked by a leaf without an ultrapeer)");
  std::string samples;
  for (std::size_t n : up.ultrapeer_samples) samples += std::to_string(n) + " ";
  MESSAGE("ultrapeers each minute of churn: " << samples << "; role changes " << up.role_changes);
  CHECK(flat.answerable == up.answerable);  // the same queries over the same files
  CHECK(flat.answered > 0);
  CHECK(up.answered >= flat.answered);
  // Far fewer query messages than flooding (10x here lately; the goal, 10x
  // at 10,000 nodes, is measured by bench/sim supernode; at 600 nodes
  // flooding is cheap and one query more or less moves the ratio).
  CHECK(up.query_messages_per_query * 4 < flat.query_messages_per_query);
  MESSAGE("per query: " << up.from_leaves_per_query << " leaf->ultrapeer, " << up.between_ultrapeers_per_query
                        << " ultrapeer->ultrapeer, " << up.to_leaves_per_query << " ultrapeer->leaf");
  CHECK(up.between_ultrapeers_per_query > 0);
  CHECK(up.to_leaves_per_query > 0);
  // Elected, not assigned: some nodes, not all.
  const std::size_t before = up.ultrapeer_samples.front();
  CHECK(before >= cfg.nodes / 30);
  CHECK(before < cfg.nodes / 2);
  // Churn (10 % of the nodes replaced per simulated minute): ultrapeers are
  // elected as fast as they go, within 20 % of as many as before each minute
  // (the goal; bench/sim supernode measures it at 10,000 nodes), and no node
  // changes role faster than the hysteresis allows.
  REQUIRE(up.ultrapeer_samples.size() >= 10);
  for (std::size_t i = 1; i < up.ultrapeer_samples.size(); ++i) {
    CAPTURE(i);
    CHECK(up.ultrapeer_samples[i] * 5 >= before * 4);
    CHECK(up.ultrapeer_samples[i] * 5 <= before * 6);
  }
  CHECK(up.role_changes > 0);
  // Leaves find ultrapeers with room (those just replaced may still look).
  MESSAGE("leaves without an ultrapeer at the end: " << up.leaves_without_ultrapeer);
  CHECK(up.leaves_without_ultrapeer <= cfg.nodes / 20);
  CHECK(up.shortest_role_gap >= GnutellaConfig{}.role_hold);
}
