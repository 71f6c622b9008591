// GnutellaCore: a Gnutella 0.4 servent (with the 0.6 handshake) as a sans-I/O
// state machine. It is fed connection events and bytes with the current time
// and answers with Actions (send, close, connect) and Events (for the UI).
//
// What it does (0.4 spec §"Descriptor Routing", 0.6 draft §2-3, Ultrapeers
// 1.0, QRP 0.1):
//  - handshakes: accepts 0.4 and 0.6; connects with 0.6 and falls back to 0.4
//    when a peer does not answer 0.6; sends User-Agent, X-Ultrapeer and the
//    query-routing headers;
//  - roles (Ultrapeers 1.0 §3): as a leaf it keeps `leaf_ultrapeers` links to
//    ultrapeers, relays nothing and refuses other connections ("503 Shielded
//    leaf node"); as an ultrapeer it holds up to `max_leaves` leaves and
//    `max_ultrapeers` ultrapeer (or flat 0.4) links and answers 503 with
//    X-Try-Ultrapeers when full. `auto` starts as a leaf and becomes an
//    ultrapeer when a node wants it as one and it has no ultrapeer of its own,
//    or when it has been up, reachable and fast enough while leaves went
//    without ultrapeers; it becomes a leaf again after demote_idle without
//    leaves; one change per role_hold at most;
//  - reputation (reputation.hpp) of every peer, from what we saw: a leaf
//    dials ultrapeers first, the best reputed first;
//  - QRP (§"Query Routing"): a leaf sends its table on connect and a patch
//    when its library changes; an ultrapeer keeps each leaf's table, sends a
//    leaf only the queries its table matches, and sends its ultrapeer
//    neighbours its own table merged with its leaves' (last-hop QRP: a query
//    whose last hop is that neighbour goes only when the table matches);
//  - dynamic querying (see dynamic_query.hpp): an ultrapeer sends a leaf's
//    query (and its own) to its ultrapeer neighbours step by step until
//    enough results came back; a leaf says how many it has when asked
//    (Query-Status, BEAR/11 and BEAR/12); Messages-Supported is sent on
//    every 0.6 link, Features-Supported and HSEP are read;
//  - answers Pings with a Pong for itself and Queries that match the library
//    with QueryHits (split across several descriptors when needed);
//  - floods Ping/Query to every other connection with TTL-1/Hops+1, drops
//    duplicates (bounded, expiring DescriptorID cache), clamps TTL+Hops to
//    max_ttl;
//  - routes Pong/QueryHit back only on the reverse path and Push by
//    ServentID along the QueryHit path; drops unroutable replies;
//  - every drop and close has a named counter.
#pragma once

#include <array>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "servent/core/core.hpp"
#include "servent/core/expiring_map.hpp"
#include "servent/core/types.hpp"
#include "servent/gnutella/dynamic_query.hpp"
#include "servent/gnutella/host_cache.hpp"
#include "servent/gnutella/qrp_route.hpp"
#include "servent/gnutella/reputation.hpp"
#include "share/library.hpp"
#include "wire/gnutella/descriptors.hpp"
#include "wire/gnutella/framer.hpp"
#include "wire/common/zlib_stream.hpp"
#include "wire/gnutella/handshake.hpp"
#include "wire/gnutella/qrp.hpp"
#include "wire/gnutella/vendor.hpp"

namespace sv {

namespace gn = wire::gnutella;

// What `servent run --mode` asks for.
enum class NodeMode : std::uint8_t { Leaf, Ultrapeer, Auto };
// What the node is now.
enum class Role : std::uint8_t { Leaf, Ultrapeer };
std::string_view to_string(Role r);

struct GnutellaConfig {
  std::uint8_t max_ttl = 7;                 // TTL+Hops cap
  std::uint8_t default_ttl = 7;             // for our own Pings/Queries
  std::uint32_t max_payload = gn::kDefaultMaxPayload;
  std::size_t max_connections = 64;         // Gnutella links of every kind together
  std::size_t route_capacity = 200'000;     // per routing table
  Duration route_ttl = 10min;
  Duration handshake_timeout = 10s;
  Duration reconnect_min = 1s;
  Duration reconnect_max = 60s;
  // A host from the cache that answered 503 (no room for us) rests this long
  // before we ask it again, unless a fresher word (a Pong's GGEP UP) says it
  // has room; the next candidate is tried meanwhile. A leaf without any
  // ultrapeer, all it knows resting, asks the one rested longest again
  // every tenth of it (a refusal names ultrapeers with room, and it has no
  // link to hear of them otherwise).
  Duration busy_rest = 5min;
  std::string user_agent = "servent/0.1";
  NodeMode mode = NodeMode::Auto;
  std::size_t max_leaves = 30;              // as an ultrapeer
  std::size_t max_ultrapeers = 32;          // ultrapeer (and flat 0.4) links, as an ultrapeer
  std::size_t leaf_ultrapeers = 3;          // ultrapeers a leaf keeps
  // Our QRP table: 2^qrp_bits slots, "absent" is qrp_infinity (LimeWire's
  // 65,536 slots and 7). Tables peers send may be up to qrp_max_slots.
  int qrp_bits = 16;
  std::uint8_t qrp_infinity = 7;
  std::uint32_t qrp_max_slots = 1u << 20;
  Duration qrp_check_interval = 5s;         // library changed: send a patch
  // HSEP 0.2 (X-Features: HSEP/0.2): our horizon to each peer that reads it,
  // when it changed, at most this often (gtk-gnutella: every 30 s).
  Duration hsep_interval = 30s;
  // A peer resetting its table more often than this (beyond qrp_fast_resets
  // times) is closed: each reset costs us the whole table again.
  Duration qrp_min_reset_interval = 10s;
  std::size_t qrp_fast_resets = 3;
  Duration role_hold = 10min;               // at most one role change in this time
  // Auto mode's election (checked every election_interval): promote when up
  // for promote_uptime, reachable (an inbound connection came), speed_kbps
  // at least promote_min_kbps, room for leaves, and leaves need ultrapeers
  // (for two checks running: no ultrapeer found, or fewer than we want, each
  // one we have nearly full (by its X-Ultrapeer-Needed and the free leaf
  // slots in its Pongs) and lately no room found elsewhere: a 503, or one
  // nearly full we left to leaves that have none), with a chance of
  // promote_chance per check so that not every candidate jumps at once;
  // demote after demote_idle with at most a tenth of the leaf slots used.
  // The checks are frequent: under churn (10 % of the nodes replaced a
  // minute) a minute's delay is a tenth of the ultrapeers missing; the
  // hysteresis is role_hold, not the interval.
  Duration election_interval = 10s;
  Duration promote_uptime = 3min;
  std::uint32_t promote_min_kbps = 256;
  double promote_chance = 0.3;
  // Also promote a leaf that has some ultrapeers, all full, fewer than it
  // wants (off: only a leaf that finds none at all is a candidate).
  bool promote_when_short = true;
  Duration demote_idle = 10min;
  bool dynamic_querying = true;             // as an ultrapeer; else leaf queries flood with their TTL
  DqConfig dq;
  Endpoint advertised;                      // our address in Pongs/QueryHits
  std::uint32_t speed_kbps = 1000;          // QueryHit speed field
  std::size_t max_results_per_query = 64;
  std::size_t max_hit_payload = 4000;       // split QueryHits above this
  std::size_t max_results_per_hit = 32;
  bool firewalled = false;                  // push flag in our QueryHits
  bool compress = true;                     // offer/accept deflate link compression
  std::size_t max_hits_per_search = 1000;   // results kept for one of our queries
  // An identical query of ours (same text, or same urn:sha1) goes to a link
  // at most once in this time: gtk-gnutella's node_requery_threshold, after
  // which an ultrapeer drops a leaf's repeated query as throttled.
  Duration requery_threshold = 1700s;
  double max_inflate_ratio = 250;           // a deflated link expanding more is a bomb
  std::size_t min_peers = 0;                // connect to cached hosts while below this
  Duration ping_interval = 60s;             // refresh of the pong cache
  std::size_t pong_cache_size = 64;
  Duration pong_cache_ttl = 90s;
  std::size_t pongs_per_ping = 10;          // cached pongs sent in answer to one Ping
  // Queries accepted from one connection: a token bucket of `query_burst`
  // refilled at `query_rate` per second; the rest are dropped and counted.
  double query_rate = 50;
  double query_burst = 200;
};

namespace event {
struct PeerUp {
  ConnId conn;
  Endpoint remote;
  Direction dir;
  int version_minor;  // 4 or 6
  std::string user_agent;
};
struct RoleChanged {
  Role role;
};
struct PeerDown {
  ConnId conn;
  Endpoint remote;
  CloseReason reason;
  std::string detail;  // the peer's Bye message, when it sent one
};
// A QueryHit for a Query we originated.
struct Hit {
  gn::Guid query;
  Endpoint source;  // host:port from the QueryHit
  std::uint32_t speed;
  gn::ServentId servent_id;
  gn::HitResult result;
  bool push;        // the source says it is firewalled
};
// A Push naming our ServentID (someone wants a file from us).
struct PushRequest {
  gn::Push push;
};
}  // namespace event
using Event = std::variant<event::PeerUp, event::PeerDown, event::Hit, event::PushRequest, event::RoleChanged>;

struct Search {
  std::string criteria;
  std::uint8_t ttl = 7;
  wire::Bytes extensions;
};

// What GnutellaCore::search did.
struct SearchSent {
  gn::Guid guid;             // the query's DescriptorID (a repeat keeps the first one's)
  std::size_t links = 0;     // links it went out on now
  std::size_t held_back = 0; // links that carried the identical query less than requery_threshold ago
  bool repeat = false;       // the identical query went out before, within the threshold
  Instant full_requery_at;   // from then on every link may carry it again
};

class GnutellaCore final : public Core {
 public:
  enum Stat : std::size_t {
    kDescriptorsIn,
    kDescriptorsOut,
    kPingsIn,
    kPongsIn,
    kQueriesIn,
    kHitsIn,
    kPushesIn,
    kByesIn,
    kOtherIn,
    kDropBadGgep,
    kDropHitsOverCap,
    kByesSent,
    kCloseDeflateError,
    kCloseDeflateBomb,
    kLinksCompressedIn,
    kLinksCompressedOut,
    kPongsFromCache,
    kPingsNotFlooded,
    kHostsLearned,
    kCacheConnects,
    kDropDuplicate,
    kDropTtlZero,
    kDropHopsExceeded,
    kTtlClamped,
    kDropPongUnroutable,
    kDropHitUnroutable,
    kDropPushUnroutable,
    kDropTtlExpired,
    kDropQueryRate,
    kQueriesAnswered,
    kHitsSent,
    kPongsSent,
    kForwarded,
    kPushForUs,
    kPushesSent,
    kCloseHandshakeMalformed,
    kCloseHandshakeRefused,
    kCloseHandshakeTimeout,
    kCloseFull,
    kClosePayloadTooLarge,
    kClosePayloadMalformed,
    kCloseBye,
    kClosePeer,
    kConnectAttempts,
    kConnectFallback04,
    kHandshakes04,
    kHandshakes06,
    kPongsWithheld,  // a Ping answered without our own Pong: we have no listener to offer
    kQueriesHeldBack,  // links an own repeated query was not sent on (requery_threshold)
    kRefusedShielded,       // we are a leaf: "503 Shielded leaf node"
    kRefusedLeavesFull,     // an ultrapeer with max_leaves leaves
    kRefusedUltrapeersFull, // an ultrapeer with max_ultrapeers ultrapeer links
    kCloseLeafToLeaf,       // we are a leaf and the peer answered as one
    kCloseEnoughUltrapeers, // a leaf that already has leaf_ultrapeers
    kCloseRoleLie,          // a peer changed its role in its final response
    kDropRelayedByLeaf,     // a leaf sent a descriptor it did not originate
    kRoleChanges,
    kQrpIn,
    kQrpTablesIn,           // complete tables (RESET + PATCH sequence) received
    kQrpIgnored,            // from a link that has no business sending one
    kQrpSent,
    kCloseQrpMalformed,
    kCloseQrpError,         // a RESET/PATCH the table refused (sequence, size, data)
    kCloseQrpResets,        // reset too often
    kQueriesToLeaves,
    kQueriesQrpFiltered,    // not sent to a leaf (or last-hop ultrapeer) whose table does not match
    kVendorIn,
    kDropVendorMalformed,   // too short, or a list whose length is not what its count says
    kHsepIn,
    kDropHsepMalformed,     // not whole triples, a first hop of other than one node, or hops that shrink
    kHsepSent,
    kQueryStatusRequests,   // asked a leaf how many results it has (BEAR/11)
    kQueryStatusAnswers,    // told our ultrapeer (BEAR/12)
    kQueryStatusIn,
    kDqStarted,
    kDqSends,               // a dynamic query sent on one link
    kDqSatisfied,           // ended with the wanted results
    kDqExhausted,           // ended with every link used
    kDqTimedOut,
    kDqStopped,             // the leaf said stop, or went away
    kPromotions,
    kPromotionsBootstrap,   // of which: asked by a leaf with no ultrapeer known (auto)
    kConnectBacksAsked,     // as a leaf: TCP-Connect-Back (BEAR/7) sent to our ultrapeer
    kConnectBacksDone,      // as an ultrapeer: connected back to a leaf
    kConnectBacksRefused,   // not ours to do (not our leaf, twice, malformed, too many at once)
    kDemotions,
    kStatCount
  };

  GnutellaCore(const share::Library& library, GnutellaConfig config, std::uint64_t seed);

  // The driver accepted (Inbound) or completed (Outbound) a TCP connection.
  void handle_connected(ConnId conn, Endpoint remote, Direction dir, Instant now) override;
  void handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) override;
  void handle_closed(ConnId conn, CloseReason reason, Instant now) override;
  void handle_timeout(Instant now) override;
  void handle_shutdown(Instant now) override { shutdown(now); }
  // With no configured address (listening on 0.0.0.0), we advertise the local
  // address peers reach us on, preferring a non-loopback one.
  bool wants_local_address() const override;
  void handle_local_address(Endpoint local) override;

  // Commands (from CLI / TUI / control socket).
  // Keep a connection to `peer` (reconnecting with backoff).
  void add_peer(Endpoint peer, Instant now);
  // Sends a Query to every established peer that has not carried the
  // identical query (same text, or same urn:sha1: what gtk-gnutella compares)
  // within requery_threshold; a repeat keeps the first query's DescriptorID,
  // so late hits and new ones come back under one id.
  SearchSent search(const Search& s, Instant now);
  void ping(std::uint8_t ttl, Instant now);
  // Says goodbye (0.6 Bye, code 200) to every peer that understands it; the
  // driver writes these before closing the connections.
  void shutdown(Instant now);
  // Asks the firewalled servent `target` to connect to `reply_to` and offer
  // file `index` (0.4 spec §"Push"). Routed along the QueryHit path when we
  // saw one from it, else sent to every peer (who route it by ServentID).
  // False when there is no peer to send it to.
  bool send_push(const gn::ServentId& target, std::uint32_t index, Endpoint reply_to, Instant now);

  std::optional<Action> poll_action() override;
  std::optional<Instant> poll_timeout() const override;
  std::optional<Event> poll_event();

  const gn::ServentId& servent_id() const { return servent_id_; }
  HostCache& host_cache() { return hosts_; }
  std::size_t established() const { return established_; }
  std::vector<Counter> counters() const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }
  void set_advertised(Endpoint e) {
    config_.advertised = e;
    learned_address_ = false;
  }
  const GnutellaConfig& config() const { return config_; }
  Role role() const { return role_; }
  bool inbound_seen() const { return inbound_seen_; }  // someone connected to us (we are reachable)
  ReputationBook& reputation() { return reputation_; }
  const ReputationBook& reputation() const { return reputation_; }
  // Whether peers can connect to us: a listener (a port to advertise) and
  // not --firewalled. Otherwise no Pong of ours offers an address, and our
  // hits carry the push flag.
  bool reachable() const { return !config_.firewalled && config_.advertised.port != 0; }

  struct PeerInfo {
    ConnId conn;
    Endpoint remote;
    Direction dir;
    bool established;
    int version_minor;
    std::string user_agent;
    std::uint64_t msgs_in, msgs_out;
    std::optional<Instant> since;  // when the handshake completed
    std::uint64_t dropped;         // descriptors from it we dropped (any reason)
    std::string_view link;         // "leaf" (ours), "ultrapeer", "parent" (we are its leaf), "flat"
    std::size_t qrp_slots;         // its QRP table's size (0: none)
    std::size_t qrp_present;       // slots its table marks present
    int reputation;                // 0..1000, what we saw of it
    Endpoint listen;               // where it accepts connections (port 0: unknown)
    std::vector<gn::HsepHop> hsep;  // what it reaches within 1..n hops, by its last HSEP (empty: none)
  };
  std::vector<PeerInfo> peers() const;

 private:
  enum class Phase { AwaitConnect, AwaitResponse, AwaitFinal, Established, Closing };
  // What a link is to us. Flat: a 0.4 peer or one without X-Ultrapeer.
  enum class Link : std::uint8_t { Flat, Leaf, Ultrapeer, Parent };
  struct Conn {
    ConnId id;
    Endpoint remote;
    Direction dir;
    Phase phase;
    bool v04 = false;           // speaking 0.4 (no flag bits in min-speed)
    wire::Bytes hs_buf;
    gn::Framer framer;
    Instant deadline;
    std::string user_agent;
    std::uint64_t msgs_in = 0, msgs_out = 0;
    int wanted = -1;            // index into wanted_ for outgoing peers
    bool bye_ok = false;        // peer sent "Bye-Packet: 0.1"
    bool offered_deflate = false;  // peer sent "Accept-Encoding: deflate"
    std::unique_ptr<wire::Inflater> inflater;  // peer compresses to us
    std::unique_ptr<wire::Deflater> deflater;  // we compress to the peer
    std::string bye_detail;
    std::optional<Instant> since;  // established at
    std::uint64_t dropped = 0;
    double query_tokens = -1;      // < 0: not yet filled
    Instant query_refill;
    Link link = Link::Flat;
    bool peer_qrp = false;         // X-Query-Routing: it reads a leaf's table
    bool peer_up_qrp = false;      // X-Ultrapeer-Query-Routing: it reads ours as an ultrapeer
    std::unique_ptr<gn::QrpTable> qrp_in;  // the table it sends us
    QrpBits qrp_bits;              // what that table says, once complete
    std::optional<Instant> last_reset;
    std::size_t fast_resets = 0;
    std::optional<QrpBits> qrp_sent;  // what we sent it
    std::size_t degree = 0;        // its X-Degree
    bool needs_ultrapeers = false; // our ultrapeer's leaf slots are (nearly) full: X-Ultrapeer-Needed, GGEP UP
    bool busy_ultrapeer = false;   // it refused us with 503 as a full ultrapeer
    bool connect_back_done = false;  // we connected back to this leaf once
    bool query_status = false;     // its Messages-Supported lists Query-Status (BEAR/11, 12)
    bool hsep_ok = false;          // it reads HSEP 0.2 (X-Features)
    std::vector<gn::HsepHop> hsep; // its last HSEP message
    std::vector<gn::HsepHop> hsep_sent;  // what we last told it
    Endpoint listen;               // its listening address (outbound: remote; inbound: Listen-IP)
    Instant credited;              // link time counted in its reputation up to here
    std::uint64_t drops_credited = 0;
  };
  // A dynamic query running for a leaf (origin) or for us (kSelf).
  struct DqState {
    DynamicQuery dq;
    ConnId origin;
    gn::Header header;        // hops already counted; TTL set per step
    wire::Bytes payload;
    std::size_t results = 0;  // results in the hits routed back
    std::optional<std::size_t> reported;  // what the leaf says it kept
    bool guided = false;      // the leaf answers Query-Status
  };
  struct Refusal {
    int code;
    std::string_view reason;
    Stat stat;
  };
  struct Wanted {
    Endpoint ep;
    bool try04 = false;
    Duration backoff;
    Instant next_attempt;
    std::optional<ConnId> conn;
    bool from_cache = false;  // found in the host cache, not asked for
    int failures = 0;
    bool parked = false;      // given up on (a cached host that did not answer), or resting (busy)
    bool busy = false;        // parked because it had no room for us (503)
    Instant parked_at;
  };
  struct CachedPong {
    gn::Pong pong;
    std::uint8_t distance;  // hops from us to the pong's servent
    ConnId via;
    Instant at;
  };
  // Reverse-path key: the DescriptorID and which request kind it routes.
  struct RouteKey {
    gn::Guid id;
    std::uint8_t kind;  // 0 Ping, 1 Query
    bool operator==(const RouteKey&) const = default;
  };
  struct RouteKeyHash {
    std::size_t operator()(const RouteKey& k) const { return gn::Id16Hash{}(k.id) ^ k.kind; }
  };
  static constexpr ConnId kSelf{0};

  void on_handshake(Conn& c, Instant now);
  void establish(Conn& c, bool v04, std::string user_agent, Instant now);
  void on_frames(Conn& c, Instant now);
  void on_descriptor(Conn& c, gn::Header h, wire::ByteView payload, Instant now);
  void on_descriptor_inner(Conn& c, gn::Header h, wire::ByteView payload, Instant now);
  void on_ping(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now);
  void on_pong(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now);
  void on_query(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now);
  void on_query_hit(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now);
  void on_push(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now);
  void on_qrp(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now);
  void on_vendor(Conn& c, const gn::Header& h, wire::ByteView payload, Instant now);
  void on_hsep(Conn& c, wire::ByteView payload);
  void send_vendor(Conn& c, const gn::Guid& id, const gn::VendorMessage& m);
  // Starts a dynamic query over `links` (ultrapeer neighbours).
  void start_dq(ConnId origin, const gn::Header& h, wire::ByteView payload, std::vector<Conn*> links, Instant now);
  void run_dqs(Instant now);
  void elect(Instant now);
  void credit(Conn& c, Instant now);
  // Whether an inbound peer may connect (and as what), given what it says it is.
  std::optional<Refusal> admit(Conn& c, std::optional<bool> peer_up, Instant now);
  // As the initiator, what the peer's answer makes the link (nullopt: close).
  std::optional<Refusal> accept_answer(Conn& c, std::optional<bool> peer_up);
  void refuse(Conn& c, const Refusal& r);
  std::size_t links(Link kind, bool with_handshakes = false) const;
  bool role_change_allowed(Instant now) const;
  void change_role(Role r, Instant now);
  // Our table (rebuilt when the library changed) and, as an ultrapeer, the
  // one our ultrapeer neighbours get: ours with our leaves' merged in.
  const QrpBits& own_table();
  QrpBits merged_table();
  void send_qrp(Conn& c, const QrpBits& table);
  void update_qrp(Instant now);
  void send_hsep(Instant now);
  // Sends a query to our leaves whose tables match it.
  void query_leaves(const Conn* from, const gn::Header& h, wire::ByteView payload, const QueryTerms& terms);
  void answer_query(Conn& c, const gn::Header& h, const gn::Query& q, const QueryTerms& terms);
  // Forwards a reply along the route; counts `unroutable` when it has none.
  void route_reply(Conn& from, ConnId to, const gn::Header& h, wire::ByteView payload, Stat unroutable);
  void flood(const Conn* from, const gn::Header& h, wire::ByteView payload);
  void flood_query(const Conn* from, const gn::Header& h, wire::ByteView payload, const QueryTerms& terms);
  // One Broadcast action to every established link of one version but
  // `from` that `to` accepts.
  template <class Pred>
  void broadcast(const Conn* from, SharedBuffer bytes, bool v04_links, Pred to);
  // Links an ultrapeer floods Pings and Queries over (not its leaves), or
  // none for a leaf.
  bool relays_to(const Conn& c) const { return role_ == Role::Ultrapeer && (c.link == Link::Ultrapeer || c.link == Link::Flat); }
  void send(Conn& c, SharedBuffer bytes);
  void send_text(Conn& c, std::string_view text);
  void close(Conn& c, CloseReason reason, Stat stat);
  // A Bye (0.6 draft §3.4) with `code`, then close; plain close if the peer
  // does not speak Bye.
  void send_own_pong(Conn& c, const gn::Header& h);
  void bye(Conn& c, std::uint16_t code, std::string_view message, CloseReason reason, Stat stat);
  void feed_established(Conn& c, wire::ByteView bytes, Instant now);
  bool ggep_ok(wire::ByteView block);
  void note_headers(Conn& c, const wire::Headers& h);
  void learn_hosts(const Conn& c, const wire::Headers& h, Instant now);
  void cache_pong(const gn::Pong& p, std::uint8_t distance, ConnId via, Instant now);
  bool answer_from_cache(Conn& c, const gn::Header& ping, Instant now);
  void ping_one(Conn& c, Instant now);
  void top_up_peers(Instant now);
  bool ask_full_again(Instant now);  // (top_up_peers: a leaf with no ultrapeer and no candidate)
  void forget_parked(Instant now);
  wire::Headers our_headers(const Conn& c) const;
  gn::Guid new_guid();
  Conn* find(ConnId id);

  const share::Library& library_;
  GnutellaConfig config_;
  Rng rng_;
  gn::ServentId servent_id_;
  std::unordered_map<ConnId, Conn, ConnIdHash> conns_;
  std::vector<Conn*> live_;  // established connections, for floods
  std::size_t established_ = 0;
  std::vector<Wanted> wanted_;
  std::uint64_t next_conn_ = 1;
  ExpiringMap<RouteKey, ConnId, RouteKeyHash> routes_;
  ExpiringMap<gn::ServentId, ConnId, gn::Id16Hash> push_routes_;
  ExpiringMap<gn::Guid, std::size_t, gn::Id16Hash> own_hits_;  // results seen per own query
  // Our own queries of the last requery_threshold, by text or urn: when each
  // link carried them.
  struct OwnQuery {
    gn::Guid guid;
    std::unordered_map<ConnId, Instant, ConnIdHash> sent_on;
    Instant last_sent;
  };
  std::unordered_map<std::string, OwnQuery> own_queries_;
  HostCache hosts_;
  std::deque<CachedPong> pong_cache_;
  Instant next_ping_{Duration(0)};
  std::deque<Action> actions_;
  std::deque<Event> events_;
  // No handshake deadline and no dial is due before this (handle_timeout
  // sets it exactly; whatever schedules one earlier lowers it: wake_by).
  static constexpr Instant kNever{Duration(INT64_MAX / 2)};
  Instant wake_hint_ = kNever;
  void wake_by(Instant t) { wake_hint_ = std::min(wake_hint_, t); }
  void unpark(Wanted& w, Instant now);
  std::array<std::uint64_t, kStatCount> stats_{};
  bool learned_address_ = false;  // advertised came from handle_local_address
  Role role_ = Role::Leaf;
  std::optional<Instant> role_changed_at_;
  QrpBits own_table_;
  std::uint64_t own_table_generation_ = UINT64_MAX;
  Instant next_qrp_check_{Duration(0)};
  Instant next_hsep_{Duration(0)};
  std::unordered_map<gn::Guid, DqState, gn::Id16Hash> dqs_;
  std::unordered_map<ConnId, Endpoint, ConnIdHash> connect_backs_;  // connects we make only to close
  ReputationBook reputation_;
  Instant now_{Duration(0)};             // the time of the event being handled
  std::optional<Instant> started_;       // first event seen
  bool inbound_seen_ = false;            // someone connected to us: reachable
  std::optional<Instant> short_since_;   // a leaf with fewer ultrapeers than it wants since
  struct Fruitless {  // top_up_peers last found too few candidates
    std::uint64_t changes;
    Role role;
    Instant at;
  };
  std::optional<Fruitless> fruitless_;
  std::optional<Instant> orphan_asked_at_;  // ask_full_again last asked
  std::optional<Instant> refused_full_at_;  // a leaf found no room at an ultrapeer lately (503, or nearly full)
  std::optional<Instant> last_leaf_;     // an ultrapeer last had a leaf
  Instant next_election_{Duration(0)};
};

}  // namespace sv
