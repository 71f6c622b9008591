// A BitTorrent tracker on the one core interface: HTTP announce and scrape
// (BEP 3, BEP 23 compact peers, BEP 48 scrape) on TCP, and the UDP tracker
// protocol (BEP 15) on a UDP socket, for any info-hash (no whitelist).
//
// Swarms live in memory: each peer by (info-hash, peer id) with its address
// (the connection's source address; a client's own "ip" is not trusted),
// port, bytes left and when it last announced; a peer silent for two
// intervals is forgotten; "stopped" removes it at once. An announce answers
// up to numwant (at most 200) other peers, seeds last for a seed.
// UDP connection ids are random, valid for 2 minutes (BEP 15).
//
// Bad input (counted): HTTP that does not parse or a request over the limit
// (400, closed), an announce without info_hash / peer_id / port (a bencoded
// "failure reason"), UDP packets that decode to nothing or name an unknown
// connection id (answered with an error packet where BEP 15 says so).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <unordered_map>

#include "http/request_parser.hpp"
#include "servent/core/core.hpp"
#include "wire/bt/tracker.hpp"

namespace sv {

struct TrackerConfig {
  std::uint32_t interval = 1800;  // seconds, as announced
  std::uint32_t min_interval = 0;
  std::size_t max_numwant = 200;
  std::size_t max_peers_per_swarm = 100000;
  std::size_t max_swarms = 100000;
};

class TrackerCore final : public Core {
 public:
  enum Stat : std::size_t {
    kHttpAnnounces,
    kHttpScrapes,
    kHttpBad,
    kUdpConnects,
    kUdpAnnounces,
    kUdpScrapes,
    kUdpBad,
    kUdpUnknownConnection,
    kAnnounceBad,
    kSwarmFull,
    kStatCount
  };
  TrackerCore(TrackerConfig config, std::uint64_t seed);
  void set_udp_socket(SocketId s) { udp_ = s; }

  std::size_t swarms() const { return swarms_.size(); }
  std::size_t peers(const wire::bt::Sha1& info_hash) const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }
  std::vector<Counter> counters() const;

  void handle_connected(ConnId conn, Endpoint remote, Direction dir, Instant now) override;
  void handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) override;
  void handle_closed(ConnId conn, CloseReason reason, Instant now) override;
  void handle_datagram(SocketId socket, Endpoint from, wire::ByteView bytes, Instant now) override;
  void handle_timeout(Instant now) override;
  std::optional<Action> poll_action() override { return take_front(actions_); }
  std::optional<Instant> poll_timeout() const override;

 private:
  struct PeerEntry {
    wire::bt::PeerAddr addr;
    std::uint64_t left = 0;
    Instant seen;
  };
  struct Swarm {
    std::map<wire::bt::PeerId, PeerEntry> peers;
    std::uint32_t downloaded = 0;  // "completed" events
  };
  struct HttpConn {
    Endpoint remote;
    std::unique_ptr<http::RequestParser> parser;
  };
  // Registers the announce; fills `reply` with others, counts.
  void announce(const wire::bt::Announce& a, std::uint32_t ip, Instant now, wire::bt::AnnounceReply& reply);
  wire::bt::ScrapeEntry scrape_one(const wire::bt::Sha1& ih) const;
  void respond(ConnId conn, int status, std::string_view reason, const wire::Bytes& body);
  void on_request(ConnId conn, const http::Request& req, Instant now);

  TrackerConfig config_;
  Rng rng_;
  SocketId udp_{};
  std::map<wire::bt::Sha1, Swarm> swarms_;
  std::unordered_map<std::uint64_t, HttpConn> conns_;
  std::unordered_map<std::uint64_t, Instant> connection_ids_;  // UDP, -> issued at
  std::deque<Action> actions_;
  Instant next_sweep_{};
  bool started_ = false;
  std::array<std::uint64_t, kStatCount> stats_{};
};

}  // namespace sv
