#include "servent/torrent/tracker_core.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace sv {

namespace bt = wire::bt;

namespace {

constexpr std::array<std::string_view, TrackerCore::kStatCount> kStatNames = {
    "http_announces", "http_scrapes", "http_bad", "udp_connects", "udp_announces", "udp_scrapes",
    "udp_bad",        "udp_unknown_connection", "announce_bad", "swarm_full",
};
constexpr Duration kConnectionIdLife = 120s;

SharedBuffer shared(wire::Bytes b) { return std::make_shared<const Buffer>(std::move(b)); }

}  // namespace

TrackerCore::TrackerCore(TrackerConfig config, std::uint64_t seed) : config_(config), rng_(seed) {}

std::size_t TrackerCore::peers(const bt::Sha1& ih) const {
  auto it = swarms_.find(ih);
  return it == swarms_.end() ? 0 : it->second.peers.size();
}

std::vector<Counter> TrackerCore::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

void TrackerCore::announce(const bt::Announce& a, std::uint32_t ip, Instant now, bt::AnnounceReply& reply) {
  auto it = swarms_.find(a.info_hash);
  if (it == swarms_.end()) {
    if (a.event == bt::AnnounceEvent::Stopped) return;
    if (swarms_.size() >= config_.max_swarms) {
      ++stats_[kSwarmFull];
      reply.failure = "tracker full";
      return;
    }
    it = swarms_.emplace(a.info_hash, Swarm{}).first;
  }
  Swarm& s = it->second;
  if (a.event == bt::AnnounceEvent::Stopped) {
    s.peers.erase(a.peer_id);
  } else {
    if (!s.peers.count(a.peer_id) && s.peers.size() >= config_.max_peers_per_swarm) {
      ++stats_[kSwarmFull];
    } else {
      s.peers[a.peer_id] = PeerEntry{{ip, a.port}, a.left, now};
    }
    if (a.event == bt::AnnounceEvent::Completed) ++s.downloaded;
  }
  reply.interval = config_.interval;
  reply.min_interval = config_.min_interval;
  const std::size_t want = std::min<std::size_t>(a.numwant == 0xFFFFFFFFu ? 50 : a.numwant, config_.max_numwant);
  // Others, leechers first for a seed (seeds have nothing to give it).
  std::vector<const PeerEntry*> others;
  for (const auto& [id, p] : s.peers) {
    (p.left == 0 ? reply.complete : reply.incomplete) += 1;
    if (id != a.peer_id) others.push_back(&p);
  }
  // A random selection when there are more than wanted.
  for (std::size_t i = 0; i + 1 < others.size(); ++i) std::swap(others[i], others[i + rng_.below(others.size() - i)]);
  if (a.left == 0) std::stable_partition(others.begin(), others.end(), [](const PeerEntry* p) { return p->left > 0; });
  for (std::size_t i = 0; i < others.size() && i < want; ++i) reply.peers.push_back(others[i]->addr);
}

bt::ScrapeEntry TrackerCore::scrape_one(const bt::Sha1& ih) const {
  bt::ScrapeEntry e{ih, 0, 0, 0};
  auto it = swarms_.find(ih);
  if (it == swarms_.end()) return e;
  for (const auto& [id, p] : it->second.peers) (p.left == 0 ? e.complete : e.incomplete) += 1;
  e.downloaded = it->second.downloaded;
  return e;
}

// ---- HTTP ----

void TrackerCore::handle_connected(ConnId conn, Endpoint remote, Direction, Instant now) {
  if (!started_) {
    started_ = true;
    next_sweep_ = now + 60s;
  }
  conns_[conn.value] = HttpConn{remote, std::make_unique<http::RequestParser>()};
}

void TrackerCore::handle_closed(ConnId conn, CloseReason, Instant) { conns_.erase(conn.value); }

void TrackerCore::respond(ConnId conn, int status, std::string_view reason, const wire::Bytes& body) {
  std::string head = fmt::format("HTTP/1.0 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                 status, reason, body.size());
  wire::Bytes out(head.begin(), head.end());
  out.insert(out.end(), body.begin(), body.end());
  actions_.push_back(action::Send{conn, shared(std::move(out))});
  actions_.push_back(action::Close{conn, CloseReason::Normal, true});
  conns_.erase(conn.value);
}

void TrackerCore::handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) {
  auto it = conns_.find(conn.value);
  if (it == conns_.end()) return;
  std::size_t used = 0;
  const auto state = it->second.parser->feed(bytes, used);
  if (state == http::RequestParser::State::NeedMore) return;
  if (state == http::RequestParser::State::Error) {
    ++stats_[kHttpBad];
    respond(conn, it->second.parser->error_status(), it->second.parser->error_reason(), {});
    return;
  }
  on_request(conn, it->second.parser->request(), now);
}

void TrackerCore::on_request(ConnId conn, const http::Request& req, Instant now) {
  const Endpoint remote = conns_.at(conn.value).remote;
  const std::string& target = req.target;
  const auto q = target.find('?');
  const std::string path = target.substr(0, q);
  const std::string query = q == std::string::npos ? std::string() : target.substr(q + 1);
  if (req.method != "GET") {
    ++stats_[kHttpBad];
    respond(conn, 405, "Method Not Allowed", {});
    return;
  }
  if (path == "/announce") {
    ++stats_[kHttpAnnounces];
    bt::AnnounceReply reply;
    auto a = bt::decode_announce_query(query);
    if (!a) {
      ++stats_[kAnnounceBad];
      reply.failure = "announce needs info_hash, peer_id and port";
    } else {
      announce(*a, remote.ip, now, reply);
    }
    const bool compact = query.find("compact=0") == std::string::npos;
    respond(conn, 200, "OK", bt::encode_announce_reply(reply, compact));
    return;
  }
  if (path == "/scrape") {
    ++stats_[kHttpScrapes];
    std::vector<bt::ScrapeEntry> files;
    // Each info_hash asked for; none: every swarm.
    std::string_view rest = query;
    bool named = false;
    while (!rest.empty()) {
      const auto amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      if (!pair.starts_with("info_hash=")) continue;
      named = true;
      auto v = bt::percent_decode(pair.substr(10));
      if (v && v->size() == 20) {
        bt::Sha1 ih;
        std::copy(v->begin(), v->end(), ih.begin());
        files.push_back(scrape_one(ih));
      }
    }
    if (!named) {
      for (const auto& [ih, s] : swarms_) files.push_back(scrape_one(ih));
    }
    respond(conn, 200, "OK", bt::encode_scrape_reply(files));
    return;
  }
  ++stats_[kHttpBad];
  respond(conn, 404, "Not Found", {});
}

// ---- UDP (BEP 15) ----

void TrackerCore::handle_datagram(SocketId socket, Endpoint from, wire::ByteView bytes, Instant now) {
  if (!started_) {
    started_ = true;
    next_sweep_ = now + 60s;
  }
  auto req = bt::decode_udp_request(bytes);
  if (!req) {
    ++stats_[kUdpBad];
    return;
  }
  bt::UdpPacket out;
  out.transaction = req->transaction;
  auto send = [&] { actions_.push_back(action::SendTo{socket, from, shared(bt::encode_udp_response(out))}); };
  if (req->action == bt::UdpAction::Connect) {
    ++stats_[kUdpConnects];
    std::uint64_t id = rng_.next();
    connection_ids_[id] = now;
    out.action = bt::UdpAction::Connect;
    out.connection_id = id;
    send();
    return;
  }
  auto cid = connection_ids_.find(req->connection_id);
  if (cid == connection_ids_.end() || now - cid->second > kConnectionIdLife) {
    ++stats_[kUdpUnknownConnection];
    out.action = bt::UdpAction::Error;
    out.message = "unknown connection id";
    send();
    return;
  }
  if (req->action == bt::UdpAction::Announce) {
    ++stats_[kUdpAnnounces];
    out.action = bt::UdpAction::Announce;
    announce(req->announce, from.ip, now, out.reply);
    if (!out.reply.failure.empty()) {
      out.action = bt::UdpAction::Error;
      out.message = out.reply.failure;
    }
    send();
    return;
  }
  ++stats_[kUdpScrapes];
  out.action = bt::UdpAction::Scrape;
  for (const auto& ih : req->scrape) out.scraped.push_back(scrape_one(ih));
  send();
}

void TrackerCore::handle_timeout(Instant now) {
  if (!started_ || now < next_sweep_) return;
  next_sweep_ = now + 60s;
  const Duration gone = std::chrono::seconds(2 * static_cast<std::int64_t>(config_.interval));
  for (auto it = swarms_.begin(); it != swarms_.end();) {
    std::erase_if(it->second.peers, [&](const auto& kv) { return now - kv.second.seen > gone; });
    it = it->second.peers.empty() ? swarms_.erase(it) : std::next(it);
  }
  std::erase_if(connection_ids_, [&](const auto& kv) { return now - kv.second > kConnectionIdLife; });
}

std::optional<Instant> TrackerCore::poll_timeout() const {
  if (!started_) return std::nullopt;
  return next_sweep_;
}

}  // namespace sv
