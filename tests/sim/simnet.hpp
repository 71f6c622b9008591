// A simulated network of real GnutellaCores.
//
// An event queue ordered by (time, seq); links are TCP-like ordered byte
// streams with {delay, bandwidth, max_chunk, seed}: every Send is cut into
// random-size chunks delivered in order. Nodes have virtual addresses that
// never touch a real socket. The same core code runs here and in the real
// libuv Driver.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <unordered_map>
#include <vector>

#include "servent/gnutella/gnutella_core.hpp"

namespace sv::sim {

struct LinkParams {
  Duration delay = 10ms;
  std::uint64_t bytes_per_second = 0;  // 0: unlimited
  std::size_t max_chunk = 0;           // 0: whole sends; else chunks of 1..max_chunk bytes
  Duration jitter = 0ms;               // extra random delay per send, up to this (order kept)
};

class SimNet {
 public:
  explicit SimNet(std::uint64_t seed) : rng_(seed) {}

  // Adds a node; the library must outlive the network.
  std::size_t add_node(const share::Library& lib, GnutellaConfig cfg = {});
  // The node leaves for good (churn): its links close (the other sides see
  // the peer go), its address answers no more connects, its timers stop.
  void kill(std::size_t i);
  bool alive(std::size_t i) const { return !nodes_[i].dead; }
  // Node `from` keeps a connection to node `to` (an outgoing --connect).
  void connect(std::size_t from, std::size_t to, LinkParams params = {});

  // Processes events up to `until`; returns false when `max_events` were
  // processed first (a livelock guard).
  bool run_until(Instant until, std::size_t max_events = 50'000'000);
  bool run_for(Duration d, std::size_t max_events = 50'000'000) { return run_until(now_ + d, max_events); }

  Instant now() const { return now_; }
  std::size_t size() const { return nodes_.size(); }
  GnutellaCore& core(std::size_t i) { return *nodes_[i].core; }
  Endpoint address(std::size_t i) const { return nodes_[i].address; }
  // Runs a command on a node's core and executes the actions it produced.
  void with_core(std::size_t i, const std::function<void(GnutellaCore&)>& fn);
  // Events each node's core emitted, in order.
  std::vector<Event>& events(std::size_t i) { return nodes_[i].events; }
  // Observes every Send: (from node, to node, bytes of one action, the time
  // its last byte reaches the other side). Sends arriving at the same time are
  // processed in the order they were observed.
  std::function<void(std::size_t, std::size_t, wire::ByteView, Instant)> on_send;
  // Observes every core event with its node and time; with keep_events
  // false, events(i) stays empty (large runs).
  std::function<void(std::size_t, const Event&, Instant)> on_event;
  bool keep_events = true;
  // Pairs of nodes whose link is established on both sides.
  std::vector<std::pair<std::size_t, std::size_t>> established_links() const;
  std::uint64_t events_processed() const { return processed_; }

 private:
  struct Node {
    std::unique_ptr<GnutellaCore> core;
    Endpoint address;
    std::vector<Event> events;
    std::optional<Instant> timer;
    std::uint64_t next_inbound = 1;
    bool dead = false;
    std::vector<std::size_t> links;  // every link it was part of
  };
  struct Link {
    std::size_t a, b;  // a connected to b
    ConnId id_a, id_b;
    LinkParams params;
    Rng rng{0};
    bool open = true;
    bool up_a = false, up_b = false;
    Instant last_a_to_b, last_b_to_a;  // keeps each direction in order
  };
  struct Ev {
    Instant at;
    std::uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Ev& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  void schedule(Instant at, std::function<void()> fn);
  void pump(std::size_t node);
  void execute(std::size_t node, Action& a);
  Instant deliver(std::size_t link, bool from_a, SharedBuffer bytes);
  void close_link(std::size_t link, std::size_t closer, CloseReason reason);

  Rng rng_;
  Instant now_{Duration(0)};
  std::uint64_t seq_ = 0;
  std::uint64_t processed_ = 0;
  std::vector<Node> nodes_;
  std::vector<Link> links_;
  struct NodeConnHash {
    std::size_t operator()(const std::pair<std::size_t, std::uint64_t>& k) const noexcept {
      return std::hash<std::uint64_t>{}(k.second * 0x9E3779B97F4A7C15ull ^ k.first);
    }
  };
  std::unordered_map<std::pair<std::size_t, std::uint64_t>, std::size_t, NodeConnHash> conn_link_;  // (node, conn) -> link
  std::unordered_map<Endpoint, std::size_t, EndpointHash> by_address_;
  std::map<std::pair<std::size_t, std::size_t>, LinkParams> wanted_params_;
  std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> queue_;
};

}  // namespace sv::sim
