#include "servent/gnutella/gnutella_core.hpp"

#include <algorithm>
#include <limits>

#include "wire/gnutella/ggep.hpp"
#include "wire/gnutella/huge.hpp"

namespace sv {

namespace {

constexpr std::array<std::string_view, GnutellaCore::kStatCount> kStatNames = {
    "descriptors_in",
    "descriptors_out",
    "pings_in",
    "pongs_in",
    "queries_in",
    "query_hits_in",
    "pushes_in",
    "byes_in",
    "other_in",
    "drop_bad_ggep",
    "drop_hits_over_cap",
    "byes_sent",
    "close_deflate_error",
    "close_deflate_bomb",
    "links_compressed_in",
    "links_compressed_out",
    "pongs_from_cache",
    "pings_not_flooded",
    "hosts_learned",
    "cache_connects",
    "drop_duplicate",
    "drop_ttl_zero",
    "drop_hops_exceeded",
    "ttl_clamped",
    "drop_pong_unroutable",
    "drop_query_hit_unroutable",
    "drop_push_unroutable",
    "drop_ttl_expired",
    "drop_query_rate",
    "queries_answered",
    "query_hits_sent",
    "pongs_sent",
    "forwarded",
    "push_for_us",
    "pushes_sent",
    "close_handshake_malformed",
    "close_handshake_refused",
    "close_handshake_timeout",
    "close_full",
    "close_payload_too_large",
    "close_payload_malformed",
    "close_bye",
    "close_by_peer",
    "connect_attempts",
    "connect_fallback_04",
    "handshakes_04",
    "handshakes_06",
    "pongs_withheld",
    "queries_held_back",
    "refused_shielded_leaf",
    "refused_leaves_full",
    "refused_ultrapeers_full",
    "close_leaf_to_leaf",
    "close_enough_ultrapeers",
    "close_role_lie",
    "drop_relayed_by_leaf",
    "role_changes",
    "qrp_in",
    "qrp_tables_in",
    "qrp_ignored",
    "qrp_sent",
    "close_qrp_malformed",
    "close_qrp_error",
    "close_qrp_resets",
    "queries_to_leaves",
    "queries_qrp_filtered",
    "vendor_in",
    "drop_vendor_malformed",
    "hsep_in",
    "drop_hsep_malformed",
    "hsep_sent",
    "query_status_requests",
    "query_status_answers",
    "query_status_in",
    "dq_started",
    "dq_sends",
    "dq_satisfied",
    "dq_exhausted",
    "dq_timed_out",
    "dq_stopped",
    "promotions",
    "promotions_bootstrap",
    "connect_backs_asked",
    "connect_backs_done",
    "connect_backs_refused",
    "demotions",
};


constexpr std::uint8_t kRoutePing = 0;
constexpr std::uint8_t kRouteQuery = 1;

// Our QueryHit trailer vendor code (0.4 spec §"QueryHit", trailer).
constexpr std::array<std::uint8_t, 4> kVendor = {'S', 'R', 'V', 'T'};

SharedBuffer encode_shared(const gn::Header& h, wire::ByteView payload) {
  return std::make_shared<Buffer>(gn::encode_descriptor(h, payload));
}

// "X-Ultrapeer: True" / "False" (any case); nullopt when absent or other.
std::optional<bool> says_ultrapeer(const wire::Headers& h) {
  auto v = h.get("X-Ultrapeer");
  if (!v) return std::nullopt;
  const std::string t = wire::to_lower(wire::trim(*v));
  if (t == "true") return true;
  if (t == "false") return false;
  return std::nullopt;
}

}  // namespace

GnutellaCore::GnutellaCore(const share::Library& library, GnutellaConfig config, std::uint64_t seed)
    : library_(library),
      config_(std::move(config)),
      rng_(seed),
      routes_(config_.route_capacity, config_.route_ttl),
      push_routes_(config_.route_capacity, config_.route_ttl),
      own_hits_(4096, config_.route_ttl) {
  rng_.fill(servent_id_.bytes.data(), servent_id_.bytes.size());
  role_ = config_.mode == NodeMode::Ultrapeer ? Role::Ultrapeer : Role::Leaf;
}

std::string_view to_string(Role r) { return r == Role::Ultrapeer ? "ultrapeer" : "leaf"; }

GnutellaCore::Conn* GnutellaCore::find(ConnId id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : &it->second;
}

gn::Guid GnutellaCore::new_guid() {
  gn::Guid g;
  rng_.fill(g.bytes.data(), g.bytes.size());
  // Modern servents mark their GUIDs: byte 8 = 0xff, byte 15 = 0 (0.6 draft §3.1).
  g.bytes[8] = 0xff;
  g.bytes[15] = 0x00;
  return g;
}

wire::Headers GnutellaCore::our_headers(const Conn& c) const {
  wire::Headers h;
  h.add("User-Agent", config_.user_agent);
  const bool up = role_ == Role::Ultrapeer;
  h.add("X-Ultrapeer", up ? "True" : "False");
  if (up && c.dir == Direction::Inbound) {
    // Leaf guidance (Ultrapeers 1.0 §3.2): "False" tells an ultrapeer-capable
    // peer we have ultrapeers enough and would rather have it as a leaf.
    const bool needed = links(Link::Leaf) * 5 >= config_.max_leaves * 4;  // our leaf slots nearly full
    h.add("X-Ultrapeer-Needed", needed ? "True" : "False");
  }
  // QRP 0.1 §"Handshake": we read and send tables; as an ultrapeer we also
  // exchange them with ultrapeer neighbours (last-hop routing).
  h.add("X-Query-Routing", "0.1");
  if (up) {
    h.add("X-Ultrapeer-Query-Routing", "0.1");
    h.add("X-Degree", std::to_string(config_.max_ultrapeers));
  }
  h.add("X-Max-TTL", std::to_string(config_.max_ttl));
  // Dynamic querying: we run it as an ultrapeer and guide it as a leaf
  // (Query-Status), announced in the vendor messages we send.
  if (config_.dynamic_querying) h.add("X-Dynamic-Querying", "0.1");
  h.add("Vendor-Message", "0.2");
  h.add("Pong-Caching", "0.1");
  h.add("Remote-IP", gn::ipv4_to_string(c.remote.ip));
  if (config_.advertised.port != 0 && config_.advertised.ip != 0) {
    h.add("Listen-IP", config_.advertised.to_string());
  }
  h.add("GUID", servent_id_.hex());
  h.add("Bye-Packet", "0.1");
  h.add("GGEP", "0.5");
  h.add("X-Features", "HSEP/0.2");
  if (config_.compress) h.add("Accept-Encoding", "deflate");
  // We compress what we send when the peer said it can read it.
  if (config_.compress && c.offered_deflate) h.add("Content-Encoding", "deflate");
  return h;
}

void GnutellaCore::learn_hosts(const Conn& c, const wire::Headers& h, Instant now) {
  const std::size_t before = hosts_.size();
  // Listen-IP (0.6 draft) / X-My-Address: where the peer accepts connections.
  for (const char* name : {"Listen-IP", "X-My-Address"}) {
    if (auto v = h.get(name)) {
      auto e = Endpoint::parse(wire::trim(*v));
      if (e && e->ip == 0) e->ip = c.remote.ip;  // "Listen-IP: 0.0.0.0:port" means "this address"
      if (e) hosts_.add(*e, now);
    }
  }
  if (auto v = h.get("X-Try")) hosts_.add_list(*v, now);
  if (auto v = h.get("X-Try-Ultrapeers")) hosts_.add_list(*v, now, true);
  // Remote-IP: how the peer sees us. Behind NAT this is the only way to
  // learn the address to put in Pongs and QueryHits.
  if (config_.advertised.ip == 0) {
    if (auto v = h.get("Remote-IP")) {
      if (auto ip = gn::ipv4_from_string(wire::trim(*v)); ip && HostCache::usable(Endpoint{*ip, 1})) {
        config_.advertised.ip = *ip;
      }
    }
  }
  stats_[kHostsLearned] += hosts_.size() > before ? hosts_.size() - before : 0;
  if (hosts_.size() > before) top_up_peers(now);
}

void GnutellaCore::cache_pong(const gn::Pong& p, std::uint8_t distance, ConnId via, Instant now) {
  const Endpoint e{p.ip, p.port};
  if (!HostCache::usable(e) || e == config_.advertised) return;
  const std::size_t before = hosts_.size();
  hosts_.add(e, now);
  if (hosts_.size() > before) ++stats_[kHostsLearned];
  if (!p.extensions.empty()) {
    if (auto g = gn::decode_ggep(p.extensions)) {
      if (const auto* up = g->find("UP")) {
        hosts_.mark_ultrapeer(e, true);
        // (version, free leaf slots, free ultrapeer slots)
        if (up->data.size() >= 2) hosts_.mark_leaf_room(e, up->data[1] > 0);
      }
    }
  }
  std::erase_if(pong_cache_, [&](const CachedPong& cp) { return Endpoint{cp.pong.ip, cp.pong.port} == e; });
  pong_cache_.push_front(CachedPong{p, distance, via, now});
  while (pong_cache_.size() > config_.pong_cache_size) pong_cache_.pop_back();
  if (hosts_.size() > before) top_up_peers(now);
}

bool GnutellaCore::answer_from_cache(Conn& c, const gn::Header& ping, Instant now) {
  // Ping/Pong scheme (pong caching): answer from what we know instead of
  // flooding the Ping, when what we know is fresh.
  std::size_t sent = 0;
  for (const auto& cp : pong_cache_) {
    if (sent >= config_.pongs_per_ping) break;
    if (now - cp.at > config_.pong_cache_ttl || cp.via == c.id) continue;
    if (cp.distance + 1 > ping.ttl + ping.hops) continue;  // farther than the Ping would have gone
    wire::Bytes payload;
    gn::encode_pong(payload, cp.pong);
    gn::Header out{ping.id, static_cast<std::uint8_t>(gn::Type::Pong),
                   static_cast<std::uint8_t>(std::min<int>(ping.hops + 1, config_.max_ttl)), cp.distance, 0};
    send(c, encode_shared(out, payload));
    ++sent;
  }
  stats_[kPongsFromCache] += sent;
  return sent > 0;
}

void GnutellaCore::ping_one(Conn& c, Instant now) {
  gn::Guid id = new_guid();
  routes_.insert({id, kRoutePing}, kSelf, now);
  send(c, encode_shared(gn::Header{id, static_cast<std::uint8_t>(gn::Type::Ping), config_.max_ttl, 0, 0}, {}));
}

void GnutellaCore::top_up_peers(Instant now) {
  if (config_.min_peers == 0) return;
  // A leaf looks for its leaf_ultrapeers ultrapeers and no more.
  const std::size_t target = role_ == Role::Leaf ? config_.leaf_ultrapeers : config_.min_peers;
  // (an ultrapeer's leaves are not among its min_peers, whoever dialled)
  std::size_t active = 0;
  for (const auto& w : wanted_) {
    const Conn* c = w.conn ? find(*w.conn) : nullptr;
    active += w.conn && !(c && c->phase == Phase::Established && c->link == Link::Leaf);
  }
  for (const auto& [id, c] : conns_) active += c.dir == Direction::Inbound && c.phase == Phase::Established && c.link != Link::Leaf;
  hosts_.wake_due(now);  // (full ultrapeers whose rest is over)
  if (active >= target) return;  // (the usual case: nothing to look up)
  // A search that found too few a moment ago finds no more while the cache
  // has nothing new (this runs at every timer; a node short of links that
  // knows nobody else to dial walked its whole cache each time). Rests that
  // end are noticed within the second.
  if (fruitless_ && fruitless_->changes == hosts_.changes() && fruitless_->role == role_ && now - fruitless_->at < 1s) return;
  fruitless_.reset();
  std::vector<Endpoint> skip{config_.advertised};
  for (const auto& w : wanted_) {
    // A host given up on may be tried again when learned again, but not
    // before a while (a busy network re-announces the same hosts); one that
    // was full, after busy_rest or when it says it has room again.
    const bool resting = w.busy ? now - w.parked_at < config_.busy_rest && !hosts_.has_leaf_room(w.ep)
                                : now - w.parked_at < 10 * config_.reconnect_max;
    if (!w.parked || resting) skip.push_back(w.ep);
  }
  // Nor a peer we have a link with already, whoever dialled (an inbound
  // peer's address is its Listen-IP, not the port it came from).
  for (const auto& [id, c] : conns_) {
    skip.push_back(c.remote);
    if (c.listen.port != 0) skip.push_back(c.listen);
  }
  // Known ultrapeers first (a leaf: those that said they have room for one
  // first), the best reputed first, then the most recent; a leaf dials only
  // ultrapeers when it knows some (the rest are leaves, which refuse it).
  // The best reputed of a few more than are needed in each class: the first
  // class with enough decides, and the cache is walked no further (this runs
  // whenever a link is short; walking a full cache each time was half of a
  // 10,000-node network's time under churn).
  const std::size_t needed = target - active;
  const std::size_t window = std::min<std::size_t>(256, std::max<std::size_t>(16, 8 * needed));
  const bool ultrapeers_only = role_ == Role::Leaf && hosts_.ultrapeers() > 0;
  std::vector<Endpoint> candidates;
  for (auto pick : {HostCache::Pick::UltrapeersWithRoom, HostCache::Pick::Ultrapeers, HostCache::Pick::Any}) {
    if (pick == HostCache::Pick::UltrapeersWithRoom && role_ != Role::Leaf) continue;
    if (pick == HostCache::Pick::Any && ultrapeers_only) break;
    for (const Endpoint& e : hosts_.recent(window - candidates.size(), skip, pick)) {
      candidates.push_back(e);
      skip.push_back(e);
    }
    if (candidates.size() >= needed) break;
  }
  // Each key looked up once, not at every comparison.
  struct Ranked {
    bool up, room;
    int score;
    Endpoint ep;
  };
  std::vector<Ranked> ranked;
  ranked.reserve(candidates.size());
  for (const Endpoint& e : candidates) {
    ranked.push_back({hosts_.is_ultrapeer(e), role_ == Role::Leaf && hosts_.has_leaf_room(e), reputation_.score(e), e});
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.up != b.up) return a.up;
    if (a.room != b.room) return a.room;
    return a.score > b.score;
  });
  if (candidates.empty() && role_ == Role::Leaf && links(Link::Parent) == 0 && ask_full_again(now)) return;
  if (candidates.size() < needed) fruitless_ = Fruitless{hosts_.changes(), role_, now};
  candidates.resize(std::min(candidates.size(), needed));
  for (std::size_t i = 0; i < candidates.size(); ++i) candidates[i] = ranked[i].ep;
  for (const auto& e : candidates) {
    ++stats_[kCacheConnects];
    // Learned again since it was given up on: try it again.
    auto parked = std::find_if(wanted_.begin(), wanted_.end(), [&](const Wanted& w) { return w.parked && w.ep == e; });
    if (parked != wanted_.end()) {
      unpark(*parked, now);
      continue;
    }
    wanted_.push_back(Wanted{e, false, config_.reconnect_min, now, std::nullopt, true, 0, false, false, Instant{}});
    wake_by(now);
  }
}

void GnutellaCore::unpark(Wanted& w, Instant now) {
  // Dialled again now, as if new.
  w.parked = false;
  w.busy = false;
  w.failures = 0;
  w.backoff = config_.reconnect_min;
  w.next_attempt = now;
  wake_by(now);
}

bool GnutellaCore::ask_full_again(Instant now) {
  // A leaf without any ultrapeer, every one it knows resting as full: it
  // has no link to hear of others from, but a refusal names ultrapeers with
  // room (X-Try-Ultrapeers). So every busy_rest / 10 it asks again the one
  // that has rested longest (one: asking them all each time made thousands
  // of such leaves dial every ultrapeer they knew while a network formed).
  if (orphan_asked_at_ && now - *orphan_asked_at_ < config_.busy_rest / 10) return false;
  Wanted* oldest = nullptr;
  for (auto& w : wanted_) {
    if (w.parked && w.busy && !w.conn && (!oldest || w.parked_at < oldest->parked_at)) oldest = &w;
  }
  if (!oldest || now - oldest->parked_at < config_.busy_rest / 10) return false;
  orphan_asked_at_ = now;
  hosts_.wake(oldest->ep);
  unpark(*oldest, now);
  ++stats_[kCacheConnects];
  return true;
}

void GnutellaCore::note_headers(Conn& c, const wire::Headers& h) {
  auto has_token = [&](std::string_view name, std::string_view token) {
    auto v = h.get(name);
    if (!v) return false;
    std::string lower = wire::to_lower(*v);
    return lower.find(token) != std::string::npos;
  };
  if (h.has("Bye-Packet")) c.bye_ok = true;
  if (h.has("X-Query-Routing")) c.peer_qrp = true;
  if (h.has("X-Ultrapeer-Query-Routing")) c.peer_up_qrp = true;
  if (has_token("X-Features", "hsep/0.")) c.hsep_ok = true;
  if (auto v = h.get("X-Ultrapeer-Needed")) c.needs_ultrapeers = wire::to_lower(wire::trim(*v)) == "true";
  if (auto v = h.get("X-Degree")) {
    const std::string d(wire::trim(*v));
    if (!d.empty() && d.size() < 6 && std::all_of(d.begin(), d.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      c.degree = static_cast<std::size_t>(std::stoul(d));
    }
  }
  if (has_token("Accept-Encoding", "deflate")) c.offered_deflate = true;
  if (config_.compress && has_token("Content-Encoding", "deflate") && !c.inflater) {
    c.inflater = std::make_unique<wire::Inflater>();
    ++stats_[kLinksCompressedIn];
  }
}

void GnutellaCore::add_peer(Endpoint peer, Instant now) {
  for (const auto& w : wanted_) {
    if (w.ep == peer) return;
  }
  wanted_.push_back(Wanted{peer, false, config_.reconnect_min, now, std::nullopt, false, 0, false, false, Instant{}});
  wake_by(now);
}

void GnutellaCore::handle_connected(ConnId id, Endpoint remote, Direction dir, Instant now) {
  now_ = now;
  if (!started_) started_ = now;
  if (dir == Direction::Inbound) inbound_seen_ = true;  // we can be reached
  if (auto cb = connect_backs_.find(id); cb != connect_backs_.end()) {
    // A TCP-Connect-Back a leaf asked for: the connect itself is the answer
    // (as gtk-gnutella does it); the leaf has shown it can be reached.
    reputation_.reachable(cb->second, now);
    connect_backs_.erase(cb);
    ++stats_[kConnectBacksDone];
    actions_.push_back(action::Close{id, CloseReason::Normal, true});
    return;
  }
  Conn c;
  c.id = id;
  c.remote = remote;
  if (dir == Direction::Outbound) c.listen = remote;
  c.dir = dir;
  c.phase = dir == Direction::Inbound ? Phase::AwaitConnect : Phase::AwaitResponse;
  c.framer = gn::Framer(config_.max_payload);
  c.deadline = now + config_.handshake_timeout;
  wake_by(c.deadline);
  if (dir == Direction::Outbound) {
    for (std::size_t i = 0; i < wanted_.size(); ++i) {
      if (wanted_[i].conn == id) c.wanted = static_cast<int>(i);
    }
  }
  auto [it, _] = conns_.insert_or_assign(id, std::move(c));
  Conn& conn = it->second;
  if (dir == Direction::Outbound) {
    const bool try04 = conn.wanted >= 0 && wanted_[static_cast<std::size_t>(conn.wanted)].try04;
    if (try04) {
      send_text(conn, gn::kConnect04);
    } else {
      send_text(conn, gn::encode_connect06(our_headers(conn)));
    }
  }
}

void GnutellaCore::handle_bytes(ConnId id, wire::ByteView bytes, Instant now) {
  now_ = now;
  Conn* c = find(id);
  if (!c || c->phase == Phase::Closing) return;
  if (c->phase == Phase::Established) {
    feed_established(*c, bytes, now);
    return;
  }
  c->hs_buf.insert(c->hs_buf.end(), bytes.begin(), bytes.end());
  on_handshake(*c, now);
}

void GnutellaCore::on_handshake(Conn& c, Instant now) {
  while (c.phase != Phase::Established && c.phase != Phase::Closing) {
    auto r = gn::decode_handshake(c.hs_buf);
    if (r.need_more()) return;
    if (!r) {
      close(c, CloseReason::HandshakeMalformed, kCloseHandshakeMalformed);
      return;
    }
    const gn::Handshake& hs = *r;
    c.hs_buf.erase(c.hs_buf.begin(), c.hs_buf.begin() + static_cast<std::ptrdiff_t>(hs.consumed));
    // Where an inbound peer listens, before what it names is learned (that
    // may dial: not this peer again).
    if (c.dir == Direction::Inbound && c.listen.port == 0) {
      for (const char* name : {"Listen-IP", "X-My-Address"}) {
        auto v = hs.headers.get(name);
        auto e = v ? Endpoint::parse(wire::trim(*v)) : std::nullopt;
        if (e && e->port != 0) c.listen = Endpoint{e->ip != 0 ? e->ip : c.remote.ip, e->port};
      }
    }
    learn_hosts(c, hs.headers, now);
    switch (c.phase) {
      case Phase::AwaitConnect: {
        if (hs.kind != gn::Handshake::Kind::Connect) {
          close(c, CloseReason::HandshakeMalformed, kCloseHandshakeMalformed);
          return;
        }
        const auto refused = admit(c, hs.is_04() ? std::nullopt : says_ultrapeer(hs.headers), now);
        if (hs.is_04()) {
          // 0.4 has no refusal message: a full servent just closes.
          if (refused) {
            close(c, CloseReason::Full, refused->stat);
            return;
          }
          send_text(c, gn::kOk04);
          establish(c, true, {}, now);
          return;
        }
        if (refused) {
          refuse(c, *refused);
          return;
        }
        c.user_agent = hs.headers.get("User-Agent").value_or("");
        note_headers(c, hs.headers);
        send_text(c, gn::encode_response06(200, "OK", our_headers(c)));
        if (config_.compress && c.offered_deflate) {
          c.deflater = std::make_unique<wire::Deflater>();
          ++stats_[kLinksCompressedOut];
        }
        c.phase = Phase::AwaitFinal;
        break;
      }
      case Phase::AwaitFinal:
        if (hs.kind != gn::Handshake::Kind::Response) {
          close(c, CloseReason::HandshakeMalformed, kCloseHandshakeMalformed);
          return;
        }
        if (hs.status != 200) {
          close(c, CloseReason::HandshakeRefused, kCloseHandshakeRefused);
          return;
        }
        note_headers(c, hs.headers);  // the initiator's Content-Encoding
        if (auto up = says_ultrapeer(hs.headers)) {
          // The initiator may take our leaf guidance ("X-Ultrapeer: False" in
          // its final answer); a leaf turning ultrapeer there is not allowed.
          if (!*up && c.link == Link::Ultrapeer && links(Link::Leaf) < config_.max_leaves) {
            c.link = Link::Leaf;
          } else if (*up && c.link == Link::Leaf) {
            close(c, CloseReason::HandshakeRefused, kCloseRoleLie);
            return;
          }
        }
        establish(c, false, c.user_agent, now);
        return;
      case Phase::AwaitResponse: {
        if (hs.kind != gn::Handshake::Kind::Response) {
          close(c, CloseReason::HandshakeMalformed, kCloseHandshakeMalformed);
          return;
        }
        if (hs.is_04()) {
          establish(c, true, {}, now);
          return;
        }
        // A host that answers as a leaf is no ultrapeer to dial again.
        if (says_ultrapeer(hs.headers) == false) hosts_.mark_ultrapeer(c.remote, false);
        if (hs.status != 200) {
          // An ultrapeer with no room for us: a sign leaves need more of them.
          if (hs.status == 503 && says_ultrapeer(hs.headers) == true) {
            c.busy_ultrapeer = true;  // try it again later; do not give up on it
            hosts_.mark_leaf_room(c.remote, false);
            if (role_ == Role::Leaf) refused_full_at_ = now;
          }
          close(c, CloseReason::HandshakeRefused, kCloseHandshakeRefused);
          return;
        }
        note_headers(c, hs.headers);
        if (auto refused = accept_answer(c, says_ultrapeer(hs.headers))) {
          close(c, CloseReason::HandshakeRefused, refused->stat);
          return;
        }
        wire::Headers h;
        h.add("X-Ultrapeer", role_ == Role::Ultrapeer ? "True" : "False");
        if (config_.compress && c.offered_deflate) {
          h.add("Content-Encoding", "deflate");
          c.deflater = std::make_unique<wire::Deflater>();
          ++stats_[kLinksCompressedOut];
        }
        send_text(c, gn::encode_response06(200, "OK", h));
        establish(c, false, hs.headers.get("User-Agent").value_or(""), now);
        return;
      }
      case Phase::Established:
      case Phase::Closing:
        return;
    }
  }
}

void GnutellaCore::establish(Conn& c, bool v04, std::string user_agent, Instant now) {
  c.phase = Phase::Established;
  c.since = now;
  c.v04 = v04;
  c.user_agent = std::move(user_agent);
  ++stats_[v04 ? kHandshakes04 : kHandshakes06];
  ++established_;
  live_.push_back(&c);
  c.credited = now;
  if (c.dir == Direction::Outbound) reputation_.reachable(c.remote, now);  // it accepted our connect
  if ((c.link == Link::Ultrapeer || c.link == Link::Parent) && c.listen.port != 0) {
    hosts_.add(c.listen, now);
    hosts_.mark_ultrapeer(c.listen, true);
  }
  if (c.wanted >= 0) wanted_[static_cast<std::size_t>(c.wanted)].backoff = config_.reconnect_min;
  events_.push_back(event::PeerUp{c.id, c.remote, c.dir, v04 ? 4 : 6, c.user_agent});
  if (c.dir == Direction::Outbound) hosts_.add(c.remote, now);
  // Learn the neighbourhood: the peer answers with its Pong and its cache.
  ping_one(c, now);
  // What vendor messages we understand (as gtk-gnutella does first thing).
  if (!v04) {
    send_vendor(c, gn::Guid{}, gn::VendorMessage{gn::kVendorGeneric, gn::kVmMessagesSupported, 0,
                                                 gn::encode_messages_supported({
                                                     {gn::kVendorBear, gn::kVmQueryStatusRequest, 1},
                                                     {gn::kVendorBear, gn::kVmQueryStatusResponse, 1},
                                                 })});
  }
  // QRP: a leaf sends its table to its ultrapeer at once; an ultrapeer its
  // merged table to an ultrapeer neighbour that routes by it.
  // TCP-Connect-Back (BEAR/7): a leaf not yet reached from outside asks its
  // ultrapeer to connect to its port, which shows it is reachable (auto
  // mode's election needs that).
  if (c.link == Link::Parent && !inbound_seen_ && reachable() && !c.v04) {
    wire::Bytes body;
    wire::put_le16(body, config_.advertised.port);
    send_vendor(c, new_guid(), gn::VendorMessage{gn::kVendorBear, gn::kVmConnectBack, 1, std::move(body)});
    ++stats_[kConnectBacksAsked];
  }
  if (c.link == Link::Parent && c.peer_qrp) {
    send_qrp(c, own_table());
  } else if (c.link == Link::Ultrapeer && c.peer_up_qrp && role_ == Role::Ultrapeer) {
    send_qrp(c, merged_table());
  }
  // Descriptors sent right behind the handshake are already buffered.
  if (!c.hs_buf.empty()) {
    wire::Bytes rest = std::move(c.hs_buf);
    c.hs_buf.clear();
    c.hs_buf.shrink_to_fit();
    feed_established(c, rest, now);
  }
}

void GnutellaCore::feed_established(Conn& c, wire::ByteView bytes, Instant now) {
  if (!c.inflater) {
    c.framer.feed(bytes);
    on_frames(c, now);
    return;
  }
  // A deflated link: inflate in bounded pieces, routing each before the next,
  // so a stream that expands to gigabytes never sits in memory.
  bool bomb = false;
  auto r = c.inflater->read(bytes, [&](wire::ByteView piece) {
    const auto in = c.inflater->total_in(), out = c.inflater->total_out();
    if (out > (1u << 20) && static_cast<double>(out) > config_.max_inflate_ratio * static_cast<double>(in)) {
      bomb = true;
      return false;
    }
    c.framer.feed(piece);
    on_frames(c, now);
    return c.phase == Phase::Established;
  });
  if (bomb) {
    close(c, CloseReason::PayloadMalformed, kCloseDeflateBomb);
  } else if (!r && c.phase == Phase::Established) {
    close(c, CloseReason::PayloadMalformed, kCloseDeflateError);
  }
}

void GnutellaCore::on_frames(Conn& c, Instant now) {
  while (c.phase == Phase::Established) {
    auto f = c.framer.next();
    if (f.need_more()) return;
    if (!f) {
      bye(c, 400, "Payload too large", CloseReason::PayloadTooLarge, kClosePayloadTooLarge);
      return;
    }
    on_descriptor(c, f->header, f->payload, now);
  }
}

void GnutellaCore::on_descriptor(Conn& c, gn::Header h, wire::ByteView payload, Instant now) {
  // Drops are counted per peer too (the TUI's Network screen shows them).
  constexpr Stat kDrops[] = {kDropBadGgep,        kDropHitsOverCap,    kDropDuplicate,       kDropTtlZero,
                             kDropHopsExceeded,   kDropPongUnroutable, kDropHitUnroutable,   kDropPushUnroutable,
                             kDropTtlExpired,     kDropQueryRate};
  auto drops = [&] {
    std::uint64_t n = 0;
    for (Stat d : kDrops) n += stats_[d];
    return n;
  };
  const std::uint64_t before = drops();
  const ConnId id = c.id;
  on_descriptor_inner(c, h, payload, now);
  if (const std::uint64_t after = drops(); after != before) {
    if (auto it = conns_.find(id); it != conns_.end()) it->second.dropped += after - before;
  }
}

void GnutellaCore::on_descriptor_inner(Conn& c, gn::Header h, wire::ByteView payload, Instant now) {
  ++c.msgs_in;
  ++stats_[kDescriptorsIn];
  if (h.type == static_cast<std::uint8_t>(gn::Type::Bye)) {
    // Bye (0.6 draft §3.4): Code[2] LE, then a NUL-terminated message.
    ++stats_[kByesIn];
    if (payload.size() >= 2) {
      const auto code = wire::get_le16(payload.data());
      auto msg = wire::as_chars(payload.subspan(2));
      msg = msg.substr(0, std::min(msg.find('\0'), std::size_t{200}));
      c.bye_detail = std::to_string(code) + " " + std::string(msg);
    }
    close(c, CloseReason::Bye, kCloseBye);
    return;
  }
  if (h.ttl == 0) {
    ++stats_[kDropTtlZero];
    return;
  }
  // TTL+Hops above the cap: clamp (0.6 draft §3.2 "TTL+Hops" rule).
  if (h.ttl + h.hops > config_.max_ttl) {
    if (h.hops >= config_.max_ttl) {
      ++stats_[kDropHopsExceeded];
      return;
    }
    h.ttl = static_cast<std::uint8_t>(config_.max_ttl - h.hops);
    ++stats_[kTtlClamped];
  }
  const auto type = static_cast<gn::Type>(h.type);
  if (c.link == Link::Leaf && h.hops > 0 && (type == gn::Type::Ping || type == gn::Type::Query)) {
    // A leaf originates its Pings and Queries; one that relays is lying
    // about its role (or buggy): nothing it relays goes further.
    ++stats_[kDropRelayedByLeaf];
    return;
  }
  switch (type) {
    case gn::Type::Qrp: return on_qrp(c, h, payload, now);
    case gn::Type::Vendor:
    case gn::Type::StdVendor: return on_vendor(c, h, payload, now);
    case gn::Type::Ping: return on_ping(c, h, payload, now);
    case gn::Type::Pong: return on_pong(c, h, payload, now);
    case gn::Type::Query: return on_query(c, h, payload, now);
    case gn::Type::QueryHit: return on_query_hit(c, h, payload, now);
    case gn::Type::Push: return on_push(c, h, payload, now);
    default:
      if (h.type == gn::kTypeHsep) return on_hsep(c, payload);
      // Unknown types: accepted and ignored.
      ++stats_[kOtherIn];
      return;
  }
}

bool GnutellaCore::ggep_ok(wire::ByteView block) {
  if (block.empty()) return true;
  auto g = gn::decode_ggep(block);
  if (g && g->consumed == block.size()) return true;
  ++stats_[kDropBadGgep];
  return false;
}

void GnutellaCore::on_ping(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now) {
  ++stats_[kPingsIn];
  if (!ggep_ok(payload)) return;  // 0.6 Pings carry only GGEP (e.g. SCP)
  if (!routes_.insert({h.id, kRoutePing}, c.id, now)) {
    ++stats_[kDropDuplicate];
    return;
  }
  // Answer for ourselves (0.4 §"Pong"): the reply needs hops+1 to get back.
  // Not when nobody can connect to us (a short-lived search, --firewalled):
  // a Pong saying port 0 would send peers to a port nobody listens on.
  if (reachable()) {
    send_own_pong(c, h);
  } else {
    ++stats_[kPongsWithheld];
  }
  if (role_ == Role::Leaf) return;  // a leaf relays nothing
  if (h.ttl > 1 && answer_from_cache(c, h, now)) {
    ++stats_[kPingsNotFlooded];
    return;
  }
  if (h.ttl > 1) {
    gn::Header fwd = h;
    fwd.ttl = static_cast<std::uint8_t>(h.ttl - 1);
    fwd.hops = static_cast<std::uint8_t>(h.hops + 1);
    flood(&c, fwd, payload);  // GGEP (e.g. SCP) travels on unchanged
  }
}

void GnutellaCore::send_own_pong(Conn& c, const gn::Header& h) {
  gn::Pong pong;
  pong.port = config_.advertised.port;
  pong.ip = config_.advertised.ip;
  pong.files_shared = static_cast<std::uint32_t>(library_.file_count());
  pong.kb_shared = static_cast<std::uint32_t>(std::min<std::uint64_t>(library_.total_bytes() / 1024, UINT32_MAX));
  if (role_ == Role::Ultrapeer) {
    // GGEP "UP" (LimeWire's pong extension, as gtk-gnutella sends it): we
    // are an ultrapeer; version, then free leaf and ultrapeer slots.
    auto free = [](std::size_t max, std::size_t used) {
      return static_cast<std::uint8_t>(std::min<std::size_t>(max > used ? max - used : 0, 255));
    };
    gn::encode_ggep(pong.extensions, {gn::GgepExtension{"UP", {1, free(config_.max_leaves, links(Link::Leaf)),
                                                                free(config_.max_ultrapeers, links(Link::Ultrapeer))}}});
  }
  wire::Bytes pong_payload;
  gn::encode_pong(pong_payload, pong);
  gn::Header out{h.id, static_cast<std::uint8_t>(gn::Type::Pong),
                 static_cast<std::uint8_t>(std::min<int>(h.hops + 1, config_.max_ttl)), 0, 0};
  send(c, encode_shared(out, pong_payload));
  ++stats_[kPongsSent];
}

void GnutellaCore::on_pong(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now) {
  ++stats_[kPongsIn];
  if (payload.size() < 14) {
    bye(c, 400, "Malformed descriptor", CloseReason::PayloadMalformed, kClosePayloadMalformed);
    return;
  }
  if (!ggep_ok(payload.subspan(14))) return;
  const ConnId* to = routes_.find({h.id, kRoutePing}, now);
  if (!to) {
    ++stats_[kDropPongUnroutable];
    return;
  }
  if (auto pong = gn::decode_pong(payload)) {
    if (h.hops == 0 && c.link == Link::Parent && !pong->extensions.empty()) {
      // Our ultrapeer's own Pong: how many leaf slots it has left (GGEP UP).
      if (auto g = gn::decode_ggep(pong->extensions); g) {
        if (const auto* up = g->find("UP"); up && up->data.size() >= 2) {
          c.needs_ultrapeers = static_cast<std::size_t>(up->data[1]) * 5 <= config_.max_leaves;
        }
      }
    }
    cache_pong(*pong, static_cast<std::uint8_t>(std::min<int>(h.hops + 1, 255)), c.id, now);
  }
  if (*to == kSelf) return;  // a Pong for our own Ping
  route_reply(c, *to, h, payload, kDropPongUnroutable);
}

void GnutellaCore::on_query(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now) {
  ++stats_[kQueriesIn];
  // Per-connection query rate (a flooding peer costs us no more than this).
  if (c.query_tokens < 0) {
    c.query_tokens = config_.query_burst;
    c.query_refill = now;
  } else {
    const double secs = std::chrono::duration<double>(now - c.query_refill).count();
    c.query_tokens = std::min(config_.query_burst, c.query_tokens + secs * config_.query_rate);
    c.query_refill = now;
  }
  if (c.query_tokens < 1) {
    ++stats_[kDropQueryRate];
    return;
  }
  c.query_tokens -= 1;
  auto q = gn::decode_query(payload);
  if (!q) {
    bye(c, 400, "Malformed descriptor", CloseReason::PayloadMalformed, kClosePayloadMalformed);
    return;
  }
  gn::Extensions ext;
  if (!q->extensions.empty()) {
    ext = gn::decode_extensions(q->extensions);
    if (ext.ggep && !gn::decode_ggep(*ext.ggep)) {
      ++stats_[kDropBadGgep];
      return;
    }
  }
  if (!routes_.insert({h.id, kRouteQuery}, c.id, now)) {
    ++stats_[kDropDuplicate];
    // A neighbour that sent us a query we are dynamically querying has it
    // already: the query's next steps skip that link (as gtk-gnutella does).
    if (auto dq = dqs_.find(h.id); dq != dqs_.end()) dq->second.dq.drop_link(c.id);
    return;
  }
  // What the query asks for, once: answering it and every QRP table it meets use it.
  const QueryTerms terms = query_terms(q->criteria, ext);
  answer_query(c, h, *q, terms);
  if (role_ == Role::Leaf) return;  // a leaf relays nothing
  gn::Header fwd = h;
  fwd.ttl = static_cast<std::uint8_t>(h.ttl - 1);
  fwd.hops = static_cast<std::uint8_t>(h.hops + 1);
  // Our leaves are part of us: whatever the TTL left, each one whose table
  // matches gets the query (with TTL 1, it goes no further).
  gn::Header to_leaf = fwd;
  to_leaf.ttl = 1;
  query_leaves(&c, to_leaf, payload, terms);
  if (c.link == Link::Leaf && config_.dynamic_querying) {
    // A leaf's query: step by step over our ultrapeer neighbours.
    std::vector<Conn*> links;
    for (Conn* l : live_) {
      if (l != &c && relays_to(*l)) links.push_back(l);
    }
    start_dq(c.id, fwd, payload, std::move(links), now);
    return;
  }
  if (h.ttl > 1) flood_query(&c, fwd, payload, terms);
}

void GnutellaCore::answer_query(Conn& c, const gn::Header& h, const gn::Query& q, const QueryTerms& terms) {
  // A plain 0.4 MinSpeed (no flag marker) is a speed floor in kb/s.
  if (!(q.min_speed & gn::kQueryFlagMarker) && q.min_speed > config_.speed_kbps) return;
  // A Query naming a urn:sha1 (HUGE 0.94 §3.1) asks for that file whatever
  // the criteria say; otherwise every criteria word must match.
  // (HUGE text urns, or the digest in GGEP "H", as Shareaza sends it.)
  std::vector<const share::SharedFile*> files;
  for (const auto& sha : terms.sha1s) {
    if (const auto* f = library_.by_sha1(sha)) files.push_back(f);
  }
  if (terms.sha1s.empty()) files = library_.search(q.criteria, config_.max_results_per_query);
  if (files.empty()) return;
  ++stats_[kQueriesAnswered];
  const gn::Header out{h.id, static_cast<std::uint8_t>(gn::Type::QueryHit),
                       static_cast<std::uint8_t>(std::min<int>(h.hops + 1, config_.max_ttl)), 0, 0};
  gn::QueryHit hit;
  hit.port = config_.advertised.port;
  hit.ip = config_.advertised.ip;
  hit.speed = config_.speed_kbps;
  hit.servent_id = servent_id_;
  // Open data (BearShare trailer): byte 0 carries the push flag value, byte 1
  // says the push flag is meaningful. Same layout as gtk-gnutella's "2c 21".
  hit.trailer = gn::HitTrailer{kVendor, {static_cast<std::uint8_t>(reachable() ? 0x00 : 0x01), 0x01}, {}};
  std::size_t payload_size = 11 + 4 + 1 + 2 + 16;
  auto flush = [&] {
    if (hit.results.empty()) return;
    wire::Bytes payload;
    gn::encode_query_hit(payload, hit);
    send(c, encode_shared(out, payload));
    ++stats_[kHitsSent];
    hit.results.clear();
    payload_size = 11 + 4 + 1 + 2 + 16;
  };
  for (const auto* f : files) {
    wire::Bytes ext;
    if (f->sha1) wire::put_string(ext, share::sha1_urn(*f->sha1));  // HUGE 0.94 §3.2
    if (f->audio) {
      // The plain-text form older servents use for audio: "128 kbps 44.1 kHz 3:45".
      if (!ext.empty()) ext.push_back(gn::kExtensionSeparator);
      wire::put_string(ext, share::audio_summary(*f->audio));
    }
    // 4 GiB and over: 0xFFFFFFFF in the 32-bit field, the size in GGEP "LF".
    if (gn::size32_for(f->size) == gn::kSize32Escape) gn::append_lf(ext, f->size);
    const std::size_t entry = 8 + f->name.size() + 2 + ext.size();
    if (!hit.results.empty() &&
        (payload_size + entry > config_.max_hit_payload || hit.results.size() >= config_.max_results_per_hit)) {
      flush();
    }
    hit.results.push_back(gn::HitResult{f->index, gn::size32_for(f->size), f->name, std::move(ext)});
    payload_size += entry;
  }
  flush();
}

void GnutellaCore::on_query_hit(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now) {
  ++stats_[kHitsIn];
  auto hit = gn::decode_query_hit(payload);
  if (!hit) {
    bye(c, 400, "Malformed descriptor", CloseReason::PayloadMalformed, kClosePayloadMalformed);
    return;
  }
  for (const auto& r : hit->results) {
    if (r.extensions.empty()) continue;
    auto ext = gn::decode_extensions(r.extensions);
    if (ext.ggep && !gn::decode_ggep(*ext.ggep)) {
      ++stats_[kDropBadGgep];
      return;
    }
  }
  const ConnId* to = routes_.find({h.id, kRouteQuery}, now);
  if (!to) {
    ++stats_[kDropHitUnroutable];
    return;
  }
  // Remember where this servent is, so a Push for it can follow (0.4 §Push).
  push_routes_.put(hit->servent_id, c.id, now);
  if (auto dq = dqs_.find(h.id); dq != dqs_.end()) dq->second.results += hit->results.size();
  if (*to == kSelf) {
    bool push = false;
    if (hit->trailer && hit->trailer->open_data.size() >= 2 && (hit->trailer->open_data[1] & gn::kOpenDataPush)) {
      push = (hit->trailer->open_data[0] & gn::kOpenDataPush) != 0;
    }
    // Bounded: a flood of hits for one query keeps at most max_hits_per_search.
    std::size_t seen = 0;
    if (const auto* n = own_hits_.find(h.id, now)) seen = *n;
    for (auto& r : hit->results) {
      if (seen >= config_.max_hits_per_search) {
        ++stats_[kDropHitsOverCap];
        continue;
      }
      ++seen;
      events_.push_back(event::Hit{h.id, Endpoint{hit->ip, hit->port}, hit->speed, hit->servent_id, std::move(r), push});
    }
    own_hits_.put(h.id, seen, now);
    return;
  }
  route_reply(c, *to, h, payload, kDropHitUnroutable);
}

void GnutellaCore::on_push(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now) {
  ++stats_[kPushesIn];
  auto push = gn::decode_push(payload);
  if (!push) {
    bye(c, 400, "Malformed descriptor", CloseReason::PayloadMalformed, kClosePayloadMalformed);
    return;
  }
  if (push->servent_id == servent_id_) {
    ++stats_[kPushForUs];
    events_.push_back(event::PushRequest{std::move(*push)});
    return;
  }
  const ConnId* to = push_routes_.find(push->servent_id, now);
  if (!to) {
    ++stats_[kDropPushUnroutable];
    return;
  }
  route_reply(c, *to, h, payload, kDropPushUnroutable);
}

void GnutellaCore::route_reply(Conn& from, ConnId to, const gn::Header& h, wire::ByteView payload, Stat unroutable) {
  Conn* dest = find(to);
  if (!dest || dest->phase != Phase::Established || dest->id == from.id) {
    ++stats_[unroutable];
    return;
  }
  if (h.ttl <= 1) {
    ++stats_[kDropTtlExpired];
    return;
  }
  gn::Header fwd = h;
  fwd.ttl = static_cast<std::uint8_t>(h.ttl - 1);
  fwd.hops = static_cast<std::uint8_t>(h.hops + 1);
  send(*dest, encode_shared(fwd, payload));
  ++stats_[kForwarded];
}

template <class Pred>
void GnutellaCore::broadcast(const Conn* from, SharedBuffer bytes, bool v04_links, Pred to) {
  action::Broadcast out{{}, std::move(bytes)};
  out.conns.reserve(live_.size());
  for (Conn* c : live_) {
    if (c == from || c->v04 != v04_links || !to(*c)) continue;
    if (c->deflater) {
      // A deflated link is a stream of its own: it gets its own bytes.
      send(*c, out.bytes);
      ++stats_[kForwarded];
      continue;
    }
    out.conns.push_back(c->id);
    ++c->msgs_out;
  }
  if (out.conns.empty()) return;
  stats_[kDescriptorsOut] += out.conns.size();
  stats_[kForwarded] += out.conns.size();
  actions_.push_back(std::move(out));
}

void GnutellaCore::flood(const Conn* from, const gn::Header& h, wire::ByteView payload) {
  if (live_.empty()) return;
  SharedBuffer bytes = encode_shared(h, payload);
  // Pings: an ultrapeer floods them to its peers, not its leaves (it answers
  // for them from its pong cache); a leaf pings its ultrapeers.
  auto to = [this](const Conn& c) { return role_ == Role::Leaf || c.link != Link::Leaf; };
  broadcast(from, bytes, false, to);
  broadcast(from, bytes, true, to);
}

namespace {
// The query descriptor with MinSpeed rewritten for one kind of link.
SharedBuffer query_variant(const gn::Header& h, wire::ByteView payload, std::uint16_t min_speed) {
  auto b = std::make_shared<Buffer>(gn::encode_descriptor(h, payload));
  (*b)[gn::kHeaderSize] = static_cast<std::uint8_t>(min_speed);
  (*b)[gn::kHeaderSize + 1] = static_cast<std::uint8_t>(min_speed >> 8);
  return b;
}
std::uint16_t flags_speed(std::uint16_t speed) { return speed & gn::kQueryFlagMarker ? speed : gn::kQueryFlagMarker; }
std::uint16_t plain_speed(std::uint16_t speed) { return speed & gn::kQueryFlagMarker ? 0 : speed; }
}  // namespace

void GnutellaCore::query_leaves(const Conn* from, const gn::Header& h, wire::ByteView payload, const QueryTerms& terms) {
  if (role_ != Role::Ultrapeer || payload.size() < 2) return;
  SharedBuffer bytes;
  for (Conn* c : live_) {
    if (c == from || c->link != Link::Leaf) continue;
    if (!qrp_matches(c->qrp_bits, terms)) {
      ++stats_[kQueriesQrpFiltered];
      continue;
    }
    if (!bytes) bytes = query_variant(h, payload, flags_speed(wire::get_le16(payload.data())));
    send(*c, bytes);
    ++stats_[kQueriesToLeaves];
  }
}

void GnutellaCore::flood_query(const Conn* from, const gn::Header& h, wire::ByteView payload, const QueryTerms& terms) {
  // The MinSpeed field means flags on 0.6 links (bit 15 set; gtk-gnutella
  // drops 0.6 queries without it) and a plain speed on 0.4 links; rewrite it
  // per link kind so each side reads what it expects. The rest of the payload
  // is relayed byte for byte.
  if (live_.empty() || payload.size() < 2) return;
  const std::uint16_t speed = wire::get_le16(payload.data());
  // Last-hop QRP: a query that would arrive with TTL 1 at an ultrapeer
  // neighbour that sent us its (merged) table goes only if the table matches.
  auto to = [&](const Conn& c) {
    if (!relays_to(c)) return false;
    if (h.ttl == 1 && c.link == Link::Ultrapeer && !c.qrp_bits.empty() && !qrp_matches(c.qrp_bits, terms)) {
      ++stats_[kQueriesQrpFiltered];
      return false;
    }
    return true;
  };
  broadcast(from, query_variant(h, payload, flags_speed(speed)), false, to);
  broadcast(from, query_variant(h, payload, plain_speed(speed)), true, to);
}

SearchSent GnutellaCore::search(const Search& s, Instant now) {
  // What gtk-gnutella remembers per leaf: "urn:sha1:..." when the query has
  // one, else the query text as sent.
  const QueryTerms terms = query_terms(s.criteria, gn::decode_extensions(s.extensions));
  const std::string key = terms.sha1s.empty() ? s.criteria : share::sha1_urn(terms.sha1s.front());
  const Duration threshold = config_.requery_threshold;
  std::erase_if(own_queries_, [&](const auto& kv) { return kv.second.last_sent + threshold <= now; });
  SearchSent out;
  auto [it, fresh] = own_queries_.try_emplace(key);
  OwnQuery& q = it->second;
  if (fresh) {
    q.guid = new_guid();
  } else {
    out.repeat = true;
    std::erase_if(q.sent_on, [&](const auto& kv) { return kv.second + threshold <= now || !find(kv.first); });
  }
  out.guid = q.guid;
  routes_.insert({q.guid, kRouteQuery}, kSelf, now);
  gn::Query query;
  query.min_speed = gn::kQueryFlagMarker;
  if (config_.firewalled) query.min_speed |= gn::kQueryFlagFirewalled;
  // A leaf tells its ultrapeers how many results it has when they ask
  // (Query-Status), so their dynamic query stops in time.
  if (role_ == Role::Leaf) query.min_speed |= gn::kQueryFlagLeafGuided;
  query.criteria = s.criteria;
  query.extensions = s.extensions;
  const std::uint8_t ttl = std::min(s.ttl, config_.max_ttl);
  wire::Bytes payload;
  gn::encode_query(payload, query);
  const gn::Header h{q.guid, static_cast<std::uint8_t>(gn::Type::Query), ttl, 0, 0};
  // MinSpeed as flags on 0.6 links, a plain speed (0) on 0.4 ones (see flood_query).
  SharedBuffer flags, plain;
  const bool dynamic = role_ == Role::Ultrapeer && config_.dynamic_querying;
  std::vector<Conn*> dq_links;
  for (Conn* c : live_) {
    // An ultrapeer's own query: its peers, and the leaves that may have it.
    if (role_ == Role::Ultrapeer && c->link == Link::Leaf) {
      if (!qrp_matches(c->qrp_bits, terms)) {
        ++stats_[kQueriesQrpFiltered];
        continue;
      }
    } else if (role_ == Role::Ultrapeer && !relays_to(*c)) {
      continue;
    }
    if (q.sent_on.count(c->id) != 0) {
      ++out.held_back;
      ++stats_[kQueriesHeldBack];
      continue;
    }
    q.sent_on[c->id] = now;
    ++out.links;
    if (dynamic && relays_to(*c)) {
      dq_links.push_back(c);
      continue;
    }
    SharedBuffer& bytes = c->v04 ? plain : flags;
    if (!bytes) {
      auto b = std::make_shared<Buffer>(gn::encode_descriptor(h, payload));
      if (c->v04) (*b)[gn::kHeaderSize] = (*b)[gn::kHeaderSize + 1] = 0;
      bytes = std::move(b);
    }
    send(*c, bytes);
  }
  if (!dq_links.empty()) start_dq(kSelf, h, payload, std::move(dq_links), now);
  if (out.links > 0 || fresh) q.last_sent = now;
  out.full_requery_at = now;
  for (const auto& [conn, at] : q.sent_on) out.full_requery_at = std::max(out.full_requery_at, at + threshold);
  return out;
}

void GnutellaCore::ping(std::uint8_t ttl, Instant now) {
  gn::Guid id = new_guid();
  routes_.insert({id, kRoutePing}, kSelf, now);
  flood(nullptr, gn::Header{id, static_cast<std::uint8_t>(gn::Type::Ping), std::min(ttl, config_.max_ttl), 0, 0}, {});
}

bool GnutellaCore::send_push(const gn::ServentId& target, std::uint32_t index, Endpoint reply_to, Instant now) {
  gn::Push p;
  p.servent_id = target;
  p.file_index = index;
  p.ip = reply_to.ip;
  p.port = reply_to.port;
  wire::Bytes payload;
  gn::encode_push(payload, p);
  const gn::Header h{new_guid(), static_cast<std::uint8_t>(gn::Type::Push), config_.max_ttl, 0, 0};
  auto bytes = encode_shared(h, payload);
  if (const ConnId* to = push_routes_.find(target, now)) {
    if (Conn* c = find(*to); c && c->phase == Phase::Established) {
      send(*c, bytes);
      ++stats_[kPushesSent];
      return true;
    }
  }
  if (live_.empty()) return false;
  auto all = [](const Conn&) { return true; };
  broadcast(nullptr, bytes, false, all);
  broadcast(nullptr, bytes, true, all);
  ++stats_[kPushesSent];
  return true;
}

void GnutellaCore::send(Conn& c, SharedBuffer bytes) {
  ++c.msgs_out;
  ++stats_[kDescriptorsOut];
  if (c.deflater) {
    auto z = std::make_shared<Buffer>();
    c.deflater->write(*bytes, *z);
    bytes = std::move(z);
  }
  actions_.push_back(action::Send{c.id, std::move(bytes)});
}

void GnutellaCore::send_text(Conn& c, std::string_view text) {
  actions_.push_back(action::Send{c.id, std::make_shared<Buffer>(text.begin(), text.end())});
}

void GnutellaCore::bye(Conn& c, std::uint16_t code, std::string_view message, CloseReason reason, Stat stat) {
  if (c.phase == Phase::Established && c.bye_ok) {
    wire::Bytes payload;
    wire::put_le16(payload, code);
    wire::put_string(payload, message);
    payload.push_back(0);
    gn::Header h{new_guid(), static_cast<std::uint8_t>(gn::Type::Bye), 1, 0, 0};
    send(c, encode_shared(h, payload));
    ++stats_[kByesSent];
  }
  close(c, reason, stat);
}

void GnutellaCore::shutdown(Instant) {
  std::vector<Conn*> up(live_.begin(), live_.end());
  for (Conn* c : up) bye(*c, 200, "Shutting down", CloseReason::Shutdown, kClosePeer);
}

void GnutellaCore::credit(Conn& c, Instant now) {
  const Endpoint key = c.listen.port != 0 ? c.listen : Endpoint{c.remote.ip, 0};
  // Whole seconds only, the rest left for the next time (credited every
  // election_interval: rounding each time down would lose a share of it).
  const auto whole = std::chrono::duration_cast<std::chrono::seconds>(now - c.credited);
  if (whole.count() > 0) {
    reputation_.link_time(key, whole, now);
    c.credited = c.credited + whole;
  }
  reputation_.drops(key, c.dropped - c.drops_credited, now);
  c.drops_credited = c.dropped;
}

void GnutellaCore::close(Conn& c, CloseReason reason, Stat stat) {
  if (c.phase == Phase::Closing) return;
  // What a peer did wrong counts against its reputation.
  switch (stat) {
    case kClosePayloadTooLarge:
    case kClosePayloadMalformed:
    case kCloseDeflateError:
    case kCloseDeflateBomb:
    case kCloseQrpMalformed:
    case kCloseQrpError:
    case kCloseQrpResets:
    case kCloseRoleLie:
    case kCloseHandshakeMalformed:
      reputation_.error(c.listen.port != 0 ? c.listen : Endpoint{c.remote.ip, 0}, now_);
      break;
    default:
      break;
  }
  if (c.phase == Phase::Established) {
    credit(c, now_);
    live_.erase(std::find(live_.begin(), live_.end(), &c));
    --established_;
  } else if (c.phase == Phase::AwaitResponse && reason == CloseReason::HandshakeMalformed && c.wanted >= 0) {
    // The peer answered our CONNECT with something we cannot read: try the
    // other protocol version next time.
    auto& w = wanted_[static_cast<std::size_t>(c.wanted)];
    w.try04 = !w.try04;
    if (w.try04) ++stats_[kConnectFallback04];
  }
  c.phase = Phase::Closing;
  ++stats_[stat];
  actions_.push_back(action::Close{c.id, reason, true});
}

void GnutellaCore::handle_closed(ConnId id, CloseReason reason, Instant now) {
  now_ = now;
  if (connect_backs_.erase(id) != 0) return;  // a connect-back that did not connect
  int wanted = -1;
  bool fallback = false;
  bool was_up = false;
  bool busy = false;
  if (Conn* c = find(id)) {
    wanted = c->wanted;
    busy = c->busy_ultrapeer;
    if (c->phase == Phase::Established) {
      credit(*c, now);
      live_.erase(std::find(live_.begin(), live_.end(), c));
      --established_;
      ++stats_[kClosePeer];
      was_up = true;
    } else if (c->phase == Phase::AwaitResponse) {
      // Closed without an answer to our 0.6 CONNECT: an old 0.4 servent
      // closes on a version it does not know; try 0.4 (and back again).
      fallback = true;
      ++stats_[kClosePeer];
    } else if (c->phase != Phase::Closing) {
      ++stats_[kClosePeer];
    }
    was_up = was_up || c->msgs_in + c->msgs_out > 0;
    events_.push_back(event::PeerDown{id, c->remote, reason, c->bye_detail});
    conns_.erase(id);
  } else {
    for (std::size_t i = 0; i < wanted_.size(); ++i) {
      if (wanted_[i].conn == id) wanted = static_cast<int>(i);
    }
  }
  // Only a link we keep (or a dial for one) leaves a place to fill: an
  // inbound handshake we turned away does not (a full ultrapeer turns away
  // many).
  // (a peer we were linked with may be dialled again now: what was found
  // too few a moment ago may not be)
  if (was_up) fruitless_.reset();
  if (wanted >= 0 || was_up) top_up_peers(now);
  if (wanted < 0) return;
  auto& w = wanted_[static_cast<std::size_t>(wanted)];
  w.conn.reset();
  if (w.from_cache && !was_up && !busy && ++w.failures >= 2) {
    // A cached host that does not answer: forget it. Entries are never
    // erased from wanted_ (indices are kept in connections); park it.
    hosts_.remove(w.ep);
    w.parked = true;
    w.parked_at = now;
    w.next_attempt = kNever;
    return;
  }
  if (w.from_cache && busy) {
    // Full: rest it and try the next candidate (retrying every full
    // ultrapeer with a backoff made each starving leaf dial them all, over
    // and over).
    w.parked = true;
    w.busy = true;
    w.parked_at = now;
    w.next_attempt = kNever;
    hosts_.rest(w.ep, now + config_.busy_rest);
    top_up_peers(now);
    return;
  }
  if (fallback) {
    w.try04 = !w.try04;
    if (w.try04) ++stats_[kConnectFallback04];
    w.next_attempt = now;
    wake_by(now);
    return;
  }
  if (was_up) w.backoff = config_.reconnect_min;
  w.next_attempt = now + w.backoff;
  wake_by(w.next_attempt);
  w.backoff = std::min(w.backoff * 2, config_.reconnect_max);
}

void GnutellaCore::forget_parked(Instant now) {
  // Hosts given up on long ago matter no more (top_up_peers skips them only
  // for 10 x reconnect_max; learned again, they get a new entry): drop them
  // once there are enough, keeping the indices connections hold.
  auto stale = [&](const Wanted& w) { return w.parked && !w.conn && now - w.parked_at >= 10 * config_.reconnect_max; };
  if (std::count_if(wanted_.begin(), wanted_.end(), stale) < 64) return;
  std::vector<int> moved(wanted_.size(), -1);
  std::vector<Wanted> kept;
  for (std::size_t i = 0; i < wanted_.size(); ++i) {
    if (stale(wanted_[i])) continue;
    moved[i] = static_cast<int>(kept.size());
    kept.push_back(wanted_[i]);
  }
  for (auto& [id, c] : conns_) {
    if (c.wanted >= 0) c.wanted = moved[static_cast<std::size_t>(c.wanted)];
  }
  wanted_ = std::move(kept);
}

void GnutellaCore::elect(Instant now) {
  next_election_ = now + config_.election_interval;
  for (Conn* c : live_) credit(*c, now);
  if (config_.mode != NodeMode::Auto) return;
  if (role_ == Role::Leaf) {
    // Leaves need ultrapeers: we found none for promote_uptime, or we have
    // fewer than we want and every one we have is (nearly) full.
    std::size_t parents = 0, full = 0;
    for (const Conn* c : live_) {
      if (c->link != Link::Parent) continue;
      ++parents;
      full += c->needs_ultrapeers;
    }
    // (full: and an ultrapeer we asked for a slot lately had none either).
    const bool refused_lately = refused_full_at_ && now - *refused_full_at_ <= 2 * config_.election_interval;
    const bool demand = parents == 0 ? (started_ && now - *started_ >= config_.promote_uptime)
                                     : config_.promote_when_short && parents < config_.leaf_ultrapeers &&
                                           full == parents && refused_lately;
    if (!demand) {
      short_since_.reset();
    } else if (!short_since_) {
      short_since_ = now;
    }
    if (!role_change_allowed(now) || !short_since_ || now - *short_since_ < 2 * config_.election_interval) return;
    const bool able = started_ && now - *started_ >= config_.promote_uptime && inbound_seen_ && reachable() &&
                      config_.speed_kbps >= config_.promote_min_kbps &&
                      config_.max_connections >= config_.leaf_ultrapeers + config_.max_leaves / 2;
    if (able && static_cast<double>(rng_.below(1'000'000)) < config_.promote_chance * 1e6) {
      change_role(Role::Ultrapeer, now);
    }
    return;
  }
  // An ultrapeer few leaves need (at most a tenth of its slots) for
  // demote_idle, with other ultrapeers around to be a leaf of.
  if (links(Link::Leaf) * 10 > config_.max_leaves || !last_leaf_) last_leaf_ = now;
  if (role_change_allowed(now) && now - *last_leaf_ >= config_.demote_idle && links(Link::Ultrapeer) > 0) {
    change_role(Role::Leaf, now);
  }
}

void GnutellaCore::handle_timeout(Instant now) {
  now_ = now;
  if (!started_) started_ = now;
  if (now >= next_election_) elect(now);
  for (auto& [id, c] : conns_) {
    if (c.phase != Phase::Established && c.phase != Phase::Closing && c.deadline <= now) {
      close(c, CloseReason::HandshakeTimeout, kCloseHandshakeTimeout);
    }
  }
  if (established_ > 0 && now >= next_ping_) {
    if (next_ping_.since_epoch.count() != 0) ping(config_.max_ttl, now);
    next_ping_ = now + config_.ping_interval;
  }
  top_up_peers(now);
  forget_parked(now);
  for (auto& w : wanted_) {
    if (w.conn || w.next_attempt > now) continue;
    if (conns_.size() >= config_.max_connections) {
      w.next_attempt = now + w.backoff;
      continue;
    }
    ConnId id = core_conn_id(ConnSpace::Gnutella, next_conn_++);
    w.conn = id;
    ++stats_[kConnectAttempts];
    actions_.push_back(action::Connect{id, w.ep});
  }
  if (established_ > 0 && now >= next_qrp_check_) update_qrp(now);
  if (established_ > 0 && now >= next_hsep_) send_hsep(now);
  run_dqs(now);
  routes_.expire(now);
  push_routes_.expire(now);
  // The next handshake deadline or dial, exactly (poll_timeout runs after
  // every input; scanning every connection and dial entry there cost a
  // tenth of a large simulation).
  wake_hint_ = kNever;
  for (const auto& [id, c] : conns_) {
    if (c.phase != Phase::Established && c.phase != Phase::Closing) wake_by(c.deadline);
  }
  for (const auto& w : wanted_) {
    if (!w.conn) wake_by(w.next_attempt);
  }
}

std::optional<Action> GnutellaCore::poll_action() { return take_front(actions_); }

std::optional<Event> GnutellaCore::poll_event() { return take_front(events_); }

std::optional<Instant> GnutellaCore::poll_timeout() const {
  std::optional<Instant> t;
  auto consider = [&](Instant i) {
    if (!t || i < *t) t = i;
  };
  // (a bound: a deadline of a handshake that has ended since, or a dial
  // made since, wakes us once for nothing)
  if (wake_hint_ != kNever) consider(wake_hint_);
  if (established_ > 0) {
    consider(next_ping_);
    consider(next_qrp_check_);
    consider(next_hsep_);
  }
  for (const auto& [id, s] : dqs_) consider(s.dq.next_step());
  if (established_ > 0 || config_.mode == NodeMode::Auto) consider(next_election_);
  return t;
}

std::vector<Counter> GnutellaCore::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  // The routing tables' bound (--route-table) being hit.
  out.push_back({"routes_evicted", routes_.evicted() + push_routes_.evicted()});
  return out;
}

std::vector<GnutellaCore::PeerInfo> GnutellaCore::peers() const {
  std::vector<PeerInfo> out;
  for (const auto& [id, c] : conns_) {
    static constexpr std::string_view kLinkNames[] = {"flat", "leaf", "ultrapeer", "parent"};
    out.push_back({id, c.remote, c.dir, c.phase == Phase::Established, c.v04 ? 4 : 6, c.user_agent, c.msgs_in,
                   c.msgs_out, c.since, c.dropped, kLinkNames[static_cast<int>(c.link)], c.qrp_bits.slots(),
                   c.qrp_bits.count(), reputation_.score(c.listen.port != 0 ? c.listen : Endpoint{c.remote.ip, 0}),
                   c.listen, c.hsep});
  }
  return out;
}

std::size_t GnutellaCore::links(Link kind, bool with_handshakes) const {
  std::size_t n = 0;
  for (const Conn* c : live_) n += c->link == kind;
  if (with_handshakes) {
    for (const auto& [id, c] : conns_) n += c.phase == Phase::AwaitFinal && c.link == kind;
  }
  return n;
}

bool GnutellaCore::role_change_allowed(Instant now) const {
  return !role_changed_at_ || now - *role_changed_at_ >= config_.role_hold;
}

void GnutellaCore::change_role(Role r, Instant now) {
  if (r == role_) return;
  role_ = r;
  role_changed_at_ = now;
  ++stats_[kRoleChanges];
  ++stats_[r == Role::Ultrapeer ? kPromotions : kDemotions];
  last_leaf_ = now;
  short_since_.reset();
  events_.push_back(event::RoleChanged{r});
  // Links made in the other role do not fit this one (a leaf's ultrapeers,
  // an ultrapeer's leaves and peers): goodbye; the peers we want are dialled
  // again with the new headers.
  std::vector<Conn*> up(live_.begin(), live_.end());
  for (Conn* c : up) {
    const bool fits = r == Role::Ultrapeer ? c->link != Link::Parent : c->link == Link::Flat;
    if (!fits) {
      bye(*c, 200, r == Role::Ultrapeer ? "Becoming an ultrapeer" : "Becoming a leaf", CloseReason::Shutdown,
          kClosePeer);
    }
  }
}

std::optional<GnutellaCore::Refusal> GnutellaCore::admit(Conn& c, std::optional<bool> peer_up, Instant now) {
  if (established_ >= config_.max_connections) return Refusal{503, "Too many connections", kCloseFull};
  // Auto: a node that is nobody's leaf, knows of no ultrapeer and has no one
  // left to dial, asked by a leaf (or a flat 0.4 node) to be its ultrapeer,
  // is reachable and needed: it becomes one (how a network of auto nodes
  // starts; a node still looking for its ultrapeers waits for the answers).
  auto dialling = [&] {
    return std::any_of(wanted_.begin(), wanted_.end(), [&](const Wanted& w) {
      return !w.parked && w.ep != c.listen;  // (the peer asking may have been added from its own Listen-IP)
    });
  };
  if (role_ == Role::Leaf && config_.mode == NodeMode::Auto && peer_up != true && hosts_.ultrapeers() == 0 &&
      links(Link::Parent, true) == 0 && role_change_allowed(now) && !dialling()) {
    ++stats_[kPromotionsBootstrap];
    change_role(Role::Ultrapeer, now);
  }
  if (role_ == Role::Leaf) {
    if (peer_up == true && links(Link::Parent, true) < config_.leaf_ultrapeers) {
      c.link = Link::Parent;
      return std::nullopt;
    }
    // What LimeWire, Shareaza and gtk-gnutella answer as leaves.
    return Refusal{503, "Shielded leaf node", kRefusedShielded};
  }
  if (peer_up == false) {
    if (links(Link::Leaf, true) >= config_.max_leaves) return Refusal{503, "Too many leaves", kRefusedLeavesFull};
    c.link = Link::Leaf;
    return std::nullopt;
  }
  if (links(Link::Ultrapeer, true) + links(Link::Flat, true) >= config_.max_ultrapeers) {
    return Refusal{503, "Too many ultrapeers", kRefusedUltrapeersFull};
  }
  c.link = peer_up ? Link::Ultrapeer : Link::Flat;
  return std::nullopt;
}

std::optional<GnutellaCore::Refusal> GnutellaCore::accept_answer(Conn& c, std::optional<bool> peer_up) {
  if (role_ == Role::Leaf) {
    if (peer_up == false) return Refusal{503, "Shielded leaf node", kCloseLeafToLeaf};
    if (peer_up == true) {
      // A leaf that has an ultrapeer leaves a nearly full one's last slots
      // to leaves that have none.
      if (links(Link::Parent) >= config_.leaf_ultrapeers) return Refusal{503, "Enough ultrapeers", kCloseEnoughUltrapeers};
      if (links(Link::Parent) > 0 && c.needs_ultrapeers) {
        // No room for us there either: rest it as a full one, and count it
        // as a sign that leaves need more ultrapeers.
        c.busy_ultrapeer = true;
        hosts_.mark_leaf_room(c.remote, false);
        refused_full_at_ = now_;
        return Refusal{503, "Enough ultrapeers", kCloseEnoughUltrapeers};
      }
      c.link = Link::Parent;
    } else {
      c.link = Link::Flat;
    }
    return std::nullopt;
  }
  if (peer_up == false) {
    if (links(Link::Leaf) >= config_.max_leaves) return Refusal{503, "Too many leaves", kRefusedLeavesFull};
    c.link = Link::Leaf;
    return std::nullopt;
  }
  c.link = peer_up ? Link::Ultrapeer : Link::Flat;
  return std::nullopt;
}

void GnutellaCore::refuse(Conn& c, const Refusal& r) {
  // Host exchange on refusal (0.6 draft §2.3): where else to try. First the
  // ultrapeers whose last Pong said they had room for a leaf (a leaf we turn
  // away finds a place), then ours (dialled by us, so their listening
  // addresses), then the ultrapeers we heard of, the most recent first;
  // other hosts go in X-Try (X-Try-Ultrapeers names ultrapeers only: its
  // readers dial them as such).
  wire::Headers h;
  h.add("User-Agent", config_.user_agent);
  h.add("X-Ultrapeer", role_ == Role::Ultrapeer ? "True" : "False");
  std::vector<Endpoint> skip{c.remote, c.listen};
  hosts_.wake_due(now_);
  std::vector<Endpoint> others = hosts_.recent(6, skip, HostCache::Pick::UltrapeersWithRoom);
  for (const Conn* l : live_) {
    if ((l->link == Link::Parent || l->link == Link::Ultrapeer) && l->listen.port != 0 && others.size() < 10 &&
        std::find(others.begin(), others.end(), l->listen) == others.end()) {
      others.push_back(l->listen);
    }
  }
  skip.insert(skip.end(), others.begin(), others.end());
  for (const auto& e : hosts_.recent(10 - std::min<std::size_t>(others.size(), 10), skip, HostCache::Pick::Ultrapeers)) {
    others.push_back(e);
  }
  std::vector<Endpoint> plain;
  for (const auto& e : hosts_.recent(20, skip)) {
    if (!hosts_.is_ultrapeer(e) && plain.size() < 10) plain.push_back(e);
  }
  if (!others.empty()) h.add("X-Try-Ultrapeers", HostCache::format_list(others));
  if (!plain.empty()) h.add("X-Try", HostCache::format_list(plain));
  send_text(c, gn::encode_response06(r.code, r.reason, h));
  close(c, CloseReason::Full, r.stat);
}

const QrpBits& GnutellaCore::own_table() {
  if (own_table_generation_ != library_.generation() || own_table_.bits() != config_.qrp_bits) {
    own_table_ = qrp_table_for(library_, config_.qrp_bits);
    own_table_generation_ = library_.generation();
  }
  return own_table_;
}

QrpBits GnutellaCore::merged_table() {
  QrpBits t = own_table();
  for (const Conn* c : live_) {
    if (c->link == Link::Leaf) t.merge(c->qrp_bits);
  }
  return t;
}

void GnutellaCore::send_qrp(Conn& c, const QrpBits& table) {
  for (auto& payload : qrp_update(c.qrp_sent ? &*c.qrp_sent : nullptr, table, config_.qrp_infinity)) {
    // QRP messages go one hop: TTL 1, hops 0 (QRP 0.1 §"Message format").
    send(c, encode_shared(gn::Header{new_guid(), static_cast<std::uint8_t>(gn::Type::Qrp), 1, 0, 0}, payload));
    ++stats_[kQrpSent];
  }
  c.qrp_sent = table;
}

void GnutellaCore::update_qrp(Instant now) {
  next_qrp_check_ = now + config_.qrp_check_interval;
  std::optional<QrpBits> merged;
  for (Conn* c : live_) {
    if (c->link == Link::Parent && c->peer_qrp) {
      send_qrp(*c, own_table());
    } else if (role_ == Role::Ultrapeer && c->link == Link::Ultrapeer && c->peer_up_qrp) {
      if (!merged) merged = merged_table();
      send_qrp(*c, *merged);
    }
  }
}

void GnutellaCore::on_qrp(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now) {
  ++stats_[kQrpIn];
  // Tables come from our leaves and, as an ultrapeer, from ultrapeer
  // neighbours; never relayed (hops 0). Anything else is ignored.
  if (role_ != Role::Ultrapeer || (c.link != Link::Leaf && c.link != Link::Ultrapeer) || h.hops != 0) {
    ++stats_[kQrpIgnored];
    return;
  }
  auto m = gn::decode_qrp(payload);
  if (!m) {
    bye(c, 400, "Malformed QRP message", CloseReason::PayloadMalformed, kCloseQrpMalformed);
    return;
  }
  if (std::holds_alternative<gn::QrpReset>(*m)) {
    if (c.last_reset && now - *c.last_reset < config_.qrp_min_reset_interval &&
        ++c.fast_resets > config_.qrp_fast_resets) {
      bye(c, 400, "QRP table reset too often", CloseReason::PayloadMalformed, kCloseQrpResets);
      return;
    }
    c.last_reset = now;
  }
  if (!c.qrp_in) c.qrp_in = std::make_unique<gn::QrpTable>(config_.qrp_max_slots);
  if (const auto err = c.qrp_in->apply(*m); err != gn::QrpTable::Error::None) {
    bye(c, 400, "QRP " + std::string(gn::to_string(err)), CloseReason::PayloadMalformed, kCloseQrpError);
    return;
  }
  // A complete sequence: the table routes from now on (until then the
  // previous one did).
  if (const auto* p = std::get_if<gn::QrpPatch>(&*m); p && p->seq_no == p->seq_size) {
    c.qrp_bits = QrpBits::from_table(*c.qrp_in);
    ++stats_[kQrpTablesIn];
  }
}

void GnutellaCore::send_vendor(Conn& c, const gn::Guid& id, const gn::VendorMessage& m) {
  wire::Bytes payload;
  gn::encode_vendor(payload, m);
  // One hop (0.6 draft, "Vendor Messages"): TTL 1, hops 0.
  send(c, encode_shared(gn::Header{id, static_cast<std::uint8_t>(gn::Type::Vendor), 1, 0, 0}, payload));
}

void GnutellaCore::on_vendor(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now) {
  ++stats_[kVendorIn];
  auto vm = gn::decode_vendor(payload);
  if (!vm) {
    ++stats_[kDropVendorMalformed];
    return;
  }
  if (vm->vendor == gn::kVendorGeneric && vm->id == gn::kVmMessagesSupported) {
    auto list = gn::decode_messages_supported(vm->body);
    if (!list) {
      ++stats_[kDropVendorMalformed];
      return;
    }
    c.query_status = std::any_of(list->begin(), list->end(), [](const gn::SupportedMessage& m) {
      return m.vendor == gn::kVendorBear && m.id == gn::kVmQueryStatusRequest;
    });
  } else if (vm->vendor == gn::kVendorGeneric && vm->id == gn::kVmFeaturesSupported) {
    if (!gn::decode_features_supported(vm->body)) ++stats_[kDropVendorMalformed];
  } else if (vm->vendor == gn::kVendorBear && vm->id == gn::kVmQueryStatusRequest) {
    // Our ultrapeer asks how many results we have for our query h.id; a
    // query that is not ours (any more), or one with all it may keep, stops.
    if (c.link != Link::Parent) return;
    std::uint16_t have = gn::kQueryStatusStop;
    if (const ConnId* to = routes_.find({h.id, kRouteQuery}, now); to && *to == kSelf) {
      std::size_t seen = 0;
      if (const auto* n = own_hits_.find(h.id, now)) seen = *n;
      if (seen < config_.max_hits_per_search) have = static_cast<std::uint16_t>(std::min<std::size_t>(seen, 0xFFFE));
    }
    wire::Bytes body;
    wire::put_le16(body, have);
    send_vendor(c, h.id, gn::VendorMessage{gn::kVendorBear, gn::kVmQueryStatusResponse, 1, std::move(body)});
    ++stats_[kQueryStatusAnswers];
  } else if (vm->vendor == gn::kVendorBear && vm->id == gn::kVmConnectBack) {
    // Port[2] LE: connect to it once per link, for our leaves only.
    if (role_ != Role::Ultrapeer || c.link != Link::Leaf || c.connect_back_done || vm->body.size() != 2 ||
        connect_backs_.size() >= 64) {
      ++stats_[kConnectBacksRefused];
      return;
    }
    const std::uint16_t port = wire::get_le16(vm->body.data());
    if (port == 0) {
      ++stats_[kConnectBacksRefused];
      return;
    }
    c.connect_back_done = true;
    const ConnId id = core_conn_id(ConnSpace::Gnutella, next_conn_++);
    connect_backs_.emplace(id, Endpoint{c.remote.ip, port});
    actions_.push_back(action::Connect{id, Endpoint{c.remote.ip, port}});
  } else if (vm->vendor == gn::kVendorBear && vm->id == gn::kVmQueryStatusResponse) {
    auto have = gn::decode_query_status(vm->body);
    if (!have) {
      ++stats_[kDropVendorMalformed];
      return;
    }
    ++stats_[kQueryStatusIn];
    auto it = dqs_.find(h.id);
    if (it == dqs_.end() || it->second.origin != c.id) return;
    if (*have == gn::kQueryStatusStop) {
      it->second.dq.stop();
    } else {
      it->second.reported = *have;
    }
  }
}

void GnutellaCore::on_hsep(Conn& c, wire::ByteView payload) {
  ++stats_[kHsepIn];
  auto hops = gn::decode_hsep(payload);
  // Within one hop there is the sender alone, and no hop reaches less than
  // the one before (gtk-gnutella drops such a message the same way).
  auto shrinks = [](const gn::HsepHop& a, const gn::HsepHop& b) {
    return b.nodes < a.nodes || b.files < a.files || b.kib < a.kib;
  };
  if (!hops || hops->front().nodes != 1 || std::adjacent_find(hops->begin(), hops->end(), shrinks) != hops->end()) {
    ++stats_[kDropHsepMalformed];
    return;
  }
  c.hsep = std::move(*hops);
}

void GnutellaCore::send_hsep(Instant now) {
  // What each peer reaches through us within 1..n hops (HSEP 0.2): hop 1 is
  // us; hop k adds what every other HSEP peer reaches within k-1 hops (its
  // last message, its last hop repeated; one node until it has spoken) and
  // our other peers themselves. A leaf tells only its own hop.
  next_hsep_ = now + config_.hsep_interval;
  constexpr std::size_t kMaxHops = 7;  // (gtk-gnutella's HSEP_N_MAX)
  constexpr auto kFull = std::numeric_limits<std::uint64_t>::max();
  auto add = [&](std::uint64_t a, std::uint64_t b) { return a > kFull - b ? kFull : a + b; };  // a hostile peer's counts
  const gn::HsepHop own{1, library_.file_count(), library_.total_bytes() >> 10};
  for (Conn* c : live_) {
    if (!c->hsep_ok) continue;
    std::vector<gn::HsepHop> table(role_ == Role::Leaf ? 1 : kMaxHops, own);
    for (std::size_t k = 1; k < table.size(); ++k) {
      for (const Conn* d : live_) {
        if (d == c) continue;
        gn::HsepHop its{1, 0, 0};
        if (d->hsep_ok && !d->hsep.empty()) its = d->hsep[std::min(k - 1, d->hsep.size() - 1)];
        table[k] = {add(table[k].nodes, its.nodes), add(table[k].files, its.files), add(table[k].kib, its.kib)};
      }
    }
    // Trailing hops that add nothing are left out (the reader repeats the last).
    while (table.size() > 1 && table.back() == table[table.size() - 2]) table.pop_back();
    if (table == c->hsep_sent) continue;
    c->hsep_sent = table;
    send(*c, encode_shared(gn::Header{new_guid(), gn::kTypeHsep, 1, 0, 0}, gn::encode_hsep(table)));
    ++stats_[kHsepSent];
  }
}

void GnutellaCore::start_dq(ConnId origin, const gn::Header& h, wire::ByteView payload, std::vector<Conn*> links,
                            Instant now) {
  if (dqs_.count(h.id) != 0) return;
  std::vector<DynamicQuery::Link> dl;
  for (const Conn* l : links) dl.push_back({l->id, l->degree != 0 ? l->degree : config_.max_ultrapeers});
  bool guided = false;
  if (payload.size() >= 2 && origin != kSelf) {
    const std::uint16_t speed = wire::get_le16(payload.data());
    const Conn* leaf = find(origin);
    guided = leaf && leaf->query_status && (speed & gn::kQueryFlagMarker) && (speed & gn::kQueryFlagLeafGuided);
  }
  // The query's own TTL bounds how far it may go (as flooding would).
  DqConfig dc = config_.dq;
  dc.max_ttl = std::min(dc.max_ttl, h.ttl);
  if (origin != kSelf) dc.wanted = dc.leaf_wanted;
  if (dc.max_ttl == 0) return;
  dqs_.emplace(h.id, DqState{DynamicQuery(std::move(dl), dc, now), origin, h,
                             wire::Bytes(payload.begin(), payload.end()), 0, std::nullopt, guided});
  ++stats_[kDqStarted];
  run_dqs(now);
}

void GnutellaCore::run_dqs(Instant now) {
  for (auto it = dqs_.begin(); it != dqs_.end();) {
    DqState& s = it->second;
    Conn* origin = s.origin == kSelf ? nullptr : find(s.origin);
    if (s.origin != kSelf && (!origin || origin->phase != Phase::Established)) s.dq.stop();
    std::size_t results = s.results;
    if (s.origin == kSelf) {
      if (const auto* n = own_hits_.find(it->first, now)) results = *n;
    } else if (s.reported) {
      // What the leaf kept is what counts, our share of it.
      results = *s.reported / std::max<std::size_t>(config_.dq.leaf_ultrapeers, 1);
    }
    const bool first = s.dq.hosts_reached() == 0;
    for (const auto& step : s.dq.step(results, now)) {
      Conn* c = find(step.conn);
      if (!c || c->phase != Phase::Established) continue;
      gn::Header hdr = s.header;
      hdr.ttl = std::min(step.ttl, config_.max_ttl);
      const std::uint16_t speed = wire::get_le16(s.payload.data());
      send(*c, query_variant(hdr, s.payload, c->v04 ? plain_speed(speed) : flags_speed(speed)));
      ++stats_[kDqSends];
    }
    // Before each step after the probe, ask a guiding leaf for its count.
    if (s.guided && !first && s.dq.end() == DynamicQuery::End::Running && origin && s.dq.next_step() > now) {
      send_vendor(*origin, it->first, gn::VendorMessage{gn::kVendorBear, gn::kVmQueryStatusRequest, 1, {}});
      ++stats_[kQueryStatusRequests];
    }
    switch (s.dq.end()) {
      case DynamicQuery::End::Running: ++it; continue;
      case DynamicQuery::End::Satisfied: ++stats_[kDqSatisfied]; break;
      case DynamicQuery::End::Exhausted: ++stats_[kDqExhausted]; break;
      case DynamicQuery::End::TimedOut: ++stats_[kDqTimedOut]; break;
      case DynamicQuery::End::Stopped: ++stats_[kDqStopped]; break;
    }
    it = dqs_.erase(it);
  }
}

bool GnutellaCore::wants_local_address() const {
  const Endpoint adv = config_.advertised;
  // Configured (or already learned a routable one): nothing to learn.
  return adv.ip == 0 || (learned_address_ && (adv.ip >> 24) == 127);
}

void GnutellaCore::handle_local_address(Endpoint local) {
  if (!wants_local_address()) return;
  const Endpoint adv = config_.advertised;
  // A loopback address replaces only nothing; a routable one replaces a learned loopback one.
  if (local.ip == 0 || (adv.ip != 0 && (local.ip >> 24) == 127)) return;
  config_.advertised = Endpoint{local.ip, adv.port};
  learned_address_ = true;
}

}  // namespace sv
