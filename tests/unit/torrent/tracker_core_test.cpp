// The tracker core alone: announces over HTTP and UDP meet in one swarm,
// "stopped" leaves it, silent peers expire, and bad input is answered and
// counted.
#include <doctest/doctest.h>

#include "servent/torrent/tracker_core.hpp"

using namespace sv;
namespace bt = sv::wire::bt;

namespace {

struct Rig {
  TrackerCore core{TrackerConfig{}, 1};
  Instant now{Duration(0)};
  std::uint64_t next = 1;
  Rig() { core.set_udp_socket(SocketId{1}); }

  // One HTTP request on a fresh connection from `ip`; returns the body (and status).
  std::string http(std::string_view request, std::uint32_t ip = 0x7f000005, int* status = nullptr) {
    const ConnId c{next++};
    core.handle_connected(c, Endpoint{ip, 40000}, Direction::Inbound, now);
    core.handle_bytes(c, wire::as_bytes(request), now);
    std::string out;
    bool closed = false;
    while (auto a = core.poll_action()) {
      if (auto* s = std::get_if<action::Send>(&*a)) out.append(s->bytes->begin(), s->bytes->end());
      closed = closed || std::holds_alternative<action::Close>(*a);
    }
    CHECK(closed);
    if (status) *status = std::stoi(out.substr(9, 3));
    const auto body = out.find("\r\n\r\n");
    return body == std::string::npos ? std::string() : out.substr(body + 4);
  }
  std::optional<bt::UdpPacket> udp(const bt::UdpPacket& p, std::uint32_t ip = 0x7f000006) {
    core.handle_datagram(SocketId{1}, Endpoint{ip, 6881}, bt::encode_udp_request(p), now);
    std::optional<bt::UdpPacket> reply;
    while (auto a = core.poll_action()) {
      if (auto* s = std::get_if<action::SendTo>(&*a)) {
        auto r = bt::decode_udp_response(*s->bytes);
        if (r) reply = *r;
      }
    }
    return reply;
  }
};

bt::Announce announce(char who, std::uint16_t port, std::uint64_t left) {
  bt::Announce a;
  a.info_hash.fill(0xab);
  a.peer_id.fill(static_cast<std::uint8_t>(who));
  a.port = port;
  a.left = left;
  a.event = bt::AnnounceEvent::Started;
  return a;
}

std::string get(const bt::Announce& a) {
  const std::string url = bt::announce_url("/announce", a);
  return "GET " + url + " HTTP/1.0\r\n\r\n";
}

}  // namespace

TEST_CASE("tracker_http_and_udp_announces_meet_in_one_swarm") {
  Rig r;
  // A seed over HTTP.
  auto first = bt::decode_announce_reply(wire::as_bytes(r.http(get(announce('S', 7000, 0)))));
  REQUIRE(first);
  CHECK(first->peers.empty());
  CHECK(first->complete == 1);
  // A leecher over UDP: connect, then announce; it gets the seed's address as the tracker saw it.
  bt::UdpPacket c;
  c.action = bt::UdpAction::Connect;
  c.transaction = 77;
  auto conn = r.udp(c);
  REQUIRE(conn);
  CHECK(conn->transaction == 77);
  bt::UdpPacket a;
  a.action = bt::UdpAction::Announce;
  a.connection_id = conn->connection_id;
  a.transaction = 78;
  a.announce = announce('L', 7001, 500);
  auto reply = r.udp(a);
  REQUIRE(reply);
  CHECK(reply->action == bt::UdpAction::Announce);
  CHECK(reply->reply.peers == std::vector<bt::PeerAddr>{{0x7f000005, 7000}});
  CHECK(reply->reply.complete == 1);
  CHECK(reply->reply.incomplete == 1);
  // Scrape over HTTP sees both; over UDP too.
  auto s = bt::decode_scrape_reply(wire::as_bytes(r.http("GET /scrape HTTP/1.0\r\n\r\n")));
  REQUIRE(s);
  REQUIRE(s->size() == 1);
  CHECK((*s)[0].complete == 1);
  CHECK((*s)[0].incomplete == 1);
  // The seed stops: gone at once.
  auto stop = announce('S', 7000, 0);
  stop.event = bt::AnnounceEvent::Stopped;
  r.http(get(stop));
  CHECK(r.core.peers(stop.info_hash) == 1);
  // The leecher falls silent for two intervals: forgotten.
  r.now = r.now + 2h;
  r.core.handle_timeout(r.now);
  CHECK(r.core.swarms() == 0);
}

TEST_CASE("tracker_answers_bad_input_and_counts_it") {
  Rig r;
  int status = 0;
  auto body = r.http("GET /announce?info_hash=short&port=1 HTTP/1.0\r\n\r\n", 0x7f000005, &status);
  CHECK(status == 200);
  auto f = bt::decode_announce_reply(wire::as_bytes(body));
  REQUIRE(f);
  CHECK_FALSE(f->failure.empty());
  CHECK(r.core.stat(TrackerCore::kAnnounceBad) == 1);
  r.http("GET /elsewhere HTTP/1.0\r\n\r\n", 0x7f000005, &status);
  CHECK(status == 404);
  r.http("POST /announce HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 0x7f000005, &status);
  CHECK(status == 405);
  r.http("\x01\x02garbage\r\n\r\n", 0x7f000005, &status);
  CHECK(status == 400);
  CHECK(r.core.stat(TrackerCore::kHttpBad) == 3);
  // UDP: garbage is dropped; an announce with a connection id never issued gets an error packet.
  r.core.handle_datagram(SocketId{1}, Endpoint{0x7f000006, 1}, wire::as_bytes("nonsense"), r.now);
  CHECK(r.core.stat(TrackerCore::kUdpBad) == 1);
  bt::UdpPacket a;
  a.action = bt::UdpAction::Announce;
  a.connection_id = 12345;
  a.announce = announce('X', 1, 1);
  auto e = r.udp(a);
  REQUIRE(e);
  CHECK(e->action == bt::UdpAction::Error);
  CHECK(r.core.stat(TrackerCore::kUdpUnknownConnection) == 1);
  CHECK(r.core.swarms() == 0);
}
