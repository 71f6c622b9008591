// TorrentCore between in-memory peers: the test plays the Driver (bytes
// between cores, SendFile from real files, FileJobs run at once by the same
// function the Driver runs on its pool) with hand-moved time.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <deque>
#include <fstream>
#include <map>
#include <set>

#include "servent/torrent/torrent_core.hpp"
#include "servent/uv/file_job.hpp"
#include "share/sha1.hpp"
#include "wire/bt/tracker.hpp"

using namespace sv;
namespace bt = sv::wire::bt;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char t[] = "/tmp/servent-tc-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// A multi-file torrent over random files in `root`/set (a block spans the two).
struct Made {
  bt::Metainfo meta;
  bt::Sha1 info_hash;
};
Made make_torrent(const fs::path& root, std::uint64_t seed) {
  Rng rng(seed);
  fs::create_directories(root / "set" / "sub");
  const std::vector<std::pair<std::string, std::size_t>> files{{"a.bin", 70000}, {"sub/b.bin", 130001}};
  std::string all;
  for (const auto& [name, size] : files) {
    std::string data(size, '\0');
    rng.fill(reinterpret_cast<std::uint8_t*>(data.data()), size);
    std::ofstream(root / "set" / name, std::ios::binary) << data;
    all += data;
  }
  Made m;
  m.meta.name = "set";
  m.meta.multi_file = true;
  m.meta.piece_length = 32768;
  std::uint64_t off = 0;
  for (const auto& [name, size] : files) {
    bt::FileEntry e;
    e.path = name == "a.bin" ? std::vector<std::string>{"a.bin"} : std::vector<std::string>{"sub", "b.bin"};
    e.length = size;
    e.offset = off;
    off += size;
    m.meta.files.push_back(e);
  }
  m.meta.total_length = off;
  for (std::uint64_t at = 0; at < all.size(); at += m.meta.piece_length) {
    share::Sha1Hasher h;
    h.update(all.data() + at, std::min<std::uint64_t>(m.meta.piece_length, all.size() - at));
    m.meta.pieces.push_back(h.finish());
  }
  const auto info = bt::encode_bencode(bt::info_value(m.meta));
  share::Sha1Hasher h;
  h.update(info.data(), info.size());
  m.info_hash = h.finish();
  return m;
}

// The peer messages in what a core sent (its handshake skipped).
std::vector<bt::PeerMessage> peer_messages(const action::Send& s) {
  std::vector<bt::PeerMessage> out;
  wire::ByteView b(*s.bytes);
  if (b.size() >= bt::kHandshakeSize && b[0] == 19) b = b.subspan(bt::kHandshakeSize);
  while (!b.empty()) {
    auto r = bt::decode_peer_message(b);
    REQUIRE(static_cast<bool>(r));
    out.push_back(r->msg);
    b = b.subspan(r->consumed);
  }
  return out;
}

// What a seed with the fast extension (BEP 6) says first: its handshake, then
// "have all".
wire::Bytes seed_greeting(const bt::Sha1& info_hash, char peer_id) {
  wire::Bytes out;
  bt::Handshake h;
  h.reserved[7] |= 0x04;
  h.info_hash = info_hash;
  h.peer_id.fill(peer_id);
  bt::encode_handshake(out, h);
  bt::encode_peer_message(out, bt::msg_simple(bt::MsgType::HaveAll));
  return out;
}

TorrentConfig config(char tag) {
  TorrentConfig c;
  std::string id = std::string("-SV0100-") + tag + "0000000000x";
  std::copy_n(id.begin(), 20, c.peer_id.begin());
  return c;
}

// The Driver's part, in memory.
struct Net {
  struct Node {
    TorrentCore* core;
    Endpoint addr;
  };
  std::vector<Node> nodes;
  std::map<std::pair<std::size_t, std::uint64_t>, std::pair<std::size_t, std::uint64_t>> links;  // (node, conn) -> other end
  Instant now{Duration(0)};
  std::uint64_t next_in = 1;
  // Bytes from one node to another pass through here (a test may corrupt them).
  std::function<void(std::size_t from, wire::Bytes&)> tamper;

  std::size_t add(TorrentCore& c, Endpoint a) {
    nodes.push_back({&c, a});
    return nodes.size() - 1;
  }
  void deliver(std::size_t from, std::uint64_t conn, wire::Bytes bytes) {
    auto it = links.find({from, conn});
    if (it == links.end()) return;
    if (tamper) tamper(from, bytes);
    nodes[it->second.first].core->handle_bytes(ConnId{it->second.second}, bytes, now);
  }
  bool step() {
    bool any = false;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      while (auto a = nodes[i].core->poll_action()) {
        any = true;
        if (auto* s = std::get_if<action::Send>(&*a)) {
          deliver(i, s->conn.value, *s->bytes);
        } else if (auto* f = std::get_if<action::SendFile>(&*a)) {
          wire::Bytes out = f->head ? *f->head : wire::Bytes{};
          std::ifstream in(f->path, std::ios::binary);
          in.seekg(static_cast<std::streamoff>(f->offset));
          std::string block(f->length, '\0');
          in.read(block.data(), static_cast<std::streamsize>(f->length));
          out.insert(out.end(), block.begin(), block.end());
          deliver(i, f->conn.value, std::move(out));
          nodes[i].core->handle_send_done(f->conn, true, now);
        } else if (auto* j = std::get_if<action::FileJob>(&*a)) {
          nodes[i].core->handle_file_done(j->job, run_file_job(*j), now);
        } else if (auto* c = std::get_if<action::Connect>(&*a)) {
          for (std::size_t k = 0; k < nodes.size(); ++k) {
            if (nodes[k].addr != c->to) continue;
            const std::uint64_t in_id = next_in++;
            links[{i, c->conn.value}] = {k, in_id};
            links[{k, in_id}] = {i, c->conn.value};
            nodes[k].core->handle_connected(ConnId{in_id}, nodes[i].addr, Direction::Inbound, now);
            nodes[i].core->handle_connected(c->conn, c->to, Direction::Outbound, now);
          }
        } else if (auto* cl = std::get_if<action::Close>(&*a)) {
          auto it = links.find({i, cl->conn.value});
          if (it != links.end()) {
            const auto other = it->second;
            links.erase(it);
            links.erase(other);
            nodes[other.first].core->handle_closed(ConnId{other.second}, CloseReason::PeerClosed, now);
          }
          nodes[i].core->handle_closed(cl->conn, cl->reason, now);
        }
      }
    }
    return any;
  }
  // Runs until quiet, then moves time a second; `rounds` seconds at most.
  void run(int rounds, const std::function<bool()>& done) {
    for (int r = 0; r < rounds && !done(); ++r) {
      for (int k = 0; k < 100000 && step(); ++k) {
      }
      now = now + 1s;
      for (auto& n : nodes) n.core->handle_timeout(now);
    }
  }
};

}  // namespace

TEST_CASE("a_leecher_fetches_a_multi_file_torrent_from_a_seeder_byte_for_byte") {
  TempDir seed_dir, get_dir;
  const Made m = make_torrent(seed_dir.path, 1);
  TorrentCore seeder(config('S'), 1), leecher(config('L'), 2);
  Net net;
  const Endpoint seed_addr{0x7f000001, 6881}, get_addr{0x7f000002, 6882};
  net.add(seeder, seed_addr);
  net.add(leecher, get_addr);
  seeder.add_torrent(m.meta, m.info_hash, seed_dir.path.string());
  const std::size_t t = leecher.add_torrent(m.meta, m.info_hash, get_dir.path.string());
  net.run(3, [] { return false; });  // the resume checks
  CHECK(seeder.torrents()[0].have == m.meta.piece_count());
  CHECK(leecher.torrents()[0].have == 0);
  leecher.add_peer(t, seed_addr, net.now);
  net.run(30, [&] { return leecher.complete(t); });
  REQUIRE(leecher.complete(t));
  CHECK(slurp(get_dir.path / "set" / "a.bin") == slurp(seed_dir.path / "set" / "a.bin"));
  CHECK(slurp(get_dir.path / "set" / "sub" / "b.bin") == slurp(seed_dir.path / "set" / "sub" / "b.bin"));
  CHECK(leecher.stat(TorrentCore::kPiecesPassed) == m.meta.piece_count());
  CHECK(leecher.stat(TorrentCore::kPiecesFailed) == 0);
  CHECK(seeder.stat(TorrentCore::kBytesOut) >= m.meta.total_length);
  CHECK(leecher.torrents()[0].downloaded == m.meta.total_length);
  // Restarted on what is on disk, the leecher has everything at once.
  TorrentCore again(config('A'), 3);
  Net net2;
  net2.add(again, get_addr);
  const std::size_t t2 = again.add_torrent(m.meta, m.info_hash, get_dir.path.string());
  net2.run(2, [] { return false; });
  CHECK(again.complete(t2));
}

TEST_CASE("a_peer_that_sends_a_bad_piece_is_banned_and_the_piece_never_reaches_the_disk") {
  TempDir seed_dir, good_dir, get_dir;
  const Made m = make_torrent(seed_dir.path, 4);
  fs::copy(seed_dir.path / "set", good_dir.path / "set", fs::copy_options::recursive);
  TorrentCore liar(config('B'), 1), honest(config('H'), 2), leecher(config('L'), 3);
  Net net;
  const Endpoint liar_addr{0x7f000001, 1}, honest_addr{0x7f000003, 3}, get_addr{0x7f000002, 2};
  const std::size_t liar_node = net.add(liar, liar_addr);
  net.add(leecher, get_addr);
  net.add(honest, honest_addr);
  liar.add_torrent(m.meta, m.info_hash, seed_dir.path.string());
  honest.add_torrent(m.meta, m.info_hash, good_dir.path.string());
  const std::size_t t = leecher.add_torrent(m.meta, m.info_hash, get_dir.path.string());
  net.run(3, [] { return false; });
  // Every block the liar sends has one byte changed.
  net.tamper = [&](std::size_t from, wire::Bytes& b) {
    if (from == liar_node && b.size() > 13 + 100 && b[4] == 7) b[13 + 50] ^= 0xff;
  };
  leecher.add_peer(t, liar_addr, net.now);
  net.run(5, [&] { return leecher.stat(TorrentCore::kPiecesFailed) > 0; });
  CHECK(leecher.stat(TorrentCore::kPiecesFailed) >= 1);
  CHECK(leecher.stat(TorrentCore::kPeersBanned) >= 1);
  CHECK(leecher.stat(TorrentCore::kPiecesPassed) == 0);
  CHECK(leecher.torrents()[0].peers == 0);
  // It cannot come back; an honest seeder finishes the job.
  leecher.add_peer(t, liar_addr, net.now);
  leecher.add_peer(t, honest_addr, net.now);
  net.run(30, [&] { return leecher.complete(t); });
  CHECK(leecher.complete(t));
  CHECK(slurp(get_dir.path / "set" / "sub" / "b.bin") == slurp(good_dir.path / "set" / "sub" / "b.bin"));
}

TEST_CASE("a_magnet_link_gets_the_metadata_from_a_peer_then_the_files") {
  TempDir seed_dir, get_dir;
  const Made m = make_torrent(seed_dir.path, 6);
  TorrentCore seeder(config('S'), 1), leecher(config('L'), 2);
  Net net;
  const Endpoint seed_addr{0x7f000001, 6881}, get_addr{0x7f000002, 6882};
  net.add(seeder, seed_addr);
  net.add(leecher, get_addr);
  seeder.add_torrent(m.meta, m.info_hash, seed_dir.path.string());
  net.run(2, [] { return false; });
  bt::Magnet magnet;
  magnet.info_hash = m.info_hash;
  magnet.name = "from the link";
  magnet.peers = {"127.0.0.1:6881"};  // x.pe: dialled at once
  const std::size_t t = leecher.add_magnet(magnet, get_dir.path.string(), net.now);
  CHECK(leecher.metainfo(t) == nullptr);
  CHECK(leecher.torrent_file(t).empty());
  CHECK(leecher.torrents()[t].name == "from the link");
  net.run(30, [&] { return leecher.complete(t); });
  REQUIRE(leecher.metainfo(t) != nullptr);
  CHECK(leecher.torrents()[t].metadata);
  CHECK(leecher.torrents()[t].name == "set");  // the metadata's name, not the link's
  CHECK(leecher.metainfo(t)->piece_count() == m.meta.piece_count());
  REQUIRE(leecher.complete(t));
  CHECK(slurp(get_dir.path / "set" / "a.bin") == slurp(seed_dir.path / "set" / "a.bin"));
  CHECK(slurp(get_dir.path / "set" / "sub" / "b.bin") == slurp(seed_dir.path / "set" / "sub" / "b.bin"));
  CHECK(seeder.stat(TorrentCore::kMetadataPiecesOut) == 1);
  CHECK(leecher.stat(TorrentCore::kMetadataPiecesIn) == 1);
  // The metainfo file it can write names the same torrent.
  const wire::Bytes file = leecher.torrent_file(t);
  auto back = bt::decode_metainfo(file);
  REQUIRE(std::holds_alternative<bt::Metainfo>(back));
  const auto& dm = std::get<bt::Metainfo>(back);
  share::Sha1Hasher h;
  h.update(file.data() + dm.info_begin, dm.info_end - dm.info_begin);
  CHECK(h.finish() == m.info_hash);
}

TEST_CASE("metadata_in_several_pieces_that_does_not_hash_is_refetched_from_one_peer_and_the_liar_banned") {
  TempDir a_dir, b_dir, get_dir;
  // 2,000 pieces: 40 KB of metadata, three ut_metadata pieces. (No files:
  // only the metadata moves.)
  bt::Metainfo meta;
  meta.name = "big";
  meta.piece_length = 16384;
  Rng rng(7);
  meta.pieces.resize(2000);
  for (auto& p : meta.pieces) rng.fill(p.data(), p.size());
  meta.total_length = meta.piece_length * meta.pieces.size();
  meta.files.push_back(bt::FileEntry{{"big"}, meta.total_length, 0});
  const wire::Bytes info = bt::encode_bencode(bt::info_value(meta));
  REQUIRE(info.size() > 2 * bt::kMetadataPiece);
  share::Sha1Hasher h;
  h.update(info.data(), info.size());
  const bt::Sha1 ih = h.finish();
  wire::Bytes forged = info;  // the same size, one hash changed in its last piece
  forged[forged.size() - 30] ^= 0x55;

  TorrentCore liar(config('B'), 1), honest(config('H'), 2), leecher(config('L'), 3);
  Net net;
  const Endpoint liar_addr{0x7f000001, 1}, honest_addr{0x7f000003, 3}, get_addr{0x7f000002, 2};
  net.add(liar, liar_addr);
  net.add(honest, honest_addr);
  net.add(leecher, get_addr);
  liar.add_torrent(meta, ih, a_dir.path.string(), forged);
  honest.add_torrent(meta, ih, b_dir.path.string());
  net.run(2, [] { return false; });
  bt::Magnet magnet;
  magnet.info_hash = ih;
  const std::size_t t = leecher.add_magnet(magnet, get_dir.path.string(), net.now);
  leecher.add_peer(t, liar_addr, net.now);  // dialled first: asked first when one peer must answer alone
  leecher.add_peer(t, honest_addr, net.now);
  net.run(10, [&] { return leecher.metainfo(t) != nullptr; });
  REQUIRE(leecher.metainfo(t) != nullptr);
  CHECK(leecher.metainfo(t)->piece_count() == 2000);
  CHECK(leecher.metainfo(t)->pieces == meta.pieces);
  // Asked of the liar alone (it answered the extension handshake first), or
  // spread over both (no culprit yet, then the liar alone): banned either way.
  CHECK(leecher.stat(TorrentCore::kMetadataBad) >= 1);
  CHECK(leecher.stat(TorrentCore::kMetadataBad) <= 2);
  CHECK(leecher.stat(TorrentCore::kPeersBanned) == 1);
  CHECK(leecher.torrents()[t].peers == 1);  // the honest one stays
  CHECK(liar.stat(TorrentCore::kMetadataPiecesOut) >= 3);
}

TEST_CASE("hostile_peer_input_is_counted_and_only_that_peer_dropped") {
  TempDir seed_dir;
  const Made m = make_torrent(seed_dir.path, 5);
  TorrentCore seeder(config('S'), 1);
  seeder.add_torrent(m.meta, m.info_hash, seed_dir.path.string());
  Instant now{Duration(0)};
  while (auto a = seeder.poll_action()) {
    if (auto* j = std::get_if<action::FileJob>(&*a)) seeder.handle_file_done(j->job, run_file_job(*j), now);
  }
  REQUIRE(seeder.torrents()[0].have == m.meta.piece_count());
  const std::uint32_t pieces = static_cast<std::uint32_t>(m.meta.piece_count());
  auto handshake = [&](const bt::Sha1& ih, bool extended = false) {
    bt::Handshake h;
    if (extended) h.reserved[5] |= 0x10;
    h.info_hash = ih;
    h.peer_id.fill('p');
    wire::Bytes b;
    bt::encode_handshake(b, h);
    return b;
  };
  struct Case {
    const char* what;
    wire::Bytes after_handshake;
    TorrentCore::Stat stat;
    bool wrong_hash = false;
    bool extended = false;
  };
  auto msg = [](const bt::PeerMessage& p) { return bt::encode_peer_message(p); };
  auto metadata_flood = [&] {
    bt::ExtHandshake eh;
    eh.m.emplace_back("ut_metadata", 3);
    wire::Bytes b = msg(bt::msg_extended(0, bt::encode_ext_handshake(eh)));
    for (int i = 0; i < 100; ++i) {
      bt::MetadataMsg req;
      req.piece = 0;
      const auto r = msg(bt::msg_metadata(2, req));
      b.insert(b.end(), r.begin(), r.end());
    }
    return b;
  };
  const std::vector<Case> cases{
      {"a torrent we do not serve", {}, TorrentCore::kUnknownTorrent, true},
      {"a request over 16 KiB", msg(bt::msg_request(bt::MsgType::Request, 0, 0, 32768)), TorrentCore::kRequestBad},
      {"a request past its piece", msg(bt::msg_request(bt::MsgType::Request, pieces - 1, 16384, 16384)), TorrentCore::kRequestBad},
      {"a request for a piece that does not exist", msg(bt::msg_request(bt::MsgType::Request, pieces, 0, 16384)), TorrentCore::kRequestBad},
      {"a have past the last piece", msg(bt::msg_have(pieces)), TorrentCore::kHaveBad},
      {"a bitfield of the wrong size", msg(bt::msg_bitfield(std::vector<bool>(pieces + 8, true))), TorrentCore::kBitfieldBad},
      {"a huge length", wire::Bytes{0x7f, 0xff, 0xff, 0xff, 7}, TorrentCore::kMessagesMalformed},
      {"a choke with a payload", wire::Bytes{0, 0, 0, 2, 0, 0}, TorrentCore::kMessagesMalformed},
      {"an extension handshake that is not a dictionary", msg(bt::msg_extended(0, bt::Value(std::int64_t{5}))),
       TorrentCore::kExtendedBad, false, true},
      {"a ut_metadata message without a type", msg(bt::msg_extended(2, bt::make_dict({{"piece", std::int64_t{0}}}))),
       TorrentCore::kExtendedBad, false, true},
      {"a flood of metadata requests", metadata_flood(), TorrentCore::kRequestFlood, false, true},
  };
  std::uint64_t conn = 100;
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto before = seeder.stat(c.stat);
    const ConnId id{++conn};
    seeder.handle_connected(id, Endpoint{0x7f000009, 9}, Direction::Inbound, now);
    bt::Sha1 ih = m.info_hash;
    if (c.wrong_hash) ih[0] ^= 1;
    wire::Bytes in = handshake(ih, c.extended);
    in.insert(in.end(), c.after_handshake.begin(), c.after_handshake.end());
    seeder.handle_bytes(id, in, now);
    bool closed = false;
    while (auto a = seeder.poll_action()) {
      if (auto* cl = std::get_if<action::Close>(&*a)) closed = closed || cl->conn == id;
    }
    CHECK(closed);
    CHECK(seeder.stat(c.stat) == before + 1);
  }
  // A request flood: unchoked (interested), then more requests than allowed.
  TorrentConfig small = config('F');
  small.max_queued_requests = 10;
  TorrentCore flood_target(small, 9);
  flood_target.add_torrent(m.meta, m.info_hash, seed_dir.path.string());
  while (auto a = flood_target.poll_action()) {
    if (auto* j = std::get_if<action::FileJob>(&*a)) flood_target.handle_file_done(j->job, run_file_job(*j), now);
  }
  wire::Bytes in = handshake(m.info_hash);
  const auto interested = msg(bt::msg_simple(bt::MsgType::Interested));
  in.insert(in.end(), interested.begin(), interested.end());
  for (int i = 0; i < 12; ++i) {
    const auto r = msg(bt::msg_request(bt::MsgType::Request, 0, 0, 16384));
    in.insert(in.end(), r.begin(), r.end());
  }
  flood_target.handle_connected(ConnId{1}, Endpoint{0x7f000009, 9}, Direction::Inbound, now);
  flood_target.handle_bytes(ConnId{1}, in, now);  // (the first is being sent: none finishes meanwhile)
  CHECK(flood_target.stat(TorrentCore::kRequestFlood) == 1);
}

TEST_CASE("a_peer_that_unchokes_but_sends_nothing_is_snubbed_and_one_that_never_unchokes_is_dropped") {
  TempDir get_dir, seed_dir;
  const Made m = make_torrent(seed_dir.path, 9);
  TorrentConfig cfg = config('L');
  cfg.snub_after = 20s;
  cfg.choked_timeout = 60s;
  TorrentCore leecher(cfg, 1);
  const std::size_t t = leecher.add_torrent(m.meta, m.info_hash, get_dir.path.string());
  Instant now{Duration(1'000'000)};
  // What the leecher sends, per connection, as peer messages (the handshake skipped).
  std::map<std::uint64_t, std::vector<bt::PeerMessage>> sent;
  std::set<std::uint64_t> closed;
  std::vector<ConnId> dialled;
  auto drain = [&] {
    while (auto a = leecher.poll_action()) {
      if (auto* j = std::get_if<action::FileJob>(&*a)) {
        leecher.handle_file_done(j->job, run_file_job(*j), now);
      } else if (auto* c = std::get_if<action::Connect>(&*a)) {
        dialled.push_back(c->conn);
      } else if (auto* s = std::get_if<action::Send>(&*a)) {
        for (auto& msg : peer_messages(*s)) sent[s->conn.value].push_back(std::move(msg));
      } else if (auto* cl = std::get_if<action::Close>(&*a)) {
        closed.insert(cl->conn.value);
      }
    }
  };
  auto count = [&](ConnId c, bt::MsgType type) {
    return std::count_if(sent[c.value].begin(), sent[c.value].end(), [&](const auto& x) { return x.type == type; });
  };
  drain();  // the resume check: nothing on disk
  // Two seeds (fast extension: "have all"); the first never unchokes us, the
  // second unchokes us and then sends nothing.
  const Endpoint stingy_at{0x7f000005, 5}, snubbing_at{0x7f000006, 6};
  leecher.add_peer(t, stingy_at, now);
  leecher.add_peer(t, snubbing_at, now);
  drain();
  REQUIRE(dialled.size() == 2);
  const wire::Bytes greeting = seed_greeting(m.info_hash, 'z');
  const std::map<Endpoint, ConnId> conn_of = {{stingy_at, dialled[0]}, {snubbing_at, dialled[1]}};
  const ConnId stingy = conn_of.at(stingy_at), snubbing = conn_of.at(snubbing_at);
  for (const auto& [at, c] : conn_of) {
    leecher.handle_connected(c, at, Direction::Outbound, now);
    leecher.handle_bytes(c, greeting, now);
  }
  leecher.handle_bytes(snubbing, bt::encode_peer_message(bt::msg_simple(bt::MsgType::Unchoke)), now);
  drain();
  CHECK(count(stingy, bt::MsgType::Interested) == 1);
  CHECK(count(stingy, bt::MsgType::Request) == 0);
  const auto asked = count(snubbing, bt::MsgType::Request);
  CHECK(asked >= 4);
  // Time passes with nothing from either (keep-alives aside).
  const wire::Bytes keepalive{0, 0, 0, 0};
  for (int s = 0; s < 7; ++s) {
    now = now + 10s;
    for (ConnId c : {stingy, snubbing}) {
      if (!closed.count(c.value)) leecher.handle_bytes(c, keepalive, now);
    }
    leecher.handle_timeout(now);
    drain();
    if (s == 2) {
      // Snubbed after 20 s: every request cancelled, then one at a time.
      CHECK(leecher.stat(TorrentCore::kSnubbed) == 1);
      CHECK(count(snubbing, bt::MsgType::Cancel) == asked);
      CHECK(count(snubbing, bt::MsgType::Request) == asked + 1);
      CHECK(leecher.peers(t).size() == 2);
    }
  }
  // Choked for over 60 s while interested, and nothing asked of it: dropped.
  CHECK(leecher.stat(TorrentCore::kNeverUnchoked) == 1);
  CHECK(closed.count(stingy.value) == 1);
  CHECK(closed.count(snubbing.value) == 0);  // slow, not stingy: it stays
  CHECK(leecher.torrents()[t].peers == 1);
}

namespace {

// A 16 MiB single-file torrent in 256 KiB pieces, in memory.
struct BigTorrent {
  static constexpr std::uint64_t kPiece = 256 * 1024, kSize = 16 * 1024 * 1024;
  std::string data;
  bt::Metainfo meta;
  bt::Sha1 ih{};
  BigTorrent() : data(kSize, '\0') {
    Rng rng(21);
    rng.fill(reinterpret_cast<std::uint8_t*>(data.data()), data.size());
    meta.name = "big.bin";
    meta.piece_length = kPiece;
    meta.total_length = kSize;
    meta.files.push_back(bt::FileEntry{{meta.name}, kSize, 0});
    for (std::uint64_t at = 0; at < kSize; at += kPiece) {
      share::Sha1Hasher h;
      h.update(data.data() + at, kPiece);
      meta.pieces.push_back(h.finish());
    }
    ih[0] = 7;
  }
  wire::Bytes block_message(const torrent::Block& b) const {
    const auto* at = reinterpret_cast<const std::uint8_t*>(data.data()) + b.piece * kPiece + b.begin;
    return bt::encode_peer_message(bt::msg_piece(b.piece, b.begin, wire::Bytes(at, at + b.length)));
  }
};

// A leecher of `big` with one seed the test plays: the requests it sends are
// collected with the time they were sent; disk jobs run at once unless held.
struct PlayedSeed {
  const BigTorrent& big;
  TempDir get_dir;
  TorrentCore leecher;
  std::size_t t;
  Instant now{Duration(1'000'000)};
  ConnId seed{};
  std::deque<std::pair<Instant, torrent::Block>> asked;
  bool hold_writes = false;
  std::vector<action::FileJob> held;

  PlayedSeed(const BigTorrent& b, const TorrentConfig& cfg) : big(b), leecher(cfg, 3) {
    t = leecher.add_torrent(big.meta, big.ih, get_dir.path.string());
    drain();
    leecher.add_peer(t, Endpoint{0x7f000002, 2}, now);
    std::vector<ConnId> dialled;
    while (auto a = leecher.poll_action()) {
      if (auto* c = std::get_if<action::Connect>(&*a)) dialled.push_back(c->conn);
    }
    REQUIRE(dialled.size() == 1);
    seed = dialled[0];
    wire::Bytes greeting = seed_greeting(big.ih, 's');
    bt::encode_peer_message(greeting, bt::msg_simple(bt::MsgType::Unchoke));
    leecher.handle_connected(seed, Endpoint{0x7f000002, 2}, Direction::Outbound, now);
    leecher.handle_bytes(seed, greeting, now);
    drain();
  }
  void drain() {
    while (auto a = leecher.poll_action()) {
      if (auto* j = std::get_if<action::FileJob>(&*a)) {
        if (hold_writes && j->op == action::FileJob::Op::Write) {
          held.push_back(std::move(*j));
        } else {
          leecher.handle_file_done(j->job, run_file_job(*j), now);
        }
      } else if (auto* s = std::get_if<action::Send>(&*a)) {
        for (const auto& m : peer_messages(*s)) {
          if (m.type == bt::MsgType::Request) asked.emplace_back(now, torrent::Block{m.index, m.begin, m.length});
        }
      }
    }
  }
  // Answers the oldest request.
  void answer() {
    const torrent::Block b = asked.front().second;
    asked.pop_front();
    leecher.handle_bytes(seed, big.block_message(b), now);
  }
  bool complete() const { return leecher.torrents()[t].have == big.meta.piece_count(); }
};

}  // namespace

// One seed played by the test over a link with a fixed delay and rate: the
// leecher's pipeline must keep the link busy (the transfer takes about what
// the link allows) while asking no more than twice the bandwidth-delay
// product ahead (a second's worth would be the 512-block cap at these rates).
TEST_CASE("the_request_pipeline_fills_the_link_and_stays_near_twice_its_bandwidth_delay_product") {
  const BigTorrent big;
  struct Link {
    int delay_ms;            // request to block, nothing queued
    int blocks_per_10ms;     // the rate
  };
  for (const Link link : {Link{20, 10}, Link{100, 3}, Link{1, 40}}) {
    CAPTURE(link.delay_ms);
    CAPTURE(link.blocks_per_10ms);
    PlayedSeed s(big, config('P'));
    const Instant start = s.now;
    // The seed sends a request's block `delay` after it was asked, and no
    // more than the rate allows (a queue behind it otherwise).
    const std::uint64_t blocks = BigTorrent::kSize / bt::kBlockSize;
    std::uint64_t sent = 0;
    std::size_t most_ahead = 0;  // requests out, in the middle half of the transfer
    int budget = 0;
    while (!s.complete() && s.now - start < 60s) {
      s.now = s.now + 1ms;
      if ((s.now - start).count() % 10 == 0) budget = link.blocks_per_10ms;
      while (budget > 0 && !s.asked.empty() && s.now - s.asked.front().first >= Duration(link.delay_ms)) {
        s.answer();
        --budget;
        ++sent;
      }
      if ((s.now - start).count() % 100 == 0) s.leecher.handle_timeout(s.now);
      s.drain();
      if (sent > blocks / 4 && sent < blocks * 3 / 4) most_ahead = std::max(most_ahead, s.asked.size());
    }
    REQUIRE(s.complete());
    CHECK(slurp(s.get_dir.path / "big.bin") == big.data);
    // The link's own time: every block at its rate, plus one delay.
    const double ideal_ms = static_cast<double>(blocks) * 10.0 / link.blocks_per_10ms + link.delay_ms;
    const double took_ms = static_cast<double>((s.now - start).count());
    CHECK(took_ms < ideal_ms * 1.15);
    const double bdp_blocks = link.blocks_per_10ms / 10.0 * std::max(link.delay_ms, 1);
    CHECK(static_cast<double>(most_ahead) >= bdp_blocks);
    CHECK(static_cast<double>(most_ahead) <= 2 * bdp_blocks + 4 + 10);  // (+ min_pipeline, and a window's growth)
  }
}

// A disk slower than the network: whole pieces wait for their write in
// memory; past max_unwritten bytes of them no block is asked for until the
// disk catches up, so memory stays bounded however slow the disk is.
TEST_CASE("requests_stop_while_the_disk_is_behind_and_resume_when_it_catches_up") {
  const BigTorrent big;
  TorrentConfig cfg = config('D');
  cfg.max_unwritten = 4 * BigTorrent::kPiece;
  PlayedSeed s(big, cfg);
  s.hold_writes = true;
  // The seed answers everything at once; the writes never finish.
  for (int i = 0; i < 5000 && !s.asked.empty(); ++i) {
    s.answer();
    s.drain();
  }
  CHECK(s.asked.empty());  // nothing more asked
  CHECK(s.held.size() == 4);  // four whole pieces wait, no more
  CHECK(s.leecher.stat(TorrentCore::kDiskBehind) >= 1);
  // The disk catches up: the requests go on, and the file completes.
  for (int round = 0; round < 1000 && !s.complete(); ++round) {
    for (auto& j : std::exchange(s.held, {})) s.leecher.handle_file_done(j.job, run_file_job(j), s.now);
    s.drain();
    CHECK(s.held.size() <= 4);
    while (!s.asked.empty()) {
      s.answer();
      s.drain();
    }
  }
  CHECK(s.complete());
  CHECK(slurp(s.get_dir.path / "big.bin") == big.data);
}
