// bench/dht: the DHT overlays on the simulated datagram network
// (tests/sim/dgram_net.hpp: the same ChordCore that `servent dht run` runs,
// simulated time, a latency model), printing each measurement next to the
// lecture's claim.
//
//   dht chord [NODES] [LOOKUPS]           (default 4096 and 1000)
//   dht kelips [NODES] [FILES] [LOOKUPS]  (default 10000, 10000 and 1000)
//   dht pastry [NODES] [LOOKUPS]          (default 10000 and 1000)
//
// Up to 20,000 nodes the overlays form through their joins (below); past
// that (or with DHT_SETUP=stabilised) each node starts from the state a
// finished join leaves, taken from the true overlay (Chord: predecessor,
// successors, fingers; Kelips: its whole group, 2 contacts a group;
// Pastry: leaf set, table slots offered 8 nodes of their prefix with round
// trips, 16 neighbours), and the protocol runs from there: 100,000 joins
// one at a time would take most of the run. DHT_SETUP=join forces joins.
//
// Chord: NODES nodes join one after another (every 5 ms) through a random
// earlier node, then the ring settles for 60 s; then
//  - the share of nodes whose successor and predecessor are right;
//  - LOOKUPS lookups for random keys from random nodes: the share reaching
//    the true owner and the mean hops (the nodes asked, then the owner)
//    next to 1/2 log2 N (the ideal measured here: 6.83 at 4,096 nodes and
//    7.86 at 16,384, counting the last hop);
//  - ring upkeep: datagrams per node per second over 10 quiet seconds;
//  - churn (DHT_CHURN seconds, default 60): 0.2 % of the nodes replaced a
//    second; the upkeep under it and lookups right after;
//  - half the nodes fail at once; 60 s later (stabilised), LOOKUPS more:
//    the share reaching the true live owner (goal >= 99.9 % with
//    r = 2 log2 N successors).
//
// Kelips: k = round(sqrt(NODES)) affinity groups; each node starts with what
// a join through a random member gives it (8 members of its group, c = 2
// contacts in each other group) and gossips for 60 s; FILES values are put
// from random nodes; the tuples spread by gossip until the nodes know 99 %
// of their group's keys (at least 30 s, at most 300 s; the time printed); then
//  - the view each node has of its group (members known / group size) and
//    its contacts;
//  - LOOKUPS lookups of put keys from random nodes: the share answered by a
//    home that has the key and the share in one hop (goal: 1 hop for
//    >= 99 % without churn);
//  - memory per node: view, contacts and tuples of the simulated nodes,
//    then one node fed the state of a node of 100,000 nodes sharing
//    10,000,000 files (every member of its group, 2 contacts in each of the
//    316 groups, 31,645 tuples by Gossip datagrams) and its heap measured
//    by the allocator, next to the lecture's 1.93 MB (alone:
//    `dht kelips-memory [NODES] [FILES]`);
//  - upkeep: datagrams per node per second over 10 quiet seconds;
//  - half the nodes fail at once; 60 s later, lookups of keys that kept a
//    live home.
//
// Pastry: NODES nodes join one after another (every 5 ms) through a random
// earlier node, 30 s pass; then the share of right leaf sets, LOOKUPS
// lookups for random keys (the share reaching the numerically closest node,
// mean hops next to log16 N and its ceiling), the route stretch (the
// latency of the route taken over the latency straight to the owner), the
// upkeep, and lookups after half the nodes fail. The whole run is made
// twice, with proximity-aware tables and without, and the stretch gained
// is printed.
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>

#include "servent/dht/chord_core.hpp"
#include "servent/dht/kelips_core.hpp"
#include "servent/dht/pastry_core.hpp"
#include "sim/dgram_net.hpp"

using namespace sv;
using namespace sv::dht;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// This process's resident memory, MB (the simulator's whole footprint).
double rss_mb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "VmRSS: %lf kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb / 1024;
}

// Churn: every second for `seconds`, `per_second` random live nodes fail
// and as many new ones join, `add(via)` making one that joins through the
// live node `via`. Returns the datagrams per live node per second.
template <class Add>
double churn(sim::DgramNet& net, Rng& rng, std::size_t per_second, int seconds, Add add) {
  auto random_live = [&] {
    std::size_t i = rng.below(net.size());
    while (!net.alive(i)) i = rng.below(net.size());
    return i;
  };
  const auto sent0 = net.sent();
  std::size_t live_sum = 0;
  for (int sec = 0; sec < seconds; ++sec) {
    for (std::size_t k = 0; k < per_second; ++k) {
      net.kill(random_live());
      add(net.address(random_live()));
    }
    net.run_for(1s);
    for (std::size_t i = 0; i < net.size(); ++i) live_sum += net.alive(i);
  }
  return static_cast<double>(net.sent() - sent0) / static_cast<double>(std::max<std::size_t>(1, live_sum));
}

// How a large overlay is set up: DHT_SETUP=join (every node joins through
// the protocol, one every 5 ms: the default up to 20,000 nodes) or
// stabilised (each node takes the state a completed join leaves, from the
// true overlay, and the protocol runs from there: the default above, where
// 100,000 joins one by one would take most of the run).
bool setup_stabilised(std::size_t n) {
  if (const char* s = std::getenv("DHT_SETUP")) return std::string(s) == "stabilised";
  return n > 20'000;
}

// Makes node i (at 10.0.0.(i + 1):4000, seeded by i) of kind C, adds it
// to the network and to `nodes`; returns its index in the network.
template <class C, class Config>
std::size_t add_node(sim::DgramNet& net, std::vector<C*>& nodes, const Config& cfg, std::size_t i) {
  const Endpoint at{0x0a000000u + static_cast<std::uint32_t>(i + 1), 4000};
  auto core = std::make_unique<C>(at, SocketId{1}, cfg, 1000 + i);
  nodes.push_back(core.get());
  return net.add(std::move(core), at);
}

// The nodes' places in `nodes` sorted by id (the true ring), and their ids
// in that order (for the stabilised setups).
template <class C>
std::pair<std::vector<std::size_t>, std::vector<NodeId>> ring_order(const std::vector<C*>& nodes) {
  std::vector<std::size_t> order(nodes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return nodes[a]->self().id < nodes[b]->self().id; });
  std::vector<NodeId> ids(order.size());
  for (std::size_t k = 0; k < order.size(); ++k) ids[k] = nodes[order[k]]->self().id;
  return {std::move(order), std::move(ids)};
}

// Upkeep: datagrams per live node per second over `seconds` quiet
// simulated seconds; with DHT_COUNTERS, also by message type (requests and
// answers apart), so it is seen what keeps the overlay healthy.
double upkeep(sim::DgramNet& net, int seconds) {
  std::size_t live = 0;
  for (std::size_t i = 0; i < net.size(); ++i) live += net.alive(i);
  std::map<std::uint8_t, std::uint64_t> by_type;
  const bool detail = std::getenv("DHT_COUNTERS") != nullptr;
  if (detail) {
    net.on_send = [&](std::size_t, std::size_t, wire::ByteView bytes) {
      if (bytes.size() > 3) ++by_type[bytes[3]];
    };
  }
  const auto sent0 = net.sent();
  net.run_for(std::chrono::seconds(seconds));
  net.on_send = nullptr;
  const double per = static_cast<double>(std::max<std::size_t>(live, 1)) * seconds;
  if (detail) {
    static const std::map<std::uint8_t, const char*> names = {
        {0x01, "Ping"}, {0x02, "FindNode"}, {0x03, "Neighbours"}, {0x04, "Notify"}, {0x05, "Store"},
        {0x06, "Get"},  {0x07, "Gossip"},   {0x08, "Leave"},      {0x7F, "Error"}};
    for (const auto& [t, count] : by_type) {
      const auto it = names.find(t & 0x7F);
      std::printf("  upkeep %s %s: %.2f per node per second\n", it == names.end() ? "?" : it->second,
                  t & 0x80 ? "answer" : "request", static_cast<double>(count) / per);
    }
  }
  return static_cast<double>(net.sent() - sent0) / per;
}

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
  cfg.finger_lookups_only = std::getenv("DHT_FINGER_LOOKUPS") != nullptr;  // (A/B: no FingerCheck)
  std::vector<ChordCore*> nodes;
  Rng rng(5);
  const bool stabilised = setup_stabilised(n);
  if (!stabilised) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t idx = add_node(net, nodes, cfg, i);
      std::optional<Endpoint> via;
      if (i > 0) via = net.address(std::getenv("DHT_RANDOM_JOIN") ? rng.below(i) : 0);
      net.with(idx, [&](Core&) { nodes[idx]->join(via, net.now()); });
      net.run_for(5ms);
    }
    net.run_for(60s);
  } else {
    // Every node takes what a completed join and stabilisation leave: its
    // predecessor, r successors and each finger (the successor of
    // id + 2^i) from the true ring; their timers start over one second.
    for (std::size_t i = 0; i < n; ++i) {
      add_node(net, nodes, cfg, i);
    }
    const auto sorted = ring_order(nodes);  // (not a structured binding: clang 14 cannot capture one)
    const auto& order = sorted.first;
    const auto& ids = sorted.second;
    auto successor_of = [&](const NodeId& id) {  // the first node at or after id, wrapping
      const auto it = std::lower_bound(ids.begin(), ids.end(), id);
      return nodes[order[it == ids.end() ? 0 : static_cast<std::size_t>(it - ids.begin())]]->self();
    };
    const Ring& ring = nodes.front()->ring();
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = order[k];
      std::vector<NodeRef> succ;
      for (std::size_t j = 1; j <= cfg.successors && j < n; ++j) succ.push_back(nodes[order[(k + j) % n]]->self());
      std::vector<std::optional<NodeRef>> fingers(static_cast<std::size_t>(ring.bits()));
      for (int b = 0; b < ring.bits(); ++b) fingers[static_cast<std::size_t>(b)] = successor_of(ring.add_pow2(ids[k], b));
      const NodeRef pred = nodes[order[(k + n - 1) % n]]->self();
      net.with(i, [&](Core&) { nodes[i]->assume(pred, std::move(succ), std::move(fingers), net.now()); });
      if (i % 100 == 99) net.run_for(1ms);
    }
    net.run_for(10s);
  }
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
  std::printf("chord %zu nodes (r = %zu successors, %s): built and settled in %.0f s wall (%.0f s simulated); "
              "ring right at %zu of %zu nodes\n",
              n, cfg.successors,
              stabilised ? "set up stabilised from the true ring, then 10 s of the protocol"
                         : "joined one every 5 ms, then 60 s of the protocol",
              built, std::chrono::duration<double>(net.now().since_epoch).count(), right, alive);
  std::fflush(stdout);
  const Result before = measure(21);
  const double ideal = 0.5 * std::log2(static_cast<double>(n));
  std::printf("chord lookups: %zu/%zu reach the owner; mean hops %.2f (1/2 log2 N = %.2f; with the last hop "
              "about %.2f)\n",
              before.ok, before.asked, before.ok ? before.hops / static_cast<double>(before.ok) : 0.0, ideal,
              ideal + 0.83);
  std::fflush(stdout);
  std::printf("chord upkeep: %.2f datagrams per node per second (stabilize 1/s, check_predecessor 1/2 s, "
              "one finger per 250 ms, down to one per 4 s while passes change nothing, %s; each with its answer)\n",
              upkeep(net, 10),
              cfg.finger_lookups_only ? "each finger looked up" : "each finger checked with its node, looked up when wrong");
  std::fflush(stdout);
  // Churn (DHT_CHURN seconds, default 60): every second 0.2 % of the nodes
  // (12 % a minute) fail and as many new ones join through random live
  // nodes; the upkeep over it, then lookups at once after.
  const int churn_seconds = std::getenv("DHT_CHURN") ? std::atoi(std::getenv("DHT_CHURN")) : 60;
  if (churn_seconds > 0) {
    const std::size_t per_second = std::max<std::size_t>(1, n / 500);
    const double churn_upkeep = churn(net, rng, per_second, churn_seconds, [&](Endpoint intro) {
      const std::size_t i = nodes.size();
      const std::size_t idx = add_node(net, nodes, cfg, i);
      net.with(idx, [&](Core&) { nodes[idx]->join(intro, net.now()); });
    });
    n = nodes.size();  // (lookups and owners over every node made, the dead skipped)
    const Result during = measure(27);
    std::printf("chord under churn (%zu nodes replaced a second, %d s): %.2f datagrams per node per second; "
                "lookups right after: %zu/%zu reach the live owner, mean hops %.2f\n",
                per_second, churn_seconds, churn_upkeep, during.ok, during.asked,
                during.ok ? during.hops / static_cast<double>(during.ok) : 0.0);
    std::fflush(stdout);
  }
  // Half (of the live nodes) fail at once.
  Rng kill(9);
  std::size_t killed = 0, live_now = 0;
  for (std::size_t i = 0; i < n; ++i) live_now += net.alive(i);
  while (killed < live_now / 2) {
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
              killed, live_now, right2, alive2, after.ok, after.asked,
              100.0 * static_cast<double>(after.ok) / static_cast<double>(std::max<std::size_t>(after.asked, 1)),
              after.ok ? after.hops / static_cast<double>(after.ok) : 0.0);
  std::printf("chord total: %.0f s wall, %llu datagrams delivered\n",
              std::chrono::duration<double>(Clock::now() - wall0).count(),
              static_cast<unsigned long long>(net.delivered()));
  return 0;
}

// Kelips memory per node, measured: one node is fed the soft state of a
// node of a network of `nodes` nodes sharing `files` files (k = round(√nodes)
// groups): every member of its group, c = 2 contacts in every other group
// and files / k tuples of one home each, the tuples by Gossip datagrams
// from members as the wire brings them. The bytes are the allocator's
// (mallinfo2: in use in the heap and in mmapped blocks) before and after.
struct KelipsMemory {
  std::size_t groups = 0, members = 0, contacts = 0, tuples = 0;
  double bytes = 0;
  KelipsCore::Footprint parts;
};

KelipsMemory kelips_memory(std::size_t nodes, std::size_t files) {
  auto heap = [] {
    const struct mallinfo2 m = mallinfo2();
    return static_cast<double>(m.uordblks + m.hblkhd);
  };
  KelipsConfig cfg;
  cfg.groups = static_cast<std::uint32_t>(std::max(1.0, std::round(std::sqrt(static_cast<double>(nodes)))));
  Rng rng(41);
  // An id of group g (the group is the id's low 64 bits mod k).
  auto id_in = [&](std::uint32_t g) {
    NodeId id;
    rng.fill(id.data(), id.size());
    std::uint64_t v = 0;
    for (std::size_t i = 12; i < 20; ++i) v = v << 8 | id[i];
    v = v - v % cfg.groups + g;
    if (v % cfg.groups != g) v -= cfg.groups;  // (wrapped past 2^64)
    for (std::size_t i = 19; i >= 12; --i, v >>= 8) id[i] = static_cast<std::uint8_t>(v);
    return id;
  };
  const double before = heap();
  auto core = std::make_unique<KelipsCore>(Endpoint{0x0a000001u, 4000}, SocketId{1}, cfg, 1);
  Instant now{std::chrono::seconds(10)};
  core->join(std::nullopt, now);
  auto drain = [&] {
    while (core->poll_action()) {
    }
  };
  const std::uint32_t mine = core->group();
  std::vector<NodeRef> members;
  std::uint32_t next_ip = 0x0b000000u;
  for (std::size_t i = 0; i + 1 < nodes / cfg.groups; ++i) members.push_back(NodeRef{id_in(mine), next_ip++, 4000});
  for (const auto& m : members) core->learn(m, now);
  for (std::uint32_t g = 0; g < cfg.groups; ++g) {
    if (g == mine) continue;
    for (int c = 0; c < 2; ++c) core->learn(NodeRef{id_in(g), next_ip++, 4000}, now);
  }
  const std::size_t tuples = files / cfg.groups;
  for (std::size_t t = 0; t < tuples;) {
    const NodeRef& from = members[rng.below(members.size())];
    wire::dht::Message m;
    m.type = wire::dht::Type::Gossip;
    m.overlay = wire::dht::Overlay::Kelips;
    m.sender = from;
    m.request = t + 1;
    m.entries = {{from, 1, 0}};
    for (int k = 0; k < 20 && t < tuples; ++k, ++t) m.tuples.push_back({id_in(mine), members[rng.below(members.size())]});
    core->handle_datagram(SocketId{1}, Endpoint{from.ip, from.port}, wire::dht::encode_message(m), now);
    drain();
  }
  KelipsMemory out;
  out.groups = cfg.groups;
  out.members = core->members();
  out.contacts = core->contacts();
  out.tuples = core->tuples();
  out.parts = core->footprint();
  out.bytes = heap() - before;
  return out;
}

// Measures and prints it, next to the lecture's figure.
void print_kelips_memory(std::size_t nodes, std::size_t files) {
  const KelipsMemory m = kelips_memory(nodes, files);
  std::printf("kelips memory per node at %zu nodes and %zu files, measured on one node fed that state (k = %zu; %zu "
              "members, %zu contacts, %zu tuples): %.2f MB in the heap (view %.0f KB, contacts %.0f KB, tuples %.2f MB "
              "at %zu B each); lecture: 1.93 MB at 100,000 and 10,000,000\n",
              nodes, files, m.groups, m.members, m.contacts, m.tuples, m.bytes / 1e6, m.parts.member_bytes / 1e3,
              m.parts.contact_bytes / 1e3, m.parts.tuple_bytes / 1e6, m.parts.per_tuple);
}

int kelips(std::size_t n, std::size_t files, std::size_t lookups) {
  const auto wall0 = Clock::now();
  sim::DgramNet net(13);
  KelipsConfig cfg;
  cfg.groups = static_cast<std::uint32_t>(std::max(1.0, std::round(std::sqrt(static_cast<double>(n)))));
  // (experiments: DHT_GROUPS=k gives groups of a larger network's size at
  // less cost; DHT_GOSSIP_ENTRIES the entries a gossip carries)
  if (const char* g = std::getenv("DHT_GROUPS")) cfg.groups = static_cast<std::uint32_t>(std::max(1, std::atoi(g)));
  if (const char* e = std::getenv("DHT_GOSSIP_ENTRIES")) cfg.gossip_entries = static_cast<std::size_t>(std::max(2, std::atoi(e)));
  // Heartbeats reach every member of a group of G in about log G rounds of
  // rumour; a member is dead after 60 s without news (loose for the
  // largest groups, so that only failures time out).
  cfg.member_timeout = 60s;
  if (const char* t = std::getenv("KELIPS_TIMEOUT")) cfg.member_timeout = std::chrono::seconds(std::atoi(t));
  std::vector<KelipsCore*> nodes;
  std::vector<std::vector<std::size_t>> by_group(cfg.groups);
  for (std::size_t i = 0; i < n; ++i) {
    add_node(net, nodes, cfg, i);
    by_group[nodes.back()->group()].push_back(i);
  }
  // What a join through a random member would give each node (8 members
  // of its group; stabilised: every member, as 60 s of gossip leave it),
  // and 2 contacts in each other group.
  Rng rng(5);
  const bool stabilised = setup_stabilised(n);
  for (std::size_t i = 0; i < n; ++i) {
    net.with(i, [&](Core&) {
      KelipsCore& c = *nodes[i];
      c.join(std::nullopt, net.now());
      const auto& mine = by_group[c.group()];
      if (stabilised) {
        for (std::size_t j : mine) c.learn(nodes[j]->self(), net.now(), true);
      } else {
        for (int k = 0; k < 8 && mine.size() > 1; ++k) c.learn(nodes[mine[rng.below(mine.size())]]->self(), net.now());
      }
      for (std::uint32_t g = 0; g < cfg.groups; ++g) {
        if (g == c.group() || by_group[g].empty()) continue;
        for (int k = 0; k < 2; ++k) c.learn(nodes[by_group[g][rng.below(by_group[g].size())]]->self(), net.now(), stabilised);
      }
    });
    if (stabilised && i % 100 == 99) net.run_for(1ms);
  }
  net.run_for(stabilised ? 10s : 60s);
  std::printf("kelips %zu nodes, k = %u affinity groups (about %zu members each): %s in %.0f s wall "
              "(simulator RSS %.0f MB)\n",
              n, cfg.groups, n / cfg.groups,
              stabilised ? "set up stabilised (full group views), gossiped 10 s" : "set up and gossiped 60 s",
              std::chrono::duration<double>(Clock::now() - wall0).count(), rss_mb());
  std::fflush(stdout);

  // FILES values put from random nodes (one every 0.1 ms), their answers within 30 s.
  auto wait_all = [&](std::vector<std::pair<std::size_t, std::uint64_t>>& asked, Duration limit) {
    std::vector<std::optional<OpResult>> out(asked.size());
    std::unordered_map<std::size_t, std::vector<std::size_t>> of_node;
    for (std::size_t k = 0; k < asked.size(); ++k) of_node[asked[k].first].push_back(k);
    const Instant until = net.now() + limit;
    std::size_t have = 0;
    while (net.now() < until && have < asked.size()) {
      net.run_for(100ms);
      for (auto& [node, ks] : of_node) {
        while (auto x = nodes[node]->poll_result()) {
          for (std::size_t k : ks) {
            if (asked[k].second == x->op && !out[k]) {
              out[k] = std::move(*x);
              ++have;
              break;
            }
          }
        }
      }
    }
    return out;
  };
  std::vector<NodeId> keys;
  {
    std::vector<std::pair<std::size_t, std::uint64_t>> asked;
    for (std::size_t f = 0; f < files; ++f) {
      const std::size_t from = rng.below(n);
      const NodeId key = key_id("file" + std::to_string(f), nodes[from]->ring());
      keys.push_back(key);
      std::uint64_t op = 0;
      net.with(from, [&](Core&) { op = nodes[from]->put(key, wire::Bytes{'v'}, net.now()); });
      asked.emplace_back(from, op);
      if (f % 10 == 9) net.run_for(1ms);
    }
    const auto res = wait_all(asked, 30s);
    std::size_t ok = 0;
    for (const auto& r : res) ok += r && r->ok;
    std::printf("kelips puts: %zu/%zu stored (simulator RSS %.0f MB)\n", ok, files, rss_mb());
  }
  // The tuples spread through each group by gossip: the lookups wait until
  // the nodes know 99 % of their group's keys (the one-hop claim is for a
  // network at rest), checked every 5 s, at least 30 s and at most 300 s.
  {
    std::vector<double> per_group(cfg.groups, 0);
    for (const auto& k : keys) per_group[nodes.front()->group_of(k)] += 1;
    double wanted = 0;
    for (auto* c : nodes) wanted += per_group[c->group()];
    const auto spread = [&] {
      double known = 0;
      for (auto* c : nodes) known += static_cast<double>(c->tuples());
      return wanted > 0 ? known / wanted : 1.0;
    };
    net.run_for(30s);
    int waited = 30;
    for (; waited < 300 && spread() < 0.99; waited += 5) net.run_for(5s);
    std::printf("kelips tuple spread: the nodes know %.2f%% of their group's keys %d s after the puts\n", 100.0 * spread(), waited);
  }

  // Views and contacts.
  double view = 0, contacts = 0, tuples = 0;
  for (auto* c : nodes) {
    view += static_cast<double>(c->members()) / static_cast<double>(std::max<std::size_t>(1, by_group[c->group()].size() - 1));
    contacts += static_cast<double>(c->groups_with_contacts());
    tuples += static_cast<double>(c->tuples());
  }
  std::printf("kelips soft state: group view %.1f%% of the group on average; contacts in %.1f of %u other groups; "
              "%.1f tuples per node (files / k = %.1f)\n",
              100.0 * view / static_cast<double>(n), contacts / static_cast<double>(n), cfg.groups - 1,
              tuples / static_cast<double>(n), static_cast<double>(files) / cfg.groups);
  std::fflush(stdout);

  auto measure = [&](std::uint64_t seed, const std::vector<NodeId>& want) {
    Rng q(seed);
    std::vector<std::pair<std::size_t, std::uint64_t>> asked;
    std::vector<NodeId> which;
    for (std::size_t k = 0; k < lookups && !want.empty(); ++k) {
      std::size_t from = q.below(n);
      while (!net.alive(from)) from = q.below(n);
      const NodeId key = want[q.below(want.size())];
      std::uint64_t op = 0;
      net.with(from, [&](Core&) { op = nodes[from]->lookup(key, net.now()); });
      asked.emplace_back(from, op);
      which.push_back(key);
      net.run_for(1ms);
    }
    const auto res = wait_all(asked, 30s);
    std::size_t ok = 0, one = 0;
    double hops = 0;
    for (std::size_t k = 0; k < res.size(); ++k) {
      if (!res[k] || !res[k]->ok) continue;
      // The named home has it.
      bool holds = false;
      for (auto* c : nodes) {
        if (c->self() == res[k]->owner) {
          holds = c->holds(which[k]);
          break;
        }
      }
      if (!holds) continue;
      ++ok;
      one += res[k]->route.size() <= 1;
      hops += static_cast<double>(res[k]->route.size());
    }
    return std::tuple{ok, one, hops, res.size()};
  };
  {
    const auto [ok, one, hops, asked] = measure(21, keys);
    std::printf("kelips lookups: %zu/%zu answered by a home that has the key; %.2f%% in one hop (goal >= 99%%); "
                "mean hops %.2f\n",
                ok, asked, 100.0 * static_cast<double>(one) / static_cast<double>(std::max<std::size_t>(asked, 1)),
                ok ? hops / static_cast<double>(ok) : 0.0);
    std::fflush(stdout);
  }
  // Memory.
  {
    double member = 0, contact = 0, tuple = 0;
    KelipsCore::Footprint f0;
    for (auto* c : nodes) {
      const auto f = c->footprint();
      member += static_cast<double>(f.member_bytes);
      contact += static_cast<double>(f.contact_bytes);
      tuple += static_cast<double>(f.tuple_bytes);
      f0 = f;
    }
    const double per = 1.0 / static_cast<double>(n);
    std::printf("kelips memory per node: view %.1f KB (%zu B per member), contacts %.1f KB (%zu B each), tuples "
                "%.1f KB (%zu B per tuple of one home)\n",
                member * per / 1e3, f0.per_member, contact * per / 1e3, f0.per_contact, tuple * per / 1e3, f0.per_tuple);
    print_kelips_memory(100'000, 10'000'000);
    std::fflush(stdout);
  }
  {
    std::printf("kelips upkeep: %.2f datagrams per node per second (a gossip to a member and one to a contact "
                "each second, each with its answer)\n",
                upkeep(net, 10));
    if (std::getenv("DHT_COUNTERS")) {
      std::printf("  simulator RSS %.0f MB\n", rss_mb());
      std::size_t copies = 0;
      for (auto* c : nodes) copies += c->keys();
      std::printf("  copies per key %.2f (homes %zu)\n", static_cast<double>(copies) / static_cast<double>(std::max<std::size_t>(1, files)),
                  cfg.homes);
      std::uint64_t dead = 0, timeouts = 0;
      for (auto* c : nodes) {
        dead += c->stat(KelipsCore::kMembersDead);
        timeouts += c->stat(KelipsCore::kTimeouts);
      }
      std::printf("  members dropped as dead %.2f per node, timeouts %.2f per node (no node has failed yet)\n",
                  static_cast<double>(dead) / static_cast<double>(n), static_cast<double>(timeouts) / static_cast<double>(n));
    }
    std::fflush(stdout);
  }
  // A key still held by a live node (its homes are all in its group).
  auto has_live_home = [&](const NodeId& key) {
    for (std::size_t i : by_group[nodes.front()->group_of(key)]) {
      if (net.alive(i) && nodes[i]->holds(key)) return true;
    }
    return false;
  };
  // Churn (DHT_CHURN seconds, default 60): 0.2 % of the nodes replaced a
  // second, new ones joining through a random live node (a real join).
  const int churn_seconds = std::getenv("DHT_CHURN") ? std::atoi(std::getenv("DHT_CHURN")) : 60;
  if (churn_seconds > 0) {
    const std::size_t per_second = std::max<std::size_t>(1, n / 500);
    const double churn_upkeep = churn(net, rng, per_second, churn_seconds, [&](Endpoint intro) {
      const std::size_t i = nodes.size();
      const std::size_t idx = add_node(net, nodes, cfg, i);
      by_group[nodes.back()->group()].push_back(i);
      net.with(idx, [&](Core&) { nodes[idx]->join(intro, net.now()); });
    });
    n = nodes.size();
    std::vector<NodeId> live_keys;
    for (const auto& key : keys) {
      if (has_live_home(key)) live_keys.push_back(key);
    }
    const auto [ok, one, hops, asked] = measure(27, live_keys);
    std::printf("kelips under churn (%zu nodes replaced a second, %d s): %.2f datagrams per node per second; lookups "
                "right after: %zu/%zu answered by a live home, %.2f%% in one hop\n",
                per_second, churn_seconds, churn_upkeep, ok,
                asked, 100.0 * static_cast<double>(one) / static_cast<double>(std::max<std::size_t>(asked, 1)));
    std::fflush(stdout);
  }
  // Half (of the live nodes) fail at once.
  Rng kill(9);
  std::size_t killed = 0, live_now = 0;
  for (std::size_t i = 0; i < n; ++i) live_now += net.alive(i);
  while (killed < live_now / 2) {
    const std::size_t i = kill.below(n);
    if (!net.alive(i)) continue;
    net.kill(i);
    ++killed;
  }
  std::vector<NodeId> kept;
  for (const auto& key : keys) {
    if (has_live_home(key)) kept.push_back(key);
  }
  net.run_for(60s);
  {
    const auto [ok, one, hops, asked] = measure(33, kept);
    std::printf("kelips after %zu of %zu nodes failed at once (%zu of %zu keys kept a live home), 60 s later: "
                "%zu/%zu = %.2f%% answered by a live home; %.2f%% in one hop; mean hops %.2f\n",
                killed, live_now, kept.size(), keys.size(), ok, asked,
                100.0 * static_cast<double>(ok) / static_cast<double>(std::max<std::size_t>(asked, 1)),
                100.0 * static_cast<double>(one) / static_cast<double>(std::max<std::size_t>(asked, 1)),
                ok ? hops / static_cast<double>(ok) : 0.0);
  }
  std::printf("kelips total: %.0f s wall, %llu datagrams delivered, simulator RSS %.0f MB\n",
              std::chrono::duration<double>(Clock::now() - wall0).count(),
              static_cast<unsigned long long>(net.delivered()), rss_mb());
  return 0;
}

struct PastryRun {
  double right = 0, ok = 0, hops = 0, stretch = 0, upkeep = 0, after_ok = 0, after_hops = 0, table = 0;
  double churn_upkeep = 0, churn_ok = 0;
  bool churned = false;
};

PastryRun pastry_once(std::size_t n, std::size_t lookups, bool proximity) {
  const auto wall0 = Clock::now();
  sim::DgramNet net(19);
  PastryConfig cfg;
  cfg.proximity = proximity;
  std::vector<PastryCore*> nodes;
  std::unordered_map<Endpoint, std::size_t, EndpointHash> index;
  Rng rng(5);
  if (!setup_stabilised(n)) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t idx = add_node(net, nodes, cfg, i);
      index[net.address(idx)] = i;
      std::optional<Endpoint> via;
      if (i > 0) via = net.address(rng.below(i));
      net.with(idx, [&](Core&) { nodes[idx]->join(via, net.now()); });
      net.run_for(5ms);
    }
    net.run_for(30s);
  } else {
    // What joins and probing leave, from the true overlay: the leaf set
    // (L/2 nearest each way round), each table slot offered up to 8 random
    // nodes with its prefix with their round trips (the slot keeps the
    // nearest with proximity, the first without), 16 random nodes for the
    // neighbourhood set (kept by round trip); then 10 s of the protocol.
    for (std::size_t i = 0; i < n; ++i) {
      index[net.address(add_node(net, nodes, cfg, i))] = i;
    }
    const auto sorted = ring_order(nodes);  // (not a structured binding: clang 14 cannot capture one)
    const auto& order = sorted.first;
    const auto& ids = sorted.second;
    // The id with `id`'s first `row` hex digits, then `column`, then `fill`.
    auto prefixed = [](NodeId id, std::size_t row, int column, std::uint8_t fill) {
      for (std::size_t d = row; d < 40; ++d) {
        const int v = d == row ? column : fill;
        auto& byte = id[d / 2];
        byte = d % 2 == 0 ? static_cast<std::uint8_t>((byte & 0x0F) | v << 4) : static_cast<std::uint8_t>((byte & 0xF0) | v);
      }
      return id;
    };
    const std::size_t half = cfg.leaf_set / 2;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = order[k];
      net.with(i, [&](Core&) {
        PastryCore& c = *nodes[i];
        c.join(std::nullopt, net.now());
        auto offer = [&](std::size_t j) { c.learn(nodes[j]->self(), 2 * net.latency(i, j), net.now()); };
        for (std::size_t d = 1; d <= half && d < n; ++d) {
          offer(order[(k + d) % n]);
          offer(order[(k + n - d) % n]);
        }
        for (std::size_t row = 0; row < c.rows(); ++row) {
          bool others = false;
          for (int col = 0; col < 16; ++col) {
            const auto lo = std::lower_bound(ids.begin(), ids.end(), prefixed(ids[k], row, col, 0));
            const auto hi = std::upper_bound(ids.begin(), ids.end(), prefixed(ids[k], row, col, 15));
            const auto span = static_cast<std::size_t>(hi - lo);
            if (span == 0) continue;
            if (col == c.digit(ids[k], row)) {
              others = span > 1;  // our own column: the next row has nodes only if others share it
              continue;
            }
            for (int t = 0; t < 8; ++t) offer(order[static_cast<std::size_t>(lo - ids.begin()) + rng.below(span)]);
          }
          if (!others) break;
        }
        for (int t = 0; t < 16; ++t) offer(rng.below(n));
      });
      if (k % 100 == 99) net.run_for(1ms);
    }
    net.run_for(10s);
  }
  auto distance = [&](const NodeId& a, const NodeId& b) {
    const Ring& r = nodes.front()->ring();
    return std::min(r.distance(a, b), r.distance(b, a));
  };
  auto closest = [&](const NodeId& key) {
    std::size_t best = SIZE_MAX;
    for (std::size_t i = 0; i < n; ++i) {
      if (net.alive(i) && (best == SIZE_MAX || distance(nodes[i]->self().id, key) < distance(nodes[best]->self().id, key))) best = i;
    }
    return best;
  };
  auto right_leaf_sets = [&] {
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < n; ++i) {
      if (net.alive(i)) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return nodes[a]->self().id < nodes[b]->self().id; });
    const std::size_t m = order.size(), half = cfg.leaf_set / 2;
    std::size_t right = 0;
    for (std::size_t k = 0; k < m; ++k) {
      std::vector<NodeId> want, have;
      for (std::size_t j = 1; j <= half && j < m; ++j) {
        want.push_back(nodes[order[(k + j) % m]]->self().id);
        want.push_back(nodes[order[(k + m - j) % m]]->self().id);
      }
      for (const auto& l : nodes[order[k]]->leaves()) have.push_back(l.id);
      std::sort(want.begin(), want.end());
      want.erase(std::unique(want.begin(), want.end()), want.end());
      std::sort(have.begin(), have.end());
      right += want == have;
    }
    return static_cast<double>(right) / static_cast<double>(m);
  };
  // LOOKUPS lookups from random live nodes, one per millisecond.
  auto measure = [&](std::uint64_t seed, double& ok_share, double& mean_hops, double* stretch) {
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
      std::uint64_t op = 0;
      net.with(from, [&](Core&) { op = nodes[from]->lookup(key, net.now()); });
      asked.push_back({from, op, key});
      net.run_for(1ms);
    }
    net.run_for(10s);
    std::map<std::pair<std::size_t, std::uint64_t>, OpResult> results;  // (node, op)
    for (std::size_t i = 0; i < n; ++i) {
      while (auto r = nodes[i]->poll_result()) results[{i, r->op}] = std::move(*r);
    }
    std::size_t ok = 0;
    double hops = 0, route_ms = 0, direct_ms = 0;
    for (auto& a : asked) {
      for (auto it = results.find({a.from, a.op}); it != results.end();) {
        const OpResult* r = &it->second;
        const std::size_t owner = closest(a.key);
        if (!r->ok || !(r->owner == nodes[owner]->self())) {
          if (std::getenv("DHT_COUNTERS")) {
            std::printf("  lookup from %zu: %s%s; route %zu\n", a.from, r->ok ? "wrong owner" : "failed: ",
                        r->error.c_str(), r->route.size());
          }
          break;
        }
        ++ok;
        hops += static_cast<double>(r->route.size());
        // The route's latency, hop by hop, against straight to the owner.
        std::size_t at = a.from;
        double ms = 0;
        for (const auto& h : r->route) {
          const std::size_t next = index.at(Endpoint{h.ip, h.port});
          ms += std::chrono::duration<double, std::milli>(net.latency(at, next)).count();
          at = next;
        }
        route_ms += ms;
        direct_ms += std::chrono::duration<double, std::milli>(net.latency(a.from, owner)).count();
        break;
      }
    }
    ok_share = static_cast<double>(ok) / static_cast<double>(std::max<std::size_t>(1, asked.size()));
    mean_hops = ok ? hops / static_cast<double>(ok) : 0;
    if (stretch) *stretch = direct_ms > 0 ? route_ms / direct_ms : 0;
  };
  PastryRun run;
  run.right = right_leaf_sets();
  for (auto* c : nodes) run.table += static_cast<double>(c->table_entries());
  run.table /= static_cast<double>(n);
  measure(21, run.ok, run.hops, &run.stretch);
  run.upkeep = upkeep(net, 10);
  // Churn (DHT_CHURN seconds, default 60): 0.2 % of the nodes replaced a
  // second, new ones joining through random live nodes.
  const int churn_seconds = std::getenv("DHT_CHURN") ? std::atoi(std::getenv("DHT_CHURN")) : 60;
  if (churn_seconds > 0) {
    const std::size_t per_second = std::max<std::size_t>(1, n / 500);
    const double churn_upkeep = churn(net, rng, per_second, churn_seconds, [&](Endpoint intro) {
      const std::size_t i = nodes.size();
      const std::size_t idx = add_node(net, nodes, cfg, i);
      index[net.address(idx)] = i;
      net.with(idx, [&](Core&) { nodes[idx]->join(intro, net.now()); });
    });
    n = nodes.size();
    run.churn_upkeep = churn_upkeep;
    run.churned = true;
    double hops = 0;
    measure(27, run.churn_ok, hops, nullptr);
  }
  Rng kill(9);
  std::size_t killed = 0, live_now = 0;
  for (std::size_t i = 0; i < n; ++i) live_now += net.alive(i);
  while (killed < live_now / 2) {
    const std::size_t i = kill.below(n);
    if (!net.alive(i)) continue;
    net.kill(i);
    ++killed;
  }
  net.run_for(60s);
  measure(33, run.after_ok, run.after_hops, nullptr);
  std::printf("pastry %s: %zu nodes %s, measured in %.0f s wall (simulator RSS %.0f MB)\n",
              proximity ? "with proximity" : "without proximity", n,
              setup_stabilised(n) ? "set up stabilised from the true overlay" : "joined one every 5 ms and settled",
              std::chrono::duration<double>(Clock::now() - wall0).count(), rss_mb());
  std::fflush(stdout);
  return run;
}

int pastry(std::size_t n, std::size_t lookups) {
  const auto with = pastry_once(n, lookups, true);
  const auto without = pastry_once(n, lookups, false);
  const double log16 = std::log(static_cast<double>(n)) / std::log(16.0);
  for (const auto* r : {&with, &without}) {
    std::string churned = "not churned";
    if (r->churned) {
      char b[160];
      std::snprintf(b, sizeof b, "%.2f under churn (0.2 %% replaced a second; lookups right after %.2f%%)", r->churn_upkeep,
                    100 * r->churn_ok);
      churned = b;
    }
    std::printf("pastry %s: leaf sets right %.2f%%, %.1f table entries per node; lookups %.2f%% reach the closest "
                "node, mean hops %.2f (log16 N = %.2f, ceiling %.0f); route stretch %.2f; upkeep %.2f datagrams "
                "per node per second, %s; after half failed, 60 s later: %.2f%% reach the live closest node, mean "
                "hops %.2f\n",
                r == &with ? "with proximity" : "without proximity", 100 * r->right, r->table, 100 * r->ok, r->hops,
                log16, std::ceil(log16), r->stretch, r->upkeep, churned.c_str(), 100 * r->after_ok, r->after_hops);
  }
  std::printf("pastry proximity-aware tables: route stretch %.2f against %.2f without (%.2fx shorter routes by latency)\n",
              with.stretch, without.stretch, with.stretch > 0 ? without.stretch / with.stretch : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "chord";
  // The simulated nodes' state is gigabytes reached at random: the heap on
  // transparent huge pages (glibc's tunable, read only at start, hence the
  // exec) spares most TLB misses (Chord at 20,000 nodes: 16 % less time).
  // DHT_SMALL_PAGES=1 runs without; kelips-memory measures the heap as is.
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (what != "kelips-memory" && !std::getenv("DHT_SMALL_PAGES") && !(tunables && std::strstr(tunables, "hugetlb"))) {
    const std::string set = tunables ? std::string(tunables) + ":glibc.malloc.hugetlb=1" : "glibc.malloc.hugetlb=1";
    ::setenv("GLIBC_TUNABLES", set.c_str(), 1);
    ::execv("/proc/self/exe", argv);  // (on failure: on, with small pages)
  }
  if (what == "chord") {
    const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 4096;
    const std::size_t lookups = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1000;
    return chord(n, lookups);
  }
  if (what == "kelips") {
    const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10000;
    const std::size_t files = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 10000;
    const std::size_t lookups = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 1000;
    return kelips(n, files, lookups);
  }
  if (what == "kelips-memory") {
    const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100'000;
    const std::size_t files = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 10'000'000;
    print_kelips_memory(n, files);
    return 0;
  }
  if (what == "pastry") {
    const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10000;
    const std::size_t lookups = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1000;
    return pastry(n, lookups);
  }
  std::fprintf(stderr, "usage: dht chord [NODES] [LOOKUPS] | dht kelips [NODES] [FILES] [LOOKUPS] | dht kelips-memory [NODES] [FILES] | "
               "dht pastry [NODES] [LOOKUPS]\n");
  return 2;
}
