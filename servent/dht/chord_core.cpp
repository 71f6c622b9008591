#include "servent/dht/chord_core.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>


namespace sv::dht {

namespace dw = wire::dht;
using dw::Type;

namespace {

constexpr std::array<std::string_view, ChordCore::kStatCount> kStatNames = {
    "datagrams_in", "datagrams_out", "malformed",   "wrong_overlay",  "unexpected",    "timeouts",
    "lookups",      "lookups_failed", "lookup_hops", "stores",         "stores_refused", "replicas_sent",
    "keys_handed_over", "keys_rehomed", "peers_dead",
};

constexpr Duration kDeadFor = 30s;  // a failed node is not taken back from others' lists for this long

// The first node an operation asks: `via`, whose id we do not know yet.
std::vector<NodeRef> start_at(std::optional<Endpoint> via) {
  if (!via) return {};
  return {NodeRef{NodeId{}, via->ip, via->port}};
}

}  // namespace

ChordCore::ChordCore(Endpoint self, SocketId socket, ChordConfig config, std::uint64_t seed, std::optional<NodeId> id)
    : NodeBase(Ring(config.bits), wire::dht::Overlay::Chord, self, socket, seed, id, kStatCount), config_(config) {
  fingers_.resize(static_cast<std::size_t>(ring_.bits()));
}

std::vector<Counter> ChordCore::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

OverlayView ChordCore::view() const {
  OverlayView v{describe(), {}};
  if (pred_) v.nodes.emplace_back("predecessor", *pred_);
  for (const auto& n : succ_) v.nodes.emplace_back("successor", n);
  const NodeRef* last = nullptr;
  for (std::size_t i = 0; i < fingers_.size(); ++i) {
    const auto& f = fingers_[i];
    if (!f || (last && *last == *f)) continue;
    last = &*f;
    v.nodes.emplace_back(fmt::format("finger {}", i), *f);
  }
  return v;
}

std::string ChordCore::describe() const {
  return fmt::format("chord node {} on {}: predecessor {}, successor {} ({} in the list), {} fingers set, {} keys",
                     short_id(self_.id), Endpoint{self_.ip, self_.port}.to_string(), pred_ ? short_id(pred_->id) : "-",
                     succ_.empty() ? "-" : short_id(succ_.front().id), succ_.size(), fingers_set(), store_.size());
}

std::size_t ChordCore::fingers_set() const {
  return static_cast<std::size_t>(std::count_if(fingers_.begin(), fingers_.end(), [](const auto& f) { return f.has_value(); }));
}

// ---- sending ----

std::uint64_t ChordCore::send_rpc(Purpose purpose, const NodeRef& to, const Message& msg, Instant now, std::uint64_t op) {
  return send_request(Pending{purpose, to, op}, msg, now, config_.rpc_timeout);
}

// ---- joining and leaving ----

void ChordCore::join(std::optional<Endpoint> introducer, Instant now) {
  now_ = now;
  introducer_ = introducer;
  next_join_.reset();
  next_stabilize_ = next_fix_ = next_check_ = now;
  next_replicate_ = now + config_.replicate_every;
  next_ring_check_ = now + config_.ring_check_every;
  next_expire_ = now + 1min;
  if (!introducer) {
    joined_ = true;  // a ring of one: its own successor (succ_ empty)
    return;
  }
  Op op;
  op.kind = OpKind::Lookup;
  op.key = self_.id;
  op.join = true;
  op.next.push_back(NodeRef{NodeId{}, introducer->ip, introducer->port});
  start_op(std::move(op), now);
}

void ChordCore::assume(std::optional<NodeRef> predecessor, std::vector<NodeRef> successors,
                       std::vector<std::optional<NodeRef>> fingers, Instant now) {
  join(std::nullopt, now);  // (the timers, and joined)
  pred_ = std::move(predecessor);
  if (pred_ && is_self(*pred_)) pred_.reset();
  set_successor_list(std::move(successors));
  fingers.resize(fingers_.size());
  for (auto& f : fingers) {
    if (f && is_self(*f)) f.reset();
  }
  fingers_ = std::move(fingers);
  fingers_changed_ = true;
  fix_pause_ = config_.fix_fingers_max;  // (stabilised: the quiet pace, until a finger changes)
}

void ChordCore::leave(Instant now) {
  if (!succ_.empty()) {
    // Every key to the successor (it owns them once we are gone), then the
    // neighbours learn whom to use instead of us.
    hand_over(succ_.front(), now, true);
    Message to_succ = request(Type::Leave);
    to_succ.flags = dw::kFlagLeaving;
    if (pred_) to_succ.nodes.push_back(*pred_);
    send_rpc(Purpose::Leave, succ_.front(), to_succ, now);
  }
  if (pred_) {
    Message to_pred = request(Type::Leave);
    to_pred.flags = dw::kFlagLeaving;
    to_pred.nodes = succ_;
    send_rpc(Purpose::Leave, *pred_, to_pred, now);
  }
  joined_ = false;
}

// ---- operations ----

std::uint64_t ChordCore::lookup(const NodeId& key, Instant now, std::optional<Endpoint> via) {
  Op op;
  op.kind = OpKind::Lookup;
  op.key = ring_.reduce(key);
  op.next = start_at(via);
  return start_op(std::move(op), now);
}

std::uint64_t ChordCore::put(const NodeId& key, wire::Bytes value, Instant now, Duration lifetime,
                             std::optional<Endpoint> via) {
  Op op;
  op.kind = OpKind::Put;
  op.key = ring_.reduce(key);
  op.value = std::move(value);
  op.lifetime = lifetime_seconds(lifetime, config_.default_lifetime);
  op.next = start_at(via);
  return start_op(std::move(op), now);
}

std::uint64_t ChordCore::get(const NodeId& key, Instant now, std::optional<Endpoint> via) {
  Op op;
  op.kind = OpKind::Get;
  op.key = ring_.reduce(key);
  op.next = start_at(via);
  return start_op(std::move(op), now);
}

std::uint64_t ChordCore::start_op(Op op, Instant now) {
  const std::uint64_t id = next_op_++;
  if (!op.internal()) ++stats_[kLookups];
  const bool seeded = !op.next.empty();
  ops_[id] = std::move(op);
  Op& o = ops_[id];
  if (!seeded) {
    // What we know answers it at once: alone, we own every key; else our
    // successor may own it.
    if (succ_.empty()) {
      op_owner(id, {self_}, now);
      return id;
    }
    if (Ring::between_right(self_.id, o.key, succ_.front().id)) {
      op_owner(id, succ_, now);
      return id;
    }
    o.next = preceding_candidates(o.key, 3);
  }
  op_step(id, now);
  return id;
}

void ChordCore::op_step(std::uint64_t id, Instant now) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  Op& o = it->second;
  if (o.route.size() >= config_.max_hops) {
    op_done(id, false, "too many hops");
    return;
  }
  // The next candidate not known dead (and not ourselves).
  while (!o.next.empty() && is_self(o.next.front())) {
    o.next.erase(o.next.begin());
  }
  if (o.next.empty()) {
    op_done(id, false, "no node answered");
    return;
  }
  const NodeRef to = o.next.front();
  o.next.erase(o.next.begin());
  Message m = request(Type::FindNode);
  m.key = o.key;
  send_rpc(Purpose::Find, to, m, now, id);
}

void ChordCore::op_owner(std::uint64_t id, std::vector<NodeRef> owners, Instant now) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  Op& o = it->second;
  o.owners = std::move(owners);
  o.owner_at = 0;
  if (o.owners.empty()) {
    op_done(id, false, "no owner");
    return;
  }
  const NodeRef owner = o.owners.front();
  if (!is_self(owner) && (o.route.empty() || !(o.route.back() == owner))) o.route.push_back(owner);
  if (o.join) {
    // Our successor is the owner of our own id.
    std::vector<NodeRef> list;
    for (const auto& n : o.owners) {
      if (!is_self(n)) list.push_back(n);
    }
    set_successor_list(std::move(list));
    joined_ = !succ_.empty();
    op_done(id, joined_, joined_ ? "" : "no successor");
    return;
  }
  if (o.finger >= 0) {
    if (!is_self(owner)) set_finger(static_cast<std::size_t>(o.finger), owner);
    op_done(id, true);
    return;
  }
  if (o.rehome) {
    // (the node that named the owner; ourselves when we knew it)
    const NodeId after = o.route.size() >= 2 ? o.route[o.route.size() - 2].id : self_.id;
    orphans_.insert(o.key);
    rehome(after, o.owners, now);
    orphans_.erase(o.key);
    op_done(id, true);
    return;
  }
  if (o.ring_check) {
    // The introducer's ring says `owner` follows us.
    if (!is_self(owner) && !succ_.empty() && !(owner == succ_.front())) {
      if (Ring::between(self_.id, owner.id, succ_.front().id)) {
        // Nearer than ours: take it, and ask it at once for nearer still.
        std::vector<NodeRef> list{owner};
        list.insert(list.end(), succ_.begin(), succ_.end());
        set_successor_list(std::move(list));
        if (!stabilizing_) {
          stabilizing_ = true;
          send_rpc(Purpose::Stabilize, succ_.front(), request(Type::Neighbours), now);
        }
      } else {
        send_rpc(Purpose::Notify, owner, request(Type::Notify), now);  // we may be its predecessor
      }
    }
    op_done(id, true);
    return;
  }
  switch (o.kind) {
    case OpKind::Lookup:
      op_done(id, true);
      return;
    case OpKind::Put: {
      o.stage = OpStage::Storing;
      if (is_self(owner)) {
        store_value(o.key, o.value, now + std::chrono::seconds(o.lifetime), now);
        replicate(o.key, now);
        op_done(id, true);
        return;
      }
      Message m = request(Type::Store);
      m.key = o.key;
      m.lifetime = o.lifetime;
      m.values.push_back(o.value);
      send_rpc(Purpose::Store, owner, m, now, id);
      return;
    }
    case OpKind::Get: {
      o.stage = OpStage::Getting;
      if (is_self(owner)) {
        if (auto s = store_.find(o.key); s != store_.end()) {
          std::vector<wire::Bytes> values;
          for (const auto& v : s->second) values.push_back(v.bytes);
          results_.push_back(OpResult{id, o.kind, true, self_, std::move(o.route), std::move(values), {}});
          ops_.erase(id);
          return;
        }
        o.owners = succ_;  // (replicas may be there)
        o.owner_at = 0;
        if (o.owners.empty()) {
          op_done(id, true);
          return;
        }
      }
      ask_holder(id, o, now);
      return;
    }
  }
}

void ChordCore::ask_holder(std::uint64_t id, const Op& o, Instant now) {
  Message m = request(Type::Get);
  m.key = o.key;
  send_rpc(Purpose::Get, o.owners[o.owner_at], m, now, id);
}

void ChordCore::op_done(std::uint64_t id, bool ok, std::string error) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  Op& o = it->second;
  if (o.join && !ok) next_join_ = now_ + config_.join_retry;  // (the introducer may be joining itself)
  if (o.rehome) {
    --rehoming_;
    ops_.erase(it);
    rehome_next(now_);
    return;
  }
  if (!o.internal()) {
    if (ok) {
      stats_[kLookupHops] += o.route.size();
    } else {
      ++stats_[kLookupsFailed];
    }
    OpResult r;
    r.op = id;
    r.kind = o.kind;
    r.ok = ok;
    if (!o.owners.empty()) r.owner = o.owners.front();
    r.route = std::move(o.route);
    r.error = std::move(error);
    results_.push_back(std::move(r));
  }
  ops_.erase(it);
}

// ---- what we know of the ring ----

bool ChordCore::owns(const NodeId& key) const {
  if (succ_.empty()) return joined_;  // alone (a node still joining owns nothing)
  if (!pred_) return false;
  return Ring::between_right(pred_->id, key, self_.id);
}

std::vector<NodeRef> ChordCore::preceding_candidates(const NodeId& key, std::size_t n) const {
  // Fingers and successors that lie between us and the key, nearest to the
  // key first (Fig. 5's closest_preceding_node, with runners-up to fall
  // back on when it does not answer): those farthest from us clockwise
  // short of the key. Distances as exact ids; each node once.
  const Ring::Gap span = ring_.gap(self_.id, key);
  const bool whole = span.zero();  // our own id: the whole ring but us
  std::vector<std::pair<Ring::Gap, const NodeRef*>> all;
  all.reserve(finger_nodes_.size() + succ_.size());
  auto consider = [&](const NodeRef& c) {
    const Ring::Gap d = ring_.gap(self_.id, c.id);
    if (d.zero() || (!whole && !(d < span))) return;  // (us, key) only
    all.emplace_back(d, &c);
  };
  if (fingers_changed_) {
    // Neighbouring fingers are mostly the same node: each once.
    finger_nodes_.clear();
    for (const auto& f : fingers_) {
      if (f && (finger_nodes_.empty() || finger_nodes_.back().id != f->id)) finger_nodes_.push_back(*f);
    }
    fingers_changed_ = false;
  }
  for (const auto& f : finger_nodes_) consider(f);
  for (const auto& s : succ_) consider(s);
  // The n farthest, each strictly nearer us than the one before (the same
  // node twice has the same distance): n passes, cheaper than a sort.
  std::vector<NodeRef> out;
  const std::pair<Ring::Gap, const NodeRef*>* prev = nullptr;
  while (out.size() < n) {
    const std::pair<Ring::Gap, const NodeRef*>* best = nullptr;
    for (const auto& e : all) {
      if ((!prev || e.first < prev->first) && (!best || best->first < e.first)) best = &e;
    }
    if (!best) break;
    out.push_back(*best->second);
    prev = best;
  }
  if (out.empty() && !succ_.empty()) out.push_back(succ_.front());
  return out;
}

void ChordCore::set_finger(std::size_t i, std::optional<NodeRef> n) {
  if (fingers_[i] == n) return;
  fingers_[i] = std::move(n);
  fingers_changed_ = true;
  pass_changed_ = true;
  if (fix_pause_ > config_.fix_fingers_every) {
    // Back to full pace at once.
    fix_pause_ = config_.fix_fingers_every;
    next_fix_ = std::min(next_fix_, now_ + fix_pause_);
  }
}

void ChordCore::drop_fingers(const NodeRef& n) {
  for (std::size_t i = 0; i < fingers_.size(); ++i) {
    if (fingers_[i] && *fingers_[i] == n) set_finger(i, std::nullopt);
  }
}

void ChordCore::set_successor_list(std::vector<NodeRef> list) {
  std::vector<NodeRef> out;
  for (auto& n : list) {
    if (is_self(n) || n.port == 0) continue;
    if (std::find(out.begin(), out.end(), n) != out.end()) continue;
    if (dead_.count(n.id)) continue;
    out.push_back(n);
    if (out.size() >= config_.successors) break;
  }
  succ_ = std::move(out);
}

void ChordCore::forget(const NodeRef& dead, Instant now) {
  ++stats_[kPeersDead];
  dead_[dead.id] = now + kDeadFor;
  std::erase(succ_, dead);
  drop_fingers(dead);
  if (pred_ && *pred_ == dead) pred_.reset();
}

// ---- keys ----

void ChordCore::store_value(const NodeId& key, wire::Bytes v, Instant expires, Instant now) {
  auto& vals = store_[key];
  for (auto& x : vals) {
    if (x.bytes == v) {
      x.expires = std::max(x.expires, expires);
      x.refreshed = now;
      return;
    }
  }
  if (vals.size() >= config_.max_values_per_key) vals.erase(vals.begin());
  vals.push_back(Value{std::move(v), expires, now});
}

ChordCore::Message ChordCore::store_message(const NodeId& key, const Value& v, Instant now, bool replica) const {
  Message m = request(Type::Store);
  if (replica) m.flags = dw::kFlagReplica;
  m.key = key;
  // What is left of its lifetime (at least a second).
  m.lifetime = static_cast<std::uint32_t>(
      std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(v.expires - now).count()));
  m.values.push_back(v.bytes);
  return m;
}

void ChordCore::replicate(const NodeId& key, Instant now) {
  auto it = store_.find(key);
  if (it == store_.end()) return;
  for (auto& v : it->second) v.refreshed = now;
  for (const auto& s : succ_) {
    for (const auto& v : it->second) {
      send_rpc(Purpose::Replicate, s, store_message(key, v, now, true), now);
      ++stats_[kReplicasSent];
    }
  }
}

void ChordCore::hand_over(const NodeRef& to, Instant now, bool all) {
  // A copy of each key `to` owns now (every key when we leave): those
  // outside (to, us], which stay ours.
  for (const auto& [key, vals] : store_) {
    if (!all && Ring::between_right(to.id, key, self_.id)) continue;
    for (const auto& v : vals) {
      send_rpc(Purpose::Handover, to, store_message(key, v, now, false), now);
      ++stats_[kKeysHandedOver];
    }
  }
}

void ChordCore::rehome_orphans(Instant now) {
  // Keys neither ours nor refreshed by their owner for a replication round
  // and a margin (the owner's round runs on its own clock) have lost their
  // way: their owners are looked up, one lookup per owner (each answer
  // names the range the owner holds).
  const Duration stale = config_.replicate_every + config_.replicate_every / 2;
  for (auto& [key, vals] : store_) {
    if (vals.empty() || owns(key)) continue;
    if (std::all_of(vals.begin(), vals.end(), [&](const Value& v) { return now - v.refreshed > stale; })) {
      orphans_.insert(key);
      for (auto& v : vals) v.refreshed = now;  // (not again before another round)
    }
  }
  rehome_next(now);
}

void ChordCore::rehome_next(Instant now) {
  constexpr std::size_t kInFlight = 4;
  while (rehoming_ < kInFlight && !orphans_.empty()) {
    Op op;
    op.kind = OpKind::Lookup;
    op.key = *orphans_.begin();
    op.rehome = true;
    orphans_.erase(orphans_.begin());
    if (!store_.count(op.key)) continue;
    ++rehoming_;
    start_op(std::move(op), now);
  }
}

void ChordCore::rehome(const NodeId& after, const std::vector<NodeRef>& owners, Instant now) {
  if (owners.empty() || is_self(owners.front())) return;  // (ours after all)
  const NodeRef& owner = owners.front();
  // We keep a copy only as one of the owner's r successors.
  const bool replica_here = std::any_of(owners.begin() + 1, owners.end(), [&](const NodeRef& n) { return is_self(n); });
  auto send = [&](const NodeId& key) {
    auto it = store_.find(key);
    if (it == store_.end()) return;
    for (const auto& v : it->second) {
      auto* p = rpcs_.find(send_rpc(Purpose::Rehome, owner, store_message(key, v, now, false), now));
      p->info.key = key;
      p->info.drop = !replica_here;
      ++stats_[kKeysRehomed];
    }
  };
  for (auto it = orphans_.begin(); it != orphans_.end();) {
    if (Ring::between_right(after, *it, owner.id)) {
      send(*it);
      it = orphans_.erase(it);
    } else {
      ++it;
    }
  }
}

void ChordCore::expire(Instant now) {
  for (auto it = store_.begin(); it != store_.end();) {
    std::erase_if(it->second, [&](const Value& v) { return v.expires <= now; });
    it = it->second.empty() ? store_.erase(it) : std::next(it);
  }
  for (auto it = dead_.begin(); it != dead_.end();) it = it->second <= now ? dead_.erase(it) : std::next(it);
}

// ---- datagrams ----

void ChordCore::answer(const Message& m, Endpoint from, Instant now) {
  Message r = dw::response_to(m, self_);
  switch (m.type) {
    case Type::Ping:
      break;
    case Type::FindNode: {
      if (!joined_) {
        // Still joining: no ring to route in (the asker tries another node).
        r.type = Type::Error;
        r.error = dw::ErrorCode::NotJoined;
        break;
      }
      const NodeId key = ring_.reduce(m.key);
      // Fig. 5 only: the successor answers for (us, successor]; anything
      // else goes on to a closer node. (Never "ours" by the predecessor: a
      // stale predecessor would claim the keys of nodes that joined since,
      // and hand joiners successors far off that take a round per node to
      // walk back.)
      if (succ_.empty() || Ring::between_right(self_.id, key, succ_.front().id)) {
        r.owner = true;
        r.nodes = succ_.empty() ? std::vector<NodeRef>{self_} : succ_;
      } else {
        r.nodes = preceding_candidates(key, 3);
      }
      break;
    }
    case Type::Neighbours:
      r.predecessor = pred_;
      r.nodes = succ_;
      break;
    case Type::Notify: {
      const NodeRef& n = m.sender;
      if (!is_self(n) && (!pred_ || Ring::between(pred_->id, n.id, self_.id))) {
        pred_ = n;
        dead_.erase(n.id);
        hand_over(n, now, false);  // the keys it owns now
      }
      if (succ_.empty() && !is_self(n)) succ_.push_back(n);  // a ring of one meets its second node
      break;
    }
    case Type::Store: {
      ++stats_[kStores];
      const auto& v = m.values.front();
      if (store_.size() >= config_.max_keys && !store_.count(m.key)) {
        r.status = dw::StoreStatus::Full;
        ++stats_[kStoresRefused];
        break;
      }
      const NodeId key = ring_.reduce(m.key);
      store_value(key, v, now + std::chrono::seconds(std::max<std::uint32_t>(m.lifetime, 1)), now);
      // (the asker found us the owner: copies to our successors either way)
      if (!(m.flags & dw::kFlagReplica)) replicate(key, now);
      break;
    }
    case Type::Get: {
      if (auto s = store_.find(ring_.reduce(m.key)); s != store_.end()) {
        for (const auto& v : s->second) r.values.push_back(v.bytes);
      } else {
        r.nodes = succ_;
      }
      break;
    }
    case Type::Gossip:
      break;  // (Kelips and Pastry)
    case Type::Leave: {
      const NodeRef& n = m.sender;
      if (pred_ && *pred_ == n) {
        pred_.reset();
        if (!m.nodes.empty() && !is_self(m.nodes.front())) pred_ = m.nodes.front();
      }
      if (!succ_.empty() && succ_.front() == n) {
        std::vector<NodeRef> list = m.nodes;
        for (std::size_t i = 1; i < succ_.size(); ++i) list.push_back(succ_[i]);
        set_successor_list(std::move(list));
      }
      std::erase(succ_, n);
      drop_fingers(n);
      break;
    }
    case Type::Error:
      return;
  }
  send_reply(from, r);
}

void ChordCore::on_response(const Message& m, Rpc p, Instant now) {
  if (m.type == Type::Error) {
    if (p.info.purpose == Purpose::Find) {
      op_step(p.info.op, now);  // alive, but no help: the next candidate
    } else {
      on_timeout(std::move(p), now);  // as good as no answer
    }
    return;
  }
  switch (p.info.purpose) {
    case Purpose::Find: {
      auto it = ops_.find(p.info.op);
      if (it == ops_.end()) return;
      Op& o = it->second;
      o.route.push_back(p.info.to);
      if (m.owner && !m.nodes.empty()) {
        op_owner(p.info.op, m.nodes, now);
        return;
      }
      // Closer nodes, the nearest to the key first; the others we had stay behind.
      std::vector<NodeRef> next;
      for (const auto& n : m.nodes) {
        if (!dead_.count(n.id) && !is_self(n) && std::find(o.route.begin(), o.route.end(), n) == o.route.end()) next.push_back(n);
      }
      next.insert(next.end(), o.next.begin(), o.next.end());
      o.next = std::move(next);
      op_step(p.info.op, now);
      return;
    }
    case Purpose::Store:
      op_done(p.info.op, m.status == dw::StoreStatus::Stored, m.status == dw::StoreStatus::Stored ? "" : "refused");
      return;
    case Purpose::Get: {
      auto it = ops_.find(p.info.op);
      if (it == ops_.end()) return;
      Op& o = it->second;
      if (!m.values.empty() || o.owner_at + 1 >= std::min<std::size_t>(o.owners.size(), config_.successors + 1)) {
        OpResult r{p.info.op, o.kind, true, o.owners.front(), std::move(o.route), m.values, {}};
        results_.push_back(std::move(r));
        ops_.erase(it);
        return;
      }
      // Not there: the owner may be new; its successors hold replicas.
      ++o.owner_at;
      ask_holder(p.info.op, o, now);
      return;
    }
    case Purpose::Stabilize: {
      stabilizing_ = false;
      // Fig. 7: x = successor.predecessor; if x in (n, successor): successor = x.
      std::vector<NodeRef> list;
      const bool nearer = m.predecessor && !dead_.count(m.predecessor->id) && !is_self(*m.predecessor) &&
                          Ring::between(self_.id, m.predecessor->id, p.info.to.id);
      if (nearer) list.push_back(*m.predecessor);
      list.push_back(p.info.to);
      list.insert(list.end(), m.nodes.begin(), m.nodes.end());
      set_successor_list(std::move(list));
      if (succ_.empty()) return;
      if (nearer) {
        // A nearer successor: ask it at once (not at the next round) whether
        // there is one nearer still. A joiner handed a far successor while
        // the ring was forming walks back in round trips, not in seconds.
        stabilizing_ = true;
        send_rpc(Purpose::Stabilize, succ_.front(), request(Type::Neighbours), now);
        return;
      }
      send_rpc(Purpose::Notify, succ_.front(), request(Type::Notify), now);
      return;
    }
    case Purpose::CheckPredecessor:
      checking_ = false;
      return;
    case Purpose::FingerCheck: {
      finger_check_.reset();
      const auto i = static_cast<std::size_t>(p.info.finger);
      if (i >= fingers_.size() || fingers_[i] != p.info.to) return;  // changed meanwhile
      // Right while its predecessor is before start (at a gap < 2^i from us).
      const bool right = !m.predecessor || is_self(*m.predecessor) || dead_.count(m.predecessor->id) ||
                         ring_.gap(self_.id, m.predecessor->id).top_bit() < p.info.finger;
      if (!right) look_up_finger(p.info.finger, now);  // someone joined between start and it
      return;
    }
    case Purpose::Rehome:
      // The owner has it: our copy goes unless we hold a replica for it.
      if (p.info.drop && m.status == dw::StoreStatus::Stored) store_.erase(p.info.key);
      return;
    case Purpose::Notify:
    case Purpose::Replicate:
    case Purpose::Handover:
    case Purpose::Leave:
      return;
  }
}

void ChordCore::on_timeout(Rpc p, Instant now) {
  ++stats_[kTimeouts];
  const bool maintenance = p.info.purpose != Purpose::Find && p.info.purpose != Purpose::Get && p.info.purpose != Purpose::Store;
  // A lookup moves on to its next candidate at once; but one lost datagram
  // to its last candidate (a short-lived node's only one: the node it
  // entered by), or to the owner it stores at or gets from last, is worth
  // one more try before the operation fails.
  const auto op = ops_.find(p.info.op);
  const bool last_chance =
      op != ops_.end() &&
      (p.info.purpose == Purpose::Store ||
       (p.info.purpose == Purpose::Find &&
        std::all_of(op->second.next.begin(), op->second.next.end(), [&](const NodeRef& n) { return is_self(n); })) ||
       (p.info.purpose == Purpose::Get && op->second.owner_at + 1 >= op->second.owners.size()));
  if ((maintenance || last_chance) && p.tries < config_.retries && p.info.purpose != Purpose::Leave) {
    // Once more, waiting twice as long.
    ++p.tries;
    const Instant deadline = now + config_.rpc_timeout * (1 << p.tries);
    resend(std::move(p), deadline);
    return;
  }
  if (p.info.to.port != 0 && !(p.info.to.id == NodeId{})) forget(p.info.to, now);
  switch (p.info.purpose) {
    case Purpose::Find: {
      auto it = ops_.find(p.info.op);
      if (it != ops_.end()) op_step(p.info.op, now);  // the next candidate
      return;
    }
    case Purpose::Store:
      op_done(p.info.op, false, "the owner did not answer");
      return;
    case Purpose::Get: {
      auto it = ops_.find(p.info.op);
      if (it == ops_.end()) return;
      Op& o = it->second;
      if (o.owner_at + 1 < o.owners.size()) {
        ++o.owner_at;
        ask_holder(p.info.op, o, now);
      } else {
        op_done(p.info.op, false, "no holder answered");
      }
      return;
    }
    case Purpose::Stabilize:
      stabilizing_ = false;
      return;
    case Purpose::CheckPredecessor:
      checking_ = false;
      return;
    case Purpose::FingerCheck:
      finger_check_.reset();  // (forget() dropped the finger: the next pass looks it up)
      return;
    default:
      return;
  }
}

// ---- timers ----

void ChordCore::fix_next_finger(Instant now) {
  // Fingers whose start, id + 2^i, lies within our successor list are the
  // first successor at or past it (no lookup needed): a successor at
  // distance d is past it when d >= 2^i, when d's top bit is >= i.
  if (succ_.empty()) return;
  std::vector<int> top;
  top.reserve(succ_.size());
  for (const auto& s : succ_) top.push_back(ring_.gap(self_.id, s.id).top_bit());
  for (int tries = 0; tries < ring_.bits(); ++tries) {
    const int i = next_finger_;
    next_finger_ = (next_finger_ + 1) % ring_.bits();
    if (next_finger_ == 0) {
      // A pass ends: slower after a quiet one, full pace after changes.
      fix_pause_ = pass_changed_ ? config_.fix_fingers_every : std::min(fix_pause_ * 2, config_.fix_fingers_max);
      pass_changed_ = false;
    }
    std::size_t at = 0;
    while (at < succ_.size() && top[at] < i) ++at;
    if (at < succ_.size()) {
      set_finger(static_cast<std::size_t>(i), succ_[at]);
      continue;
    }
    if (finger_check_) return;  // (still checking one)
    for (const auto& [id, o] : ops_) {
      if (o.finger == i) return;  // (still looking)
    }
    if (fingers_[static_cast<std::size_t>(i)] && !config_.finger_lookups_only) {
      // Is it still the first node at or past start? Its predecessor says.
      finger_check_ = i;
      Pending info{Purpose::FingerCheck, *fingers_[static_cast<std::size_t>(i)]};
      info.finger = i;
      send_request(std::move(info), request(Type::Neighbours), now, config_.rpc_timeout);
      return;
    }
    look_up_finger(i, now);
    return;
  }
}

void ChordCore::look_up_finger(int i, Instant now) {
  Op op;
  op.kind = OpKind::Lookup;
  op.key = ring_.add_pow2(self_.id, i);
  op.finger = i;
  start_op(std::move(op), now);
}

void ChordCore::handle_timeout(Instant now) {
  now_ = now;
  // RPCs that got no answer, the oldest first.
  while (auto p = rpcs_.take_expired(now)) on_timeout(std::move(*p), now);
  if (!joined_) {
    if (next_join_ && now >= *next_join_ && introducer_) join(introducer_, now);
    return;
  }
  if (now >= next_stabilize_) {
    next_stabilize_ = now + config_.stabilize_every;
    if (!succ_.empty() && !stabilizing_) {
      stabilizing_ = true;
      send_rpc(Purpose::Stabilize, succ_.front(), request(Type::Neighbours), now);
    } else if (succ_.empty() && pred_) {
      succ_.push_back(*pred_);  // a ring of two whose other node was our predecessor only
    }
  }
  if (now >= next_check_) {
    next_check_ = now + config_.check_predecessor_every;
    if (pred_ && !checking_) {
      checking_ = true;
      send_rpc(Purpose::CheckPredecessor, *pred_, request(Type::Ping), now);
    }
  }
  if (now >= next_fix_) {
    fix_next_finger(now);
    next_fix_ = now + fix_pause_;
  }
  if (now >= next_ring_check_) {
    next_ring_check_ = now + config_.ring_check_every;
    if (introducer_ && !succ_.empty() && !(introducer_->ip == self_.ip && introducer_->port == self_.port)) {
      Op op;
      op.kind = OpKind::Lookup;
      op.key = ring_.add_pow2(self_.id, 0);
      op.ring_check = true;
      op.next = start_at(introducer_);
      start_op(std::move(op), now);
    }
  }
  if (now >= next_replicate_) {
    next_replicate_ = now + config_.replicate_every;
    for (const auto& [key, vals] : store_) {
      if (owns(key)) replicate(key, now);
    }
    rehome_orphans(now);
  }
  if (now >= next_expire_) {
    next_expire_ = now + 1min;
    expire(now);
  }
}

std::optional<Instant> ChordCore::poll_timeout() const {
  std::optional<Instant> t;
  auto consider = [&](Instant i) {
    if (!t || i < *t) t = i;
  };
  if (auto d = rpcs_.next_deadline()) consider(*d);
  if (!joined_ && next_join_) consider(*next_join_);
  if (joined_) {
    consider(next_stabilize_);
    consider(next_check_);
    consider(next_fix_);
    consider(next_replicate_);
    consider(next_ring_check_);
    consider(next_expire_);
  }
  return t;
}

}  // namespace sv::dht
