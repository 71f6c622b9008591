// bench/sim: a simulated Gnutella network of N real GnutellaCores (default
// 10,000) on a random graph (each node dials 3 others, 10 ms links), joined
// by 0.6 handshakes; then query floods (TTL 7) from random nodes. Prints the
// wall time per flood, descriptors delivered per flood, how many nodes
// answered, the simulator's speed against real time (the ratio), and peak memory.
// Usage: sim [NODES] [FLOODS]
//        sim supernode [NODES] [QUERIES] [CHURN_MINUTES] [both|flooding|ultrapeer]
//   the supernode experiment (tests/sim/supernode_sim.hpp): the same nodes,
//   Zipf-placed files and queries as a flat TTL-7 flooding network and as an
//   ultrapeer network the nodes elect themselves (auto mode), then 10 % of
//   the nodes replaced per simulated minute; prints messages per node per
//   query, answered share, results per query, the ultrapeer count (and its
//   range under churn), role flapping, and the ratio flooding/ultrapeers.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "sim/simnet.hpp"
#include "sim/supernode_sim.hpp"
#include "wire/gnutella/descriptors.hpp"

using namespace sv;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int supernode(int argc, char** argv) {
  sim::SupernodeSimConfig cfg;
  cfg.nodes = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10000;
  cfg.queries = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 200;
  cfg.churn_for = std::chrono::minutes(argc > 4 ? std::atoi(argv[4]) : 30);
  // SIM_SEED: another network and query draw; SIM_PROMOTE_UPTIME (seconds):
  // the auto mode's uptime before a leaf may become an ultrapeer; SIM_TRACE:
  // leaves by ultrapeers held, ultrapeers by leaves held, as it goes.
  if (const char* s = std::getenv("SIM_SEED")) cfg.seed = std::strtoull(s, nullptr, 10);
  if (const char* s = std::getenv("SIM_PROMOTE_UPTIME")) cfg.promote_uptime = std::chrono::seconds(std::atoi(s));
  cfg.trace = std::getenv("SIM_TRACE") != nullptr;  // the network's shape on stderr as it goes
  auto print = [&](const char* what, const sim::SupernodeSimResult& r) {
    std::printf("supernode %-10s %6zu nodes, %5zu ultrapeers: %.1f query messages per query = %.4f per node; "
                "answered %zu/%zu (%zu answerable), %.1f results per query; %.0f s wall, %llu events\n",
                what, r.nodes, r.ultrapeers, r.query_messages_per_query, r.query_messages_per_node, r.answered,
                r.queries, r.answerable, r.results_per_query, r.wall_seconds, static_cast<unsigned long long>(r.events));
    if (!r.flat) {
      std::printf("supernode %-10s   per query: %.1f leaf->ultrapeer, %.1f ultrapeer->ultrapeer, %.1f ultrapeer->leaf (QRP)\n",
                  what, r.from_leaves_per_query, r.between_ultrapeers_per_query, r.to_leaves_per_query);
    }
    if (std::getenv("SIM_COUNTERS")) {  // every core counter, summed over the nodes
      for (const auto& [name, value] : r.counters) {
        if (value) std::printf("supernode %-10s   %s %llu\n", what, name.c_str(), static_cast<unsigned long long>(value));
      }
    }
    std::fflush(stdout);  // each line as soon as it is known (runs are long)
  };
  // An optional fifth argument runs one network only (profiling).
  const std::string only = argc > 5 ? argv[5] : "both";
  sim::SupernodeSimResult flat, up;
  if (only != "ultrapeer") {
    cfg.flat = true;
    flat = sim::run_supernode_sim(cfg);
    print("flooding", flat);
  }
  if (only == "flooding") return 0;
  cfg.flat = false;
  cfg.churn_per_minute = 0.10;
  up = sim::run_supernode_sim(cfg);
  print("ultrapeer", up);
  std::size_t lo = SIZE_MAX, hi = 0;
  for (std::size_t i = 1; i < up.ultrapeer_samples.size(); ++i) {
    lo = std::min(lo, up.ultrapeer_samples[i]);
    hi = std::max(hi, up.ultrapeer_samples[i]);
  }
  if (hi == 0) lo = 0;  // no churn phase
  if (std::getenv("SIM_COUNTERS")) {
    std::printf("supernode ultrapeers each minute: settling");
    for (std::size_t n : up.settle_samples) std::printf(" %zu", n);
    std::printf("; churn");
    for (std::size_t n : up.ultrapeer_samples) std::printf(" %zu", n);
    std::printf("\n");
  }
  const double before = up.ultrapeer_samples.empty() ? 0 : static_cast<double>(up.ultrapeer_samples.front());
  std::printf("supernode churn: 10%% of nodes replaced per minute for %lld min: ultrapeers %.0f before, %zu..%zu during "
              "(%+.0f%%..%+.0f%%); %zu role changes, shortest gap between two changes of one node %.0f s (hold 600 s); "
              "%zu leaves without an ultrapeer at the end\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::minutes>(cfg.churn_for).count()), before, lo,
              hi, before > 0 ? 100.0 * (static_cast<double>(lo) - before) / before : 0.0,
              before > 0 ? 100.0 * (static_cast<double>(hi) - before) / before : 0.0, up.role_changes,
              up.shortest_role_gap == Duration::max() ? -1.0 : std::chrono::duration<double>(up.shortest_role_gap).count(),
              up.leaves_without_ultrapeer);
  if (only == "ultrapeer") return 0;
  const double share_flat = flat.queries ? static_cast<double>(flat.answered) / static_cast<double>(flat.queries) : 0;
  const double share_up = up.queries ? static_cast<double>(up.answered) / static_cast<double>(up.queries) : 0;
  std::printf("supernode ratio: flooding sends %.1fx the query messages of the ultrapeer network (goal >= 10x); "
              "answered %.1f%% vs %.1f%% (goal: at least the same)\n",
              up.query_messages_per_query > 0 ? flat.query_messages_per_query / up.query_messages_per_query : 0.0,
              100 * share_up, 100 * share_flat);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "supernode") return supernode(argc, argv);
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000;
  const int floods = argc > 2 ? std::atoi(argv[2]) : 10;
  std::vector<share::Library> libs(n);
  sim::SimNet net(1);
  Rng rng(2);
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    libs[i].add_virtual("node" + std::to_string(i) + (i % 50 == 0 ? " rare bench file.txt" : " common file.txt"), 1000 + i);
    GnutellaConfig cfg;
    cfg.max_connections = 64;
    cfg.mode = NodeMode::Ultrapeer;  // flat flooding: every link ultrapeer to ultrapeer,
    cfg.dynamic_querying = false;    // every query flooded with its TTL
    cfg.compress = false;
    cfg.requery_threshold = 0s;  // an asker drawn twice floods again: every flood is measured whole
    net.add_node(libs[i], cfg);
  }
  std::set<std::pair<std::size_t, std::size_t>> edges;
  for (std::size_t i = 0; i < n; ++i) {
    for (int k = 0; k < 3; ++k) {
      const std::size_t j = rng.below(n);
      if (j == i || !edges.insert({std::min(i, j), std::max(i, j)}).second) continue;
      net.connect(i, j);
    }
  }
  if (!net.run_for(5s, 500'000'000)) {
    std::printf("sim: the network did not settle\n");
    return 1;
  }
  const double build = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("sim: %zu nodes, %zu links established, built and joined in %.2f s\n", n, net.established_links().size(), build);
  double total_wall = 0, total_sim = 0;
  std::uint64_t total_sends = 0, total_answers = 0;
  for (int f = 0; f < floods; ++f) {
    const std::size_t asker = rng.below(n);
    std::uint64_t sends = 0;
    std::optional<wire::gnutella::Guid> id;
    std::set<std::size_t> answered;
    net.on_send = [&](std::size_t from, std::size_t, wire::ByteView bytes, Instant) {
      auto h = wire::gnutella::decode_header(bytes);
      if (!h || !id || h->id != *id) return;
      ++sends;
      if (h->type == 0x81) answered.insert(from);
    };
    const auto w0 = Clock::now();
    net.with_core(asker, [&](GnutellaCore& c) { id = c.search(Search{"rare bench", 7, {}}, net.now()).guid; });
    net.run_for(2s, 500'000'000);
    const double wall = std::chrono::duration<double>(Clock::now() - w0).count();
    net.on_send = nullptr;
    std::size_t hits = 0;
    for (const auto& e : net.events(asker)) hits += std::holds_alternative<event::Hit>(e);
    net.events(asker).clear();
    total_wall += wall;
    total_sim += 2.0;
    total_sends += sends;
    total_answers += hits;
  }
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  std::printf("sim: %d floods, TTL 7: %.3f s wall per flood (2 s simulated each), %.0f descriptors sent per flood, %.0f hits back per flood (%zu nodes share the file)\n",
              floods, total_wall / floods, static_cast<double>(total_sends) / floods,
              static_cast<double>(total_answers) / floods, (n + 49) / 50);
  std::printf("sim: simulated/wall time ratio %.1fx; peak RSS %.0f MB (%.1f KB per node)\n", total_sim / total_wall,
              static_cast<double>(ru.ru_maxrss) / 1024, static_cast<double>(ru.ru_maxrss) / static_cast<double>(n));
  return 0;
}
