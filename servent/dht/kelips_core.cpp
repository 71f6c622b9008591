#include "servent/dht/kelips_core.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <fmt/format.h>

namespace sv::dht {

namespace dw = wire::dht;
using dw::Type;

namespace {

constexpr std::array<std::string_view, KelipsCore::kStatCount> kStatNames = {
    "datagrams_in", "datagrams_out", "malformed", "wrong_overlay", "unexpected",     "timeouts",
    "gossips_sent", "lookups",       "lookups_failed", "lookup_hops", "one_hop_lookups", "stores",
    "stores_refused", "copies",      "members_dead",   "spoofed",       "rejoins",
};

constexpr std::size_t kRecent = 64;  // members and tuples heard of lately, gossiped first

bool same_address(const NodeRef& a, const NodeRef& b) { return a.ip == b.ip && a.port == b.port; }

// Orders the tuples by key.
constexpr auto kKeyBefore = [](const auto& t, const NodeId& key) { return t.key < key; };

}  // namespace

KelipsCore::KelipsCore(Endpoint self, SocketId socket, KelipsConfig config, std::uint64_t seed, std::optional<NodeId> id)
    : NodeBase(Ring(config.bits), wire::dht::Overlay::Kelips, self, socket, seed, id, kStatCount), config_(config) {
  if (config_.groups == 0) config_.groups = 1;
  config_.homes = std::clamp<std::size_t>(config_.homes, 1, kMaxHomes);
  config_.contacts = std::max<std::size_t>(config_.contacts, 1);
  contacts_.resize(static_cast<std::size_t>(config_.groups) * config_.contacts);
  place_.push_back(0);  // (handle 0 is ourselves)
  salt_ = Rng(seed ^ 0x6b656c697073ull).next();  // (its own draw: rng_'s sequence stays as it was)
}

std::uint32_t KelipsCore::group_of(const NodeId& id) const {
  // The low 64 bits (used on every ring size) mod k.
  std::uint64_t v = 0;
  for (std::size_t i = 12; i < 20; ++i) v = v << 8 | id[i];
  return static_cast<std::uint32_t>(v % config_.groups);
}

std::vector<Counter> KelipsCore::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

std::size_t KelipsCore::contacts() const {
  return static_cast<std::size_t>(std::count_if(contacts_.begin(), contacts_.end(), [](const Member& c) { return c.node.port != 0; }));
}

std::size_t KelipsCore::groups_with_contacts() const {
  std::size_t n = 0;
  for (std::uint32_t g = 0; g < config_.groups; ++g) n += !contacts_for(g).empty();
  return n;
}

OverlayView KelipsCore::view() const {
  OverlayView v{describe(), {}};
  for (const auto& m : members_) v.nodes.emplace_back("member", m.node);
  for (std::uint32_t g = 0; g < config_.groups; ++g) {
    for (const auto& c : contacts_for(g)) v.nodes.emplace_back(fmt::format("contact g{}", g), c);
  }
  return v;
}

std::string KelipsCore::describe() const {
  return fmt::format("kelips node {} on {}: group {} of {}, {} members in view, contacts in {} of {} other groups, {} tuples, "
                     "home of {} keys",
                     short_id(self_.id), Endpoint{self_.ip, self_.port}.to_string(), group(), config_.groups,
                     members_.size(), groups_with_contacts(), config_.groups - 1,
                     tuples_.size(), store_.size());
}

KelipsCore::Footprint KelipsCore::footprint() const {
  // Flat arrays (no per-entry allocation): what they hold room for.
  Footprint f;
  f.per_member = sizeof(Member) + 2 * sizeof(slots_.front()) + sizeof(place_.front());
  f.per_contact = sizeof(Member);
  f.per_tuple = sizeof(Tuple);
  f.member_bytes = members_.capacity() * sizeof(Member) + slots_.capacity() * sizeof(slots_.front()) +
                   (place_.capacity() + free_handles_.capacity() + released_.capacity()) * sizeof(std::uint16_t);
  f.contact_bytes = contacts_.capacity() * sizeof(Member);
  f.tuple_bytes = tuples_.capacity() * sizeof(Tuple);
  return f;
}

// ---- sending ----

std::uint64_t KelipsCore::send_rpc(Purpose purpose, const NodeRef& to, const Message& msg, Instant now, std::uint64_t op) {
  return send_request(Pending{purpose, to, op, now}, msg, now, config_.rpc_timeout);
}

// ---- joining and leaving ----

void KelipsCore::join(std::optional<Endpoint> introducer, Instant now) {
  now_ = now;
  introducer_ = introducer;
  next_join_.reset();
  next_gossip_ = now;
  next_repair_ = now + config_.repair_every;
  next_expire_ = now + config_.member_timeout / 4;
  if (!introducer) {
    joined_ = true;  // the first node
    return;
  }
  // The introducer names members of our group and contacts for the others.
  send_rpc(Purpose::Join, NodeRef{NodeId{}, introducer->ip, introducer->port}, request(Type::Neighbours), now);
}

void KelipsCore::leave(Instant now) {
  // Keys we alone hold go to another member; every member hears we go.
  for (const auto& [key, vals] : store_) {
    if (live_homes(key).size() > 1) continue;
    for (const auto& to : random_members(1)) {
      for (const auto& v : vals) {
        Message m = request(Type::Store);
        m.flags = dw::kFlagReplica;
        m.key = key;
        m.lifetime = static_cast<std::uint32_t>(
            std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(v.expires - now).count()));
        m.values.push_back(v.bytes);
        send_rpc(Purpose::Copy, to, m, now);
        ++stats_[kCopies];
      }
    }
  }
  Message bye = request(Type::Leave);
  bye.flags = dw::kFlagLeaving;
  for (const auto& m : members_) send_rpc(Purpose::Leave, m.node, bye, now);
  joined_ = false;
}

// ---- membership ----

void KelipsCore::hear(const NodeRef& n, std::uint32_t heartbeat, Instant now, bool direct) {
  if (n.port == 0) return;
  if (n.id == self_.id) {
    if (!same_address(n, self_)) ++stats_[kSpoofed];
    return;
  }
  if (auto d = dead_.empty() ? dead_.end() : dead_.find(n.id); d != dead_.end()) {
    // Dead or gone: back only with a heartbeat newer than the one it had
    // when dropped (others' news of it may be older than ours). From
    // others, that news is taken in half aged like any (below), so a node
    // that died after it dies out again; a member dropped only because
    // its news was slow to come round is back at once, not after the
    // tombstone expires or it happens to gossip to us itself (in a group
    // of 316, once in five minutes).
    if (heartbeat <= d->second.first) return;
    dead_.erase(d);
  }
  const std::uint32_t g = group_of(n.id);
  if (g == group()) {
    const auto at = place_of(n.id);
    if (!at) {
      // A handle no tuple names (65,535 members at most: more are not taken).
      std::uint16_t handle = 0;
      if (!free_handles_.empty()) {
        handle = free_handles_.back();
        free_handles_.pop_back();
      } else if (place_.size() <= 0xFFFF) {
        handle = static_cast<std::uint16_t>(place_.size());
        place_.push_back(0);
      } else {
        return;
      }
      // Others' news may be old (a node that died, still in someone's
      // view): taken in half aged, and not passed on until its heartbeat
      // grows, so a dead node's entry dies out instead of going round.
      members_.push_back(Member{n, heartbeat, direct ? now : now + (-config_.member_timeout / 2), 0, handle});
      place_[handle] = static_cast<std::uint16_t>(members_.size());
      index_insert(members_.size() - 1);
      if (direct) recent_members_.push_back(n.id);
    } else {
      Member& m = members_[*at];
      if (heartbeat > m.heartbeat) {
        m.heartbeat = heartbeat;
        m.seen = now;
        m.node.ip = n.ip;
        m.node.port = n.port;
        recent_members_.push_back(n.id);
      }
    }
    while (recent_members_.size() > kRecent) recent_members_.pop_front();
    return;
  }
  const auto cs = contact_slots(g);
  for (auto& c : cs) {
    if (c.node.port != 0 && c.node.id == n.id) {
      if (heartbeat > c.heartbeat || direct) {
        c.heartbeat = std::max(c.heartbeat, heartbeat);
        c.seen = now;
      }
      return;
    }
  }
  const Instant seen = direct ? now : now + (-config_.member_timeout / 2);
  for (auto& c : cs) {
    if (c.node.port == 0) {
      c = Member{n, heartbeat, seen, 0, 0};
      return;
    }
  }
  // Full: a contact not heard of for a while makes room.
  auto stale = std::min_element(cs.begin(), cs.end(), [](const Member& a, const Member& b) { return a.seen < b.seen; });
  if (now - stale->seen > config_.contact_stale) *stale = Member{n, heartbeat, seen, 0, 0};
}

std::size_t KelipsCore::slot_of(const NodeId& id) const {
  // The ids' own hash (their low bytes, kept on every ring size), salted
  // and mixed again so that the high bits index the table.
  const std::uint64_t h = (static_cast<std::uint64_t>(IdHash{}(id)) ^ salt_) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(h >> 32) & (slots_.size() - 1);
}

std::optional<std::size_t> KelipsCore::find_slot(const NodeId& id) const {
  if (slots_.empty()) return std::nullopt;
  for (std::size_t i = slot_of(id);; i = (i + 1) & (slots_.size() - 1)) {
    const std::uint16_t s = slots_[i];
    if (s == 0) return std::nullopt;
    if (members_[s - 1u].node.id == id) return i;
  }
}

std::optional<std::size_t> KelipsCore::place_of(const NodeId& id) const {
  const auto slot = find_slot(id);
  if (!slot) return std::nullopt;
  return slots_[*slot] - 1u;
}

void KelipsCore::index_insert(std::size_t at) {
  // At most half full (members_ already holds the new one).
  if (members_.size() * 2 > slots_.size()) {
    std::vector<std::uint16_t> old = std::move(slots_);
    slots_.assign(std::max<std::size_t>(16, old.size() * 2), 0);
    for (std::uint16_t s : old) {
      if (s == 0) continue;
      std::size_t i = slot_of(members_[s - 1u].node.id);
      while (slots_[i] != 0) i = (i + 1) & (slots_.size() - 1);
      slots_[i] = s;
    }
  }
  std::size_t i = slot_of(members_[at].node.id);
  while (slots_[i] != 0) i = (i + 1) & (slots_.size() - 1);
  slots_[i] = static_cast<std::uint16_t>(at + 1u);
}

void KelipsCore::index_erase(std::size_t slot) {
  // Linear probing: the entries after it that would no longer be found
  // move back into the gap.
  const std::size_t mask = slots_.size() - 1;
  slots_[slot] = 0;
  for (std::size_t i = (slot + 1) & mask; slots_[i] != 0; i = (i + 1) & mask) {
    const std::size_t home = slot_of(members_[slots_[i] - 1u].node.id);
    // Moves back when its home is not in (slot, i] going round.
    if (((i - home) & mask) >= ((i - slot) & mask)) {
      slots_[slot] = slots_[i];
      slots_[i] = 0;
      slot = i;
    }
  }
}

std::span<KelipsCore::Member> KelipsCore::contact_slots(std::uint32_t g) {
  return std::span<Member>(contacts_).subspan(static_cast<std::size_t>(g) * config_.contacts, config_.contacts);
}

std::span<const KelipsCore::Member> KelipsCore::contact_slots(std::uint32_t g) const {
  return std::span<const Member>(contacts_).subspan(static_cast<std::size_t>(g) * config_.contacts, config_.contacts);
}

const KelipsCore::Member* KelipsCore::random_contact(std::uint32_t g) {
  const Member* pick[8];
  std::size_t n = 0;
  for (const auto& c : contact_slots(g)) {
    if (c.node.port != 0 && n < 8) pick[n++] = &c;
  }
  return n == 0 ? nullptr : pick[rng_.below(n)];
}

void KelipsCore::drop_member(const NodeId& id, Instant now) {
  const auto slot = find_slot(id);
  if (!slot) return;
  const std::size_t at = slots_[*slot] - 1u;
  const std::uint16_t handle = members_[at].handle;
  dead_[id] = {members_[at].heartbeat, now + 2 * config_.member_timeout};
  index_erase(*slot);  // (before the last member moves into its place: the shift reads members_)
  place_[handle] = 0;
  released_.push_back(handle);  // (free once the tuples no longer name it)
  if (at + 1 != members_.size()) {
    slots_[*find_slot(members_.back().node.id)] = static_cast<std::uint16_t>(at + 1);
    members_[at] = std::move(members_.back());
    place_[members_[at].handle] = static_cast<std::uint16_t>(at + 1);
  }
  members_.pop_back();
  ++stats_[kMembersDead];
}

void KelipsCore::drop_contact(const NodeId& id) {
  for (auto& c : contact_slots(group_of(id))) {
    if (c.node.port != 0 && c.node.id == id) c = Member{};
  }
}

std::vector<NodeRef> KelipsCore::random_members(std::size_t n, const std::vector<NodeId>& except) {
  std::vector<NodeRef> out;
  if (members_.empty()) return out;
  for (std::size_t tries = 0; out.size() < n && tries < 4 * n + 8; ++tries) {
    const NodeRef& c = members_[rng_.below(members_.size())].node;
    if (std::find(out.begin(), out.end(), c) != out.end()) continue;
    if (std::find(except.begin(), except.end(), c.id) != except.end()) continue;
    out.push_back(c);
  }
  return out;
}

std::vector<NodeRef> KelipsCore::contacts_for(std::uint32_t g) const {
  std::vector<NodeRef> out;
  for (const auto& c : contact_slots(g)) {
    if (c.node.port != 0) out.push_back(c.node);
  }
  return out;
}

KelipsCore::Message KelipsCore::gossip_message(std::uint32_t to_group) {
  const bool in_group = to_group == group();
  Message m = request(Type::Gossip);
  const std::size_t want = config_.gossip_entries;
  m.entries.push_back({self_, heartbeat_, 0});
  // Members by their place in members_ (a duplicate is an integer compare).
  std::vector<std::size_t> chosen;
  auto add = [&](std::size_t at) {
    const Member& x = members_[at];
    if (now_ - x.seen >= config_.member_timeout / 2) return;  // (not fresh: not passed on)
    if (std::find(chosen.begin(), chosen.end(), at) != chosen.end()) return;
    chosen.push_back(at);
    m.entries.push_back({x.node, x.heartbeat, x.rtt_ms});
  };
  // The members heard of most recently first (news travels), then a sample.
  std::size_t looked = 0;
  for (auto it = recent_members_.rbegin(); it != recent_members_.rend() && m.entries.size() < want / 2 && looked < want;
       ++it, ++looked) {
    if (const auto at = place_of(*it)) add(*at);
  }
  const std::size_t contacts_wanted = in_group ? 2 : 0;
  for (std::size_t tries = 0; !members_.empty() && m.entries.size() + contacts_wanted < want && tries < want; ++tries) {
    add(rng_.below(members_.size()));
  }
  // A few contacts, so members learn of other groups; to another group,
  // the members of its own we know (two halves of a group that never met
  // find each other through us).
  for (std::size_t tries = 0; in_group && m.entries.size() < want && tries < 4; ++tries) {
    const Member* c = random_contact(static_cast<std::uint32_t>(rng_.below(config_.groups)));
    if (c && now_ - c->seen < config_.member_timeout / 2) m.entries.push_back({c->node, c->heartbeat, c->rtt_ms});
  }
  if (!in_group) {
    for (const auto& c : contact_slots(to_group)) {
      if (c.node.port != 0 && now_ - c.seen < config_.member_timeout / 2) m.entries.push_back({c.node, c.heartbeat, c.rtt_ms});
    }
  }
  if (!in_group || tuples_.empty()) return m;
  // Tuples: the newest, then the next slice of all we know.
  const std::size_t tw = config_.gossip_tuples;
  for (auto it = recent_tuples_.rbegin(); it != recent_tuples_.rend() && m.tuples.size() < tw / 2; ++it) m.tuples.push_back(*it);
  // (from where the last message stopped)
  for (std::size_t k = 0; k < tuples_.size() && m.tuples.size() < tw; ++k) {
    tuple_cursor_ = (tuple_cursor_ + 1) % tuples_.size();
    const Tuple& t = tuples_[tuple_cursor_];
    if (t.n == 0) continue;
    if (const NodeRef* home = home_node(t.at[rng_.below(t.n)])) m.tuples.push_back({t.key, *home});
  }
  return m;
}

void KelipsCore::merge_gossip(const Message& m, Instant now) {
  for (const auto& e : m.entries) hear(e.node, e.heartbeat, now, e.node.id == m.sender.id);
  for (const auto& t : m.tuples) {
    if (group_of(t.key) != group()) continue;  // (not ours to keep)
    add_home(t.key, t.home);  // (a home we do not know alive is not taken)
  }
}

void KelipsCore::gossip_round(Instant now) {
  ++heartbeat_;
  for (const auto& to : random_members(config_.fanout)) {
    send_rpc(Purpose::Gossip, to, gossip_message(group()), now);
    ++stats_[kGossipsSent];
  }
  // One contact of a random other group: our group's news crosses over.
  for (int tries = 0; tries < 4; ++tries) {
    const auto g = static_cast<std::uint32_t>(rng_.below(config_.groups));
    const Member* c = random_contact(g);
    if (!c) continue;
    const NodeRef to = c->node;
    send_rpc(Purpose::Gossip, to, gossip_message(g), now);
    ++stats_[kGossipsSent];
    break;
  }
}

void KelipsCore::expire_members(Instant now) {
  std::vector<NodeId> late;
  for (const auto& m : members_) {
    if (now - m.seen > config_.member_timeout) late.push_back(m.node.id);
  }
  for (const auto& id : late) drop_member(id, now);
  absl::erase_if(dead_, [&](const auto& d) { return d.second.second <= now; });
  // Alone, with an introducer: every member and contact timed out (a
  // network outage, a host suspended or starved), and no one gossips to a
  // node no view holds. Joined again through the introducer; our
  // tombstones go (they are all of that outage, and would turn the
  // introducer's answer away).
  if (introducer_ && members_.empty() &&
      std::none_of(contacts_.begin(), contacts_.end(), [](const Member& c) { return c.node.port != 0; })) {
    ++stats_[kRejoins];
    dead_.clear();
    send_rpc(Purpose::Join, NodeRef{NodeId{}, introducer_->ip, introducer_->port}, request(Type::Neighbours), now);
  }
}

// ---- keys ----

const NodeRef* KelipsCore::home_node(std::uint16_t handle) const {
  if (handle == 0) return &self_;
  const std::uint16_t at = handle < place_.size() ? place_[handle] : 0;
  return at == 0 ? nullptr : &members_[at - 1u].node;
}

const KelipsCore::Tuple* KelipsCore::find_tuple(const NodeId& key) const {
  const auto it = std::lower_bound(tuples_.begin(), tuples_.end(), key, kKeyBefore);
  return it == tuples_.end() || it->key != key ? nullptr : &*it;
}

std::vector<NodeRef> KelipsCore::live_homes(const NodeId& key) const {
  std::vector<NodeRef> out;
  if (store_.count(key)) out.push_back(self_);
  const Tuple* t = find_tuple(key);
  if (!t) return out;
  const Tuple& h = *t;
  for (std::size_t i = 0; i < h.n; ++i) {
    if (h.at[i] == 0) continue;  // (ourselves: counted above when we hold it)
    if (const NodeRef* n = home_node(h.at[i])) out.push_back(*n);
  }
  return out;
}

void KelipsCore::add_home(const NodeId& key, const NodeRef& home) {
  std::uint16_t handle = 0;
  if (home.id != self_.id) {
    const auto at = place_of(home.id);
    if (!at) return;  // not a member we know alive
    handle = members_[*at].handle;
  }
  Tuple* found = find_tuple(key);
  if (!found) {
    const auto pos = std::lower_bound(tuples_.begin(), tuples_.end(), key, kKeyBefore);
    found = &*tuples_.insert(pos, Tuple{key, 0, {}});
  }
  Tuple& h = *found;
  for (std::size_t i = 0; i < h.n; ++i) {
    if (h.at[i] == handle) return;  // (known: most of what comes round)
  }
  if (h.n == kMaxHomes) {
    // Homes that died make room; else we know enough of them.
    std::uint8_t kept = 0;
    for (std::size_t i = 0; i < h.n; ++i) {
      if (home_node(h.at[i])) h.at[kept++] = h.at[i];
    }
    h.n = kept;
    if (h.n == kMaxHomes) return;
  }
  h.at[h.n++] = handle;
  recent_tuples_.push_back({key, home});
  while (recent_tuples_.size() > kRecent) recent_tuples_.pop_front();
}

void KelipsCore::store_value(const NodeId& key, wire::Bytes v, Instant expires) {
  auto& vals = store_[key];
  for (auto& x : vals) {
    if (x.bytes == v) {
      x.expires = std::max(x.expires, expires);
      return;
    }
  }
  if (vals.size() >= config_.max_values_per_key) vals.erase(vals.begin());
  vals.push_back(Value{std::move(v), expires});
  add_home(key, self_);
}

void KelipsCore::copy_to_homes(const NodeId& key, std::size_t wanted, Instant now) {
  auto it = store_.find(key);
  if (it == store_.end() || wanted == 0) return;
  std::vector<NodeId> homes;
  for (const auto& h : live_homes(key)) homes.push_back(h.id);
  bool copied = false;
  for (const auto& to : random_members(wanted, homes)) {
    for (const auto& v : it->second) {
      Message m = request(Type::Store);
      m.flags = dw::kFlagReplica;
      m.key = key;
      m.lifetime = static_cast<std::uint32_t>(
          std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(v.expires - now).count()));
      m.values.push_back(v.bytes);
      send_rpc(Purpose::Copy, to, m, now);
      ++stats_[kCopies];
    }
    add_home(key, to);
    copied = true;
  }
  if (!copied) return;
  // Every home hears of every other at once (a Gossip of the key's tuples):
  // else each new home, knowing only itself and us until the tuples come
  // round a large group, would find the key short and copy it again.
  const auto all = live_homes(key);
  Message g = request(Type::Gossip);
  g.flags = dw::kFlagReplica;  // (a note: answered empty, no gossip of theirs)
  g.entries.push_back({self_, heartbeat_, 0});
  for (const auto& h : all) g.tuples.push_back({key, h});
  for (const auto& h : all) {
    if (h.id != self_.id) send_rpc(Purpose::Gossip, h, g, now);
  }
}

void KelipsCore::repair(Instant now) {
  // Values past their lifetime go. A key with fewer than `homes` live homes
  // two rounds running (the tuples of a new copy take a round or two of
  // gossip to come round) is copied again by the home with the lowest id
  // (one repairer per key).
  std::set<NodeId> short_now;
  for (auto it = store_.begin(); it != store_.end();) {
    std::erase_if(it->second, [&](const Value& v) { return v.expires <= now; });
    if (it->second.empty()) {
      it = store_.erase(it);
      continue;
    }
    auto homes = live_homes(it->first);
    std::sort(homes.begin(), homes.end(), [](const NodeRef& a, const NodeRef& b) { return a.id < b.id; });
    const auto rank = static_cast<std::size_t>(
        std::find_if(homes.begin(), homes.end(), [&](const NodeRef& h) { return h.id == self_.id; }) - homes.begin());
    if (homes.size() < config_.homes && rank == 0) {
      if (short_.count(it->first)) copy_to_homes(it->first, config_.homes - homes.size(), now);
      short_now.insert(it->first);
    }
    ++it;
  }
  short_ = std::move(short_now);
  // Homes that died leave the tuples; tuples with no home left go (and
  // ours, once we no longer hold the key).
  for (Tuple& h : tuples_) {
    std::uint8_t kept = 0;
    for (std::size_t i = 0; i < h.n; ++i) {
      if (h.at[i] == 0 ? store_.count(h.key) != 0 : home_node(h.at[i]) != nullptr) h.at[kept++] = h.at[i];
    }
    h.n = kept;
  }
  std::erase_if(tuples_, [](const Tuple& t) { return t.n == 0; });
  // No tuple names a dropped member's handle now: it may be given again.
  free_handles_.insert(free_handles_.end(), released_.begin(), released_.end());
  released_.clear();
}

// ---- operations ----

std::uint64_t KelipsCore::lookup(const NodeId& key, Instant now, std::optional<Endpoint> via) {
  Op op;
  op.kind = OpKind::Lookup;
  op.key = ring_.reduce(key);
  return start_op(std::move(op), via, now);
}

std::uint64_t KelipsCore::put(const NodeId& key, wire::Bytes value, Instant now, Duration lifetime, std::optional<Endpoint> via) {
  Op op;
  op.kind = OpKind::Put;
  op.key = ring_.reduce(key);
  op.value = std::move(value);
  op.lifetime = lifetime_seconds(lifetime, config_.default_lifetime);
  return start_op(std::move(op), via, now);
}

std::uint64_t KelipsCore::get(const NodeId& key, Instant now, std::optional<Endpoint> via) {
  Op op;
  op.kind = OpKind::Get;
  op.key = ring_.reduce(key);
  return start_op(std::move(op), via, now);
}

std::uint64_t KelipsCore::start_op(Op op, std::optional<Endpoint> via, Instant now) {
  const std::uint64_t id = next_op_++;
  ++stats_[kLookups];
  op.group = group_of(op.key);
  ops_[id] = std::move(op);
  Op& o = ops_[id];
  if (via) {
    o.next.push_back(NodeRef{NodeId{}, via->ip, via->port});
  } else if (o.group == group() && joined_) {
    // Our own group: what we know answers it at once.
    o.reached_group = true;
    if (o.kind == OpKind::Put) {
      store_value(o.key, o.value, now + std::chrono::seconds(o.lifetime));
      ++stats_[kStores];
      copy_to_homes(o.key, config_.homes - 1, now);
      op_done(id, true, {}, self_);
      return id;
    }
    if (o.kind == OpKind::Get) {
      if (auto s = store_.find(o.key); s != store_.end()) {
        std::vector<wire::Bytes> values;
        for (const auto& v : s->second) values.push_back(v.bytes);
        op_done(id, true, {}, self_, std::move(values));
        return id;
      }
    }
    const auto homes = live_homes(o.key);
    if (o.kind == OpKind::Lookup && !homes.empty()) {
      op_done(id, true, {}, homes.front());
      return id;
    }
    add_candidates(o, homes, false);
    add_candidates(o, random_members(2), false);
  } else {
    add_candidates(o, contacts_for(o.group), false);
    // Rerouting when we know no contact there: members may.
    if (o.next.empty()) add_candidates(o, random_members(2), false);
  }
  op_step(id, now);
  return id;
}

void KelipsCore::add_candidates(Op& o, const std::vector<NodeRef>& nodes, bool front) {
  std::vector<NodeRef> fresh;
  for (const auto& n : nodes) {
    if (n.id == self_.id || n.port == 0) continue;
    if (std::find(o.asked.begin(), o.asked.end(), n.id) != o.asked.end()) continue;
    if (std::find(o.next.begin(), o.next.end(), n) != o.next.end()) continue;
    if (std::find(fresh.begin(), fresh.end(), n) != fresh.end()) continue;
    fresh.push_back(n);
  }
  o.next.insert(front ? o.next.begin() : o.next.end(), fresh.begin(), fresh.end());
}

void KelipsCore::op_step(std::uint64_t id, Instant now) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  Op& o = it->second;
  if (o.next.empty() || o.asked.size() >= config_.max_hops) {
    if (o.kind == OpKind::Get && o.reached_group) {
      op_done(id, true);  // the group was asked and holds no value for it
    } else {
      op_done(id, false, o.reached_group ? "no home known" : "no member of the key's group answered");
    }
    return;
  }
  const NodeRef to = o.next.front();
  o.next.erase(o.next.begin());
  if (!(to.id == NodeId{})) o.asked.push_back(to.id);
  Message m = request(o.kind == OpKind::Get ? Type::Get : Type::FindNode);
  m.key = o.key;
  send_rpc(o.kind == OpKind::Get ? Purpose::Get : Purpose::Find, to, m, now, id);
}

void KelipsCore::op_done(std::uint64_t id, bool ok, std::string error, NodeRef owner, std::vector<wire::Bytes> values) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  Op& o = it->second;
  if (ok) {
    stats_[kLookupHops] += o.route.size();
    if (o.route.size() <= 1) ++stats_[kOneHop];
  } else {
    ++stats_[kLookupsFailed];
  }
  OpResult r;
  r.op = id;
  r.kind = o.kind;
  r.ok = ok;
  r.owner = owner;
  r.route = std::move(o.route);
  r.values = std::move(values);
  r.error = std::move(error);
  results_.push_back(std::move(r));
  ops_.erase(it);
}

// ---- datagrams ----

void KelipsCore::answer(const Message& m, Endpoint from, Instant now) {
  Message r = dw::response_to(m, self_);
  const bool leaving = m.flags & dw::kFlagLeaving;
  // A node that joins through us or gossips with us is alive (one that
  // only looks up may be a client that never joins: not taken in).
  if (!leaving && m.type == Type::Neighbours) hear(m.sender, 0, now, true);
  switch (m.type) {
    case Type::Ping:
      break;
    case Type::Neighbours: {
      // Members of our group, then one contact per other group: enough for
      // a joiner to start gossiping and looking up.
      // (the asker's own group first: every contact we have there)
      const std::uint32_t asker = group_of(m.sender.id);
      r.nodes.push_back(self_);
      for (const auto& n : contacts_for(asker)) {
        if (n.id != m.sender.id) r.nodes.push_back(n);
      }
      for (const auto& n : random_members(wire::dht::kMaxNodes / 2, {m.sender.id})) r.nodes.push_back(n);
      for (std::uint32_t i = 0; i < config_.groups && r.nodes.size() < wire::dht::kMaxNodes; ++i) {
        const std::uint32_t g = (group() + 1 + i) % config_.groups;
        if (g == asker) continue;
        if (const Member* c = random_contact(g)) r.nodes.push_back(c->node);
      }
      break;
    }
    case Type::FindNode:
    case Type::Get: {
      if (!joined_) {
        r.type = Type::Error;
        r.error = dw::ErrorCode::NotJoined;
        break;
      }
      const NodeId key = ring_.reduce(m.key);
      const std::uint32_t g = group_of(key);
      if (m.type == Type::Get) {
        if (auto s = store_.find(key); s != store_.end()) {
          for (const auto& v : s->second) r.values.push_back(v.bytes);
          break;
        }
      }
      if (g == group()) {
        // The homes from our tuples; else other members (one may know).
        r.nodes = live_homes(key);
        r.owner = !r.nodes.empty();
        if (r.nodes.empty()) r.nodes = random_members(3, {m.sender.id});
      } else {
        // Our contacts there, then two members of our own group: if the
        // contacts are dead (or we have none), the asker goes on through
        // members who have contacts of their own (the paper's fallback).
        r.nodes = contacts_for(g);
        for (const auto& n : random_members(2, {m.sender.id})) r.nodes.push_back(n);
      }
      break;
    }
    case Type::Store: {
      const NodeId key = ring_.reduce(m.key);
      if (group_of(key) != group() || !joined_) {
        r.status = dw::StoreStatus::NotResponsible;
        ++stats_[kStoresRefused];
        break;
      }
      if (store_.size() >= config_.max_keys && !store_.count(key)) {
        r.status = dw::StoreStatus::Full;
        ++stats_[kStoresRefused];
        break;
      }
      ++stats_[kStores];
      store_value(key, m.values.front(), now + std::chrono::seconds(std::max<std::uint32_t>(m.lifetime, 1)));
      if (!(m.flags & dw::kFlagReplica)) copy_to_homes(key, config_.homes - 1, now);
      break;
    }
    case Type::Gossip:
      merge_gossip(m, now);
      r.entries = {};
      if (m.flags & dw::kFlagReplica) break;  // a note of a value's homes: taken in, nothing to pull
      {
        Message mine = gossip_message(group_of(m.sender.id));
        r.entries = std::move(mine.entries);
        r.tuples = std::move(mine.tuples);
      }
      break;
    case Type::Leave:
      drop_member(m.sender.id, now);
      drop_contact(m.sender.id);
      break;
    case Type::Notify:
    case Type::Error:
      return;  // (Chord's)
  }
  send_reply(from, r);
}

void KelipsCore::on_response(const Message& m, Rpc p, Instant now) {
  if (m.type == Type::Error) {
    if (p.info.purpose == Purpose::Find || p.info.purpose == Purpose::Get) {
      op_step(p.info.op, now);  // alive but no help (still joining): the next candidate
    } else if (p.info.purpose == Purpose::Join) {
      next_join_ = now + config_.join_retry;
    }
    return;
  }
  if (!(m.flags & dw::kFlagLeaving)) {
    hear(m.sender, 0, now, true);
  }
  // Round trips, for the view and the contacts (proximity).
  const auto rtt = static_cast<std::uint16_t>(
      std::min<std::int64_t>(65535, std::chrono::duration_cast<std::chrono::milliseconds>(now - p.info.sent).count()));
  if (const auto at = place_of(m.sender.id)) {
    members_[*at].rtt_ms = rtt;
  } else {
    for (auto& c : contact_slots(group_of(m.sender.id))) {
      if (c.node.port != 0 && c.node.id == m.sender.id) c.rtt_ms = rtt;
    }
  }
  switch (p.info.purpose) {
    case Purpose::Join:
    case Purpose::Fill: {
      for (const auto& n : m.nodes) hear(n, 0, now, false);
      const bool first = !joined_;
      joined_ = true;
      // A member of our own group fills our view (the introducer may be in another).
      if (first && group_of(m.sender.id) != group()) {
        for (const auto& to : random_members(1)) send_rpc(Purpose::Fill, to, request(Type::Neighbours), now);
      }
      return;
    }
    case Purpose::Gossip:
      merge_gossip(m, now);
      return;
    case Purpose::Find:
    case Purpose::Get: {
      auto it = ops_.find(p.info.op);
      if (it == ops_.end()) return;
      Op& o = it->second;
      o.route.push_back(p.info.to);
      const bool in_group = group_of(m.sender.id) == o.group;
      if (in_group) o.reached_group = true;
      if (!m.values.empty()) {
        op_done(p.info.op, true, {}, p.info.to, m.values);
        return;
      }
      if (o.kind == OpKind::Put && in_group) {
        // A member of the key's group: it stores the value and copies it on.
        Message s = request(Type::Store);
        s.key = o.key;
        s.lifetime = o.lifetime;
        s.values.push_back(o.value);
        send_rpc(Purpose::Store, p.info.to, s, now, p.info.op);
        return;
      }
      if (o.kind == OpKind::Lookup && in_group && m.owner && !m.nodes.empty()) {
        op_done(p.info.op, true, {}, m.nodes.front());
        return;
      }
      // Homes to fetch from, or nodes nearer the group: asked first.
      add_candidates(o, m.nodes, true);
      op_step(p.info.op, now);
      return;
    }
    case Purpose::Store: {
      const bool stored = m.status == dw::StoreStatus::Stored;
      if (!stored && m.status == dw::StoreStatus::NotResponsible) {
        op_step(p.info.op, now);  // (it has another group's idea of k: try another)
        return;
      }
      op_done(p.info.op, stored, stored ? "" : "refused", p.info.to);
      return;
    }
    case Purpose::Copy:
    case Purpose::Leave:
      return;
  }
}

void KelipsCore::on_timeout(Rpc p, Instant now) {
  ++stats_[kTimeouts];
  // Once more, waiting twice as long, before the node is taken for dead: a
  // datagram lost in a burst (a full receive buffer) must not cost a member
  // its place in every view, a copy its home, or a put its only way in. A
  // lookup with other candidates moves on at once instead; gossip comes
  // round again anyway.
  if (p.tries < config_.retries && p.info.purpose != Purpose::Gossip && p.info.purpose != Purpose::Leave) {
    const bool op = p.info.purpose == Purpose::Find || p.info.purpose == Purpose::Get;
    const auto it = op ? ops_.find(p.info.op) : ops_.end();
    if (!op || (it != ops_.end() && it->second.next.empty())) {
      ++p.tries;
      const Instant deadline = now + config_.rpc_timeout * (1 << p.tries);
      resend(std::move(p), deadline);
      return;
    }
  }
  const NodeRef& to = p.info.to;
  if (!(to.id == NodeId{})) {
    // No answer: gone (it is back when it gossips with a newer heartbeat).
    if (is_member(to.id)) drop_member(to.id, now);
    drop_contact(to.id);
  }
  switch (p.info.purpose) {
    case Purpose::Join:
      next_join_ = now + config_.join_retry;
      return;
    case Purpose::Find:
    case Purpose::Get:
      if (auto it = ops_.find(p.info.op); it != ops_.end()) {
        Op& o = it->second;
        // The contact is dead: reroute through members, who may know others.
        if (o.next.empty() && !o.reached_group && o.group != group()) {
          add_candidates(o, contacts_for(o.group), false);
          if (o.next.empty()) add_candidates(o, random_members(2), false);
        }
        op_step(p.info.op, now);
      }
      return;
    case Purpose::Store:
      op_step(p.info.op, now);
      return;
    default:
      return;
  }
}

// ---- timers ----

void KelipsCore::handle_timeout(Instant now) {
  now_ = now;
  while (auto p = rpcs_.take_expired(now)) on_timeout(std::move(*p), now);
  if (!joined_) {
    if (next_join_ && now >= *next_join_ && introducer_) join(introducer_, now);
    return;
  }
  if (now >= next_gossip_) {
    next_gossip_ = now + config_.gossip_every;
    gossip_round(now);
  }
  if (now >= next_expire_) {
    next_expire_ = now + config_.member_timeout / 4;
    expire_members(now);
  }
  if (now >= next_repair_) {
    next_repair_ = now + config_.repair_every;
    repair(now);
  }
}

std::optional<Instant> KelipsCore::poll_timeout() const {
  std::optional<Instant> t = rpcs_.next_deadline();
  auto consider = [&](Instant i) {
    if (!t || i < *t) t = i;
  };
  if (!joined_ && next_join_) consider(*next_join_);
  if (joined_) {
    consider(next_gossip_);
    consider(next_expire_);
    consider(next_repair_);
  }
  return t;
}

}  // namespace sv::dht
