// KelipsCore: one Kelips node (Gupta, Birman, Linga, Demers, van Renesse,
// "Kelips: Building an Efficient and Stable P2P DHT Through Increased
// Memory and Background Overhead", IPTPS 2003) speaking the RPCs of
// wire/dht over one UDP socket, sans-I/O.
//
//  - k affinity groups (k ≈ √N, the same at every node: --groups); a
//    node's group is its id mod k, a key's group the key's id mod k (§2);
//  - soft state (§2.1): the affinity group view (every member of our group
//    we hear of, with its heartbeat and the round trip we measured), c
//    contacts for each foreign group, and the file tuples of our group's
//    keys (key -> the members that store its values, its "homes");
//  - gossip (§2.2): every gossip_every a node raises its own heartbeat and
//    sends a Gossip to `fanout` random members and one random contact:
//    entries (itself, the members it heard of most recently, a random
//    sample, a few contacts) and, inside the group, tuples (the newest,
//    then the next slice of all it knows, so every tuple comes round).
//    The receiver answers with its own (push-pull). A member whose
//    heartbeat has not grown for member_timeout is dead and dropped;
//  - lookup (§2.3): ask a contact of the key's group (one hop); it answers
//    the homes from its tuples; a dead contact is dropped and the next one
//    asked, then any node that can name members of the group (rerouting:
//    a node asked about another group names its contacts there and two
//    members of its own, who have contacts of their own);
//  - a request unanswered for rpc_timeout is sent once more (`retries`,
//    waiting twice as long) before its node counts as dead; a node that
//    lost every member and contact joins again through its introducer;
//  - put: a member of the key's group stores the value and copies it to
//    homes - 1 other members; every home gossips its tuple; a home that
//    sees fewer than `homes` live homes of a key (failures) copies it
//    again, so keys survive failures as long as one home lives;
//  - bad input (malformed datagrams, another overlay, answers nobody asked
//    for, stores for another group, entries claiming to be us) is counted
//    and dropped.
#pragma once

#include <array>
#include <deque>
#include <map>
#include <set>
#include <span>
#include <utility>
#include <unordered_map>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "servent/dht/node_base.hpp"

namespace sv::dht {

struct KelipsConfig {
  int bits = 160;
  std::uint32_t groups = 8;             // k: about √N, the same at every node
  std::size_t contacts = 2;             // c per foreign group
  std::size_t homes = 6;                // members that store each value (all of a small group; at most 12)
  Duration gossip_every = 1s;
  std::size_t fanout = 1;               // members gossiped to per round (and one contact)
  std::size_t gossip_entries = 16;
  std::size_t gossip_tuples = 16;
  Duration member_timeout = 15s;        // no heartbeat growth for this long: dead
  Duration contact_stale = 60s;         // a contact not heard of for this long may be replaced
  Duration repair_every = 5s;           // homes check each key still has `homes` live homes
  Duration rpc_timeout = 500ms;
  int retries = 1;                      // a request is sent again (waiting twice as long) before its node is taken for dead
  Duration join_retry = 1s;
  std::size_t max_hops = 8;
  std::size_t max_keys = 200'000;
  std::size_t max_values_per_key = 16;
  Duration default_lifetime = 1h;
};

namespace kelips_rpc {
enum class Purpose : std::uint8_t { Join, Fill, Gossip, Find, Store, Get, Copy, Leave };
struct Pending {
  Purpose purpose;
  NodeRef to;
  std::uint64_t op = 0;
  Instant sent{};
};
}  // namespace kelips_rpc

class KelipsCore : public NodeBase<kelips_rpc::Pending> {
 public:
  KelipsCore(Endpoint self, SocketId socket, KelipsConfig config, std::uint64_t seed, std::optional<NodeId> id = {});

  void join(std::optional<Endpoint> introducer, Instant now) override;
  void leave(Instant now) override;
  std::uint64_t lookup(const NodeId& key, Instant now, std::optional<Endpoint> via = {}) override;
  std::uint64_t put(const NodeId& key, wire::Bytes value, Instant now, Duration lifetime = Duration::zero(),
                    std::optional<Endpoint> via = {}) override;
  std::uint64_t get(const NodeId& key, Instant now, std::optional<Endpoint> via = {}) override;
  std::string_view overlay() const override { return "kelips"; }
  bool joined() const override { return joined_; }
  std::vector<Counter> counters() const override;
  std::string describe() const override;
  OverlayView view() const override;

  // Soft state, for tests and the simulator.
  std::uint32_t group() const { return group_of(self_.id); }
  std::uint32_t group_of(const NodeId& id) const;
  std::size_t members() const { return members_.size(); }
  std::size_t contacts() const;
  std::size_t groups_with_contacts() const;
  std::size_t tuples() const { return tuples_.size(); }
  std::size_t keys() const { return store_.size(); }
  bool holds(const NodeId& key) const { return store_.count(key) != 0; }
  bool knows(const NodeId& id) const { return is_member(id); }
  // A node heard of without a gossip (the simulator seeds a few members
  // and contacts instead of 100,000 joins through one introducer).
  // `fresh`: as heard from the node itself just now (the simulator's
  // stabilised setup); else half aged, as others' news is.
  void learn(const NodeRef& n, Instant now, bool fresh = false) { hear(n, 0, now, fresh); }

  // Bytes the soft state takes (entries x their size with the allocator's
  // per-node overhead): what the lecture's 1.93 MB is about.
  struct Footprint {
    std::size_t member_bytes = 0, contact_bytes = 0, tuple_bytes = 0;
    std::size_t per_member = 0, per_contact = 0, per_tuple = 0;  // (a tuple with one home)
    std::size_t total() const { return member_bytes + contact_bytes + tuple_bytes; }
  };
  Footprint footprint() const;

  enum Stat : std::size_t {
    kDatagramsIn,
    kDatagramsOut,
    kMalformed,
    kWrongOverlay,
    kUnexpected,
    kTimeouts,
    kGossipsSent,
    kLookups,
    kLookupsFailed,
    kLookupHops,
    kOneHop,           // lookups answered by the first node asked
    kStores,
    kStoresRefused,    // over max_keys, or a key of another group
    kCopies,           // values copied to other homes (on put and on repair)
    kMembersDead,
    kSpoofed,          // entries that claim our id with another address
    kRejoins,          // joined again after losing every member and contact
    kStatCount
  };
  std::uint64_t stat(Stat s) const { return stats_[s]; }

  void handle_timeout(Instant now) override;
  std::optional<Instant> poll_timeout() const override;

 private:
  using Purpose = kelips_rpc::Purpose;
  using Pending = kelips_rpc::Pending;
  using IdHash = NodeIdHash;
  struct Member {
    NodeRef node;
    std::uint32_t heartbeat = 0;
    Instant seen{};
    std::uint16_t rtt_ms = 0;
    std::uint16_t handle = 0;  // what tuples call it (0 is ourselves)
  };
  // A tuple: a key of our group and its homes by member handle, 2 bytes
  // each, not a node's 26 (the tuples are most of a node's memory: files / k
  // of them, kept in one sorted array without per-entry allocations).
  static constexpr std::size_t kMaxHomes = 12;
  struct Tuple {
    NodeId key{};
    std::uint8_t n = 0;
    std::array<std::uint16_t, kMaxHomes> at{};
  };
  struct Value {
    wire::Bytes bytes;
    Instant expires;
  };
  struct Op {
    OpKind kind;
    NodeId key{};
    std::uint32_t group = 0;
    wire::Bytes value;
    std::uint32_t lifetime = 0;
    std::vector<NodeRef> route;
    std::vector<NodeRef> next;       // whom to ask, best first
    std::vector<NodeId> asked;
    bool reached_group = false;      // a member of the key's group answered
  };

  std::uint64_t send_rpc(Purpose purpose, const NodeRef& to, const Message& m, Instant now, std::uint64_t op = 0);
  void answer(const Message& m, Endpoint from, Instant now) override;
  void on_response(const Message& m, Rpc p, Instant now) override;
  void on_timeout(Rpc p, Instant now);

  // Membership.
  // `direct`: the node itself told us (only that brings back one we found dead).
  void hear(const NodeRef& n, std::uint32_t heartbeat, Instant now, bool direct);
  void drop_member(const NodeId& id, Instant now);
  void drop_contact(const NodeId& id);
  // Where a member is in members_ (none: not a member we know alive).
  std::optional<std::size_t> place_of(const NodeId& id) const;
  bool is_member(const NodeId& id) const { return place_of(id).has_value(); }
  std::vector<NodeRef> random_members(std::size_t n, const std::vector<NodeId>& except = {});
  // Group g's contact slots (c of them; an empty one has port 0).
  std::span<Member> contact_slots(std::uint32_t g);
  std::span<const Member> contact_slots(std::uint32_t g) const;
  const Member* random_contact(std::uint32_t g);
  std::vector<NodeRef> contacts_for(std::uint32_t g) const;
  void gossip_round(Instant now);
  // What we gossip to a node of `to_group` (ours: entries and tuples).
  Message gossip_message(std::uint32_t to_group);
  void merge_gossip(const Message& m, Instant now);
  void expire_members(Instant now);

  // Keys.
  std::vector<NodeRef> live_homes(const NodeId& key) const;
  void add_home(const NodeId& key, const NodeRef& home);
  // The node a home handle names (nullptr: no longer a member).
  const NodeRef* home_node(std::uint16_t handle) const;
  const Tuple* find_tuple(const NodeId& key) const;  // (nullptr: none)
  Tuple* find_tuple(const NodeId& key) { return const_cast<Tuple*>(std::as_const(*this).find_tuple(key)); }
  void store_value(const NodeId& key, wire::Bytes v, Instant expires);
  void copy_to_homes(const NodeId& key, std::size_t wanted, Instant now);
  void repair(Instant now);

  // Operations.
  std::uint64_t start_op(Op op, std::optional<Endpoint> via, Instant now);
  void op_step(std::uint64_t id, Instant now);
  void op_done(std::uint64_t id, bool ok, std::string error = {}, NodeRef owner = {}, std::vector<wire::Bytes> values = {});
  void add_candidates(Op& o, const std::vector<NodeRef>& nodes, bool front);

  KelipsConfig config_;
  bool joined_ = false;
  std::uint32_t heartbeat_ = 0;
  std::vector<Member> members_;                          // our group, without us
  // member id -> place in members_ + 1 (0: empty), open addressing on the
  // id's bytes (SHA-1: uniform) mixed with a per-node salt, at most half
  // full: a probe or two where a binary search over a large view read nine
  // cold cache lines (100,000 simulated nodes are memory-bound).
  std::vector<std::uint16_t> slots_;
  std::uint64_t salt_ = 0;
  std::size_t slot_of(const NodeId& id) const;
  std::optional<std::size_t> find_slot(const NodeId& id) const;
  void index_insert(std::size_t at);
  void index_erase(std::size_t slot);
  std::vector<std::uint16_t> place_;                     // handle -> place in members_ + 1 (0: none)
  std::vector<std::uint16_t> free_handles_;              // handles no tuple names any more
  std::vector<std::uint16_t> released_;                  // dropped since the tuples were last swept
  std::vector<Member> contacts_;                         // c slots per group: [g * c + i]
  std::vector<Tuple> tuples_;                            // our group's keys -> homes, sorted by key
  std::size_t tuple_cursor_ = 0;                         // where the gossip of all tuples goes on
  std::map<NodeId, std::vector<Value>> store_;           // keys we are a home of
  std::set<NodeId> short_;                               // keys short of homes at the last repair
  std::deque<NodeId> recent_members_;                    // heard of lately: gossiped first
  std::deque<wire::dht::Tuple> recent_tuples_;
  absl::flat_hash_map<NodeId, std::pair<std::uint32_t, Instant>, IdHash> dead_;  // heartbeat at death, until
  std::unordered_map<std::uint64_t, Op> ops_;
  std::uint64_t next_op_ = 1;
  std::optional<Endpoint> introducer_;
  std::optional<Instant> next_join_;
  Instant next_gossip_{}, next_repair_{}, next_expire_{};
};

}  // namespace sv::dht
