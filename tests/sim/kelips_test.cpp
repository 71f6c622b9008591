// Kelips nodes (servent/dht/kelips_core) on the simulated datagram network:
// joins through one node fill every affinity group view and give contacts
// for every other group by gossip; lookups take one hop; values put survive
// a third of the nodes failing at once (the homes copy them again).
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>

#include "servent/dht/kelips_core.hpp"
#include "sim/dgram_net.hpp"

using namespace sv;
using namespace sv::dht;
using namespace sv::sim;

namespace {

struct Kelips {
  DgramNet net{11};
  std::vector<KelipsCore*> nodes;
  KelipsConfig cfg;

  void build(std::size_t n, Duration spacing) {
    for (std::size_t i = 0; i < n; ++i) {
      const Endpoint at{0x7f000001u, static_cast<std::uint16_t>(2000 + i)};
      auto core = std::make_unique<KelipsCore>(at, SocketId{1}, cfg, 500 + i);
      nodes.push_back(core.get());
      const std::size_t idx = net.add(std::move(core), at);
      net.with(idx, [&](Core& c) {
        static_cast<KelipsCore&>(c).join(i == 0 ? std::nullopt : std::optional<Endpoint>(net.address(0)), net.now());
      });
      net.run_for(spacing);
    }
  }
  KelipsCore& at(std::size_t i) { return *nodes[i]; }
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
};

wire::Bytes value_of(int k) { return {'v', static_cast<std::uint8_t>(k), static_cast<std::uint8_t>(k >> 8)}; }

}  // namespace

TEST_CASE("kelips_views_fill_by_gossip_lookups_take_one_hop_and_values_survive_a_third_failing") {
  Kelips s;
  s.cfg.groups = 10;  // √100
  s.cfg.member_timeout = 20s;
  const std::size_t n = 100;
  s.build(n, 20ms);
  s.net.run_for(60s);

  // Every node knows every live member of its group and a contact in every other group.
  std::size_t full_views = 0, all_contacts = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t same = 0;
    for (std::size_t j = 0; j < n; ++j) same += j != i && s.at(j).group() == s.at(i).group();
    full_views += s.at(i).members() == same;
    all_contacts += s.at(i).groups_with_contacts() == s.cfg.groups - 1;
  }
  MESSAGE(full_views << "/" << n << " full group views, " << all_contacts << "/" << n << " with contacts in every other group");
  CHECK(full_views == n);
  CHECK(all_contacts == n);

  // Values put from random nodes.
  Rng rng(5);
  const int keys = 300;
  for (int k = 0; k < keys; ++k) {
    const std::size_t from = rng.below(n);
    std::uint64_t op = 0;
    s.net.with(from, [&](Core&) { op = s.at(from).put(key_id("key" + std::to_string(k), s.at(from).ring()), value_of(k), s.net.now()); });
    auto r = s.wait_result(from, op);
    REQUIRE(r);
    CHECK(r->ok);
  }
  s.net.run_for(30s);  // tuples spread through each group
  // Each key on exactly `homes` members: the homes know of each other at
  // once, so none finds the key short and copies it again.
  // (or on every member of a smaller group)
  std::size_t copies = 0, wanted = 0;
  for (std::size_t i = 0; i < n; ++i) copies += s.at(i).keys();
  for (int k = 0; k < keys; ++k) {
    const std::uint32_t g = s.at(0).group_of(key_id("key" + std::to_string(k), s.at(0).ring()));
    std::size_t size = 0;
    for (std::size_t i = 0; i < n; ++i) size += s.at(i).group() == g;
    wanted += std::min(s.cfg.homes, size);
  }
  MESSAGE(copies << " copies of " << keys << " keys, " << wanted << " wanted (homes " << s.cfg.homes << ")");
  CHECK(copies == wanted);

  // Lookups: one hop (a contact of the key's group names a home that has it).
  std::size_t one_hop = 0, right = 0;
  for (int k = 0; k < keys; ++k) {
    const std::size_t from = rng.below(n);
    const NodeId key = key_id("key" + std::to_string(k), s.at(from).ring());
    std::uint64_t op = 0;
    s.net.with(from, [&](Core&) { op = s.at(from).lookup(key, s.net.now()); });
    auto r = s.wait_result(from, op);
    REQUIRE(r);
    one_hop += r->ok && r->route.size() <= 1;
    for (std::size_t j = 0; j < n; ++j) right += r->ok && s.at(j).self() == r->owner && s.at(j).holds(key);
  }
  MESSAGE(one_hop << "/" << keys << " lookups in one hop (or none: the key's group is the asker's)");
  CHECK(right == keys);
  CHECK(one_hop >= keys * 99 / 100);

  // A third of the nodes fail at once; the rest notice, and homes copy again.
  std::set<std::size_t> killed;
  while (killed.size() < n / 3) {
    const std::size_t i = 1 + rng.below(n - 1);
    if (killed.insert(i).second) s.net.kill(i);
  }
  // (a key whose every home failed at once is gone: with 6 homes and a
  // third failing, about (1/3)^6 = 0.14 % of the keys)
  std::size_t recoverable = 0;
  for (int k = 0; k < keys; ++k) {
    const NodeId key = key_id("key" + std::to_string(k), s.at(0).ring());
    bool alive = false;
    for (std::size_t i = 0; i < n; ++i) alive = alive || (s.net.alive(i) && s.at(i).holds(key));
    recoverable += alive;
  }
  CHECK(recoverable >= keys * 99 / 100);
  s.net.run_for(60s);
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
                                                  << " had a live home)");
  CHECK(found == recoverable);
  // The homes copied the values again: each key on `homes` live members
  // again (or on every live member of a smaller group).
  std::size_t repaired = 0;
  for (int k = 0; k < keys; ++k) {
    const NodeId key = key_id("key" + std::to_string(k), s.at(0).ring());
    std::size_t holders = 0, live_in_group = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!s.net.alive(i) || s.at(i).group() != s.at(0).group_of(key)) continue;
      ++live_in_group;
      holders += s.at(i).holds(key);
    }
    repaired += holders >= std::min(s.cfg.homes, live_in_group);
  }
  CHECK(repaired == recoverable);
  // And no live node still lists a dead one in its view.
  std::size_t stale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!s.net.alive(i)) continue;
    for (std::size_t d : killed) stale += s.at(i).knows(s.at(d).self().id);
  }
  CHECK(stale == 0);
}
