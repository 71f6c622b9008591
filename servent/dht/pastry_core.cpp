#include "servent/dht/pastry_core.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace sv::dht {

namespace dw = wire::dht;
using dw::Type;

namespace {

constexpr std::array<std::string_view, PastryCore::kStatCount> kStatNames = {
    "datagrams_in", "datagrams_out",  "malformed",     "wrong_overlay",   "unexpected", "timeouts",
    "lookups",      "lookups_failed", "lookup_hops",   "stores",          "stores_refused", "replicas_sent",
    "keys_handed_over", "peers_dead", "probes",
};

// A failed node is not taken back from others' (stale) lists for this long;
// it comes back at once by speaking to us itself.
constexpr Duration kDeadFor = 5min;
constexpr std::size_t kMaxProbing = 64;     // pings in flight at once
constexpr std::size_t kMaxRtts = 8192;      // round trips remembered
constexpr std::size_t kCandidates = 5;      // next hops a node names (the best, then fallbacks)

bool same(const NodeRef& a, const NodeRef& b) { return a.id == b.id; }

}  // namespace

PastryCore::PastryCore(Endpoint self, SocketId socket, PastryConfig config, std::uint64_t seed, std::optional<NodeId> id)
    : NodeBase(Ring(config.bits / 4 * 4 < 8 ? 8 : config.bits / 4 * 4), wire::dht::Overlay::Pastry, self, socket, seed, id, kStatCount), config_(config) {
  rows_ = static_cast<std::size_t>(ring_.bits() / 4);
  if (config_.leaf_set < 2) config_.leaf_set = 2;
  if (config_.replicas == 0) config_.replicas = 1;
  table_.resize(rows_);
}

std::vector<Counter> PastryCore::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

OverlayView PastryCore::view() const {
  OverlayView v{describe(), {}};
  for (const auto& n : lo_) v.nodes.emplace_back("leaf -", n);
  for (const auto& n : hi_) v.nodes.emplace_back("leaf +", n);
  for (std::size_t r = 0; r < rows_; ++r) {
    for (std::size_t c = 0; c < 16; ++c) {
      if (table_[r][c]) v.nodes.emplace_back(fmt::format("row {} col {:x}", r, c), table_[r][c]->node);
    }
  }
  return v;
}

std::string PastryCore::describe() const {
  std::size_t rows_used = 0;
  for (std::size_t r = 0; r < rows_; ++r) {
    if (std::any_of(table_[r].begin(), table_[r].end(), [](const auto& s) { return s.has_value(); })) rows_used = r + 1;
  }
  return fmt::format("pastry node {} on {}: leaf set {} smaller + {} larger, routing table {} entries in {} rows, "
                     "{} neighbours, {} keys",
                     short_id(self_.id), Endpoint{self_.ip, self_.port}.to_string(), lo_.size(), hi_.size(),
                     table_entries(), rows_used, neighbours_.size(), store_.size());
}

// ---- ids ----

int PastryCore::digit(const NodeId& id, std::size_t i) const {
  const std::size_t nibble = static_cast<std::size_t>(160 - ring_.bits()) / 4 + i;
  const std::uint8_t byte = id[nibble / 2];
  return nibble % 2 == 0 ? byte >> 4 : byte & 0x0F;
}

std::size_t PastryCore::shared_prefix(const NodeId& a, const NodeId& b) const {
  std::size_t i = 0;
  while (i < rows_ && digit(a, i) == digit(b, i)) ++i;
  return i;
}

Ring::Gap PastryCore::numeric_distance(const NodeId& a, const NodeId& b) const {
  return std::min(ring_.gap(a, b), ring_.gap(b, a));
}

bool PastryCore::clockwise_nearer(const NodeId& n) const {
  return ring_.gap(self_.id, n) <= ring_.gap(n, self_.id);
}

std::size_t PastryCore::table_entries() const {
  std::size_t n = 0;
  for (const auto& row : table_) n += static_cast<std::size_t>(std::count_if(row.begin(), row.end(), [](const auto& s) { return s.has_value(); }));
  return n;
}

std::vector<NodeRef> PastryCore::leaves() const {
  std::vector<NodeRef> out = lo_;
  for (const auto& n : hi_) {
    if (std::none_of(lo_.begin(), lo_.end(), [&](const NodeRef& x) { return same(x, n); })) out.push_back(n);
  }
  return out;
}

std::optional<NodeRef> PastryCore::entry(std::size_t row, int column) const {
  if (row >= rows_ || column < 0 || column > 15) return std::nullopt;
  const auto& s = table_[row][static_cast<std::size_t>(column)];
  if (!s) return std::nullopt;
  return s->node;
}

// ---- sending ----

std::uint64_t PastryCore::send_rpc(Purpose purpose, const NodeRef& to, const Message& msg, Instant now, std::uint64_t op) {
  return send_request(Pending{purpose, to, op, now}, msg, now, config_.rpc_timeout);
}

// ---- state ----

void PastryCore::learn(const NodeRef& n, std::optional<Duration> rtt, Instant now) {
  if (rtt && rtt_.size() < kMaxRtts) {
    rtt_[n.id] = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(*rtt).count());
  }
  consider(n, now);
}

void PastryCore::consider(const NodeRef& n, Instant now) {
  if (same(n, self_) || n.port == 0 || dead_.count(n.id)) return;
  add_leaf(n, now);
  const std::size_t row = shared_prefix(n.id, self_.id);
  if (row >= rows_) return;
  auto& slot = table_[row][static_cast<std::size_t>(digit(n.id, row))];
  auto rtt = rtt_.find(n.id);
  if (rtt != rtt_.end()) {
    place(n, rtt->second, now);
    return;
  }
  if (!slot) slot = Slot{n, UINT32_MAX};  // (a route now; its round trip when the probe answers)
  if (!config_.proximity || same(slot->node, n)) {
    if (slot->rtt_us != UINT32_MAX || probing_.count(n.id) || probing_.size() >= kMaxProbing) return;
  } else if (probing_.count(n.id) || probing_.size() >= kMaxProbing) {
    return;
  }
  // Its round trip decides whether it takes the slot (and the neighbourhood).
  probing_[n.id] = now;
  ++stats_[kProbes];
  send_rpc(Purpose::Probe, n, request(Type::Ping), now);
}

void PastryCore::place(const NodeRef& n, std::uint32_t rtt_us, Instant) {
  const std::size_t row = shared_prefix(n.id, self_.id);
  if (row < rows_) {
    auto& slot = table_[row][static_cast<std::size_t>(digit(n.id, row))];
    if (!slot || same(slot->node, n)) {
      slot = Slot{n, rtt_us};
    } else if (config_.proximity && rtt_us < slot->rtt_us) {
      slot = Slot{n, rtt_us};  // nearer by round trip (§2.5)
    }
  }
  // The neighbourhood set: the M nearest by round trip.
  std::erase_if(neighbours_, [&](const Slot& s) { return same(s.node, n); });
  auto at = std::find_if(neighbours_.begin(), neighbours_.end(), [&](const Slot& s) { return rtt_us < s.rtt_us; });
  neighbours_.insert(at, Slot{n, rtt_us});
  if (neighbours_.size() > config_.neighbourhood) neighbours_.pop_back();
}

void PastryCore::add_leaf(const NodeRef& n, Instant now) {
  // Each side keeps the L/2 nearest going its way round the ring; in a
  // small overlay a node is near both ways and sits on both sides.
  const std::size_t half = config_.leaf_set / 2;
  bool added = false;
  for (const bool larger : {false, true}) {
    auto& side = larger ? hi_ : lo_;
    auto dist = [&](const NodeId& x) { return larger ? ring_.gap(self_.id, x) : ring_.gap(x, self_.id); };
    const Ring::Gap d = dist(n.id);
    if (side.size() >= half && !(d < dist(side.back().id))) continue;  // farther than every leaf that way (most nodes heard of)
    if (std::any_of(side.begin(), side.end(), [&](const NodeRef& x) { return same(x, n); })) continue;
    auto at = std::find_if(side.begin(), side.end(), [&](const NodeRef& x) { return d < dist(x.id); });
    if (static_cast<std::size_t>(at - side.begin()) >= half) continue;  // farther than every leaf that way
    side.insert(at, n);
    if (side.size() > half) side.pop_back();
    added = true;
  }
  if (!added) return;
  // A new leaf hears of us (it may have joined next to us) and may now be
  // closer to keys we hold.
  if (joined_) send_rpc(Purpose::Announce, n, request(Type::Notify), now);
  rebalance_due_ = true;
}

bool PastryCore::leaf_covers(const NodeId& key) const {
  if (lo_.empty() && hi_.empty()) return true;  // alone
  // A node on both sides: the leaf set goes all round (a small overlay).
  for (const auto& a : lo_) {
    if (std::any_of(hi_.begin(), hi_.end(), [&](const NodeRef& b) { return same(a, b); })) return true;
  }
  // Else the key lies between the farthest leaf each way.
  if (!hi_.empty() && ring_.gap(self_.id, key) <= ring_.gap(self_.id, hi_.back().id)) return true;
  if (!lo_.empty() && ring_.gap(key, self_.id) <= ring_.gap(lo_.back().id, self_.id)) return true;
  return false;
}

void PastryCore::forget(const NodeRef& dead, Instant now) {
  ++stats_[kPeersDead];
  dead_[dead.id] = now + kDeadFor;
  // A failed leaf: the farthest live leaf on its side names the nodes
  // beyond (§2.4, leaf set repair).
  for (auto* side : {&lo_, &hi_}) {
    if (std::erase_if(*side, [&](const NodeRef& x) { return same(x, dead); }) && !side->empty() && joined_) {
      send_rpc(Purpose::State, side->back(), request(Type::Neighbours), now);
    }
  }
  for (auto& row : table_) {
    for (auto& s : row) {
      if (s && same(s->node, dead)) s.reset();
    }
  }
  std::erase_if(neighbours_, [&](const Slot& s) { return same(s.node, dead); });
  rtt_.erase(dead.id);
}

std::vector<NodeRef> PastryCore::known_nodes() const {
  std::vector<NodeRef> out = leaves();
  for (const auto& row : table_) {
    for (const auto& s : row) {
      if (s) out.push_back(s->node);
    }
  }
  for (const auto& s : neighbours_) out.push_back(s.node);
  return out;
}

std::vector<NodeRef> PastryCore::closest(const NodeId& key, std::size_t n) const {
  std::vector<NodeRef> all = leaves();
  all.push_back(self_);
  std::vector<std::pair<Ring::Gap, const NodeRef*>> by;
  by.reserve(all.size());
  for (const auto& a : all) by.emplace_back(numeric_distance(a.id, key), &a);
  std::stable_sort(by.begin(), by.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<NodeRef> out;
  for (std::size_t i = 0; i < by.size() && out.size() < n; ++i) out.push_back(*by[i].second);
  return out;
}

bool PastryCore::route(const NodeId& key, std::vector<NodeRef>& out) const {
  out.clear();
  if (leaf_covers(key) || key == self_.id) {
    out = closest(key, config_.replicas);
    return true;
  }
  const std::size_t l = shared_prefix(key, self_.id);
  if (const auto& s = table_[l][static_cast<std::size_t>(digit(key, l))]) out.push_back(s->node);
  // The rare case (§2.2): any node with as long a prefix, numerically closer.
  const Ring::Gap mine = numeric_distance(self_.id, key);
  std::vector<std::pair<std::pair<std::size_t, Ring::Gap>, NodeRef>> others;
  for (const auto& n : known_nodes()) {
    const std::size_t p = shared_prefix(n.id, key);
    const Ring::Gap d = numeric_distance(n.id, key);
    if (p >= l && d < mine && !(!out.empty() && same(out.front(), n))) others.push_back({{p, d}, n});
  }
  std::sort(others.begin(), others.end(), [](const auto& a, const auto& b) {
    return a.first.first != b.first.first ? a.first.first > b.first.first : a.first.second < b.first.second;
  });
  for (const auto& other : others) {
    if (out.size() >= kCandidates) break;
    const NodeRef& n = other.second;  // (not a structured binding: clang 14 cannot capture one)
    if (std::none_of(out.begin(), out.end(), [&](const NodeRef& x) { return same(x, n); })) out.push_back(n);
  }
  if (out.empty()) {
    out = closest(key, config_.replicas);  // nobody closer that we know of: ours
    return true;
  }
  return false;
}

PastryCore::Message PastryCore::state_message(const Message& m) const {
  // Our leaf set, then the table row the asker needs most (the one for the
  // prefix it shares with us: a joiner's route asks row i of hop i), then
  // the other rows, nearest first; what fits.
  Message r = dw::response_to(m, self_);
  r.nodes = leaves();
  auto add = [&](const NodeRef& n) {
    if (r.nodes.size() >= dw::kMaxNodes || same(n, m.sender)) return;
    if (std::none_of(r.nodes.begin(), r.nodes.end(), [&](const NodeRef& x) { return same(x, n); })) r.nodes.push_back(n);
  };
  const std::size_t row = std::min(shared_prefix(m.sender.id, self_.id), rows_ - 1);
  for (const auto& s : table_[row]) {
    if (s) add(s->node);
  }
  for (std::size_t k = 1; k < rows_ && r.nodes.size() < dw::kMaxNodes; ++k) {
    for (std::size_t dirn : {row + k, row >= k ? row - k : rows_}) {
      if (dirn >= rows_) continue;
      for (const auto& s : table_[dirn]) {
        if (s) add(s->node);
      }
    }
  }
  return r;
}

// ---- keys ----

void PastryCore::store_value(const NodeId& key, wire::Bytes v, Instant expires) {
  auto& vals = store_[key];
  for (auto& x : vals) {
    if (x.bytes == v) {
      x.expires = std::max(x.expires, expires);
      return;
    }
  }
  if (vals.size() >= config_.max_values_per_key) vals.erase(vals.begin());
  vals.push_back(Value{std::move(v), expires});
}

PastryCore::Message PastryCore::store_message(const NodeId& key, const Value& v, Instant now, bool replica) const {
  Message m = request(Type::Store);
  if (replica) m.flags = dw::kFlagReplica;
  m.key = key;
  m.lifetime = static_cast<std::uint32_t>(
      std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(v.expires - now).count()));
  m.values.push_back(v.bytes);
  return m;
}

void PastryCore::replicate(const NodeId& key, Instant now) {
  auto it = store_.find(key);
  if (it == store_.end()) return;
  for (const auto& n : closest(key, config_.replicas)) {
    if (same(n, self_)) continue;
    for (const auto& v : it->second) {
      send_rpc(Purpose::Replicate, n, store_message(key, v, now, true), now);
      ++stats_[kReplicasSent];
    }
  }
}

void PastryCore::rebalance(Instant now) {
  // A key a leaf is now closer to goes to it (a node joined next to us),
  // if we held it as its closest node; our copy stays while we are among
  // its `replicas` closest. A key we are now closest to is ours (the one
  // before us failed).
  for (const auto& [key, vals] : store_) {
    const auto owners = closest(key, config_.replicas);
    if (same(owners.front(), self_)) {
      primary_.insert(key);
      continue;
    }
    const bool keep = std::any_of(owners.begin(), owners.end(), [&](const NodeRef& n) { return same(n, self_); });
    if (keep && !primary_.count(key)) continue;  // a copy where it should be
    primary_.erase(key);
    for (const auto& v : vals) {
      auto* p = rpcs_.find(send_rpc(Purpose::Handover, owners.front(), store_message(key, v, now, false), now));
      p->info.key = key;
      p->info.drop = !keep;
      ++stats_[kKeysHandedOver];
    }
  }
}

// ---- joining and leaving ----

void PastryCore::join(std::optional<Endpoint> introducer, Instant now) {
  now_ = now;
  introducer_ = introducer;
  next_join_.reset();
  next_maintain_ = now + config_.maintain_every;
  next_repair_ = now + config_.table_repair_every;
  next_replicate_ = now + config_.replicate_every;
  next_expire_ = now + 1min;
  if (!introducer) {
    joined_ = true;
    return;
  }
  Op op;
  op.kind = OpKind::Lookup;
  op.key = self_.id;
  op.join = true;
  start_op(std::move(op), introducer, now);
}

void PastryCore::leave(Instant now) {
  // Every key to the node closest to it after us; the leaves hear we go.
  for (const auto& [key, vals] : store_) {
    for (const auto& n : closest(key, 2)) {
      if (same(n, self_)) continue;
      for (const auto& v : vals) send_rpc(Purpose::Handover, n, store_message(key, v, now, false), now);
      break;
    }
  }
  Message bye = request(Type::Leave);
  bye.flags = dw::kFlagLeaving;
  bye.nodes = leaves();
  for (const auto& n : leaves()) send_rpc(Purpose::Leave, n, bye, now);
  joined_ = false;
}

// ---- operations ----

std::uint64_t PastryCore::lookup(const NodeId& key, Instant now, std::optional<Endpoint> via) {
  Op op;
  op.kind = OpKind::Lookup;
  op.key = ring_.reduce(key);
  return start_op(std::move(op), via, now);
}

std::uint64_t PastryCore::put(const NodeId& key, wire::Bytes value, Instant now, Duration lifetime, std::optional<Endpoint> via) {
  Op op;
  op.kind = OpKind::Put;
  op.key = ring_.reduce(key);
  op.value = std::move(value);
  op.lifetime = lifetime_seconds(lifetime, config_.default_lifetime);
  return start_op(std::move(op), via, now);
}

std::uint64_t PastryCore::get(const NodeId& key, Instant now, std::optional<Endpoint> via) {
  Op op;
  op.kind = OpKind::Get;
  op.key = ring_.reduce(key);
  return start_op(std::move(op), via, now);
}

std::uint64_t PastryCore::start_op(Op op, std::optional<Endpoint> via, Instant now) {
  const std::uint64_t id = next_op_++;
  if (!op.join) ++stats_[kLookups];
  ops_[id] = std::move(op);
  Op& o = ops_[id];
  if (via) {
    o.next.push_back(NodeRef{NodeId{}, via->ip, via->port});
  } else {
    std::vector<NodeRef> hops;
    if (route(o.key, hops)) {
      op_owner(id, std::move(hops), now);
      return id;
    }
    o.next = std::move(hops);
  }
  op_step(id, now);
  return id;
}

void PastryCore::op_step(std::uint64_t id, Instant now) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  Op& o = it->second;
  if (o.route.size() >= config_.max_hops) {
    op_done(id, false, "too many hops");
    return;
  }
  auto tried = [&](const NodeRef& n) { return std::find(o.tried.begin(), o.tried.end(), n.id) != o.tried.end(); };
  while (!o.next.empty() && (same(o.next.front(), self_) || tried(o.next.front()))) o.next.erase(o.next.begin());
  if (o.next.empty() && joined_ && !o.join) {
    // Every node named so far failed: what we know ourselves (the dead ones
    // forgotten by now) may route around them.
    std::vector<NodeRef> hops;
    if (route(o.key, hops) && o.route.empty()) {
      op_owner(id, std::move(hops), now);
      return;
    }
    for (const auto& h : hops) {
      if (!same(h, self_) && !tried(h)) o.next.push_back(h);
    }
  }
  if (o.next.empty()) {
    op_done(id, false, "no node answered");
    return;
  }
  const NodeRef to = o.next.front();
  o.next.erase(o.next.begin());
  if (!(to.id == NodeId{})) o.tried.push_back(to.id);
  Message m = request(Type::FindNode);
  m.key = o.key;
  send_rpc(Purpose::Find, to, m, now, id);
}

void PastryCore::op_owner(std::uint64_t id, std::vector<NodeRef> owners, Instant now) {
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
  if (!same(owner, self_) && (o.route.empty() || !same(o.route.back(), owner))) o.route.push_back(owner);
  if (o.join) {
    // The state of every node on the route, and of the closest (its leaf
    // set is nearly ours); asking tells each of them of us.
    joined_ = true;
    std::vector<NodeRef> ask = o.route;
    for (const auto& n : o.owners) ask.push_back(n);
    std::vector<NodeId> asked;
    for (const auto& n : ask) {
      if (same(n, self_) || std::find(asked.begin(), asked.end(), n.id) != asked.end()) continue;
      asked.push_back(n.id);
      send_rpc(Purpose::State, n, request(Type::Neighbours), now);
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
      if (same(owner, self_)) {
        store_value(o.key, o.value, now + std::chrono::seconds(o.lifetime));
        primary_.insert(o.key);
        ++stats_[kStores];
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
    case OpKind::Get:
      o.stage = OpStage::Getting;
      ask_holder(id, now);
      return;
  }
}

void PastryCore::ask_holder(std::uint64_t id, Instant now) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  Op& o = it->second;
  // (ourselves among the holders: what we have answers at once)
  while (o.owner_at < o.owners.size() && same(o.owners[o.owner_at], self_)) {
    if (auto s = store_.find(o.key); s != store_.end()) {
      std::vector<wire::Bytes> values;
      for (const auto& v : s->second) values.push_back(v.bytes);
      op_done(id, true, {}, std::move(values));
      return;
    }
    ++o.owner_at;
  }
  if (o.owner_at >= o.owners.size()) {
    op_done(id, true);  // every holder asked: no value
    return;
  }
  Message m = request(Type::Get);
  m.key = o.key;
  send_rpc(Purpose::Get, o.owners[o.owner_at], m, now, id);
}

void PastryCore::op_done(std::uint64_t id, bool ok, std::string error, std::vector<wire::Bytes> values) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  Op& o = it->second;
  if (o.join) {
    if (!ok) next_join_ = now_ + config_.join_retry;
    ops_.erase(it);
    return;
  }
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
  r.values = std::move(values);
  r.error = std::move(error);
  results_.push_back(std::move(r));
  ops_.erase(it);
}

// ---- datagrams ----

void PastryCore::answer(const Message& m, Endpoint from, Instant now) {
  Message r = dw::response_to(m, self_);
  switch (m.type) {
    case Type::Ping:
      break;
    case Type::Neighbours:
      // A node asking for our state is a member or joining: we take it in.
      if (!(m.flags & dw::kFlagLeaving)) {
        dead_.erase(m.sender.id);
        consider(m.sender, now);
      }
      r = state_message(m);
      break;
    case Type::Notify:
      dead_.erase(m.sender.id);
      consider(m.sender, now);
      break;
    case Type::FindNode: {
      if (!joined_) {
        r.type = Type::Error;
        r.error = dw::ErrorCode::NotJoined;
        break;
      }
      const NodeId key = ring_.reduce(m.key);
      r.owner = route(key, r.nodes);
      break;
    }
    case Type::Store: {
      ++stats_[kStores];
      const NodeId key = ring_.reduce(m.key);
      if (store_.size() >= config_.max_keys && !store_.count(key)) {
        r.status = dw::StoreStatus::Full;
        ++stats_[kStoresRefused];
        break;
      }
      store_value(key, m.values.front(), now + std::chrono::seconds(std::max<std::uint32_t>(m.lifetime, 1)));
      if (!(m.flags & dw::kFlagReplica)) {
        primary_.insert(key);
        replicate(key, now);
      }
      break;
    }
    case Type::Get: {
      const NodeId key = ring_.reduce(m.key);
      if (auto s = store_.find(key); s != store_.end()) {
        for (const auto& v : s->second) r.values.push_back(v.bytes);
      } else {
        r.nodes = closest(key, config_.replicas);
      }
      break;
    }
    case Type::Leave:
      forget(m.sender, now);
      dead_.erase(m.sender.id);  // (gone, not failed: welcome back at once)
      for (const auto& n : m.nodes) consider(n, now);  // its leaves may fill the gap
      break;
    case Type::Gossip:
    case Type::Error:
      return;  // (not Pastry's)
  }
  send_reply(from, r);
}

void PastryCore::on_response(const Message& m, Rpc p, Instant now) {
  // A round trip measured (proximity), for whatever it answered.
  const auto rtt = static_cast<std::uint32_t>(
      std::min<std::int64_t>(UINT32_MAX - 1, std::chrono::duration_cast<std::chrono::microseconds>(now - p.info.sent).count()));
  if (p.tries == 0 && joined_ && !(m.flags & dw::kFlagLeaving) && m.type != Type::Error) {
    if (rtt_.size() < kMaxRtts || rtt_.count(m.sender.id)) rtt_[m.sender.id] = rtt;
  }
  if (m.type == Type::Error) {
    if (p.info.purpose == Purpose::Find) {
      op_step(p.info.op, now);
    } else {
      on_timeout(std::move(p), now);
    }
    return;
  }
  switch (p.info.purpose) {
    case Purpose::Probe:
      probing_.erase(m.sender.id);
      place(p.info.to, rtt, now);
      return;
    case Purpose::State:
      consider(p.info.to, now);
      for (const auto& n : m.nodes) consider(n, now);
      return;
    case Purpose::Find: {
      auto it = ops_.find(p.info.op);
      if (it == ops_.end()) return;
      Op& o = it->second;
      o.route.push_back(p.info.to);
      if (m.owner && !m.nodes.empty()) {
        op_owner(p.info.op, m.nodes, now);
        return;
      }
      std::vector<NodeRef> next;
      for (const auto& n : m.nodes) {
        if (dead_.count(n.id) || same(n, self_)) continue;
        if (std::any_of(o.route.begin(), o.route.end(), [&](const NodeRef& x) { return same(x, n); })) continue;
        next.push_back(n);
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
      if (!m.values.empty()) {
        op_done(p.info.op, true, {}, m.values);
        return;
      }
      ++it->second.owner_at;  // not there: the next closest may hold a copy
      ask_holder(p.info.op, now);
      return;
    }
    case Purpose::Handover:
      if (p.info.drop && m.status == dw::StoreStatus::Stored) {
        store_.erase(p.info.key);
        primary_.erase(p.info.key);
      }
      return;
    case Purpose::Replicate:
    case Purpose::Announce:
    case Purpose::Leave:
      return;
  }
}

void PastryCore::on_timeout(Rpc p, Instant now) {
  ++stats_[kTimeouts];
  const NodeRef& to = p.info.to;
  if (p.info.purpose == Purpose::Probe) probing_.erase(to.id);
  if (to.port != 0 && !(to.id == NodeId{}) && p.info.purpose != Purpose::Leave) forget(to, now);
  switch (p.info.purpose) {
    case Purpose::Find:
      if (ops_.count(p.info.op)) {
        auto& o = ops_[p.info.op];
        if (o.join && o.route.empty() && o.next.empty()) {
          op_done(p.info.op, false, "the introducer did not answer");
          return;
        }
        op_step(p.info.op, now);
      }
      return;
    case Purpose::Store:
      op_done(p.info.op, false, "the closest node did not answer");
      return;
    case Purpose::Get:
      if (auto it = ops_.find(p.info.op); it != ops_.end()) {
        ++it->second.owner_at;
        ask_holder(p.info.op, now);
      }
      return;
    default:
      return;
  }
}

// ---- timers ----

void PastryCore::handle_timeout(Instant now) {
  now_ = now;
  while (auto p = rpcs_.take_expired(now)) on_timeout(std::move(*p), now);
  if (!joined_) {
    if (next_join_ && now >= *next_join_ && introducer_) join(introducer_, now);
    return;
  }
  if (now >= next_maintain_) {
    next_maintain_ = now + config_.maintain_every;
    if (rebalance_due_) {
      rebalance_due_ = false;
      rebalance(now);
    }
    // One leaf a round, in turn, asked for its state: a silent one is
    // dropped, and the leaf sets stay merged.
    const auto all = leaves();
    if (!all.empty()) send_rpc(Purpose::State, all[leaf_turn_++ % all.size()], request(Type::Neighbours), now);
  }
  if (now >= next_repair_) {
    next_repair_ = now + config_.table_repair_every;
    std::vector<NodeRef> entries;
    for (const auto& row : table_) {
      for (const auto& s : row) {
        if (s) entries.push_back(s->node);
      }
    }
    if (!entries.empty()) send_rpc(Purpose::State, entries[rng_.below(entries.size())], request(Type::Neighbours), now);
  }
  if (now >= next_replicate_) {
    next_replicate_ = now + config_.replicate_every;
    rebalance(now);
    for (const auto& key : primary_) replicate(key, now);
  }
  if (now >= next_expire_) {
    next_expire_ = now + 1min;
    for (auto it = store_.begin(); it != store_.end();) {
      std::erase_if(it->second, [&](const Value& v) { return v.expires <= now; });
      if (it->second.empty()) primary_.erase(it->first);
      it = it->second.empty() ? store_.erase(it) : std::next(it);
    }
    absl::erase_if(dead_, [&](const auto& d) { return d.second <= now; });
  }
}

std::optional<Instant> PastryCore::poll_timeout() const {
  std::optional<Instant> t = rpcs_.next_deadline();
  auto consider_at = [&](Instant i) {
    if (!t || i < *t) t = i;
  };
  if (!joined_ && next_join_) consider_at(*next_join_);
  if (joined_) {
    consider_at(next_maintain_);
    consider_at(next_repair_);
    consider_at(next_replicate_);
    consider_at(next_expire_);
  }
  return t;
}

}  // namespace sv::dht
