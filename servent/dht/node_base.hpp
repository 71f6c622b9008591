// What every overlay's node does the same way: its identity on the ring,
// the socket, the RPCs it has asked (RpcTable), datagrams in (decoded,
// counted, addresses filled in) and out, and the queues the Driver and the
// commands poll. `Pending` is what a node keeps with each RPC it asks; it
// has a `NodeRef to` (whom it asked).
#pragma once

#include <deque>
#include <optional>
#include <vector>

#include "servent/dht/dht_core.hpp"
#include "servent/dht/rpc_table.hpp"

namespace sv::dht {

template <class Pending>
class NodeBase : public DhtCore {
 public:
  // The socket is bound: where the node listens now; unless an id was given,
  // the id follows (random when bound to 0.0.0.0, which names no one host).
  void bind(SocketId socket, Endpoint at) override {
    socket_ = socket;
    self_.ip = at.ip;
    self_.port = at.port;
    if (id_given_) return;
    if (at.ip == 0) {
      NodeId r;
      rng_.fill(r.data(), r.size());
      self_.id = ring_.reduce(r);
    } else {
      self_.id = node_id_for(at, ring_);
    }
  }
  const NodeRef& self() const override { return self_; }
  const Ring& ring() const override { return ring_; }
  std::optional<OpResult> poll_result() override { return take_front(results_); }
  std::optional<Action> poll_action() override {
    if (action_next_ == actions_.size()) {
      actions_.clear();  // (drained: the capacity is kept for the next ones)
      action_next_ = 0;
      return std::nullopt;
    }
    return std::move(actions_[action_next_++]);
  }
  // (datagrams only)
  void handle_connected(ConnId, Endpoint, Direction, Instant) final {}
  void handle_bytes(ConnId, wire::ByteView, Instant) final {}
  void handle_closed(ConnId, CloseReason, Instant) final {}
  // SIGINT / SIGTERM: a graceful leave, when a member.
  void handle_shutdown(Instant now) override {
    if (joined()) leave(now);
  }
  // A request is answered (answer()); a response goes with the RPC it
  // answers (on_response()); anything else is counted and dropped.
  void handle_datagram(SocketId, Endpoint from, wire::ByteView bytes, Instant now) final {
    now_ = now;
    auto m = receive(from, bytes);
    if (!m) return;
    if (!m->response) {
      answer(*m, from, now);
      return;
    }
    auto p = answered(*m);
    if (!p) return;
    on_response(*m, std::move(*p), now);
  }

 protected:
  using Message = wire::dht::Message;
  using Rpc = typename RpcTable<Pending>::Entry;
  // The first counters of every overlay, in this order (the overlays' own
  // Stat enums start with them).
  enum WireStat : std::size_t { kWireIn, kWireOut, kWireMalformed, kWireWrongOverlay, kWireUnexpected };

  NodeBase(Ring ring, wire::dht::Overlay overlay, Endpoint self, SocketId socket, std::uint64_t seed,
           std::optional<NodeId> id, std::size_t stat_count)
      : ring_(ring), overlay_(overlay), socket_(socket), rng_(seed), stats_(stat_count, 0) {
    self_.id = id ? ring_.reduce(*id) : node_id_for(self, ring_);
    self_.ip = self.ip;
    self_.port = self.port;
    id_given_ = id.has_value();
  }

  virtual void answer(const Message& m, Endpoint from, Instant now) = 0;
  virtual void on_response(const Message& m, Rpc p, Instant now) = 0;

  // A put's lifetime in whole seconds (zero: the overlay's default).
  static std::uint32_t lifetime_seconds(Duration lifetime, Duration fallback) {
    const Duration life = lifetime > Duration::zero() ? lifetime : fallback;
    return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(life).count());
  }

  Message request(wire::dht::Type t) const {
    Message m;
    m.type = t;
    m.overlay = overlay_;
    m.sender = self_;
    return m;
  }
  // Sends a request with a fresh id, kept with `info` until its answer or
  // `timeout`; returns the id.
  std::uint64_t send_request(Pending info, const Message& msg, Instant now, Duration timeout) {
    Message m = msg;
    m.request = rpcs_.next_id(rng_);
    // (one buffer for the send and for a retry)
    auto bytes = std::make_shared<const Buffer>(wire::dht::encode_message(m));
    push_action(action::SendTo{socket_, Endpoint{info.to.ip, info.to.port}, bytes});
    ++stats_[kWireOut];
    rpcs_.add(Rpc{std::move(info), std::move(bytes), now + timeout, 0, m.request});
    return m.request;
  }
  void push_action(Action a) { actions_.push_back(std::move(a)); }
  // The same datagram again, waiting until `deadline`.
  void resend(Rpc p, Instant deadline) {
    p.deadline = deadline;
    push_action(action::SendTo{socket_, Endpoint{p.info.to.ip, p.info.to.port}, p.datagram});
    ++stats_[kWireOut];
    rpcs_.add(std::move(p));
  }
  void send_reply(Endpoint to, const Message& m) {
    push_action(action::SendTo{socket_, to, std::make_shared<const Buffer>(wire::dht::encode_message(m))});
    ++stats_[kWireOut];
  }
  // A datagram in: nullopt when it is malformed or another overlay's
  // (counted). Where the sender listens is as it says, else where it sent
  // from; a node it lists without an address (one bound to 0.0.0.0) is on
  // the sender's host.
  std::optional<Message> receive(Endpoint from, wire::ByteView bytes) {
    ++stats_[kWireIn];
    auto m = wire::dht::decode_message(bytes);
    if (!m) {
      ++stats_[kWireMalformed];
      return std::nullopt;
    }
    if (m->overlay != overlay_) {
      ++stats_[kWireWrongOverlay];
      return std::nullopt;
    }
    if (m->sender.ip == 0) m->sender.ip = from.ip;
    if (m->sender.port == 0) m->sender.port = from.port;
    for (auto& n : m->nodes) {
      if (n.ip == 0) n.ip = from.ip;
    }
    if (m->predecessor && m->predecessor->ip == 0) m->predecessor->ip = from.ip;
    for (auto& e : m->entries) {
      if (e.node.ip == 0) e.node.ip = from.ip;
    }
    for (auto& t : m->tuples) {
      if (t.home.ip == 0) t.home.ip = from.ip;
    }
    return std::move(*m);
  }
  // The RPC a response answers, taken out with the answerer's id filled in
  // (an introducer's was unknown); nullopt (counted) for an answer to
  // nothing we asked, or from another address than we asked.
  std::optional<Rpc> answered(const Message& m) {
    auto* asked = rpcs_.find(m.request);
    if (!asked || !(asked->info.to.ip == m.sender.ip && asked->info.to.port == m.sender.port)) {
      ++stats_[kWireUnexpected];
      return std::nullopt;
    }
    Rpc p = rpcs_.take(m.request);
    p.info.to.id = m.sender.id;
    return p;
  }

  Ring ring_;
  wire::dht::Overlay overlay_;
  SocketId socket_;
  NodeRef self_;
  bool id_given_ = false;
  Rng rng_;
  RpcTable<Pending> rpcs_;
  std::deque<OpResult> results_;
  // What to send, taken in order by poll_action(): a vector read from the
  // front and emptied when drained (a deque allocates a block every few
  // actions, and a node sends on every datagram it takes).
  std::vector<Action> actions_;
  std::size_t action_next_ = 0;
  std::vector<std::uint64_t> stats_;
  Instant now_{};
};

}  // namespace sv::dht
