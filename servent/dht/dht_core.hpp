// What every DHT overlay (Chord, Kelips, Pastry) offers the commands, the
// Driver and the simulator: a Core on one UDP socket that joins through any
// member, and lookups / puts / gets whose results are polled. Each starts
// from what the node knows or, with `via`, at that node (a short-lived
// client that never joins asks a member).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "servent/core/core.hpp"
#include "servent/dht/ring.hpp"

namespace sv::dht {

using wire::dht::NodeRef;

enum class OpKind : std::uint8_t { Lookup, Put, Get };

// Ids are SHA-1 (or reduced to fewer bits, the low ones kept): their low 8
// bytes hash well.
struct NodeIdHash {
  std::size_t operator()(const NodeId& id) const {
    std::uint64_t h = 0;
    for (std::size_t i = 12; i < 20; ++i) h = h << 8 | id[i];
    return static_cast<std::size_t>(h * 0x9E3779B97F4A7C15ull);
  }
};

struct OpResult {
  std::uint64_t op = 0;
  OpKind kind = OpKind::Lookup;
  bool ok = false;
  NodeRef owner;               // Chord: the key's successor; Kelips: a home; Pastry: the numerically closest
  std::vector<NodeRef> route;  // the nodes asked, in order, then the owner
  std::vector<wire::Bytes> values;
  std::string error;
};

// A node's place in its overlay, for people (the TUI's Network screen, the
// control socket's "dht"): the nodes it keeps, each with its role there.
struct OverlayView {
  std::string summary;
  std::vector<std::pair<std::string, NodeRef>> nodes;  // ("successor", n), ("member", n), ("leaf", n)...
};

class DhtCore : public Core {
 public:
  // The socket is bound (a core made before its socket): where it listens
  // now; unless an id was given, the id follows (random when bound to
  // 0.0.0.0, which names no one host).
  virtual void bind(SocketId socket, Endpoint at) = 0;
  // Alone (the first node), or joining through any member.
  virtual void join(std::optional<Endpoint> introducer, Instant now) = 0;
  // Graceful leave: what we hold goes to whom holds it after us.
  virtual void leave(Instant now) = 0;
  virtual std::uint64_t lookup(const NodeId& key, Instant now, std::optional<Endpoint> via = {}) = 0;
  // lifetime zero: the overlay's default.
  virtual std::uint64_t put(const NodeId& key, wire::Bytes value, Instant now, Duration lifetime = Duration::zero(),
                            std::optional<Endpoint> via = {}) = 0;
  virtual std::uint64_t get(const NodeId& key, Instant now, std::optional<Endpoint> via = {}) = 0;
  virtual std::optional<OpResult> poll_result() = 0;

  virtual std::string_view overlay() const = 0;
  virtual const NodeRef& self() const = 0;
  virtual const Ring& ring() const = 0;
  virtual bool joined() const = 0;
  virtual std::vector<Counter> counters() const = 0;
  // One line for people: the node's place in the overlay.
  virtual std::string describe() const = 0;
  virtual OverlayView view() const = 0;
};

// SHA-1 of "a.b.c.d:port", reduced to the ring: a node's id.
NodeId node_id_for(Endpoint e, const Ring& ring);
// SHA-1 of the key's text, reduced to the ring.
NodeId key_id(std::string_view key, const Ring& ring);

}  // namespace sv::dht
