// BitTorrent on the one core interface (servent/core/core.hpp): the peer
// wire of wire/bt over connections the Driver hands us (inbound ones sniffed
// by "\x13BitTorrent protocol", outbound ones we dial), pieces chosen by
// PiecePicker, uploads decided by choke(), every disk access a FileJob or a
// SendFile the Driver runs off the loop.
//
// Per torrent: on add, every piece whose files exist is hashed (Hash jobs,
// the resume check); then pieces we lack are requested in 16 KiB blocks,
// a pipeline per peer sized to twice its bandwidth-delay product (the rate
// it delivers times the shortest request-to-block time seen, at least 1 ms;
// a second's worth until the first block is timed; 4..512 blocks): enough to
// keep the link busy, and no more, since blocks asked for ahead sit in piece
// buffers that fall out of the cache before they are hashed. Blocks are
// kept in memory until the piece is whole, written with a
// Write job that checks the piece's SHA-1 first; a piece that does not hash
// bans every peer that sent part of it. Uploads go out with SendFile (the
// piece message's 13-byte head, then the block straight from the file), one
// at a time per connection; other messages to that peer wait behind it so
// the stream stays whole.
//
// Metadata (BEP 10 extension protocol, BEP 9 ut_metadata): every torrent's
// exact info dictionary is served in 16 KiB pieces to peers that ask; a
// torrent added from a magnet link has none until peers send it: pieces are
// asked of every peer that offers the metadata (one piece from one peer at a
// time, re-asked elsewhere on a reject or a close), the whole checked against
// the info-hash, then decoded like a metainfo file; only then are pieces
// checked on disk and fetched. What peers say they have before that is kept
// (bounded) and applied once the piece count is known. After metadata that
// does not hash, it is fetched whole from one peer at a time, and a peer whose
// metadata alone fails is banned.
//
// Slow or stingy peers: one that unchoked us but sent no block for
// snub_after is snubbed (its requests cancelled and handed to others, one
// request at a time to it until it delivers; the choker does not reward it);
// one that keeps us choked for choked_timeout while we want its pieces, with
// nothing going to it either, is dropped so that its slot goes to another.
//
// Misbehaviour (counted, the peer dropped, the rest of the swarm unaffected):
// a handshake for a torrent we do not serve, a malformed or oversized
// message, a bitfield of the wrong size or with spare bits, a have beyond
// the last piece, a request outside its piece or over 16 KiB, more than
// max_queued_requests requests waiting, a block we did not ask for.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "servent/core/core.hpp"
#include "servent/torrent/choker.hpp"
#include "servent/torrent/picker.hpp"
#include "wire/bt/metainfo.hpp"
#include "wire/bt/peer.hpp"
#include "wire/bt/tracker.hpp"

namespace sv {

struct TorrentConfig {
  wire::bt::PeerId peer_id{};               // ours ("-SV0100-" + random)
  std::uint16_t listen_port = 0;            // announced to trackers and peers
  std::uint32_t listen_ip = 0;              // (to skip ourselves in a tracker's list)
  std::size_t unchoke_slots = 4;
  Duration choke_interval = 10s;
  int optimistic_every = 3;                 // choke rounds (30 s)
  std::size_t min_pipeline = 4, max_pipeline = 512;
  std::size_t max_queued_requests = 2000;   // a peer's requests waiting for us
  // Whole pieces waiting for the disk (all torrents): above this no block is
  // asked for until writes catch up (memory stays bounded on a slow disk).
  std::uint64_t max_unwritten = 16 * 1024 * 1024;
  std::size_t max_peers_per_torrent = 80;
  Duration keepalive = 120s;
  Duration peer_timeout = 240s;             // silent this long: dropped
  Duration snub_after = 60s;               // unchoked us, our requests out, no block: its requests go elsewhere
  Duration choked_timeout = 300s;           // we want its pieces, it chokes us, nothing flows either way: dropped
};

class TorrentCore final : public Core {
 public:
  enum Stat : std::size_t {
    kPeersIn,
    kPeersOut,
    kHandshakeBad,
    kUnknownTorrent,
    kMessagesMalformed,
    kBitfieldBad,
    kHaveBad,
    kRequestBad,
    kRequestFlood,
    kBlockUnasked,
    kBlocksIn,
    kBlocksOut,
    kBytesIn,
    kBytesOut,
    kPiecesPassed,
    kPiecesFailed,
    kPeersBanned,
    kDiskErrors,
    kTimeouts,
    kAnnounces,
    kAnnounceErrors,
    kMetadataPiecesOut,
    kMetadataPiecesIn,
    kMetadataBad,
    kExtendedBad,
    kSnubbed,
    kNeverUnchoked,
    kBuffersReused,  // piece buffers taken from spare_ (not allocated and zero-filled)
    kDiskBehind,     // times requests were held back: max_unwritten bytes waiting for the disk
    kStatCount
  };

  TorrentCore(TorrentConfig config, std::uint64_t seed);

  // A torrent to serve and fetch; files under `root` (created as needed when
  // not all pieces are there). Returns its index. Pieces are checked first.
  // `info` is the info dictionary exactly as in the metainfo file (served to
  // peers that ask for the metadata); when empty it is re-encoded from `m`,
  // and served only if that hashes to `info_hash`.
  std::size_t add_torrent(const wire::bt::Metainfo& m, const wire::bt::Sha1& info_hash, const std::string& root,
                          wire::Bytes info = {});
  // A torrent known by its info-hash only (a magnet link: its name, trackers
  // and x.pe peers are used): the metadata comes from peers first.
  std::size_t add_magnet(const wire::bt::Magnet& magnet, const std::string& root, Instant now);
  // The metainfo once known (added with it, or fetched); null before.
  const wire::bt::Metainfo* metainfo(std::size_t torrent) const;
  // A metainfo file for it (the exact info dictionary, our trackers), empty
  // while the metadata is unknown.
  wire::Bytes torrent_file(std::size_t torrent) const;
  // Where we listen (announced to trackers; a tracker's list naming it is us).
  void set_listen(Endpoint e) {
    config_.listen_port = e.port;
    config_.listen_ip = e.ip;
  }
  // A UDP socket of ours for udp:// trackers (BEP 15).
  void set_udp_socket(SocketId s) { udp_ = s; }
  // Trackers as well as (or instead of) the metainfo's.
  void add_tracker(std::size_t torrent, const std::string& url);
  // Dial a peer for a torrent.
  void add_peer(std::size_t torrent, Endpoint peer, Instant now);
  // Tells every tracker we announced to that we leave (event=stopped, BEP 3);
  // announcing() stays true until they have answered (or given up).
  void announce_stopped(Instant now);
  bool announcing() const { return !tracker_conns_.empty() || !udp_pending_.empty(); }

  struct TorrentInfo {
    wire::bt::Sha1 info_hash;
    std::string name;
    std::uint32_t pieces, have;
    bool checking;  // resume check still running
    bool metadata;  // known (false while a magnet link's metadata is fetched)
    std::size_t peers;
    std::uint64_t downloaded, uploaded;
    std::uint64_t size;        // bytes in all (0 while unknown)
    std::uint64_t have_bytes;  // in the pieces we have
    std::uint64_t down_rate, up_rate;  // bytes/s over the last choke interval, all peers
  };
  std::vector<TorrentInfo> torrents() const;
  // Its peers as the choker sees them (rates over the last choke interval).
  struct PeerInfo {
    Endpoint remote;
    Direction dir;
    std::string client;  // its BEP 10 "v", when it sent one
    bool am_choking, am_interested, peer_choking, peer_interested;
    bool snubbed;  // we want its pieces, it unchoked us, and nothing came for a while
    std::uint32_t pieces;  // it has
    std::uint64_t down_rate, up_rate, downloaded, uploaded;
  };
  std::vector<PeerInfo> peers(std::size_t torrent) const;
  bool has_info_hash(const wire::bt::Sha1& h) const;
  bool complete(std::size_t torrent) const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }
  std::vector<Counter> counters() const;

  void handle_connected(ConnId conn, Endpoint remote, Direction dir, Instant now) override;
  void handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) override;
  void handle_closed(ConnId conn, CloseReason reason, Instant now) override;
  void handle_send_done(ConnId conn, bool ok, Instant now) override;
  void handle_file_done(JobId job, const FileResult& result, Instant now) override;
  void handle_datagram(SocketId socket, Endpoint from, wire::ByteView bytes, Instant now) override;
  void handle_timeout(Instant now) override;
  std::optional<Action> poll_action() override { return take_front(actions_); }
  std::optional<Instant> poll_timeout() const override;

 private:
  struct Peer {
    ConnId id;
    Endpoint remote;
    Direction dir;
    std::optional<std::size_t> torrent;  // known once the handshake named it
    bool handshake_in = false, handshake_out = false;
    bool fast = false;
    bool extended = false;                       // BEP 10 bit set in its handshake
    std::uint8_t ut_metadata = 0;                // its id for ut_metadata (BEP 10 "m"), 0: none
    std::int64_t metadata_size = 0;              // what it said ("metadata_size"), 0: unknown
    std::string client;                          // its BEP 10 "v" 
    bool metadata_refused = false;               // it rejected a metadata request
    std::size_t metadata_requests = 0;           // it asked us
    std::vector<wire::bt::PeerMessage> early;    // have/bitfield before we knew the piece count
    wire::Bytes inbuf;
    std::vector<bool> has;
    bool am_choking = true, am_interested = false;
    bool peer_choking = true, peer_interested = false;
    std::vector<torrent::Block> requested;       // ours, in flight
    std::deque<torrent::Block> their_requests;   // theirs, waiting
    bool sending_file = false;                   // a SendFile in flight: other sends wait
    std::vector<SharedBuffer> held;              // ... here
    std::deque<action::SendFile> file_parts;     // the rest of a block that spans files
    bool greeted = false;                        // our bitfield went out
    Instant window_start;                        // pipeline sizing: bytes since window_start
    std::uint64_t window_bytes = 0;
    std::optional<torrent::Block> probe;         // one request timed at a time
    Instant probe_at;
    std::optional<Duration> min_rtt;             // the shortest request-to-block time seen
    std::uint64_t down_bytes = 0, up_bytes = 0;  // this choke interval
    std::uint64_t down_rate = 0, up_rate = 0;    // bytes/s, last interval
    std::uint64_t total_down = 0, total_up = 0;
    Instant since, last_in, last_out, last_block;
    Instant choked_since;  // since when we have wanted its pieces and been choked
    std::size_t pipeline = 4;
  };
  struct Torrent {
    wire::bt::Metainfo meta;
    bool has_meta = false;
    wire::Bytes info;  // the info dictionary's exact bytes (served by ut_metadata)
    // A magnet link's metadata being fetched: its size (the first a peer
    // announced), the bytes so far, per 16 KiB piece who was asked (0: nobody,
    // kGot: arrived), and who sent any of it.
    struct Fetch {
      std::uint64_t size = 0;
      wire::Bytes bytes;
      std::vector<std::uint64_t> asked;
      std::vector<std::uint64_t> senders;
      bool one_peer = false;  // after metadata that did not hash: all of it from one peer
    } fetch;
    wire::bt::Sha1 info_hash;
    std::string root;
    std::vector<std::string> paths;  // per file
    std::unique_ptr<torrent::PiecePicker> picker;
    std::size_t checking = 0;        // hash jobs still out
    std::map<std::uint32_t, wire::Bytes> buffers;              // pieces being received
    std::map<std::uint32_t, std::vector<Endpoint>> senders;    // who sent part of them
    std::vector<Endpoint> banned;
    std::uint64_t downloaded = 0, uploaded = 0;
    std::optional<std::uint64_t> optimistic;
    int choke_round = 0;
    // Trackers (http:// with an IPv4 address or localhost), announced to
    // once the resume check is done, then every interval they ask for.
    std::vector<std::string> trackers;
    // Peers to dial (given, or from trackers), retried with backoff.
    struct Known {
      Instant next;
      Duration backoff{};
      bool live = false;  // a connection to it is up or being made
    };
    std::map<Endpoint, Known> known;
    Instant next_announce{};
    bool announced_started = false, announced_completed = false;
  };
  struct TrackerConn {
    std::size_t torrent;
    std::string request;
    wire::Bytes response;
  };
  struct Job {
    std::size_t torrent;
    std::uint32_t piece;
    bool check;  // a resume check (else a write)
    std::shared_ptr<Buffer> data = nullptr;  // a write's bytes: back to spare_ when the pool is done with them
  };

  Peer* find(ConnId id);
  bool snubbed(const Peer& p, Instant now) const;
  void send(Peer& p, const wire::bt::PeerMessage& m);
  void send_raw(Peer& p, SharedBuffer b);
  void drop(Peer& p, CloseReason reason, Stat stat);
  void on_handshake(Peer& p, const wire::bt::Handshake& h, Instant now);
  void send_handshake(Peer& p);
  void after_handshake(Peer& p, Instant now);
  void on_message(Peer& p, const wire::bt::PeerMessage& m, Instant now);
  void on_piece(Peer& p, std::uint32_t index, std::uint32_t begin, wire::ByteView data, Instant now);
  void update_interest(Peer& p);
  void fill_requests(Peer& p);
  void unrequest(Peer& p, const torrent::Block& b);  // no longer in flight (arrived, rejected, cancelled)
  void resize_pipeline(Peer& p, Instant now);
  void serve(Peer& p);
  void piece_done(Torrent& t, std::uint32_t piece);
  std::vector<action::FileRange> ranges(const Torrent& t, std::uint64_t offset, std::uint64_t length) const;
  void run_choker(std::size_t torrent, Instant now);
  void start_checks(std::size_t torrent);
  void init_storage(Torrent& t);
  void on_extended(Peer& p, const wire::bt::PeerMessage& m, Instant now);
  void send_ext_handshake(Peer& p);
  void ask_metadata(std::size_t torrent);
  void metadata_piece(Peer& p, const wire::bt::MetadataMsg& m, Instant now);
  void install_metadata(std::size_t torrent, Instant now);
  void forget_metadata_asks(Peer& p);
  std::size_t peer_count(std::size_t torrent) const;

  TorrentConfig config_;
  Rng rng_;
  std::vector<std::unique_ptr<Torrent>> torrents_;
  std::unordered_map<std::uint64_t, Peer> peers_;
  std::unordered_map<std::uint64_t, Job> jobs_;
  // Piece buffers the disk is done with, reused for the next pieces (a fresh
  // 256 KiB buffer is zero-filled and page-faulted in each time).
  std::vector<Buffer> spare_;
  std::uint64_t unwritten_ = 0;  // bytes of pieces handed to Write jobs not yet done
  bool disk_behind_ = false;     // requests held back for it
  std::unordered_map<std::uint64_t, std::size_t> dialling_;  // our connects -> torrent
  std::unordered_map<std::uint64_t, TrackerConn> tracker_conns_;
  void announce(std::size_t torrent, wire::bt::AnnounceEvent event, Instant now);
  void dial_due(std::size_t torrent, Instant now);
  void dial_ended(std::uint64_t conn, Instant now);
  std::unordered_map<std::uint64_t, Endpoint> dial_ep_;  // our peer connects -> address
  // UDP tracker exchanges in flight, by transaction id: connect, then announce;
  // resent after 15 s, given up after the third try.
  struct UdpAnnounce {
    std::size_t torrent;
    Endpoint tracker;
    wire::bt::Announce announce;
    bool connected = false;
    std::uint64_t connection_id = 0;
    Instant deadline;
    int tries = 0;
  };
  std::unordered_map<std::uint32_t, UdpAnnounce> udp_pending_;
  SocketId udp_{};
  void udp_send(std::uint32_t txn, UdpAnnounce& u, Instant now);
  void tracker_reply(const TrackerConn& tc, Instant now);
  void peers_from_tracker(std::size_t torrent, const wire::bt::AnnounceReply& reply, Instant now);
  std::uint64_t next_job_ = 1, next_conn_ = 1;
  std::deque<Action> actions_;
  Instant next_choke_{}, now_{};
  bool started_ = false;
  std::array<std::uint64_t, kStatCount> stats_{};
};

}  // namespace sv
