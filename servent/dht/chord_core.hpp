// ChordCore: one Chord node (Stoica et al., "Chord: A Scalable Peer-to-peer
// Lookup Protocol for Internet Applications", 2001/2003) speaking the RPCs
// of wire/dht over one UDP socket, sans-I/O (the Driver or the simulator
// delivers datagrams and time).
//
//  - ids on a ring of 2^bits (160: SHA-1 of "ip:port"; fewer bits for tests);
//  - lookups are iterative (the asker walks the route itself, so it can
//    print it): ask the closest preceding node it knows; a node answers
//    "owner" with its successor list when the key is in (itself, successor],
//    else the closest preceding nodes it knows of the key (§4.3, Fig. 5);
//    a node that does not answer is passed over for the next candidate;
//  - stabilize / notify (§4.6, Fig. 7) every stabilize_every, with the
//    successor list of r entries (§5.2) taken from the successor's;
//    check_predecessor every check_predecessor_every; fix_fingers one
//    finger per fix_fingers_every (fingers whose start falls within the
//    successor list are taken from it, without a lookup); a whole pass over
//    the table that changed no finger doubles the pause, up to
//    fix_fingers_max, and any finger that changes or fails brings it back
//    (a quiet ring costs little, a changing one is fixed at full pace); a
//    finger we have is first checked with one Neighbours RPC to it (it is
//    still successor(start) when its predecessor lies before start) and
//    looked up again only when that fails: one round trip instead of a
//    lookup's ~1/2 log2 N;
//  - keys: put/get find the owner (successor of the key) and store there;
//    the owner copies each value to its r successors (replicas), again every
//    replicate_every, so the keys survive r - 1 failures in a row and the new
//    owner of a failed node's keys already has them; a node that learns of a
//    new predecessor hands it the keys it now owns (join); leave() hands
//    every key to the successor and tells both neighbours (graceful leave).
//    A key that neither we own nor its owner has refreshed here for longer
//    than replicate_every (stored while the ring was still forming, at a
//    node the ring then grew past; or left behind by a hand-over to a node
//    that failed) is looked up again and sent to its owner; our copy goes
//    unless we are among the owner's r successors (DHash's "global
//    maintenance", without the Merkle trees).
//  - bad input (malformed datagrams, another overlay, oversized values,
//    answers nobody asked for) is counted and dropped.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "servent/dht/node_base.hpp"

namespace sv::dht {

struct ChordConfig {
  int bits = 160;
  std::size_t successors = 16;          // r (2 log2 N for the N expected)
  Duration stabilize_every = 1s;
  Duration fix_fingers_every = 250ms;
  Duration fix_fingers_max = 4s;        // the pause after quiet passes
  bool finger_lookups_only = false;     // no FingerCheck: every finger looked up (benches compare)
  Duration check_predecessor_every = 2s;
  Duration replicate_every = 30s;
  Duration rpc_timeout = 500ms;         // doubled on each retry
  Duration join_retry = 1s;             // a join that found no ring tries again
  // Our successor, looked up again through the node we joined by: two
  // rings that formed side by side (concurrent joins; Chord §4.4's "loopy"
  // state, which stabilize cannot see) merge.
  Duration ring_check_every = 30s;
  int retries = 1;                      // ring maintenance, and an operation's last candidate (else it moves on at once)
  std::size_t max_hops = 64;
  std::size_t max_keys = 200'000;       // values beyond are refused (Store: Full)
  std::size_t max_values_per_key = 16;
  Duration default_lifetime = 1h;
};

namespace chord_rpc {
enum class Purpose : std::uint8_t {
  Find, Store, Get, Stabilize, Notify, CheckPredecessor, Replicate, Handover, Rehome, Leave, FingerCheck
};
struct Pending {
  Purpose purpose;
  NodeRef to;
  std::uint64_t op = 0;  // Find / Store / Get: the operation
  NodeId key{};          // Rehome: the key sent on
  bool drop = false;     // Rehome: our copy goes once the owner has it
  int finger = -1;       // FingerCheck: the finger asked about
};
}  // namespace chord_rpc

class ChordCore : public NodeBase<chord_rpc::Pending> {
 public:
  // `self` is where this node listens (its id is SHA-1 of "ip:port" unless
  // given); `socket` is the UDP socket it sends from.
  ChordCore(Endpoint self, SocketId socket, ChordConfig config, std::uint64_t seed, std::optional<NodeId> id = {});

  // A ring of one, or joining through any node of a ring.
  void join(std::optional<Endpoint> introducer, Instant now) override;
  // Graceful leave: keys to the successor, both neighbours told.
  void leave(Instant now) override;
  // Takes the state a completed join and stabilisation leave (predecessor,
  // successor list, fingers: `fingers[i]` the successor of id + 2^i) and
  // runs the protocol from there: how the simulator sets up rings too
  // large to join one node at a time (Chord §5's stabilised networks).
  void assume(std::optional<NodeRef> predecessor, std::vector<NodeRef> successors,
              std::vector<std::optional<NodeRef>> fingers, Instant now);

  using OpKind = dht::OpKind;
  using OpResult = dht::OpResult;
  std::uint64_t lookup(const NodeId& key, Instant now, std::optional<Endpoint> via = {}) override;
  std::uint64_t put(const NodeId& key, wire::Bytes value, Instant now, Duration lifetime = Duration::zero(),
                    std::optional<Endpoint> via = {}) override;
  std::uint64_t get(const NodeId& key, Instant now, std::optional<Endpoint> via = {}) override;
  std::string_view overlay() const override { return "chord"; }
  std::string describe() const override;
  OverlayView view() const override;

  const std::optional<NodeRef>& predecessor() const { return pred_; }
  const std::vector<NodeRef>& successors() const { return succ_; }
  std::size_t fingers_set() const;
  std::size_t keys() const { return store_.size(); }
  bool holds(const NodeId& key) const { return store_.count(key) != 0; }
  bool joined() const override { return joined_; }

  enum Stat : std::size_t {
    kDatagramsIn,
    kDatagramsOut,
    kMalformed,
    kWrongOverlay,
    kUnexpected,       // a response to nothing we asked
    kTimeouts,
    kLookups,
    kLookupsFailed,
    kLookupHops,       // summed over successful lookups
    kStores,
    kStoresRefused,
    kReplicasSent,
    kKeysHandedOver,
    kKeysRehomed,      // orphaned keys sent on to the owner
    kPeersDead,
    kStatCount
  };
  std::uint64_t stat(Stat s) const { return stats_[s]; }
  std::vector<Counter> counters() const override;

  void handle_timeout(Instant now) override;
  std::optional<Instant> poll_timeout() const override;

 private:
  using Purpose = chord_rpc::Purpose;
  using Pending = chord_rpc::Pending;
  enum class OpStage : std::uint8_t { Finding, Storing, Getting };
  struct Op {
    OpKind kind;
    NodeId key{};
    wire::Bytes value;
    std::uint32_t lifetime = 0;
    int finger = -1;                 // a fix_fingers lookup (no result queued)
    bool join = false;               // the join lookup
    bool ring_check = false;         // our successor, asked through the introducer
    bool rehome = false;             // an orphaned key's owner
    bool internal() const { return finger >= 0 || join || ring_check || rehome; }  // (no result queued)
    OpStage stage = OpStage::Finding;
    std::vector<NodeRef> route;
    std::vector<NodeRef> next;       // candidates to ask, best first
    std::vector<NodeRef> owners;     // owner then its successors (for Get fallbacks)
    std::size_t owner_at = 0;
  };
  struct Value {
    wire::Bytes bytes;
    Instant expires;
    Instant refreshed;  // last stored here by its owner (or by us as the owner)
  };

  // (by id: others may list us under another address than our own idea of it)
  bool is_self(const NodeRef& n) const { return n.id == self_.id; }
  // (returns the request id, the key of its entry in rpcs_)
  std::uint64_t send_rpc(Purpose purpose, const NodeRef& to, const Message& m, Instant now, std::uint64_t op = 0);
  void answer(const Message& m, Endpoint from, Instant now) override;
  void on_response(const Message& m, Rpc p, Instant now) override;
  void on_timeout(Rpc p, Instant now);
  // Lookups.
  std::uint64_t start_op(Op op, Instant now);
  void op_step(std::uint64_t id, Instant now);
  void op_owner(std::uint64_t id, std::vector<NodeRef> owners, Instant now);
  // Get from o.owners[o.owner_at] (the owner, then its successors' replicas).
  void ask_holder(std::uint64_t id, const Op& o, Instant now);
  void op_done(std::uint64_t id, bool ok, std::string error = {});
  std::vector<NodeRef> preceding_candidates(const NodeId& key, std::size_t n) const;
  // Ring state.
  void set_successor_list(std::vector<NodeRef> list);
  void set_finger(std::size_t i, std::optional<NodeRef> n);
  void drop_fingers(const NodeRef& n);  // every finger naming n
  void forget(const NodeRef& dead, Instant now);
  bool owns(const NodeId& key) const;
  void store_value(const NodeId& key, wire::Bytes v, Instant expires, Instant now);
  Message store_message(const NodeId& key, const Value& v, Instant now, bool replica) const;
  void replicate(const NodeId& key, Instant now);
  void hand_over(const NodeRef& to, Instant now, bool all);
  void rehome_orphans(Instant now);
  void rehome_next(Instant now);
  // The key's owner is owners.front(), which owns (after, owner]: every
  // orphan in that range goes there.
  void rehome(const NodeId& after, const std::vector<NodeRef>& owners, Instant now);
  void fix_next_finger(Instant now);
  void look_up_finger(int i, Instant now);
  void expire(Instant now);

  ChordConfig config_;
  bool joined_ = false;
  std::optional<NodeRef> pred_;
  std::vector<NodeRef> succ_;                 // successor list, nearest first (never self)
  std::vector<std::optional<NodeRef>> fingers_;
  mutable std::vector<NodeRef> finger_nodes_;  // fingers_ without neighbouring repeats
  mutable bool fingers_changed_ = true;
  int next_finger_ = 0;
  Duration fix_pause_ = config_.fix_fingers_every;
  bool pass_changed_ = false;           // a finger changed in this pass
  std::optional<int> finger_check_;     // a FingerCheck in flight
  std::map<NodeId, std::vector<Value>> store_;
  std::unordered_map<std::uint64_t, Op> ops_;
  std::set<NodeId> orphans_;                  // keys to send on, their owners not yet looked up
  std::size_t rehoming_ = 0;                  // owner lookups in flight for them
  std::map<NodeId, Instant> dead_;            // recently failed: not taken back from others' lists for a while
  std::uint64_t next_op_ = 1;
  Instant next_stabilize_{}, next_fix_{}, next_check_{}, next_replicate_{}, next_expire_{};
  bool stabilizing_ = false, checking_ = false;
  std::optional<Endpoint> introducer_;
  std::optional<Instant> next_join_;
  Instant next_ring_check_{};
};

}  // namespace sv::dht
