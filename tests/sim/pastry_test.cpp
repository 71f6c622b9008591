// Pastry nodes (servent/dht/pastry_core) on the simulated datagram network:
// joins through random members give every node the right leaf set; lookups
// reach the numerically closest node in about log16 N hops; values survive
// a third of the nodes failing at once (copies on the nearest leaves).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "servent/dht/pastry_core.hpp"
#include "sim/dgram_net.hpp"

using namespace sv;
using namespace sv::dht;
using namespace sv::sim;

namespace {

struct Pastry {
  DgramNet net{17};
  std::vector<PastryCore*> nodes;
  PastryConfig cfg;

  void build(std::size_t n, Duration spacing) {
    Rng rng(3);
    for (std::size_t i = 0; i < n; ++i) {
      const Endpoint at{0x7f000001u, static_cast<std::uint16_t>(3000 + i)};
      auto core = std::make_unique<PastryCore>(at, SocketId{1}, cfg, 700 + i);
      nodes.push_back(core.get());
      const std::size_t idx = net.add(std::move(core), at);
      std::optional<Endpoint> via;
      if (i > 0) via = net.address(rng.below(i));
      net.with(idx, [&](Core& c) { static_cast<PastryCore&>(c).join(via, net.now()); });
      net.run_for(spacing);
    }
  }
  PastryCore& at(std::size_t i) { return *nodes[i]; }
  double distance(const NodeId& a, const NodeId& b) const {
    const Ring& r = nodes.front()->ring();
    return std::min(r.distance(a, b), r.distance(b, a));
  }
  // The live nodes by numeric closeness to key.
  std::vector<std::size_t> closest(const NodeId& key) const {
    std::vector<std::size_t> live;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (net.alive(i)) live.push_back(i);
    }
    std::sort(live.begin(), live.end(), [&](std::size_t a, std::size_t b) {
      return distance(nodes[a]->self().id, key) < distance(nodes[b]->self().id, key);
    });
    return live;
  }
  std::optional<OpResult> wait_result(std::size_t i, std::uint64_t op) {
    for (int step = 0; step < 200; ++step) {
      net.run_for(50ms);
      while (auto r = at(i).poll_result()) {
        if (r->op == op) return r;
      }
    }
    return std::nullopt;
  }
  std::size_t random_live(Rng& rng) {
    std::size_t i = rng.below(nodes.size());
    while (!net.alive(i)) i = rng.below(nodes.size());
    return i;
  }
  // Nodes whose leaf set is exactly the L/2 live nodes on each side.
  std::size_t right_leaf_sets() const {
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (net.alive(i)) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return nodes[a]->self().id < nodes[b]->self().id; });
    const std::size_t n = order.size(), half = cfg.leaf_set / 2;
    std::size_t right = 0;
    for (std::size_t k = 0; k < n; ++k) {
      std::set<NodeId> want, have;
      for (std::size_t j = 1; j <= half && j < n; ++j) {
        want.insert(nodes[order[(k + j) % n]]->self().id);
        want.insert(nodes[order[(k + n - j) % n]]->self().id);
      }
      for (const auto& l : nodes[order[k]]->leaves()) have.insert(l.id);
      right += want == have;
    }
    return right;
  }
};

wire::Bytes value_of(int k) { return {'p', static_cast<std::uint8_t>(k), static_cast<std::uint8_t>(k >> 8)}; }

}  // namespace

TEST_CASE("pastry_leaf_sets_form_lookups_reach_the_closest_node_in_about_log16_n_hops_and_values_survive") {
  Pastry s;
  s.cfg.bits = 32;
  const std::size_t n = 200;
  s.build(n, 20ms);
  s.net.run_for(60s);
  const std::size_t right = s.right_leaf_sets();
  MESSAGE(right << "/" << n << " leaf sets right");
  CHECK(right == n);

  Rng rng(5);
  std::size_t ok = 0;
  double hops = 0;
  const int lookups = 300;
  for (int q = 0; q < lookups; ++q) {
    const std::size_t from = rng.below(n);
    NodeId key{};
    rng.fill(key.data(), key.size());
    key = s.at(0).ring().reduce(key);
    std::uint64_t op = 0;
    s.net.with(from, [&](Core&) { op = s.at(from).lookup(key, s.net.now()); });
    auto r = s.wait_result(from, op);
    REQUIRE(r);
    if (r->ok && r->owner == s.at(s.closest(key).front()).self()) {
      ++ok;
      hops += static_cast<double>(r->route.size());
    }
  }
  const double mean = ok ? hops / static_cast<double>(ok) : 0;
  MESSAGE(ok << "/" << lookups << " lookups reach the closest node; mean hops " << mean << " (log16 N = "
             << std::log(static_cast<double>(n)) / std::log(16.0) << ")");
  CHECK(ok == lookups);
  CHECK(mean <= std::ceil(std::log(static_cast<double>(n)) / std::log(16.0)) + 0.5);

  // Values put from random nodes; a third of the nodes fail at once.
  const int keys = 300;
  for (int k = 0; k < keys; ++k) {
    const std::size_t from = rng.below(n);
    std::uint64_t op = 0;
    s.net.with(from, [&](Core&) { op = s.at(from).put(key_id("key" + std::to_string(k), s.at(from).ring()), value_of(k), s.net.now()); });
    auto r = s.wait_result(from, op);
    REQUIRE(r);
    CHECK(r->ok);
  }
  s.net.run_for(2s);
  std::size_t copies = 0;
  for (int k = 0; k < keys; ++k) {
    const NodeId key = key_id("key" + std::to_string(k), s.at(0).ring());
    const auto c = s.closest(key);
    for (std::size_t j = 0; j < s.cfg.replicas; ++j) copies += s.at(c[j]).holds(key);
  }
  CHECK(copies == keys * s.cfg.replicas);  // on the closest node and the next ones
  std::set<std::size_t> killed;
  while (killed.size() < n / 3) {
    const std::size_t i = 1 + rng.below(n - 1);
    if (killed.insert(i).second) s.net.kill(i);
  }
  std::size_t recoverable = 0;
  for (int k = 0; k < keys; ++k) {
    const NodeId key = key_id("key" + std::to_string(k), s.at(0).ring());
    bool alive = false;
    for (std::size_t i = 0; i < n; ++i) alive = alive || (s.net.alive(i) && s.at(i).holds(key));
    recoverable += alive;
  }
  // ((1/3)^4 = 1.2 % of the keys lose every copy at once)
  CHECK(recoverable >= keys * 95 / 100);
  s.net.run_for(60s);
  CHECK(s.right_leaf_sets() == n - killed.size());
  std::size_t found = 0;
  for (int k = 0; k < keys; ++k) {
    const std::size_t from = s.random_live(rng);
    std::uint64_t op = 0;
    s.net.with(from, [&](Core&) { op = s.at(from).get(key_id("key" + std::to_string(k), s.at(from).ring()), s.net.now()); });
    auto r = s.wait_result(from, op);
    REQUIRE(r);
    found += r->ok && std::find(r->values.begin(), r->values.end(), value_of(k)) != r->values.end();
  }
  MESSAGE("after a third of the nodes failed: " << found << "/" << keys << " values found (" << recoverable
                                                  << " kept a live copy)");
  CHECK(found == recoverable);
}
