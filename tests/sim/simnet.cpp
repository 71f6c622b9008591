#include "sim/simnet.hpp"

namespace sv::sim {

std::size_t SimNet::add_node(const share::Library& lib, GnutellaConfig cfg) {
  const std::size_t i = nodes_.size();
  // Virtual addresses in 127/8: labels only, never bound.
  Endpoint addr{0x7f000000u + 0x10000u + static_cast<std::uint32_t>(i), 6346};
  cfg.advertised = addr;
  Node n;
  n.core = std::make_unique<GnutellaCore>(lib, cfg, rng_.next());
  n.address = addr;
  nodes_.push_back(std::move(n));
  by_address_[addr] = i;
  return i;
}

void SimNet::connect(std::size_t from, std::size_t to, LinkParams params) {
  wanted_params_[{from, to}] = params;
  with_core(from, [&](GnutellaCore& c) { c.add_peer(nodes_[to].address, now_); });
}

void SimNet::with_core(std::size_t i, const std::function<void(GnutellaCore&)>& fn) {
  fn(*nodes_[i].core);
  pump(i);
}

void SimNet::schedule(Instant at, std::function<void()> fn) { queue_.push(Ev{at, seq_++, std::move(fn)}); }

bool SimNet::run_until(Instant until, std::size_t max_events) {
  std::size_t n = 0;
  while (!queue_.empty() && queue_.top().at <= until) {
    if (n++ >= max_events) return false;
    Ev ev = queue_.top();
    queue_.pop();
    now_ = ev.at;
    ++processed_;
    ev.fn();
  }
  now_ = until;
  return true;
}

void SimNet::kill(std::size_t i) {
  Node& node = nodes_[i];
  if (node.dead) return;
  node.dead = true;
  node.timer.reset();
  by_address_.erase(node.address);
  for (std::size_t li : node.links) {
    Link& l = links_[li];
    if (!l.open) continue;
    l.open = false;
    const bool killed_a = l.a == i;
    const std::size_t other = killed_a ? l.b : l.a;
    const ConnId other_id = killed_a ? l.id_b : l.id_a;
    if (killed_a ? l.up_b : l.up_a) {
      schedule(now_ + l.params.delay, [this, other, other_id] {
        if (nodes_[other].dead) return;
        nodes_[other].core->handle_closed(other_id, CloseReason::PeerClosed, now_);
        pump(other);
      });
    }
  }
}

void SimNet::pump(std::size_t i) {
  Node& node = nodes_[i];
  if (node.dead) {
    while (node.core->poll_action()) {
    }
    return;
  }
  while (auto a = node.core->poll_action()) execute(i, *a);
  while (auto e = node.core->poll_event()) {
    if (on_event) on_event(i, *e, now_);
    if (keep_events) node.events.push_back(std::move(*e));
  }
  auto t = node.core->poll_timeout();
  if (t && (!node.timer || *t < *node.timer)) {
    node.timer = *t;
    const Instant at = *t < now_ ? now_ : *t;
    schedule(at, [this, i, at] {
      Node& nd = nodes_[i];
      if (nd.dead || !nd.timer || *nd.timer > at) return;  // gone, or superseded by an earlier timer
      nd.timer.reset();
      nd.core->handle_timeout(now_);
      pump(i);
    });
  }
}

void SimNet::execute(std::size_t i, Action& a) {
  if (auto* b = std::get_if<action::Broadcast>(&a)) {
    for (ConnId id : b->conns) {
      Action one = action::Send{id, b->bytes};
      execute(i, one);
    }
    return;
  }
  if (auto* s = std::get_if<action::Send>(&a)) {
    auto it = conn_link_.find({i, s->conn.value});
    if (it == conn_link_.end()) return;
    Link& l = links_[it->second];
    if (!l.open) return;
    const bool from_a = l.a == i;
    const Instant at = deliver(it->second, from_a, s->bytes);
    if (on_send) on_send(i, from_a ? l.b : l.a, *s->bytes, at);
    return;
  }
  if (auto* c = std::get_if<action::Close>(&a)) {
    auto it = conn_link_.find({i, c->conn.value});
    if (it == conn_link_.end()) return;
    close_link(it->second, i, c->reason);
    return;
  }
  if (auto* c = std::get_if<action::Connect>(&a)) {
    auto target = by_address_.find(c->to);
    const ConnId id = c->conn;
    if (target == by_address_.end()) {
      schedule(now_ + 10ms, [this, i, id] {
        nodes_[i].core->handle_closed(id, CloseReason::ConnectFailed, now_);
        pump(i);
      });
      return;
    }
    const std::size_t j = target->second;
    Link l;
    l.a = i;
    l.b = j;
    l.id_a = id;
    l.id_b = ConnId{nodes_[j].next_inbound++};
    auto p = wanted_params_.find({i, j});
    l.params = p == wanted_params_.end() ? LinkParams{} : p->second;
    l.rng = Rng(rng_.next());
    l.last_a_to_b = l.last_b_to_a = now_;
    const std::size_t li = links_.size();
    links_.push_back(l);
    conn_link_[{i, id.value}] = li;
    conn_link_[{j, l.id_b.value}] = li;
    nodes_[i].links.push_back(li);
    nodes_[j].links.push_back(li);
    // The SYN/SYN-ACK takes one delay; both sides learn of the connection then.
    schedule(now_ + l.params.delay, [this, li] {
      Link& lk = links_[li];
      if (!lk.open) return;
      if (nodes_[lk.a].dead || nodes_[lk.b].dead) {
        lk.open = false;
        if (!nodes_[lk.a].dead) {
          nodes_[lk.a].core->handle_closed(lk.id_a, CloseReason::ConnectFailed, now_);
          pump(lk.a);
        }
        return;
      }
      lk.up_a = lk.up_b = true;
      Endpoint a_addr = nodes_[lk.a].address;
      a_addr.port = static_cast<std::uint16_t>(30000 + lk.id_b.value % 30000);
      nodes_[lk.b].core->handle_connected(lk.id_b, a_addr, Direction::Inbound, now_);
      pump(lk.b);
      nodes_[lk.a].core->handle_connected(lk.id_a, nodes_[lk.b].address, Direction::Outbound, now_);
      pump(lk.a);
    });
  }
}

Instant SimNet::deliver(std::size_t li, bool from_a, SharedBuffer bytes) {
  Link& l = links_[li];
  Instant at = now_ + l.params.delay;
  if (l.params.jitter.count() > 0) at = at + Duration(static_cast<std::int64_t>(l.rng.below(static_cast<std::uint64_t>(l.params.jitter.count()) + 1)));
  if (l.params.bytes_per_second > 0) {
    at = at + Duration(static_cast<std::int64_t>(bytes->size() * 1000 / l.params.bytes_per_second));
  }
  Instant& last = from_a ? l.last_a_to_b : l.last_b_to_a;
  if (at < last) at = last;  // TCP: in order
  last = at;
  const std::size_t to = from_a ? l.b : l.a;
  const ConnId to_id = from_a ? l.id_b : l.id_a;
  std::size_t pos = 0;
  while (pos < bytes->size()) {
    std::size_t n = bytes->size() - pos;
    if (l.params.max_chunk > 0) n = std::min<std::size_t>(n, 1 + l.rng.below(l.params.max_chunk));
    schedule(at, [this, li, to, to_id, bytes, pos, n] {
      if (!links_[li].open || nodes_[to].dead) return;
      nodes_[to].core->handle_bytes(to_id, wire::ByteView(bytes->data() + pos, n), now_);
      pump(to);
    });
    pos += n;
  }
  return at;
}

void SimNet::close_link(std::size_t li, std::size_t closer, CloseReason reason) {
  Link& l = links_[li];
  if (!l.open) return;
  // Bytes already in flight still arrive (flush), then the far side sees EOF.
  const bool from_a = l.a == closer;
  const Instant last = from_a ? l.last_a_to_b : l.last_b_to_a;
  const std::size_t other = from_a ? l.b : l.a;
  const ConnId own_id = from_a ? l.id_a : l.id_b;
  const ConnId other_id = from_a ? l.id_b : l.id_a;
  const bool other_up = from_a ? l.up_b : l.up_a;
  schedule(std::max(now_, last), [this, li, closer, own_id, other, other_id, other_up, reason] {
    Link& lk = links_[li];
    if (!lk.open) return;
    lk.open = false;
    if (nodes_[closer].dead) return;
    nodes_[closer].core->handle_closed(own_id, reason, now_);
    pump(closer);
    if (other_up) {
      schedule(now_ + lk.params.delay, [this, other, other_id] {
        if (nodes_[other].dead) return;
        nodes_[other].core->handle_closed(other_id, CloseReason::PeerClosed, now_);
        pump(other);
      });
    }
  });
}

std::vector<std::pair<std::size_t, std::size_t>> SimNet::established_links() const {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (const auto& l : links_) {
    if (l.open && l.up_a && l.up_b) out.emplace_back(l.a, l.b);
  }
  return out;
}

}  // namespace sv::sim
