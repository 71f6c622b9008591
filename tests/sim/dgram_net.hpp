// A simulated datagram network of real cores (the DHT overlays): every
// action::SendTo is delivered to the core listening at its address after the
// latency between the two nodes; timers fire at each core's poll_timeout().
// Events are ordered by (time, seq), so a run is reproducible from its seed.
//
// The queue: time is whole milliseconds, so the next kSpan ms are a wheel
// of slots, one per millisecond, each holding its events in the order they
// were pushed (which is seq order); events farther out wait in a heap and
// move into the wheel when their slot comes in range (before anything can
// be pushed there directly, so the order holds). With 100,000 nodes there
// are hundreds of thousands of events pending: a heap of them costs a
// dozen cache misses a step, a slot one.
//
// Latency model: each node sits at a random point of a unit square;
// one-way delay = base + per_unit x distance (2 ms + 0..141 ms by default),
// the same both ways, as Pastry's proximity experiments assume (a metric
// space). Optional loss drops a datagram with that probability.
#pragma once

#include <functional>
#include <memory>
#include <queue>
#include <unordered_map>
#include <vector>

#include "servent/core/core.hpp"

namespace sv::sim {

class DgramNet {
 public:
  explicit DgramNet(std::uint64_t seed) : rng_(seed) {}

  // Adds a node listening at `address`; returns its index.
  std::size_t add(std::unique_ptr<Core> core, Endpoint address);
  // The node fails: nothing more is delivered to it, its timers stop.
  void kill(std::size_t i);
  bool alive(std::size_t i) const { return nodes_[i].alive; }
  std::size_t size() const { return nodes_.size(); }
  Core& core(std::size_t i) { return *nodes_[i].core; }
  Endpoint address(std::size_t i) const { return nodes_[i].address; }
  // Runs `fn` on node i's core, then carries out what it asked for.
  void with(std::size_t i, const std::function<void(Core&)>& fn);

  // Processes events up to `until`; false if `max_events` came first.
  bool run_until(Instant until, std::size_t max_events = 500'000'000);
  bool run_for(Duration d, std::size_t max_events = 500'000'000) { return run_until(now_ + d, max_events); }
  Instant now() const { return now_; }

  Duration latency(std::size_t a, std::size_t b) const;
  Duration base = 2ms;
  Duration per_unit = 100ms;
  double loss = 0;
  std::uint64_t delivered() const { return delivered_; }
  std::uint64_t sent() const { return sent_; }
  // Observes every datagram sent (from node, to node or SIZE_MAX when no
  // live node listens there, bytes).
  std::function<void(std::size_t, std::size_t, wire::ByteView)> on_send;

 private:
  struct Node {
    std::unique_ptr<Core> core;
    Endpoint address;
    double x = 0, y = 0;
    bool alive = true;
    std::optional<Instant> timer;
  };
  struct Ev {
    Instant at;
    std::uint64_t seq;
    std::size_t node;
    std::size_t from;   // SIZE_MAX: a timer
    SharedBuffer bytes;
    bool operator>(const Ev& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  void pump(std::size_t i);
  void push(Instant at, std::size_t node, std::size_t from, SharedBuffer bytes);
  void deliver(Ev& ev);
  // Moves the far events whose slot is now in range into the wheel.
  void bring_in();
  static constexpr std::int64_t kSpan = 4096;  // ms (a power of two)
  std::vector<Ev>& slot(std::int64_t ms) { return wheel_[static_cast<std::size_t>(ms & (kSpan - 1))]; }

  Rng rng_;
  Instant now_{Duration(0)};
  std::uint64_t seq_ = 0, delivered_ = 0, sent_ = 0;
  std::vector<Node> nodes_;
  std::unordered_map<Endpoint, std::size_t, EndpointHash> by_address_;
  std::vector<std::vector<Ev>> wheel_ = std::vector<std::vector<Ev>>(kSpan);
  std::int64_t cursor_ = 0;   // the wheel's slot now (ms; never past now_)
  std::size_t taken_ = 0;     // events of that slot already taken
  std::size_t in_wheel_ = 0;  // events in the wheel not yet taken
  std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> far_;
};

}  // namespace sv::sim
