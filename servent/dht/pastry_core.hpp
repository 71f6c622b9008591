// PastryCore: one Pastry node (Rowstron and Druschel, "Pastry: Scalable,
// decentralized object location and routing for large-scale peer-to-peer
// systems", Middleware 2001) speaking the RPCs of wire/dht over one UDP
// socket, sans-I/O.
//
//  - ids are strings of digits in base 2^b (b = 4: hex digits), bits / 4 of
//    them; a key belongs to the live node numerically closest to it;
//  - state (§2.1): the routing table (a row per shared prefix length, a
//    column per next digit), the leaf set (the L/2 numerically closest
//    smaller and L/2 larger ids, L = 16) and the neighbourhood set (the M
//    = 16 nodes nearest by measured round trip);
//  - routing (§2.2, iterative: the asker walks the route, so it can print
//    it): a node whose leaf set covers the key names the closest node as
//    the owner; else the table entry sharing one more digit with the key;
//    else any node it knows with as long a prefix and numerically closer;
//  - proximity (§2.5): every node learned is pinged once; a table slot
//    holds the candidate with the smallest round trip (on real nodes the
//    measured one, in the simulator its latency model's);
//  - join (§2.4): the joiner routes to its own id through any node, asks
//    each node on the route and the closest for their state (leaf set and
//    table), takes in what fits, then tells every node it now knows;
//  - upkeep: each second the leaf least recently asked is asked for its
//    leaf set (a silent one is dropped, its neighbours fill the gap); every
//    table_repair_every a random table entry is asked for its state;
//  - keys: stored at the closest node and copied to the replicas - 1 leaves
//    nearest it; a node holding a key some leaf is now closer to hands it
//    over (joins), and copies are refreshed every replicate_every;
//  - bad input is counted and dropped.
#pragma once

#include <array>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "servent/dht/node_base.hpp"

namespace sv::dht {

struct PastryConfig {
  int bits = 160;                      // a multiple of 4 (b = 4)
  std::size_t leaf_set = 16;           // L
  std::size_t neighbourhood = 16;      // M
  std::size_t replicas = 4;            // copies of each value (the closest node and its nearest leaves)
  bool proximity = true;               // table slots by round trip (off: the first candidate stays)
  Duration maintain_every = 1s;
  Duration table_repair_every = 20s;
  Duration replicate_every = 30s;
  Duration rpc_timeout = 500ms;
  Duration join_retry = 1s;
  std::size_t max_hops = 32;
  std::size_t max_keys = 200'000;
  std::size_t max_values_per_key = 16;
  Duration default_lifetime = 1h;
};

namespace pastry_rpc {
enum class Purpose : std::uint8_t { Find, Store, Get, State, Probe, Replicate, Handover, Announce, Leave };
struct Pending {
  Purpose purpose;
  NodeRef to;
  std::uint64_t op = 0;
  Instant sent{};
  NodeId key{};          // Handover: the key sent on
  bool drop = false;     // Handover: our copy goes once it has it
};
}  // namespace pastry_rpc

class PastryCore : public NodeBase<pastry_rpc::Pending> {
 public:
  PastryCore(Endpoint self, SocketId socket, PastryConfig config, std::uint64_t seed, std::optional<NodeId> id = {});

  void join(std::optional<Endpoint> introducer, Instant now) override;
  void leave(Instant now) override;
  std::uint64_t lookup(const NodeId& key, Instant now, std::optional<Endpoint> via = {}) override;
  std::uint64_t put(const NodeId& key, wire::Bytes value, Instant now, Duration lifetime = Duration::zero(),
                    std::optional<Endpoint> via = {}) override;
  std::uint64_t get(const NodeId& key, Instant now, std::optional<Endpoint> via = {}) override;
  std::string_view overlay() const override { return "pastry"; }
  bool joined() const override { return joined_; }
  std::vector<Counter> counters() const override;
  std::string describe() const override;
  OverlayView view() const override;

  // State, for tests and the simulator.
  std::size_t rows() const { return rows_; }
  int digit(const NodeId& id, std::size_t i) const;
  std::size_t shared_prefix(const NodeId& a, const NodeId& b) const;
  std::size_t table_entries() const;
  std::vector<NodeRef> leaves() const;  // smaller side, nearest first, then larger
  std::size_t neighbours() const { return neighbours_.size(); }
  std::size_t keys() const { return store_.size(); }
  bool holds(const NodeId& key) const { return store_.count(key) != 0; }
  // The table entry at (row, column), if any.
  std::optional<NodeRef> entry(std::size_t row, int column) const;
  // A node learned without a join (the simulator seeds its own), with the
  // round trip to it when known (proximity: the simulator's latency model).
  void learn(const NodeRef& n, std::optional<Duration> rtt, Instant now);

  enum Stat : std::size_t {
    kDatagramsIn,
    kDatagramsOut,
    kMalformed,
    kWrongOverlay,
    kUnexpected,
    kTimeouts,
    kLookups,
    kLookupsFailed,
    kLookupHops,
    kStores,
    kStoresRefused,
    kReplicasSent,
    kKeysHandedOver,
    kPeersDead,
    kProbes,           // pings to measure a round trip
    kStatCount
  };
  std::uint64_t stat(Stat s) const { return stats_[s]; }

  void handle_timeout(Instant now) override;
  std::optional<Instant> poll_timeout() const override;

 private:
  using Purpose = pastry_rpc::Purpose;
  using Pending = pastry_rpc::Pending;
  using IdHash = NodeIdHash;
  struct Slot {
    NodeRef node;
    std::uint32_t rtt_us = UINT32_MAX;  // (unknown: the largest)
  };
  enum class OpStage : std::uint8_t { Finding, Storing, Getting };
  struct Op {
    OpKind kind;
    NodeId key{};
    wire::Bytes value;
    std::uint32_t lifetime = 0;
    bool join = false;
    OpStage stage = OpStage::Finding;
    std::vector<NodeRef> route;
    std::vector<NodeRef> next;
    std::vector<NodeId> tried;       // asked (answered or not)
    std::vector<NodeRef> owners;     // closest first (for Get fallbacks)
    std::size_t owner_at = 0;
  };
  struct Value {
    wire::Bytes bytes;
    Instant expires;
  };

  std::uint64_t send_rpc(Purpose purpose, const NodeRef& to, const Message& m, Instant now, std::uint64_t op = 0);
  void answer(const Message& m, Endpoint from, Instant now) override;
  void on_response(const Message& m, Rpc p, Instant now) override;
  void on_timeout(Rpc p, Instant now);

  // Ids.
  Ring::Gap numeric_distance(const NodeId& a, const NodeId& b) const;  // the shorter way round
  bool clockwise_nearer(const NodeId& n) const;  // on our larger side
  // State.
  void consider(const NodeRef& n, Instant now);
  void place(const NodeRef& n, std::uint32_t rtt_us, Instant now);
  void add_leaf(const NodeRef& n, Instant now);
  bool leaf_covers(const NodeId& key) const;
  void forget(const NodeRef& dead, Instant now);
  std::vector<NodeRef> known_nodes() const;
  // The nodes that should hold `key` by what we know: closest first.
  std::vector<NodeRef> closest(const NodeId& key, std::size_t n) const;
  // Routing: owner (leaf set covers the key) or the next hops, best first.
  bool route(const NodeId& key, std::vector<NodeRef>& out) const;
  Message state_message(const Message& m) const;
  // Keys.
  void store_value(const NodeId& key, wire::Bytes v, Instant expires);
  Message store_message(const NodeId& key, const Value& v, Instant now, bool replica) const;
  void replicate(const NodeId& key, Instant now);
  void rebalance(Instant now);
  // Operations.
  std::uint64_t start_op(Op op, std::optional<Endpoint> via, Instant now);
  void op_step(std::uint64_t id, Instant now);
  void op_owner(std::uint64_t id, std::vector<NodeRef> owners, Instant now);
  void ask_holder(std::uint64_t id, Instant now);
  void op_done(std::uint64_t id, bool ok, std::string error = {}, std::vector<wire::Bytes> values = {});

  PastryConfig config_;
  std::size_t rows_;
  bool joined_ = false;
  std::vector<std::array<std::optional<Slot>, 16>> table_;
  std::vector<NodeRef> lo_, hi_;             // leaf set halves, nearest first
  std::vector<Slot> neighbours_;             // nearest by round trip first
  absl::flat_hash_map<NodeId, std::uint32_t, IdHash> rtt_;  // measured round trips (µs)
  absl::flat_hash_map<NodeId, Instant, IdHash> probing_;    // pings in flight
  absl::flat_hash_map<NodeId, Instant, IdHash> dead_;
  std::size_t leaf_turn_ = 0;
  std::map<NodeId, std::vector<Value>> store_;
  std::set<NodeId> primary_;                 // keys we hold as their closest node (we copy them on)
  bool rebalance_due_ = false;               // the leaf set changed: keys may move
  std::unordered_map<std::uint64_t, Op> ops_;
  std::uint64_t next_op_ = 1;
  std::optional<Endpoint> introducer_;
  std::optional<Instant> next_join_;
  Instant next_maintain_{}, next_repair_{}, next_replicate_{}, next_expire_{};
};

}  // namespace sv::dht
