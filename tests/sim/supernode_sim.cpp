#include "sim/supernode_sim.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include <fmt/format.h>

#include "sim/simnet.hpp"
#include "wire/gnutella/descriptors.hpp"

namespace sv::sim {

namespace gn = wire::gnutella;

namespace {

// File k's one distinctive word: no file's word is a prefix of another's
// (our library matches query words against the start of name words).
std::string word_of(std::size_t k) { return fmt::format("f{}x", k); }

class Zipf {
 public:
  Zipf(std::size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (std::size_t r = 0; r < n; ++r) cdf_[r] = sum += 1.0 / std::pow(static_cast<double>(r + 1), s);
    for (auto& c : cdf_) c /= sum;
  }
  std::size_t draw(Rng& rng) const {
    const double u = static_cast<double>(rng.below(1u << 30)) / static_cast<double>(1u << 30);
    return static_cast<std::size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

}  // namespace

SupernodeSimResult run_supernode_sim(const SupernodeSimConfig& cfg) {
  const auto wall0 = std::chrono::steady_clock::now();
  SupernodeSimResult res;
  res.flat = cfg.flat;
  SimNet net(cfg.seed);
  net.keep_events = false;
  // Files, topology and churn draw from their own generators, so both
  // networks get the same files and queries.
  Rng rng(cfg.seed * 7919 + 1);
  Rng files(cfg.seed * 104729 + 3);
  const Zipf zipf(cfg.catalogue, cfg.zipf_s);
  // Libraries live as long as the network (a deque keeps addresses stable).
  std::vector<std::unique_ptr<share::Library>> libs;
  std::vector<std::set<std::size_t>> shares;  // files per node
  std::vector<std::size_t> live;              // live node ids

  GnutellaConfig base;
  base.compress = false;
  base.requery_threshold = 0s;
  base.qrp_bits = cfg.qrp_bits;
  base.max_connections = 64;
  if (cfg.promote_uptime) base.promote_uptime = *cfg.promote_uptime;
  if (cfg.flat) {
    base.mode = NodeMode::Ultrapeer;
    base.dynamic_querying = false;
    base.min_peers = 0;
  } else {
    base.mode = NodeMode::Auto;
    base.min_peers = 8;  // an ultrapeer keeps 8 ultrapeer links; a leaf its 3 ultrapeers
  }

  auto add_node = [&] {
    auto lib = std::make_unique<share::Library>();
    std::set<std::size_t> mine;
    for (std::size_t f = 0; f < cfg.files_per_node; ++f) mine.insert(zipf.draw(files));
    for (std::size_t k : mine) lib->add_virtual(word_of(k) + " track.mp3", 4'000'000 + k);
    const std::size_t id = net.add_node(*lib, base);
    libs.push_back(std::move(lib));
    shares.push_back(std::move(mine));
    if (cfg.flat) {
      for (int k = 0; k < 3 && !live.empty(); ++k) net.connect(id, live[rng.below(live.size())]);
    } else {
      // A few addresses to start from, as a host cache or web cache gives.
      net.with_core(id, [&](GnutellaCore& c) {
        for (int k = 0; k < 5 && !live.empty(); ++k) c.host_cache().add(net.address(live[rng.below(live.size())]), net.now());
        c.handle_timeout(net.now());
      });
    }
    live.push_back(id);
  };
  auto has_parent = [&](std::size_t i) {
    if (net.core(i).role() != Role::Leaf) return true;
    for (const auto& p : net.core(i).peers()) {
      if (p.established && p.link == "parent") return true;
    }
    return false;
  };
  // cfg.trace: the shape of the network on stderr (what the election
  // reacts to): leaves by how many ultrapeers they have, leaf slots used,
  // ultrapeers by how many leaves they hold (0-4, 5-9, ... 30), and the
  // ultrapeers' mean number of ultrapeer links.
  auto trace = [&](const char* phase) {
    if (!cfg.trace) return;
    std::size_t parents[4] = {}, fill[7] = {}, ups = 0, leaves = 0, used = 0, up_links = 0;
    for (std::size_t i : live) {
      std::size_t p = 0, l = 0, u = 0;
      for (const auto& x : net.core(i).peers()) {
        p += x.established && x.link == "parent";
        l += x.established && x.link == "leaf";
        u += x.established && x.link == "ultrapeer";
      }
      if (net.core(i).role() == Role::Leaf) {
        ++leaves;
        ++parents[std::min<std::size_t>(p, 3)];
      } else {
        ++ups;
        used += l;
        up_links += u;
        ++fill[std::min<std::size_t>(l / 5, 6)];
      }
    }
    std::fprintf(stderr,
                 "%s %llds: %zu ultrapeers, %zu leaves (with 0/1/2/3 ultrapeers: %zu/%zu/%zu/%zu), %zu leaf slots used, "
                 "ultrapeers by leaves/5: %zu %zu %zu %zu %zu %zu %zu, %.1f ultrapeer links each\n",
                 phase, static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(net.now().since_epoch).count()),
                 ups, leaves, parents[0], parents[1], parents[2], parents[3], used, fill[0], fill[1], fill[2], fill[3], fill[4],
                 fill[5], fill[6], ups ? static_cast<double>(up_links) / static_cast<double>(ups) : 0.0);
  };
  auto count_ultrapeers = [&] {
    std::size_t n = 0;
    for (std::size_t i : live) n += net.core(i).role() == Role::Ultrapeer;
    return n;
  };

  // (trace) Nodes by listening address (index_listens() first, again after
  // any churn), and an ultrapeer's ultrapeer neighbours as node numbers.
  std::map<Endpoint, std::size_t> by_listen;
  auto index_listens = [&] {
    by_listen.clear();
    for (std::size_t k : live) by_listen[net.address(k)] = k;
  };
  auto up_neighbours = [&](std::size_t i) {
    std::vector<std::size_t> out;
    for (const auto& p : net.core(i).peers()) {
      if (!p.established || p.link != "ultrapeer") continue;
      if (auto it = by_listen.find(p.listen); it != by_listen.end()) out.push_back(it->second);
    }
    return out;
  };

  // Role changes, with their times, per node.
  std::unordered_map<std::size_t, Instant> last_change;
  std::unordered_map<gn::Guid, std::size_t, gn::Id16Hash> query_index;
  std::vector<std::size_t> results;
  std::vector<std::size_t> asker;
  std::map<std::size_t, std::set<std::size_t>> reached;  // (trace) the nodes each query was sent to
  // (trace) the highest TTL each node was sent each query with, and the
  // sends of the dynamic query steps (by an ultrapeer, hops 0 or 1).
  std::map<std::size_t, std::unordered_map<std::size_t, unsigned>> ttl_seen;
  std::map<std::size_t, std::string> steps;
  std::map<std::size_t, std::unordered_map<std::size_t, unsigned>> first_seen;  // (trace) TTL of the first copy
  std::uint64_t query_sends = 0, from_leaves = 0, to_leaves = 0;
  net.on_event = [&](std::size_t node, const Event& e, Instant at) {
    if (std::holds_alternative<event::RoleChanged>(e)) {
      ++res.role_changes;
      if (auto it = last_change.find(node); it != last_change.end()) {
        res.shortest_role_gap = std::min(res.shortest_role_gap, at - it->second);
      }
      last_change[node] = at;
    } else if (const auto* h = std::get_if<event::Hit>(&e)) {
      if (auto it = query_index.find(h->query); it != query_index.end() && asker[it->second] == node) ++results[it->second];
    }
  };
  net.on_send = [&](std::size_t from, std::size_t to, wire::ByteView bytes, Instant) {
    if (bytes.size() < gn::kHeaderSize || bytes[16] != static_cast<std::uint8_t>(gn::Type::Query)) return;
    if (query_index.empty()) return;
    if (auto h = gn::decode_header(bytes); h && query_index.count(h->id)) {
      ++query_sends;
      if (cfg.trace) {
        const std::size_t q = query_index[h->id];
        reached[q].insert(to);
        auto [seen, fresh] = ttl_seen[q].try_emplace(to, h->ttl);
        first_seen[q].try_emplace(to, h->ttl);
        if (h->hops <= 1 && net.core(from).role() == Role::Ultrapeer && net.core(to).role() == Role::Ultrapeer) {
          steps[q] += fmt::format(" {:.1f}s:{}->{}/ttl{}{}", std::chrono::duration<double>(net.now().since_epoch).count(),
                                  from, to, h->ttl, fresh ? "" : fmt::format("(had {})", seen->second));
        }
        if (!fresh) seen->second = std::max<unsigned>(seen->second, h->ttl);
      }
      from_leaves += net.core(from).role() == Role::Leaf;
      to_leaves += net.core(to).role() == Role::Leaf;
    }
  };

  // 1. Join.
  const Duration gap = cfg.join_over / static_cast<std::int64_t>(std::max<std::size_t>(cfg.nodes, 1));
  for (std::size_t i = 0; i < cfg.nodes; ++i) {
    net.run_for(gap, 2'000'000'000);
    add_node();
    if ((i + 1) % std::max<std::size_t>(cfg.nodes / 10, 1) == 0) trace("join");
  }
  // 2. Settle (ultrapeers counted every minute).
  for (Duration t{0}; t < cfg.settle; t += 1min) {
    net.run_for(std::min<Duration>(1min, cfg.settle - t), 2'000'000'000);
    res.settle_samples.push_back(count_ultrapeers());
    trace("settle");
  }

  if (cfg.trace) {
    // The ultrapeer mesh: how far apart in joining order the two ends of a
    // link are (against any two ultrapeers), and the hops between ultrapeers
    // (from 20 of them) as a histogram. A mesh grown over time is not a
    // random graph: links join ultrapeers promoted about the same time.
    index_listens();
    std::vector<std::size_t> ups;
    for (std::size_t i : live) {
      if (net.core(i).role() == Role::Ultrapeer) ups.push_back(i);
    }
    std::unordered_map<std::size_t, std::vector<std::size_t>> adj;
    double link_gap = 0, any_gap = 0;
    std::size_t ends = 0, pairs = 0;
    for (std::size_t i : ups) {
      adj[i] = up_neighbours(i);
      for (std::size_t j : adj[i]) link_gap += std::abs(static_cast<double>(i) - static_cast<double>(j));
      ends += adj[i].size();
    }
    for (std::size_t a = 0; a < ups.size(); a += 7) {
      for (std::size_t b = 0; b < ups.size(); b += 11, ++pairs) {
        any_gap += std::abs(static_cast<double>(ups[a]) - static_cast<double>(ups[b]));
      }
    }
    std::map<int, std::size_t> hist;
    for (std::size_t k = 0; k < ups.size() && k < 20; ++k) {
      const std::size_t from = ups[k * ups.size() / std::min<std::size_t>(ups.size(), 20)];
      std::unordered_map<std::size_t, int> dist{{from, 0}};
      for (std::vector<std::size_t> frontier{from}; !frontier.empty();) {
        std::vector<std::size_t> next;
        for (std::size_t u : frontier) {
          for (std::size_t v : adj[u]) {
            if (dist.try_emplace(v, dist[u] + 1).second) next.push_back(v);
          }
        }
        frontier = std::move(next);
      }
      for (std::size_t u : ups) {
        auto it = dist.find(u);
        ++hist[it == dist.end() ? -1 : it->second];
      }
    }
    std::string line;
    for (const auto& [d, n] : hist) line += fmt::format(" {}:{}", d < 0 ? std::string("none") : std::to_string(d), n);
    std::fprintf(stderr, "ultrapeer links: %zu ends, mean joining-order gap %.0f against %.0f for any two; hops:%s\n", ends,
                 ends ? link_gap / static_cast<double>(ends) : 0.0, pairs ? any_gap / static_cast<double>(pairs) : 0.0,
                 line.c_str());
  }

  // 3. The same queries for both networks (the draws depend on the seed
  // only): mostly files by the Zipf law, one in ten for a file nobody has.
  Rng qrng(cfg.seed * 31 + 5);
  for (std::size_t q = 0; q < cfg.queries; ++q) {
    const std::size_t file = qrng.below(10) == 0 ? cfg.catalogue + qrng.below(1000) : zipf.draw(qrng);
    const std::size_t who = live[qrng.below(live.size())];
    bool shared = false;
    for (std::size_t i : live) shared = shared || (i != who && shares[i].count(file));
    res.answerable += shared;
    res.orphan_askers += !has_parent(who);
    asker.push_back(who);
    results.push_back(0);
    net.with_core(who, [&](GnutellaCore& c) {
      const auto sent = c.search(Search{word_of(file), 7, {}}, net.now());
      query_index[sent.guid] = q;
    });
    net.run_for(2s, 2'000'000'000);
  }
  net.run_for(3min, 2'000'000'000);
  res.queries = cfg.queries;
  if (cfg.trace) {
    // An answerable query that found nothing: who asked, who had the file.
    index_listens();
    Rng again(cfg.seed * 31 + 5);
    for (std::size_t q = 0; q < cfg.queries; ++q) {
      const std::size_t file = again.below(10) == 0 ? cfg.catalogue + again.below(1000) : zipf.draw(again);
      again.below(live.size());
      std::string holders;
      for (std::size_t i : live) {
        if (i == asker[q] || !shares[i].count(file)) continue;
        holders += fmt::format(" {}({})", i, net.core(i).role() == Role::Ultrapeer ? "up" : "leaf");
      }
      if (results[q] == 0 && !holders.empty()) {
        std::size_t ups = 0, ups_reached = 0;
        for (std::size_t i : live) {
          if (net.core(i).role() != Role::Ultrapeer) continue;
          ++ups;
          ups_reached += reached[q].count(i);
        }
        auto first_ttl = [&](std::size_t i) {
          auto it = first_seen[q].find(i);
          return it == first_seen[q].end() ? 0u : it->second;
        };
        for (std::size_t i : live) {
          if (i == asker[q] || !shares[i].count(file)) continue;
          std::fprintf(stderr, "  holder %zu received it: %s; ultrapeers reached %zu of %zu\n", i,
                       reached[q].count(i) ? "yes" : "no", ups_reached, ups);
          // Its ultrapeers: did they get it, and how many of their ultrapeer
          // neighbours first got it with TTL 2 or more (and so relayed it)?
          for (const auto& p : net.core(i).peers()) {
            if (!p.established || p.link != "parent") continue;
            auto at = by_listen.find(p.listen);
            if (at == by_listen.end()) continue;
            const std::size_t up = at->second;
            const auto neighbours = up_neighbours(up);
            const auto relayers = std::count_if(neighbours.begin(), neighbours.end(),
                                                [&](std::size_t n) { return first_ttl(n) >= 2; });
            std::fprintf(stderr, "    its ultrapeer %zu: first TTL %u; %zu of its %zu ultrapeer neighbours relayed it\n", up,
                         first_ttl(up), static_cast<std::size_t>(relayers), neighbours.size());
          }
        }
        std::fprintf(stderr, "query %zu for file %zu by %zu (%s) found nothing; holders:%s\n", q, file, asker[q],
                     net.core(asker[q]).role() == Role::Ultrapeer ? "up" : "leaf", holders.c_str());
        std::fprintf(stderr, "  steps:%s\n", steps[q].c_str());
      }
    }
  }
  std::size_t total = 0;
  for (std::size_t r : results) {
    res.answered += r > 0;
    total += r;
  }
  res.results_per_query = cfg.queries ? static_cast<double>(total) / static_cast<double>(cfg.queries) : 0;
  res.query_messages_per_query = cfg.queries ? static_cast<double>(query_sends) / static_cast<double>(cfg.queries) : 0;
  res.query_messages_per_node = res.query_messages_per_query / static_cast<double>(cfg.nodes);
  if (cfg.queries) {
    const auto q = static_cast<double>(cfg.queries);
    res.from_leaves_per_query = static_cast<double>(from_leaves) / q;
    res.to_leaves_per_query = static_cast<double>(to_leaves) / q;
    res.between_ultrapeers_per_query = static_cast<double>(query_sends - from_leaves - to_leaves) / q;
  }
  query_index.clear();

  // 4. Churn: a share of the nodes replaced every minute, the ultrapeers
  // counted every minute.
  res.ultrapeer_samples.push_back(count_ultrapeers());
  if (!cfg.flat && cfg.churn_per_minute > 0) {
    const auto per_second = cfg.churn_per_minute * static_cast<double>(cfg.nodes) / 60.0;
    double owed = 0;
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(cfg.churn_for).count();
    for (std::int64_t s = 1; s <= seconds; ++s) {
      owed += per_second;
      for (; owed >= 1; owed -= 1) {
        const std::size_t at = rng.below(live.size());
        net.kill(live[at]);
        live[at] = live.back();
        live.pop_back();
        add_node();
      }
      net.run_for(1s, 2'000'000'000);
      if (s % 60 == 0) res.ultrapeer_samples.push_back(count_ultrapeers());
      if (s % 20 == 0) trace("churn");  // (every 20 s: a minute hides the dips)
    }
  }
  for (std::size_t i = 0; i < net.size(); ++i) res.bootstrap_promotions += net.core(i).stat(GnutellaCore::kPromotionsBootstrap);
  res.nodes = live.size();
  res.ultrapeers = count_ultrapeers();
  for (std::size_t i : live) res.leaves_without_ultrapeer += !has_parent(i);
  for (std::size_t i = 0; i < net.size(); ++i) {
    const auto cs = net.core(i).counters();
    if (res.counters.empty()) {
      for (const auto& c : cs) res.counters.emplace_back(std::string(c.name), 0);
    }
    for (std::size_t k = 0; k < cs.size() && k < res.counters.size(); ++k) res.counters[k].second += cs[k].value;
  }
  res.events = net.events_processed();
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return res;
}

}  // namespace sv::sim
