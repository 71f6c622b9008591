// bench/dht: the DHT overlays on the simulated datagram network
// (tests/sim/dgram_net.hpp: the same ChordCore that `servent dht run` runs,
// simulated time, a latency model), printing each measurement next to the
// lecture's claim.
//
//   dht chord [NODES] [LOOKUPS]   (default 4096 and 1000)
//
// Chord: NODES nodes join one after another (every 5 ms) through a random
// earlier node, then the ring settles for 60 s; then
//  - the share of nodes whose successor and predecessor are right;
//  - LOOKUPS lookups for random keys from random nodes: the share reaching
//    the true owner and the mean hops (the nodes asked, then the owner)
//    next to 1/2 log2 N (the ideal measured here: 6.83 at 4,096 nodes and
//    7.86 at 16,384, counting the last hop);
//  - ring upkeep: datagrams per node per second over 10 quiet seconds;
//  - half the nodes fail at once; 60 s later (stabilised), LOOKUPS more:
//    the share reaching the true live owner (goal >= 99.9 % with
//    r = 2 log2 N successors).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "servent/dht/chord_core.hpp"
#include "sim/dgram_net.hpp"

using namespace sv;
using namespace sv::dht;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Result {
  std::size_t ok = 0, asked = 0;
  double hops = 0;
};

int chord(std::size_t n, std::size_t lookups) {
  const auto wall0 = Clock::now();
  sim::DgramNet net(11);
  ChordConfig cfg;
  cfg.successors = static_cast<std::size_t>(2 * std::ceil(std::log2(static_cast<double>(n))));
  if (const char* b = std::getenv("DHT_BITS")) cfg.bits = std::atoi(b);
  std::vector<ChordCore*> nodes;
  Rng rng(5);
  for (std::size_t i = 0; i < n; ++i) {
    const Endpoint at{0x0a000000u + static_cast<std::uint32_t>(i + 1), 4000};
    auto core = std::make_unique<ChordCore>(at, SocketId{1}, cfg, 1000 + i);
    nodes.push_back(core.get());
    const std::size_t idx = net.add(std::move(core), at);
    std::optional<Endpoint> via;
    if (i > 0) via = net.address(std::getenv("DHT_RANDOM_JOIN") ? rng.below(i) : 0);
    net.with(idx, [&](Core&) { nodes[idx]->join(via, net.now()); });
    net.run_for(5ms);
  }
  net.run_for(60s);
  const double built = std::chrono::duration<double>(Clock::now() - wall0).count();

  // The true ring, by id.
  auto owner_of = [&](const NodeId& key) {
    std::size_t best = SIZE_MAX, first = SIZE_MAX;
    for (std::size_t i = 0; i < n; ++i) {
      if (!net.alive(i)) continue;
      const NodeId& id = nodes[i]->self().id;
      if (first == SIZE_MAX || id < nodes[first]->self().id) first = i;
      if (id >= key && (best == SIZE_MAX || id < nodes[best]->self().id)) best = i;
    }
    return best == SIZE_MAX ? first : best;
  };
  auto ring_right = [&] {
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < n; ++i) {
      if (net.alive(i)) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return nodes[a]->self().id < nodes[b]->self().id; });
    std::size_t right = 0;
    for (std::size_t k = 0; k < order.size(); ++k) {
      const auto& me = *nodes[order[k]];
      const auto& next = *nodes[order[(k + 1) % order.size()]];
      const auto& prev = *nodes[order[(k + order.size() - 1) % order.size()]];
      const bool s_ok = !me.successors().empty() && me.successors().front() == next.self();
      const bool p_ok = me.predecessor() && *me.predecessor() == prev.self();
      right += s_ok && p_ok;
      if (std::getenv("DHT_COUNTERS") && !(s_ok && p_ok)) {
        auto pos = [&](const NodeRef& r) {
          for (std::size_t j = 0; j < order.size(); ++j) {
            if (nodes[order[j]]->self() == r) return static_cast<long>(j);
          }
          return -1L;
        };
        std::printf("  [%s] node at %zu (%s): successor at %ld, predecessor at %ld; list", short_id(me.self().id).c_str(), k, me.joined() ? "joined" : "NOT joined",
                    me.successors().empty() ? -2L : pos(me.successors().front()), me.predecessor() ? pos(*me.predecessor()) : -2L);
        for (const auto& x : me.successors()) std::printf(" %ld", pos(x));
        if (!me.successors().empty()) {
          for (std::size_t j = 0; j < order.size(); ++j) {
            if (nodes[order[j]]->self() == me.successors().front() && nodes[order[j]]->predecessor()) {
              std::printf("; its successor's predecessor at %ld", pos(*nodes[order[j]]->predecessor()));
            }
          }
        }
        std::printf("\n");
      }
    }
    return std::pair{right, order.size()};
  };
  // LOOKUPS lookups started together from random live nodes (one per
  // millisecond), then up to 30 simulated seconds for their answers.
  auto measure = [&](std::uint64_t seed) {
    Result r;
    Rng q(seed);
    struct Asked {
      std::size_t from;
      std::uint64_t op;
      NodeId key;
    };
    std::vector<Asked> asked;
    for (std::size_t k = 0; k < lookups; ++k) {
      std::size_t from = q.below(n);
      while (!net.alive(from)) from = q.below(n);
      NodeId key;
      q.fill(key.data(), key.size());
      key = nodes.front()->ring().reduce(key);
      std::uint64_t op = 0;
      net.with(from, [&](Core&) { op = nodes[from]->lookup(key, net.now()); });
      asked.push_back({from, op, key});
      net.run_for(1ms);
    }
    std::vector<std::optional<ChordCore::OpResult>> got(asked.size());
    std::size_t have = 0;
    for (int step = 0; step < 300 && have < asked.size(); ++step) {
      net.run_for(100ms);
      for (std::size_t k = 0; k < asked.size(); ++k) {
        if (got[k]) continue;
        // (results of other lookups from the same node stay queued)
        std::vector<ChordCore::OpResult> other;
        while (auto x = nodes[asked[k].from]->poll_result()) {
          if (x->op == asked[k].op) {
            got[k] = std::move(x);
            ++have;
          } else {
            other.push_back(std::move(*x));
          }
        }
        for (auto& o : other) {
          for (std::size_t j = 0; j < asked.size(); ++j) {
            if (!got[j] && asked[j].from == asked[k].from && asked[j].op == o.op) {
              got[j] = std::move(o);
              ++have;
              break;
            }
          }
        }
      }
    }
    for (std::size_t k = 0; k < asked.size(); ++k) {
      ++r.asked;
      const auto& res = got[k];
      if (res && res->ok && res->owner == nodes[owner_of(asked[k].key)]->self()) {
        ++r.ok;
        r.hops += static_cast<double>(res->route.size());
      }
    }
    return r;
  };

  if (std::getenv("DHT_COUNTERS")) {
    std::vector<std::uint64_t> sum(ChordCore::kStatCount);
    for (auto* c : nodes) {
      for (std::size_t k = 0; k < ChordCore::kStatCount; ++k) sum[k] += c->stat(static_cast<ChordCore::Stat>(k));
    }
    const auto names = nodes.front()->counters();
    for (std::size_t k = 0; k < sum.size(); ++k) std::printf("  %s %llu\n", std::string(names[k].name).c_str(), static_cast<unsigned long long>(sum[k]));
  }
  if (std::getenv("DHT_COUNTERS")) {
    double f = 0;
    for (auto* c : nodes) f += static_cast<double>(c->fingers_set());
    std::printf("  fingers set per node %.1f\n", f / static_cast<double>(n));
  }
  const auto [right, alive] = ring_right();
  std::printf("chord %zu nodes (r = %zu successors): built and settled in %.0f s wall (%.0f s simulated); "
              "ring right at %zu of %zu nodes\n",
              n, cfg.successors, built, std::chrono::duration<double>(net.now().since_epoch).count(), right, alive);
  std::fflush(stdout);
  const Result before = measure(21);
  const double ideal = 0.5 * std::log2(static_cast<double>(n));
  std::printf("chord lookups: %zu/%zu reach the owner; mean hops %.2f (1/2 log2 N = %.2f; with the last hop "
              "about %.2f)\n",
              before.ok, before.asked, before.ok ? before.hops / static_cast<double>(before.ok) : 0.0, ideal,
              ideal + 0.83);
  std::fflush(stdout);
  const auto sent0 = net.sent();
  net.run_for(10s);
  std::printf("chord upkeep: %.2f datagrams per node per second (stabilize 1/s, check_predecessor 1/2 s, "
              "one finger per 250 ms, each with its answer)\n",
              static_cast<double>(net.sent() - sent0) / static_cast<double>(n) / 10.0);
  std::fflush(stdout);
  // Half fail at once.
  Rng kill(9);
  std::size_t killed = 0;
  while (killed < n / 2) {
    const std::size_t i = kill.below(n);
    if (!net.alive(i)) continue;
    net.kill(i);
    ++killed;
  }
  net.run_for(60s);
  const auto [right2, alive2] = ring_right();
  const Result after = measure(33);
  std::printf("chord after %zu of %zu nodes failed at once, 60 s later: ring right at %zu of %zu; lookups %zu/%zu "
              "= %.2f%% reach the live owner (goal >= 99.9%%); mean hops %.2f\n",
              killed, n, right2, alive2, after.ok, after.asked,
              100.0 * static_cast<double>(after.ok) / static_cast<double>(std::max<std::size_t>(after.asked, 1)),
              after.ok ? after.hops / static_cast<double>(after.ok) : 0.0);
  std::printf("chord total: %.0f s wall, %llu datagrams delivered\n",
              std::chrono::duration<double>(Clock::now() - wall0).count(),
              static_cast<unsigned long long>(net.delivered()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "chord";
  if (what == "chord") {
    const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 4096;
    const std::size_t lookups = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1000;
    return chord(n, lookups);
  }
  std::fprintf(stderr, "usage: dht chord [NODES] [LOOKUPS]   (kelips and pastry are not there yet)\n");
  return 2;
}
