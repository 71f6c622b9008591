#include "servent/torrent/torrent_core.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include "share/sha1.hpp"

namespace sv {

namespace bt = wire::bt;
using torrent::Block;

namespace {

constexpr std::array<std::string_view, TorrentCore::kStatCount> kStatNames = {
    "peers_in",        "peers_out",     "handshake_bad",   "unknown_torrent", "messages_malformed",
    "bitfield_bad",    "have_bad",      "request_bad",     "request_flood",   "block_unasked",
    "blocks_in",       "blocks_out",    "bytes_in",        "bytes_out",       "pieces_passed",
    "pieces_failed",   "peers_banned",  "disk_errors",     "timeouts",        "announces",
    "announce_errors", "metadata_pieces_out", "metadata_pieces_in", "metadata_bad",   "extended_bad",
    "snubbed",         "never_unchoked", "buffers_reused", "disk_behind",
};

SharedBuffer shared(wire::Bytes b) { return std::make_shared<const Buffer>(std::move(b)); }

}  // namespace

TorrentCore::TorrentCore(TorrentConfig config, std::uint64_t seed) : config_(std::move(config)), rng_(seed) {}

namespace {

constexpr std::uint64_t kGot = ~std::uint64_t{0};      // a metadata piece that arrived
constexpr std::uint8_t kUtMetadataId = 2;              // our id for ut_metadata (BEP 10 "m")
constexpr std::uint64_t kMaxMetadata = 16 << 20;       // larger metadata sizes are not believed
constexpr std::size_t kMaxEarly = 4096;                // have/bitfield messages kept before the metadata
constexpr std::size_t kSpareBuffers = 32;              // piece buffers kept for reuse (8 MiB of 256 KiB pieces)

bt::Sha1 sha1_of(wire::ByteView b) {
  share::Sha1Hasher h;
  h.update(b.data(), b.size());
  return h.finish();
}

}  // namespace

std::size_t TorrentCore::add_torrent(const bt::Metainfo& m, const bt::Sha1& info_hash, const std::string& root,
                                     wire::Bytes info) {
  auto t = std::make_unique<Torrent>();
  t->meta = m;
  t->has_meta = true;
  t->info_hash = info_hash;
  t->root = root;
  if (info.empty()) {
    info = bt::encode_bencode(bt::info_value(m));
    if (sha1_of(info) != info_hash) info.clear();  // not the original bytes: not served
  }
  t->info = std::move(info);
  init_storage(*t);
  torrents_.push_back(std::move(t));
  const std::size_t index = torrents_.size() - 1;
  start_checks(index);
  return index;
}

std::size_t TorrentCore::add_magnet(const bt::Magnet& magnet, const std::string& root, Instant now) {
  auto t = std::make_unique<Torrent>();
  t->info_hash = magnet.info_hash;
  t->meta.name = magnet.name;
  t->root = root;
  for (const auto& u : magnet.trackers) {
    if (std::find(t->trackers.begin(), t->trackers.end(), u) == t->trackers.end()) t->trackers.push_back(u);
  }
  torrents_.push_back(std::move(t));
  const std::size_t index = torrents_.size() - 1;
  for (const auto& pe : magnet.peers) {
    if (auto ep = Endpoint::parse(pe)) add_peer(index, *ep, now);
  }
  announce(index, bt::AnnounceEvent::Started, now);
  return index;
}

// Where the files go and which pieces we have, once the metainfo is known.
void TorrentCore::init_storage(Torrent& t) {
  const bt::Metainfo& m = t.meta;
  namespace fs = std::filesystem;
  t.paths.clear();
  for (const auto& f : m.files) {
    fs::path p(t.root);
    if (m.multi_file) p /= m.name;
    for (const auto& c : f.path) p /= c;  // components checked by decode_metainfo
    t.paths.push_back(p.string());
    // Directories once, before pieces are written (Write jobs create files only).
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
  }
  t.picker = std::make_unique<torrent::PiecePicker>(static_cast<std::uint32_t>(m.piece_count()),
                                                    static_cast<std::uint32_t>(m.piece_length), m.total_length,
                                                    rng_.next(), bt::kBlockSize);
  if (!m.announce.empty() && std::find(t.trackers.begin(), t.trackers.end(), m.announce) == t.trackers.end()) {
    t.trackers.push_back(m.announce);
  }
  for (const auto& tier : m.announce_list) {
    for (const auto& u : tier) {
      if (std::find(t.trackers.begin(), t.trackers.end(), u) == t.trackers.end()) t.trackers.push_back(u);
    }
  }
}

const bt::Metainfo* TorrentCore::metainfo(std::size_t torrent) const {
  return torrent < torrents_.size() && torrents_[torrent]->has_meta ? &torrents_[torrent]->meta : nullptr;
}

wire::Bytes TorrentCore::torrent_file(std::size_t torrent) const {
  if (torrent >= torrents_.size() || torrents_[torrent]->info.empty()) return {};
  const Torrent& t = *torrents_[torrent];
  // d [announce] [announce-list] info e, keys in order (BEP 3), the info
  // dictionary's own bytes in place.
  wire::Bytes out{'d'};
  auto put = [&](const bt::Value& v) {
    const auto b = bt::encode_bencode(v);
    out.insert(out.end(), b.begin(), b.end());
  };
  if (!t.trackers.empty()) {
    put(bt::Value(std::string("announce")));
    put(bt::Value(t.trackers.front()));
  }
  if (t.trackers.size() > 1) {
    put(bt::Value(std::string("announce-list")));
    std::vector<bt::Value> tiers;
    for (const auto& u : t.trackers) tiers.push_back(bt::Value(std::vector<bt::Value>{bt::Value(u)}));
    put(bt::Value(std::move(tiers)));
  }
  put(bt::Value(std::string("info")));
  out.insert(out.end(), t.info.begin(), t.info.end());
  out.push_back('e');
  return out;
}

void TorrentCore::start_checks(std::size_t index) {
  Torrent& t = *torrents_[index];
  // Pieces whose bytes cannot all be on disk (a file missing or too short)
  // are not checked: a fresh download starts without a pool job per piece.
  std::vector<std::uint64_t> sizes;
  for (const auto& path : t.paths) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path, ec);
    sizes.push_back(ec ? 0 : n);
  }
  const auto& files = t.meta.files;
  auto may_be_there = [&](std::uint32_t i) {
    const std::uint64_t begin = std::uint64_t{i} * t.meta.piece_length, end = begin + t.meta.piece_size(i);
    // The first file that ends after `begin`, then every file up to `end`.
    auto f = std::upper_bound(files.begin(), files.end(), begin,
                              [](std::uint64_t at, const bt::FileEntry& e) { return at < e.offset + e.length; });
    for (; f != files.end() && f->offset < end; ++f) {
      const std::uint64_t need = std::min(end, f->offset + f->length) - f->offset;
      if (f->length > 0 && sizes[static_cast<std::size_t>(f - files.begin())] < need) return false;
    }
    return true;
  };
  for (std::uint32_t i = 0; i < t.meta.piece_count(); ++i) {
    // (piece 0 always: the end of the check is where peers are greeted and
    // trackers told, even when nothing is there)
    if (i > 0 && !may_be_there(i)) continue;
    const JobId id{next_job_++};
    jobs_[id.value] = Job{index, i, true};
    ++t.checking;
    actions_.push_back(action::FileJob{id, action::FileJob::Op::Hash,
                                       ranges(t, std::uint64_t{i} * t.meta.piece_length, t.meta.piece_size(i)), nullptr,
                                       std::nullopt});
  }
}

void TorrentCore::add_peer(std::size_t torrent, Endpoint peer, Instant now) {
  now_ = now;
  if (torrent >= torrents_.size()) return;
  auto& k = torrents_[torrent]->known[peer];
  if (k.backoff == Duration{}) {
    k.backoff = 1s;
    k.next = now;
  }
  dial_due(torrent, now);
}

void TorrentCore::announce_stopped(Instant now) {
  now_ = now;
  for (std::size_t i = 0; i < torrents_.size(); ++i) {
    if (torrents_[i]->announced_started) announce(i, bt::AnnounceEvent::Stopped, now);
  }
}

void TorrentCore::dial_due(std::size_t torrent, Instant now) {
  Torrent& t = *torrents_[torrent];
  for (auto& [ep, k] : t.known) {
    if (k.live || k.next > now || peer_count(torrent) >= config_.max_peers_per_torrent) continue;
    bool connected = false;
    for (const auto& [id, p] : peers_) connected = connected || (p.remote == ep && p.torrent == torrent);
    if (connected) continue;
    const ConnId id = core_conn_id(ConnSpace::Torrent, next_conn_++);
    dialling_[id.value] = torrent;
    dial_ep_[id.value] = ep;
    k.live = true;
    actions_.push_back(action::Connect{id, ep});
  }
}

// A dialled peer went (or never answered): try again later, less often each time.
void TorrentCore::dial_ended(std::uint64_t conn, Instant now) {
  auto it = dial_ep_.find(conn);
  if (it == dial_ep_.end()) return;
  const Endpoint ep = it->second;
  dial_ep_.erase(it);
  for (auto& t : torrents_) {
    auto k = t->known.find(ep);
    if (k == t->known.end() || !k->second.live) continue;
    k->second.live = false;
    k->second.next = now + k->second.backoff;
    k->second.backoff = std::min<Duration>(k->second.backoff * 2, 60s);
  }
}

std::size_t TorrentCore::peer_count(std::size_t torrent) const {
  std::size_t n = 0;
  for (const auto& [id, p] : peers_) n += p.torrent == torrent;
  return n;
}

bool TorrentCore::complete(std::size_t torrent) const {
  return torrent < torrents_.size() && torrents_[torrent]->picker && torrents_[torrent]->checking == 0 &&
         torrents_[torrent]->picker->complete();
}

std::vector<TorrentCore::TorrentInfo> TorrentCore::torrents() const {
  std::vector<TorrentInfo> out;
  for (std::size_t i = 0; i < torrents_.size(); ++i) {
    const Torrent& t = *torrents_[i];
    std::uint64_t have_bytes = 0, down = 0, up = 0;
    for (std::uint32_t k = 0; t.picker && k < t.meta.piece_count(); ++k) have_bytes += t.picker->have(k) ? t.meta.piece_size(k) : 0;
    for (const auto& [id, p] : peers_) {
      if (p.torrent != i) continue;
      down += p.down_rate;
      up += p.up_rate;
    }
    out.push_back({t.info_hash, t.meta.name, static_cast<std::uint32_t>(t.meta.piece_count()),
                   t.picker ? t.picker->have_count() : 0, t.checking > 0, t.has_meta, peer_count(i), t.downloaded,
                   t.uploaded, t.has_meta ? t.meta.total_length : 0, have_bytes, down, up});
  }
  return out;
}

std::vector<TorrentCore::PeerInfo> TorrentCore::peers(std::size_t torrent) const {
  std::vector<PeerInfo> out;
  for (const auto& [id, p] : peers_) {
    if (p.torrent != torrent || !p.handshake_in) continue;
    const auto pieces = static_cast<std::uint32_t>(std::count(p.has.begin(), p.has.end(), true));
    out.push_back({p.remote, p.dir, p.client, p.am_choking, p.am_interested, p.peer_choking, p.peer_interested, snubbed(p, now_),
                   pieces, p.down_rate, p.up_rate, p.total_down, p.total_up});
  }
  std::sort(out.begin(), out.end(), [](const PeerInfo& a, const PeerInfo& b) { return a.remote < b.remote; });
  return out;
}

// Unchoked us while we want its pieces, and no block came for snub_after.
bool TorrentCore::snubbed(const Peer& p, Instant now) const {
  return p.am_interested && !p.peer_choking && now - p.last_block > config_.snub_after;
}

bool TorrentCore::has_info_hash(const bt::Sha1& h) const {
  return std::any_of(torrents_.begin(), torrents_.end(), [&](const auto& t) { return t->info_hash == h; });
}

std::vector<Counter> TorrentCore::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

TorrentCore::Peer* TorrentCore::find(ConnId id) {
  auto it = peers_.find(id.value);
  return it == peers_.end() ? nullptr : &it->second;
}

std::vector<action::FileRange> TorrentCore::ranges(const Torrent& t, std::uint64_t offset, std::uint64_t length) const {
  std::vector<action::FileRange> out;
  for (std::size_t i = 0; i < t.meta.files.size() && length > 0; ++i) {
    const auto& f = t.meta.files[i];
    if (f.length == 0 || offset >= f.offset + f.length) continue;
    const std::uint64_t in_file = offset - f.offset;
    const std::uint64_t n = std::min(length, f.length - in_file);
    out.push_back({t.paths[i], in_file, n});
    offset += n;
    length -= n;
  }
  return out;
}

// ---- connections ----

void TorrentCore::add_tracker(std::size_t torrent, const std::string& url) {
  if (torrent < torrents_.size()) torrents_[torrent]->trackers.push_back(url);
}

void TorrentCore::handle_connected(ConnId conn, Endpoint remote, Direction dir, Instant now) {
  now_ = now;
  if (!started_) {
    started_ = true;
    next_choke_ = now + config_.choke_interval;
  }
  if (auto tc = tracker_conns_.find(conn.value); tc != tracker_conns_.end()) {
    const std::string& r = tc->second.request;
    actions_.push_back(action::Send{conn, shared(wire::Bytes(r.begin(), r.end()))});
    return;
  }
  Peer p;
  p.id = conn;
  p.remote = remote;
  p.dir = dir;
  p.since = p.last_in = p.last_out = p.last_block = p.window_start = now;
  p.pipeline = config_.min_pipeline * 4;
  if (auto d = dialling_.find(conn.value); d != dialling_.end()) {
    p.torrent = d->second;
    dialling_.erase(d);
  }
  ++stats_[dir == Direction::Inbound ? kPeersIn : kPeersOut];
  auto& ref = peers_.emplace(conn.value, std::move(p)).first->second;
  if (ref.torrent) send_handshake(ref);  // the dialling side speaks first
}

void TorrentCore::send_handshake(Peer& p) {
  bt::Handshake h;
  h.reserved[7] |= 0x04;  // fast extension (BEP 6)
  h.reserved[5] |= 0x10;  // extension protocol (BEP 10)
  h.info_hash = torrents_[*p.torrent]->info_hash;
  h.peer_id = config_.peer_id;
  wire::Bytes b;
  bt::encode_handshake(b, h);
  send_raw(p, shared(std::move(b)));
  p.handshake_out = true;
}

void TorrentCore::send_raw(Peer& p, SharedBuffer b) {
  p.last_out = now_;
  if (p.sending_file) {
    p.held.push_back(std::move(b));
  } else {
    // Peer messages of one turn (requests, haves, blocks' acks) go out together.
    actions_.push_back(action::Send{p.id, std::move(b), p.handshake_in});
  }
}

void TorrentCore::send(Peer& p, const bt::PeerMessage& m) { send_raw(p, shared(bt::encode_peer_message(m))); }

void TorrentCore::drop(Peer& p, CloseReason reason, Stat stat) {
  ++stats_[stat];
  dial_ended(p.id.value, now_);
  actions_.push_back(action::Close{p.id, reason, false});
  // Its blocks go back to the picker now; handle_closed finishes the rest.
  forget_metadata_asks(p);
  if (p.torrent && torrents_[*p.torrent]->picker) {
    torrents_[*p.torrent]->picker->abort_peer(p.id.value);
    if (!p.has.empty()) torrents_[*p.torrent]->picker->remove_peer_pieces(p.has);
  }
  const std::optional<std::size_t> torrent = p.torrent;
  peers_.erase(p.id.value);
  if (torrent && !torrents_[*torrent]->has_meta) ask_metadata(*torrent);
}

void TorrentCore::handle_closed(ConnId conn, CloseReason, Instant now) {
  now_ = now;
  dialling_.erase(conn.value);
  dial_ended(conn.value, now);
  if (auto tc = tracker_conns_.find(conn.value); tc != tracker_conns_.end()) {
    const TrackerConn done = std::move(tc->second);
    tracker_conns_.erase(tc);
    tracker_reply(done, now);
    return;
  }
  Peer* p = find(conn);
  if (!p) return;
  forget_metadata_asks(*p);
  const std::optional<std::size_t> torrent = p->torrent;
  if (p->torrent && torrents_[*p->torrent]->picker) {
    Torrent& t = *torrents_[*p->torrent];
    t.picker->abort_peer(conn.value);
    if (!p->has.empty()) t.picker->remove_peer_pieces(p->has);
  }
  peers_.erase(conn.value);
  if (torrent && !torrents_[*torrent]->has_meta) ask_metadata(*torrent);
  // Others may now take over its blocks.
  for (auto& [id, q] : peers_) fill_requests(q);
}

void TorrentCore::handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) {
  now_ = now;
  if (auto tc = tracker_conns_.find(conn.value); tc != tracker_conns_.end()) {
    // HTTP/1.0 with Connection: close: the reply ends when the tracker closes.
    auto& r = tc->second.response;
    if (r.size() + bytes.size() > 1 << 20) {
      ++stats_[kAnnounceErrors];
      actions_.push_back(action::Close{conn, CloseReason::PayloadTooLarge, false});
      tracker_conns_.erase(tc);
      return;
    }
    r.insert(r.end(), bytes.begin(), bytes.end());
    return;
  }
  Peer* p = find(conn);
  if (!p) return;
  p->last_in = now;
  // Read in place when nothing is buffered (the usual case for a block
  // stream); only a partial message at the end is kept.
  wire::ByteView direct;
  if (p->handshake_in && p->inbuf.empty()) {
    direct = bytes;
  } else {
    p->inbuf.insert(p->inbuf.end(), bytes.begin(), bytes.end());
  }
  if (!p->handshake_in) {
    auto h = bt::decode_handshake(p->inbuf);
    if (h.need_more()) return;
    if (!h) {
      drop(*p, CloseReason::HandshakeMalformed, kHandshakeBad);
      return;
    }
    p->inbuf.erase(p->inbuf.begin(), p->inbuf.begin() + bt::kHandshakeSize);
    const ConnId id = p->id;
    on_handshake(*p, *h, now);
    p = find(id);
    if (!p) return;
  }
  const std::size_t pieces = p->torrent ? torrents_[*p->torrent]->meta.piece_count() : 0;
  const std::size_t max_len = std::max<std::size_t>({bt::kBlockSize + 9, pieces / 8 + 2, 64 * 1024});
  std::size_t at = 0;
  const ConnId id = p->id;
  const bool buffered = direct.empty();
  while (true) {
    const wire::ByteView rest = (buffered ? wire::ByteView(p->inbuf) : direct).subspan(at);
    // A whole piece message: its block goes straight from here to the piece.
    if (rest.size() >= 13 && rest[4] == static_cast<std::uint8_t>(bt::MsgType::Piece) && p->torrent &&
        torrents_[*p->torrent]->has_meta) {
      const std::uint32_t len = wire::get_be32(rest.data());
      if (len >= 9 && len <= max_len && rest.size() >= 4 + std::size_t{len}) {
        at += 4 + std::size_t{len};
        on_piece(*p, wire::get_be32(rest.data() + 5), wire::get_be32(rest.data() + 9), rest.subspan(13, len - 9), now);
        p = find(id);
        if (!p) return;
        continue;
      }
    }
    auto r = bt::decode_peer_message(rest, max_len);
    if (r.need_more()) break;
    if (!r) {
      drop(*p, r.error() == wire::WireError::TooLarge ? CloseReason::PayloadTooLarge : CloseReason::PayloadMalformed,
           kMessagesMalformed);
      return;
    }
    at += r->consumed;
    on_message(*p, r->msg, now);
    p = find(id);
    if (!p) return;
  }
  if (buffered) {
    p->inbuf.erase(p->inbuf.begin(), p->inbuf.begin() + static_cast<std::ptrdiff_t>(at));
  } else {
    p->inbuf.assign(direct.begin() + static_cast<std::ptrdiff_t>(at), direct.end());
  }
}

void TorrentCore::on_handshake(Peer& p, const bt::Handshake& h, Instant now) {
  std::optional<std::size_t> which;
  for (std::size_t i = 0; i < torrents_.size(); ++i) {
    if (torrents_[i]->info_hash == h.info_hash) which = i;
  }
  if (!which || (p.torrent && *p.torrent != *which)) {
    drop(p, CloseReason::HandshakeRefused, kUnknownTorrent);
    return;
  }
  Torrent& t = *torrents_[*which];
  if (std::find(t.banned.begin(), t.banned.end(), Endpoint{p.remote.ip, 0}) != t.banned.end() ||
      (p.dir == Direction::Inbound && peer_count(*which) >= config_.max_peers_per_torrent)) {
    drop(p, CloseReason::Full, kPeersBanned);
    return;
  }
  if (h.peer_id == config_.peer_id) {  // ourselves
    drop(p, CloseReason::HandshakeRefused, kHandshakeBad);
    return;
  }
  p.torrent = which;
  p.fast = h.fast();
  p.extended = h.extended();
  if (auto k = t.known.find(p.remote); k != t.known.end()) k->second.backoff = 1s;
  p.handshake_in = true;
  p.has.assign(t.meta.piece_count(), false);
  if (!p.handshake_out) send_handshake(p);
  after_handshake(p, now);
}

void TorrentCore::after_handshake(Peer& p, Instant) {
  Torrent& t = *torrents_[*p.torrent];
  if (t.checking > 0 || p.greeted) return;  // the bitfield waits for the resume check
  p.greeted = true;
  if (!t.has_meta) {
    // Nothing to offer yet (BEP 9: no bitfield before the piece count is known).
    if (p.fast) send(p, bt::msg_simple(bt::MsgType::HaveNone));
    send_ext_handshake(p);
    return;
  }
  const auto& have = t.picker->have_bits();
  if (p.fast && t.picker->complete()) {
    send(p, bt::msg_simple(bt::MsgType::HaveAll));
  } else if (p.fast && t.picker->have_count() == 0) {
    send(p, bt::msg_simple(bt::MsgType::HaveNone));
  } else if (t.picker->have_count() > 0) {
    send(p, bt::msg_bitfield(have));
  }
  send_ext_handshake(p);
  update_interest(p);
}

// BEP 10: what we speak (ut_metadata, and its size when we have it), who we
// are, where we listen, how many requests we queue.
void TorrentCore::send_ext_handshake(Peer& p) {
  if (!p.extended) return;
  const Torrent& t = *torrents_[*p.torrent];
  bt::ExtHandshake h;
  h.m.emplace_back("ut_metadata", kUtMetadataId);
  if (!t.info.empty()) h.metadata_size = static_cast<std::int64_t>(t.info.size());
  h.client = "servent 0.1";
  h.port = config_.listen_port;
  h.reqq = static_cast<std::int64_t>(config_.max_queued_requests);
  send(p, bt::msg_extended(0, bt::encode_ext_handshake(h)));
}

// ---- messages ----

void TorrentCore::on_message(Peer& p, const bt::PeerMessage& m, Instant now) {
  Torrent& t = *torrents_[*p.torrent];
  if (m.type == bt::MsgType::Extended) {
    on_extended(p, m, now);
    return;
  }
  if (!t.has_meta) {
    // Before the piece count is known: what it has waits; it cannot ask us
    // for pieces (we said we have none) or send any we asked for.
    switch (m.type) {
      case bt::MsgType::Have:
      case bt::MsgType::Bitfield:
      case bt::MsgType::HaveAll:
      case bt::MsgType::HaveNone:
        if (p.early.size() >= kMaxEarly) {
          drop(p, CloseReason::PayloadTooLarge, kHaveBad);
          return;
        }
        p.early.push_back(m);
        return;
      case bt::MsgType::Choke: p.peer_choking = true; return;
      case bt::MsgType::Unchoke: p.peer_choking = false; return;
      case bt::MsgType::Interested: p.peer_interested = true; return;
      case bt::MsgType::NotInterested: p.peer_interested = false; return;
      case bt::MsgType::Request: drop(p, CloseReason::PayloadMalformed, kRequestBad); return;
      case bt::MsgType::Piece: ++stats_[kBlockUnasked]; return;
      default: return;
    }
  }
  const std::uint32_t pieces = static_cast<std::uint32_t>(t.meta.piece_count());
  switch (m.type) {
    case bt::MsgType::KeepAlive: return;
    case bt::MsgType::Choke:
      if (!p.peer_choking) p.choked_since = now;
      p.peer_choking = true;
      for (const auto& b : p.requested) t.picker->abort(b, p.id.value);
      p.requested.clear();
      p.probe.reset();
      return;
    case bt::MsgType::Unchoke:
      if (p.peer_choking) p.last_block = now;  // the snub clock starts now
      p.peer_choking = false;
      fill_requests(p);
      return;
    case bt::MsgType::Interested: {
      p.peer_interested = true;
      // A free slot is given at once rather than at the next choke round.
      std::size_t unchoked = 0;
      for (const auto& [id, q] : peers_) unchoked += q.torrent == p.torrent && !q.am_choking;
      if (p.am_choking && unchoked < config_.unchoke_slots + 1) {
        p.am_choking = false;
        send(p, bt::msg_simple(bt::MsgType::Unchoke));
      }
      return;
    }
    case bt::MsgType::NotInterested: p.peer_interested = false; return;
    case bt::MsgType::Have:
      if (m.index >= pieces) {
        drop(p, CloseReason::PayloadMalformed, kHaveBad);
        return;
      }
      if (!p.has[m.index]) {
        p.has[m.index] = true;
        t.picker->add_peer_piece(m.index);
        if (!p.am_interested && !t.picker->have(m.index)) update_interest(p);
        fill_requests(p);
      }
      return;
    case bt::MsgType::Bitfield: {
      auto bits = bt::decode_bitfield(m.data, pieces);
      if (!bits) {
        drop(p, CloseReason::PayloadMalformed, kBitfieldBad);
        return;
      }
      t.picker->remove_peer_pieces(p.has);
      p.has = std::move(*bits);
      t.picker->add_peer_pieces(p.has);
      update_interest(p);
      return;
    }
    case bt::MsgType::HaveAll:
    case bt::MsgType::HaveNone:
      t.picker->remove_peer_pieces(p.has);
      p.has.assign(pieces, m.type == bt::MsgType::HaveAll);
      t.picker->add_peer_pieces(p.has);
      update_interest(p);
      return;
    case bt::MsgType::Request: {
      const bool inside = m.index < pieces && m.length > 0 && m.length <= bt::kBlockSize &&
                          m.begin <= t.meta.piece_size(m.index) && m.length <= t.meta.piece_size(m.index) - m.begin;
      if (!inside || !t.picker->have(m.index)) {
        drop(p, CloseReason::PayloadMalformed, kRequestBad);
        return;
      }
      if (p.am_choking) {
        if (p.fast) send(p, bt::msg_request(bt::MsgType::Reject, m.index, m.begin, m.length));
        return;
      }
      if (p.their_requests.size() >= config_.max_queued_requests) {
        drop(p, CloseReason::PayloadTooLarge, kRequestFlood);
        return;
      }
      p.their_requests.push_back({m.index, m.begin, m.length});
      serve(p);
      return;
    }
    case bt::MsgType::Cancel:
      std::erase(p.their_requests, Block{m.index, m.begin, m.length});
      return;
    case bt::MsgType::Reject: {
      const Block b{m.index, m.begin, m.length};
      if (std::find(p.requested.begin(), p.requested.end(), b) != p.requested.end()) {
        unrequest(p, b);
        t.picker->abort(b, p.id.value);
      }
      return;
    }
    case bt::MsgType::Piece: on_piece(p, m.index, m.begin, m.data, now); return;
    default: return;  // port, suggest, allowed fast, extended, unknown: nothing we act on (BEP 3: ignore)
  }
}

// ---- metadata (BEP 10, BEP 9) ----

void TorrentCore::on_extended(Peer& p, const bt::PeerMessage& m, Instant now) {
  Torrent& t = *torrents_[*p.torrent];
  const std::size_t index = *p.torrent;
  if (m.ext_id == 0) {
    auto h = bt::decode_ext_handshake(m.data);
    if (!h) {
      drop(p, CloseReason::PayloadMalformed, kExtendedBad);
      return;
    }
    p.ut_metadata = h->id_of("ut_metadata");
    p.client = h->client.substr(0, 64);
    if (h->metadata_size) p.metadata_size = *h->metadata_size;
    if (!t.has_meta) ask_metadata(index);
    return;
  }
  if (m.ext_id != kUtMetadataId) return;  // an extension we did not offer: ignored
  auto mm = bt::decode_metadata_msg(m.data);
  if (!mm) {
    drop(p, CloseReason::PayloadMalformed, kExtendedBad);
    return;
  }
  const std::int64_t count = static_cast<std::int64_t>((t.info.size() + bt::kMetadataPiece - 1) / bt::kMetadataPiece);
  switch (mm->type) {
    case 0: {  // request
      if (++p.metadata_requests > 4 * static_cast<std::size_t>(count) + 16) {
        drop(p, CloseReason::PayloadTooLarge, kRequestFlood);
        return;
      }
      if (p.ut_metadata == 0) return;  // it cannot hear an answer
      bt::MetadataMsg out;
      out.piece = mm->piece;
      if (t.info.empty() || mm->piece < 0 || mm->piece >= count) {
        out.type = 2;  // reject
        send(p, bt::msg_metadata(p.ut_metadata, out));
        return;
      }
      const std::size_t at = static_cast<std::size_t>(mm->piece) * bt::kMetadataPiece;
      const std::size_t n = std::min<std::size_t>(bt::kMetadataPiece, t.info.size() - at);
      out.type = 1;
      out.total_size = static_cast<std::int64_t>(t.info.size());
      out.data.assign(t.info.begin() + static_cast<std::ptrdiff_t>(at), t.info.begin() + static_cast<std::ptrdiff_t>(at + n));
      ++stats_[kMetadataPiecesOut];
      send(p, bt::msg_metadata(p.ut_metadata, out));
      return;
    }
    case 1: metadata_piece(p, *mm, now); return;
    case 2: {  // reject: ask someone else
      p.metadata_refused = true;
      forget_metadata_asks(p);
      if (!t.has_meta) ask_metadata(index);
      return;
    }
    default: return;  // BEP 9: unknown message types are ignored
  }
}

// Every metadata piece nobody is asked for goes to a peer that offers the
// metadata at the size being fetched: spread over all of them at first; after
// metadata that did not hash, all pieces from one peer at a time, so that the
// next failure names the peer that lied.
void TorrentCore::ask_metadata(std::size_t index) {
  Torrent& t = *torrents_[index];
  if (t.has_meta) return;
  auto& f = t.fetch;
  std::vector<Peer*> offer;
  for (auto& [id, p] : peers_) {
    if (p.torrent == index && p.ut_metadata != 0 && !p.metadata_refused && p.metadata_size > 0 &&
        static_cast<std::uint64_t>(p.metadata_size) <= kMaxMetadata) {
      offer.push_back(&p);
    }
  }
  if (offer.empty()) return;
  std::sort(offer.begin(), offer.end(), [](const Peer* a, const Peer* b) { return a->id.value < b->id.value; });
  if (f.size == 0) {
    f.size = static_cast<std::uint64_t>(offer.front()->metadata_size);  // the first willing peer's
    f.bytes.assign(f.size, 0);
    f.asked.assign((f.size + bt::kMetadataPiece - 1) / bt::kMetadataPiece, 0);
    f.senders.clear();
  }
  std::erase_if(offer, [&](const Peer* p) { return static_cast<std::uint64_t>(p->metadata_size) != f.size; });
  if (offer.empty()) return;
  if (f.one_peer) {
    // The peer already at work, else the first.
    Peer* one = offer.front();
    for (Peer* p : offer) {
      if (std::find(f.asked.begin(), f.asked.end(), p->id.value) != f.asked.end() ||
          std::find(f.senders.begin(), f.senders.end(), p->id.value) != f.senders.end()) {
        one = p;
      }
    }
    offer = {one};
  }
  std::size_t next = 0;
  for (std::size_t i = 0; i < f.asked.size(); ++i) {
    if (f.asked[i] != 0) continue;
    Peer& p = *offer[next++ % offer.size()];
    f.asked[i] = p.id.value;
    bt::MetadataMsg req;
    req.type = 0;
    req.piece = static_cast<std::int64_t>(i);
    send(p, bt::msg_metadata(p.ut_metadata, req));
  }
}

void TorrentCore::forget_metadata_asks(Peer& p) {
  if (!p.torrent) return;
  for (auto& a : torrents_[*p.torrent]->fetch.asked) {
    if (a == p.id.value) a = 0;
  }
}

void TorrentCore::metadata_piece(Peer& p, const bt::MetadataMsg& m, Instant now) {
  const std::size_t index = *p.torrent;
  Torrent& t = *torrents_[index];
  auto& f = t.fetch;
  if (t.has_meta || f.size == 0) return;  // late, or never asked: ignored
  const std::size_t piece = static_cast<std::size_t>(m.piece);
  if (m.piece < 0 || piece >= f.asked.size() || f.asked[piece] != p.id.value) return;  // not asked of it
  const std::size_t at = piece * bt::kMetadataPiece;
  const std::size_t want = std::min<std::uint64_t>(bt::kMetadataPiece, f.size - at);
  if (!m.total_size || static_cast<std::uint64_t>(*m.total_size) != f.size || m.data.size() != want) {
    drop(p, CloseReason::PayloadMalformed, kMetadataBad);
    return;
  }
  ++stats_[kMetadataPiecesIn];
  std::copy(m.data.begin(), m.data.end(), f.bytes.begin() + static_cast<std::ptrdiff_t>(at));
  f.asked[piece] = kGot;
  if (std::find(f.senders.begin(), f.senders.end(), p.id.value) == f.senders.end()) f.senders.push_back(p.id.value);
  if (std::all_of(f.asked.begin(), f.asked.end(), [](std::uint64_t a) { return a == kGot; })) install_metadata(index, now);
}

// All pieces are in: the info-hash decides; then the info dictionary is read
// like a metainfo file's and the torrent starts as if added from one.
void TorrentCore::install_metadata(std::size_t index, Instant now) {
  Torrent& t = *torrents_[index];
  auto& f = t.fetch;
  std::optional<bt::Metainfo> meta;
  if (sha1_of(f.bytes) == t.info_hash) {
    wire::Bytes file{'d', '4', ':', 'i', 'n', 'f', 'o'};
    file.insert(file.end(), f.bytes.begin(), f.bytes.end());
    file.push_back('e');
    auto r = bt::decode_metainfo(file);
    if (auto* m = std::get_if<bt::Metainfo>(&r)) meta = std::move(*m);
  }
  if (!meta) {
    ++stats_[kMetadataBad];
    const auto senders = f.senders;
    f = Torrent::Fetch{};
    f.one_peer = true;
    if (senders.size() == 1) {
      // It alone sent it: it lied (or the torrent is unusable from it).
      if (Peer* q = find(ConnId{senders.front()})) {
        t.banned.push_back(Endpoint{q->remote.ip, 0});
        std::erase_if(t.known, [&](const auto& kv) { return kv.first.ip == q->remote.ip; });
        drop(*q, CloseReason::PayloadMalformed, kPeersBanned);
      }
    }
    ask_metadata(index);
    return;
  }
  const std::string magnet_name = t.meta.name;
  t.meta = std::move(*meta);
  if (t.meta.name.empty()) t.meta.name = magnet_name;
  t.info = std::move(f.bytes);
  f = Torrent::Fetch{};
  t.has_meta = true;
  init_storage(t);
  start_checks(index);  // (first: nothing is requested before the check ends)
  // What peers said they have, now that it can be read.
  std::vector<ConnId> here;
  for (auto& [id, p] : peers_) {
    if (p.torrent == index) here.push_back(p.id);
  }
  for (ConnId c : here) {
    Peer* p = find(c);
    if (!p) continue;
    p->has.assign(t.meta.piece_count(), false);
    const auto early = std::exchange(p->early, {});
    for (const auto& m : early) {
      on_message(*p, m, now);
      p = find(c);
      if (!p) break;
    }
  }
}

void TorrentCore::on_piece(Peer& p, std::uint32_t index, std::uint32_t begin, wire::ByteView data, Instant now) {
  Torrent& t = *torrents_[*p.torrent];
  const Block b{index, begin, static_cast<std::uint32_t>(data.size())};
  ++stats_[kBlocksIn];
  stats_[kBytesIn] += data.size();
  p.down_bytes += data.size();
  p.total_down += data.size();
  p.window_bytes += data.size();
  p.last_block = now;
  if (p.probe == b) {
    const Duration rtt = now - p.probe_at;
    if (!p.min_rtt || rtt < *p.min_rtt) p.min_rtt = rtt;
  }
  unrequest(p, b);
  resize_pipeline(p, now);
  if (!t.picker->wanted(b)) {
    ++stats_[kBlockUnasked];  // late (after a choke or an endgame duplicate), or never asked: ignored
    fill_requests(p);
    return;
  }
  // Endgame duplicates of this block elsewhere are cancelled.
  for (std::uint64_t other : t.picker->other_requesters(b, p.id.value)) {
    if (Peer* q = find(ConnId{other})) {
      unrequest(*q, b);
      send(*q, bt::msg_request(bt::MsgType::Cancel, b.piece, b.begin, b.length));
    }
  }
  auto& buf = t.buffers[b.piece];
  if (buf.empty()) {
    if (!spare_.empty()) {
      buf = std::move(spare_.back());  // (its old bytes are all overwritten before the piece is written)
      spare_.pop_back();
      ++stats_[kBuffersReused];
    }
    buf.resize(t.meta.piece_size(b.piece));
  }
  std::copy(data.begin(), data.end(), buf.begin() + b.begin);
  auto& who = t.senders[b.piece];
  if (std::find(who.begin(), who.end(), Endpoint{p.remote.ip, 0}) == who.end()) who.push_back(Endpoint{p.remote.ip, 0});
  t.downloaded += data.size();
  if (t.picker->received(b)) piece_done(t, b.piece);
  fill_requests(p);
}

void TorrentCore::unrequest(Peer& p, const torrent::Block& b) {
  std::erase(p.requested, b);
  if (p.probe == b) p.probe.reset();  // (a timing that will not come)
}

void TorrentCore::resize_pipeline(Peer& p, Instant now) {
  // Twice the bandwidth-delay product: while the pipeline is what limits the
  // rate, each window doubles it (a slow start); once the link is full it
  // stays at twice what fills it. The delay is the shortest time a request
  // took (the first of a batch on an idle link: no queue of ours in front of
  // it), at least 1 ms (Instant's grain); half a second until one is timed.
  const Duration delay = p.min_rtt ? std::max<Duration>(*p.min_rtt, 1ms) : Duration{500};
  const Duration elapsed = now - p.window_start;
  if (elapsed < std::max<Duration>(100ms, 2 * delay)) return;
  const std::uint64_t rate = p.window_bytes * 1000 / static_cast<std::uint64_t>(elapsed.count());  // bytes/s
  const std::uint64_t bdp = rate * static_cast<std::uint64_t>(delay.count()) / 1000;
  p.pipeline = std::clamp<std::size_t>(2 * bdp / bt::kBlockSize + config_.min_pipeline, config_.min_pipeline,
                                       config_.max_pipeline);
  p.window_start = now;
  p.window_bytes = 0;
}

void TorrentCore::update_interest(Peer& p) {
  if (!p.torrent || !torrents_[*p.torrent]->picker) return;
  const Torrent& t = *torrents_[*p.torrent];
  bool want = false;
  if (t.checking == 0 && !t.picker->complete()) {
    for (std::size_t i = 0; i < p.has.size() && !want; ++i) want = p.has[i] && !t.picker->have(static_cast<std::uint32_t>(i));
  }
  if (want != p.am_interested) {
    p.am_interested = want;
    if (want) p.choked_since = now_;
    send(p, bt::msg_simple(want ? bt::MsgType::Interested : bt::MsgType::NotInterested));
  }
  fill_requests(p);
}

void TorrentCore::fill_requests(Peer& p) {
  if (!p.torrent || p.peer_choking || !p.am_interested) return;
  Torrent& t = *torrents_[*p.torrent];
  if (t.checking > 0 || !t.picker) return;
  if (unwritten_ >= config_.max_unwritten) {
    if (!disk_behind_) ++stats_[kDiskBehind];
    disk_behind_ = true;
    return;
  }
  // Every request of this round in one buffer: one write, one segment,
  // rather than a 17-byte write (and a segment the other side must read) each.
  wire::Bytes out;
  while (p.requested.size() < p.pipeline) {
    auto b = t.picker->pick(p.has, p.id.value);
    if (!b) break;
    p.requested.push_back(*b);
    if (!p.probe) {
      p.probe = *b;
      p.probe_at = now_;
    }
    bt::encode_peer_message(out, bt::msg_request(bt::MsgType::Request, b->piece, b->begin, b->length));
  }
  if (!out.empty()) send_raw(p, shared(std::move(out)));
}

void TorrentCore::serve(Peer& p) {
  if (p.sending_file || p.their_requests.empty() || p.am_choking) return;
  Torrent& t = *torrents_[*p.torrent];
  const Block b = p.their_requests.front();
  p.their_requests.pop_front();
  // The piece message's head, then the block straight from the file(s).
  wire::Bytes head;
  wire::put_be32(head, 9 + b.length);
  head.push_back(static_cast<std::uint8_t>(bt::MsgType::Piece));
  wire::put_be32(head, b.piece);
  wire::put_be32(head, b.begin);
  const auto parts = ranges(t, std::uint64_t{b.piece} * t.meta.piece_length + b.begin, b.length);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    p.file_parts.push_back(action::SendFile{p.id, parts[i].path, parts[i].offset, parts[i].length, 0, 0,
                                            i == 0 ? shared(std::move(head)) : nullptr});
  }
  ++stats_[kBlocksOut];
  stats_[kBytesOut] += b.length;
  p.up_bytes += b.length;
  p.total_up += b.length;
  t.uploaded += b.length;
  p.sending_file = true;
  p.last_out = now_;
  actions_.push_back(std::move(p.file_parts.front()));
  p.file_parts.pop_front();
}

void TorrentCore::handle_send_done(ConnId conn, bool ok, Instant now) {
  now_ = now;
  Peer* p = find(conn);
  if (!p) return;
  if (!ok) {
    drop(*p, CloseReason::IoError, kDiskErrors);
    return;
  }
  if (!p->file_parts.empty()) {
    actions_.push_back(std::move(p->file_parts.front()));
    p->file_parts.pop_front();
    return;
  }
  p->sending_file = false;
  for (auto& b : std::exchange(p->held, {})) actions_.push_back(action::Send{p->id, std::move(b), true});
  serve(*p);
}

// ---- pieces on disk ----

void TorrentCore::piece_done(Torrent& t, std::uint32_t piece) {
  std::size_t index = 0;
  while (torrents_[index].get() != &t) ++index;
  const JobId id{next_job_++};
  auto data = std::make_shared<Buffer>(std::move(t.buffers[piece]));
  t.buffers.erase(piece);
  unwritten_ += data->size();
  jobs_[id.value] = Job{index, piece, false, data};
  actions_.push_back(action::FileJob{id, action::FileJob::Op::Write,
                                     ranges(t, std::uint64_t{piece} * t.meta.piece_length, t.meta.piece_size(piece)),
                                     std::move(data), t.meta.pieces[piece]});
}

void TorrentCore::handle_file_done(JobId job, const FileResult& r, Instant now) {
  now_ = now;
  auto it = jobs_.find(job.value);
  if (it == jobs_.end()) return;
  Job j = std::move(it->second);
  jobs_.erase(it);
  // The pool let go of the bytes: keep the buffer for the next piece.
  if (j.data && j.data.use_count() == 1 && spare_.size() < kSpareBuffers) spare_.push_back(std::move(*j.data));
  Torrent& t = *torrents_[j.torrent];
  if (j.check) {
    if (r.ok && r.sha1 == t.meta.pieces[j.piece]) t.picker->set_have(j.piece);
    if (--t.checking == 0) {
      for (auto& [id, p] : peers_) {
        if (p.torrent != j.torrent || !p.handshake_in) continue;
        if (p.greeted) {
          // Greeted before the metadata came (with nothing): what the check found.
          for (std::uint32_t i = 0; i < t.meta.piece_count(); ++i) {
            if (t.picker->have(i)) send(p, bt::msg_have(i));
          }
          update_interest(p);
        } else {
          after_handshake(p, now);
        }
      }
      announce(j.torrent, t.announced_started ? bt::AnnounceEvent::None : bt::AnnounceEvent::Started, now);
    }
    return;
  }
  unwritten_ -= t.meta.piece_size(j.piece);
  if (disk_behind_ && unwritten_ < config_.max_unwritten) {
    disk_behind_ = false;
    for (auto& [id, p] : peers_) fill_requests(p);
  }
  if (r.ok) {
    t.picker->piece_passed(j.piece);
    t.senders.erase(j.piece);
    ++stats_[kPiecesPassed];
    if (t.picker->complete() && !t.announced_completed) announce(j.torrent, bt::AnnounceEvent::Completed, now);
    for (auto& [id, p] : peers_) {
      if (p.torrent != j.torrent || !p.greeted) continue;
      send(p, bt::msg_have(j.piece));
      if (p.am_interested) update_interest(p);
    }
    return;
  }
  t.picker->piece_failed(j.piece);
  if (!r.hash_matched) {
    // Every peer that sent part of it is banned (one of them lied).
    ++stats_[kPiecesFailed];
    for (const Endpoint& e : t.senders[j.piece]) {
      if (std::find(t.banned.begin(), t.banned.end(), e) == t.banned.end()) t.banned.push_back(e);
      std::erase_if(t.known, [&](const auto& kv) { return kv.first.ip == e.ip; });  // not dialled again
    }
    std::vector<ConnId> gone;
    for (auto& [id, p] : peers_) {
      if (p.torrent == j.torrent && std::find(t.banned.begin(), t.banned.end(), Endpoint{p.remote.ip, 0}) != t.banned.end()) {
        gone.push_back(p.id);
      }
    }
    for (ConnId c : gone) {
      if (Peer* p = find(c)) drop(*p, CloseReason::PayloadMalformed, kPeersBanned);
    }
  } else {
    ++stats_[kDiskErrors];
  }
  t.senders.erase(j.piece);
  for (auto& [id, p] : peers_) fill_requests(p);
}

// ---- time ----

void TorrentCore::run_choker(std::size_t index, Instant now) {
  Torrent& t = *torrents_[index];
  std::vector<torrent::ChokePeer> cps;
  for (auto& [id, p] : peers_) {
    if (p.torrent != index || !p.handshake_in) continue;
    const auto secs = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(config_.choke_interval).count());
    p.down_rate = p.down_bytes / static_cast<std::uint64_t>(secs);
    p.up_rate = p.up_bytes / static_cast<std::uint64_t>(secs);
    p.down_bytes = p.up_bytes = 0;
    cps.push_back({id, p.peer_interested, p.down_rate, p.up_rate, snubbed(p, now),
                   now - p.since < config_.choke_interval * config_.optimistic_every});
  }
  const bool rotate = t.choke_round++ % config_.optimistic_every == 0;
  const auto r = torrent::choke(cps, t.picker && t.picker->complete(), config_.unchoke_slots, t.optimistic, rotate, rng_);
  t.optimistic = r.optimistic;
  for (auto& [id, p] : peers_) {
    if (p.torrent != index || !p.handshake_in) continue;
    const bool unchoke = std::find(r.unchoked.begin(), r.unchoked.end(), id) != r.unchoked.end() || r.optimistic == id;
    if (unchoke == !p.am_choking) continue;
    p.am_choking = !unchoke;
    send(p, bt::msg_simple(unchoke ? bt::MsgType::Unchoke : bt::MsgType::Choke));
    if (!unchoke) {
      if (p.fast) {
        for (const auto& b : p.their_requests) send(p, bt::msg_request(bt::MsgType::Reject, b.piece, b.begin, b.length));
      }
      p.their_requests.clear();
    }
  }
}

void TorrentCore::handle_timeout(Instant now) {
  now_ = now;
  for (auto it = udp_pending_.begin(); it != udp_pending_.end();) {
    if (it->second.deadline > now) {
      ++it;
    } else if (it->second.tries >= 3) {
      ++stats_[kAnnounceErrors];
      it = udp_pending_.erase(it);
    } else {
      udp_send(it->first, it->second, now);
      ++it;
    }
  }
  for (std::size_t i = 0; i < torrents_.size(); ++i) {
    if (!complete(i) || !torrents_[i]->known.empty()) dial_due(i, now);
  }
  if (!started_ || now < next_choke_) return;
  next_choke_ = now + config_.choke_interval;
  std::vector<ConnId> silent, stingy;
  std::set<std::size_t> refill;
  for (auto& [id, p] : peers_) {
    if (now - p.last_in > config_.peer_timeout) {
      silent.push_back(p.id);
      continue;
    }
    if (now - p.last_out >= config_.keepalive) send(p, bt::msg_simple(bt::MsgType::KeepAlive));
    if (!p.torrent || !torrents_[*p.torrent]->picker) continue;
    Torrent& t = *torrents_[*p.torrent];
    if (!p.requested.empty() && snubbed(p, now)) {
      // Snubbed: what it was asked for goes to others; it keeps one request.
      ++stats_[kSnubbed];
      for (const auto& b : p.requested) {
        t.picker->abort(b, p.id.value);
        send(p, bt::msg_request(bt::MsgType::Cancel, b.piece, b.begin, b.length));
      }
      p.requested.clear();
      p.probe.reset();
      p.pipeline = 1;
      p.last_block = now;
      refill.insert(*p.torrent);
    }
    if (p.am_interested && p.peer_choking && now - p.choked_since > config_.choked_timeout &&
        (!p.peer_interested || p.am_choking)) {
      stingy.push_back(p.id);
    }
  }
  for (ConnId c : silent) {
    if (Peer* p = find(c)) drop(*p, CloseReason::HandshakeTimeout, kTimeouts);
  }
  for (ConnId c : stingy) {
    if (Peer* p = find(c)) drop(*p, CloseReason::Normal, kNeverUnchoked);
  }
  for (auto& [id, p] : peers_) {
    if (p.torrent && refill.count(*p.torrent)) fill_requests(p);
  }
  for (std::size_t i = 0; i < torrents_.size(); ++i) {
    run_choker(i, now);
    const Torrent& t = *torrents_[i];
    if (t.announced_started && now >= t.next_announce) announce(i, bt::AnnounceEvent::None, now);
  }
}

void TorrentCore::announce(std::size_t index, bt::AnnounceEvent event, Instant now) {
  Torrent& t = *torrents_[index];
  if (!started_) {
    started_ = true;
    next_choke_ = now + config_.choke_interval;
  }
  t.announced_started = true;
  if (event == bt::AnnounceEvent::Completed) t.announced_completed = true;
  t.next_announce = now + 1800s;  // until a tracker says otherwise
  const std::uint64_t have_bytes = [&] {
    std::uint64_t n = 0;
    for (std::uint32_t i = 0; i < t.meta.piece_count(); ++i) n += t.picker->have(i) ? t.meta.piece_size(i) : 0;
    return n;
  }();
  bt::Announce a;
  a.info_hash = t.info_hash;
  a.peer_id = config_.peer_id;
  a.port = config_.listen_port;
  a.uploaded = t.uploaded;
  a.downloaded = t.downloaded;
  // Without the metadata the size is unknown: a nonzero `left` (one metadata
  // piece) so that trackers count us a leecher and send seeds.
  a.left = t.has_meta ? t.meta.total_length - have_bytes : bt::kMetadataPiece;
  a.event = event;
  a.key = static_cast<std::uint32_t>(rng_.next());
  for (const auto& url : t.trackers) {
    // udp://HOST:PORT (BEP 15), through our UDP socket.
    if (url.starts_with("udp://") && udp_.value != 0) {
      std::string hp = url.substr(6);
      hp = hp.substr(0, hp.find('/'));
      if (hp.starts_with("localhost:")) hp = "127.0.0.1" + hp.substr(9);
      auto ep = Endpoint::parse(hp);
      if (!ep) {
        ++stats_[kAnnounceErrors];
        continue;
      }
      const auto txn = static_cast<std::uint32_t>(rng_.next());
      auto& u = udp_pending_[txn];
      u = UdpAnnounce{index, *ep, a, false, 0, now, 0};
      udp_send(txn, u, now);
      ++stats_[kAnnounces];
      continue;
    }
    // http://HOST:PORT/path with HOST an IPv4 address or localhost (the
    // loop does not block on name lookups).
    if (!url.starts_with("http://")) continue;
    const std::string rest = url.substr(7);
    const auto slash = rest.find('/');
    const std::string hostport = rest.substr(0, slash);
    const std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
    std::string hp = hostport;
    if (hp.find(':') == std::string::npos) hp += ":80";
    if (hp.starts_with("localhost:")) hp = "127.0.0.1" + hp.substr(9);
    auto ep = Endpoint::parse(hp);
    if (!ep) {
      ++stats_[kAnnounceErrors];
      continue;
    }
    const std::string full = bt::announce_url(path, a);
    const ConnId id = core_conn_id(ConnSpace::Torrent, next_conn_++);
    tracker_conns_[id.value] = TrackerConn{
        index, "GET " + full + " HTTP/1.0\r\nHost: " + hostport + "\r\nUser-Agent: servent\r\nConnection: close\r\n\r\n", {}};
    actions_.push_back(action::Connect{id, *ep});
    ++stats_[kAnnounces];
  }
}

void TorrentCore::udp_send(std::uint32_t txn, UdpAnnounce& u, Instant now) {
  bt::UdpPacket p;
  p.transaction = txn;
  if (u.connected) {
    p.action = bt::UdpAction::Announce;
    p.connection_id = u.connection_id;
    p.announce = u.announce;
  } else {
    p.action = bt::UdpAction::Connect;
  }
  ++u.tries;
  u.deadline = now + 15s;
  actions_.push_back(action::SendTo{udp_, u.tracker, shared(bt::encode_udp_request(p))});
}

void TorrentCore::handle_datagram(SocketId, Endpoint from, wire::ByteView bytes, Instant now) {
  now_ = now;
  auto r = bt::decode_udp_response(bytes);
  if (!r) {
    ++stats_[kAnnounceErrors];
    return;
  }
  auto it = udp_pending_.find(r->transaction);
  if (it == udp_pending_.end() || it->second.tracker != from) return;  // not ours (or late)
  UdpAnnounce u = it->second;
  udp_pending_.erase(it);
  if (r->action == bt::UdpAction::Connect && !u.connected) {
    u.connected = true;
    u.connection_id = r->connection_id;
    u.tries = 0;
    const auto txn = static_cast<std::uint32_t>(rng_.next());
    udp_send(txn, udp_pending_[txn] = u, now);
    return;
  }
  if (r->action != bt::UdpAction::Announce) {
    ++stats_[kAnnounceErrors];
    return;
  }
  peers_from_tracker(u.torrent, r->reply, now);
}

void TorrentCore::peers_from_tracker(std::size_t index, const bt::AnnounceReply& reply, Instant now) {
  Torrent& t = *torrents_[index];
  t.next_announce = now + std::chrono::seconds(std::max<std::uint32_t>(reply.interval, 30));
  for (const auto& p : reply.peers) {
    const Endpoint e{p.ip, p.port};
    if (e.port == 0 || (e.port == config_.listen_port && (e.ip == config_.listen_ip || config_.listen_ip == 0))) {
      continue;  // ourselves
    }
    if (!complete(index)) add_peer(index, e, now);
  }
}

void TorrentCore::tracker_reply(const TrackerConn& tc, Instant now) {
  const std::string_view text(reinterpret_cast<const char*>(tc.response.data()), tc.response.size());
  const auto end = text.find("\r\n\r\n");
  if (end == std::string_view::npos || !(text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"))) {
    ++stats_[kAnnounceErrors];
    return;
  }
  auto reply = bt::decode_announce_reply(wire::as_bytes(text.substr(end + 4)));
  if (!reply || !reply->failure.empty()) {
    ++stats_[kAnnounceErrors];
    return;
  }
  peers_from_tracker(tc.torrent, *reply, now);
}

std::optional<Instant> TorrentCore::poll_timeout() const {
  std::optional<Instant> t;
  if (started_) t = next_choke_;
  for (const auto& [txn, u] : udp_pending_) {
    if (!t || u.deadline < *t) t = u.deadline;
  }
  for (const auto& tr : torrents_) {
    for (const auto& [ep, k] : tr->known) {
      if (!k.live && (!t || k.next < *t)) t = k.next;
    }
  }
  return t;
}

}  // namespace sv
