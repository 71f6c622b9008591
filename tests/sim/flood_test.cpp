// A simulated network of 200 real GnutellaCores on a random graph: a
// TTL-limited query reaches exactly the nodes within TTL hops, no node
// forwards a descriptor twice, and every hit returns along the reverse path.
#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "sim/simnet.hpp"
#include "wire/gnutella/descriptors.hpp"

using namespace sv;
using namespace sv::sim;
namespace gn = sv::wire::gnutella;

namespace {

struct Trace {
  struct Send {
    std::size_t from, to;
    Instant at;      // sent
    Instant arrive;  // processed by the receiver
    std::uint64_t order;
  };
  std::vector<Send> queries;                                   // sends of our query
  std::map<gn::ServentId, std::vector<std::pair<std::size_t, std::size_t>>> hits;  // by responder
};

struct World {
  std::vector<share::Library> libs;
  SimNet net;
  std::vector<std::vector<std::size_t>> adj;

  World(std::size_t n, std::size_t out_degree, std::uint64_t seed, LinkParams params, bool compress = false)
      : libs(n), net(seed) {
    Rng rng(seed ^ 0x5eed);
    for (std::size_t i = 0; i < n; ++i) {
      libs[i].add_virtual("node" + std::to_string(i) + " shared thing.txt", 1000 + i);
      GnutellaConfig cfg;
      cfg.max_connections = 64;
    cfg.mode = NodeMode::Ultrapeer;  // flat flooding: every link ultrapeer to ultrapeer,
    cfg.dynamic_querying = false;    // every query flooded with its TTL
      cfg.compress = compress;  // the tracer reads plain descriptors off the links
      cfg.requery_threshold = 0s;  // the same words flood again at each TTL measured
      net.add_node(libs[i], cfg);
    }
    std::set<std::pair<std::size_t, std::size_t>> edges;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < out_degree; ++k) {
        std::size_t j = rng.below(n);
        if (j == i || edges.count({std::min(i, j), std::max(i, j)})) continue;
        edges.insert({std::min(i, j), std::max(i, j)});
        net.connect(i, j, params);
      }
    }
    REQUIRE(net.run_for(5s));
    adj.assign(n, {});
    for (auto [a, b] : net.established_links()) {
      adj[a].push_back(b);
      adj[b].push_back(a);
    }
    REQUIRE(net.established_links().size() == edges.size());
  }

  std::vector<int> bfs(std::size_t from) const {
    std::vector<int> dist(adj.size(), -1);
    std::deque<std::size_t> q{from};
    dist[from] = 0;
    while (!q.empty()) {
      auto u = q.front();
      q.pop_front();
      for (auto v : adj[u]) {
        if (dist[v] < 0) {
          dist[v] = dist[u] + 1;
          q.push_back(v);
        }
      }
    }
    return dist;
  }
};

Trace run_query(World& w, std::size_t asker, std::uint8_t ttl) {
  Trace t;
  std::uint64_t order = 0;
  std::optional<gn::Guid> id;
  w.net.on_send = [&](std::size_t from, std::size_t to, wire::ByteView bytes, Instant arrive) {
    auto h = gn::decode_header(bytes);
    if (!h || !id || h->id != *id) return;
    if (h->type == 0x80) t.queries.push_back({from, to, w.net.now(), arrive, order++});
    if (h->type == 0x81) {
      auto hit = gn::decode_query_hit(bytes.subspan(gn::kHeaderSize));
      REQUIRE(hit.ok());
      t.hits[hit->servent_id].emplace_back(from, to);
    }
  };
  w.net.with_core(asker, [&](GnutellaCore& c) { id = c.search(Search{"shared thing", ttl, {}}, w.net.now()).guid; });
  REQUIRE(w.net.run_for(10s));
  w.net.on_send = nullptr;
  return t;
}

void check_flood(World& w, std::size_t asker, std::uint8_t ttl, bool exact_reach) {
  const std::size_t n = w.net.size();
  const auto dist = w.bfs(asker);
  Trace t = run_query(w, asker, ttl);

  // Who received the query, and from whom first (the reverse-path parent).
  std::map<std::size_t, std::size_t> parent;
  std::set<std::pair<std::size_t, std::size_t>> link_sends;
  std::map<std::size_t, std::set<std::int64_t>> send_times;
  auto by_arrival = t.queries;
  std::stable_sort(by_arrival.begin(), by_arrival.end(), [](const auto& a, const auto& b) {
    return a.arrive != b.arrive ? a.arrive < b.arrive : a.order < b.order;
  });
  for (const auto& s : by_arrival) {
    CHECK_MESSAGE(link_sends.insert({s.from, s.to}).second, "node ", s.from, " sent the query to ", s.to, " twice");
    send_times[s.from].insert(s.at.since_epoch.count());
    if (s.to != asker && !parent.count(s.to)) parent[s.to] = s.from;
  }
  // Each node forwards at most once: all its sends happen in one step.
  for (const auto& entry : send_times) {
    CHECK_MESSAGE(entry.second.size() == 1, "node ", entry.first, " forwarded twice");
  }

  std::set<std::size_t> reached, within;
  for (const auto& [node, _] : parent) reached.insert(node);
  for (std::size_t i = 0; i < n; ++i) {
    if (dist[i] >= 1 && dist[i] <= ttl) within.insert(i);
  }
  if (exact_reach) {
    CHECK(reached == within);
  } else {
    CHECK(std::includes(within.begin(), within.end(), reached.begin(), reached.end()));
  }

  // Every reached node answered; each answer went back along the reverse path.
  std::map<gn::ServentId, std::size_t> node_of;
  for (std::size_t i = 0; i < n; ++i) node_of[w.net.core(i).servent_id()] = i;
  std::set<std::size_t> answered;
  for (const auto& [sid, path] : t.hits) {
    const std::size_t responder = node_of.at(sid);
    answered.insert(responder);
    std::vector<std::pair<std::size_t, std::size_t>> expected;
    for (std::size_t cur = responder; cur != asker; cur = parent.at(cur)) expected.emplace_back(cur, parent.at(cur));
    CHECK(path == expected);
  }
  CHECK(answered == reached);
  std::set<std::size_t> got;
  for (const auto& e : w.net.events(asker)) {
    if (auto* h = std::get_if<event::Hit>(&e)) got.insert(node_of.at(h->servent_id));
  }
  CHECK(got == reached);
  w.net.events(asker).clear();
  MESSAGE("ttl ", int(ttl), ": ", reached.size(), " of ", n - 1, " nodes reached, ", t.queries.size(),
          " query sends (", t.queries.size() - reached.size(), " duplicates suppressed)");
}

}  // namespace

TEST_CASE("ttl_limited_query_reaches_exactly_the_nodes_within_ttl_hops") {
  LinkParams p;
  p.delay = 20ms;
  p.max_chunk = 64;  // descriptors arrive in random pieces
  World w(200, 3, 7, p);
  for (std::uint8_t ttl : {1, 2, 3, 4, 7}) {
    CAPTURE(int(ttl));
    check_flood(w, ttl % 5, ttl, true);
  }
}

TEST_CASE("with_jittered_links_no_node_forwards_twice_and_hits_follow_the_reverse_path") {
  LinkParams p;
  p.delay = 5ms;
  p.jitter = 40ms;
  p.max_chunk = 16;
  World w(200, 3, 11, p);
  // With uneven delays a node may first hear a query by a longer path and so
  // forward it with less TTL left: the reached set is then within the TTL ball.
  for (std::uint8_t ttl : {2, 3, 5}) {
    CAPTURE(int(ttl));
    check_flood(w, 10 + ttl, ttl, false);
  }
}

TEST_CASE("simulation_is_deterministic_for_a_seed") {
  LinkParams p;
  p.max_chunk = 8;
  World a(50, 2, 99, p), b(50, 2, 99, p);
  auto ta = run_query(a, 0, 4);
  auto tb = run_query(b, 0, 4);
  REQUIRE(ta.queries.size() == tb.queries.size());
  for (std::size_t i = 0; i < ta.queries.size(); ++i) {
    CHECK(ta.queries[i].from == tb.queries[i].from);
    CHECK(ta.queries[i].to == tb.queries[i].to);
  }
}

TEST_CASE("deflated_links_carry_the_flood_and_every_hit_back") {
  LinkParams p;
  p.delay = 10ms;
  p.max_chunk = 5;  // zlib streams cut at any byte
  World w(60, 2, 21, p, true);
  const auto dist = w.bfs(0);
  std::set<std::size_t> component;
  for (std::size_t i = 1; i < dist.size(); ++i) {
    if (dist[i] > 0) component.insert(i);
  }
  w.net.with_core(0, [&](GnutellaCore& c) { c.search(Search{"shared thing", 7, {}}, w.net.now()); });
  REQUIRE(w.net.run_for(10s));
  std::map<gn::ServentId, std::size_t> node_of;
  for (std::size_t i = 0; i < w.net.size(); ++i) node_of[w.net.core(i).servent_id()] = i;
  std::set<std::size_t> got;
  for (const auto& e : w.net.events(0)) {
    if (auto* h = std::get_if<event::Hit>(&e)) got.insert(node_of.at(h->servent_id));
  }
  // Every node within 7 hops answered (the graph's diameter is well below 7).
  std::set<std::size_t> within;
  for (auto i : component) {
    if (dist[i] <= 7) within.insert(i);
  }
  CHECK(got == within);
  std::uint64_t compressed = 0;
  for (std::size_t i = 0; i < w.net.size(); ++i) compressed += w.net.core(i).stat(GnutellaCore::kLinksCompressedIn);
  CHECK(compressed == 2 * w.net.established_links().size());
}
