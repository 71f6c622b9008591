// GnutellaCore driven by hand: a fake outbox and hand-moved time.
#pragma once

#include <doctest/doctest.h>

#include <map>

#include "servent/gnutella/gnutella_core.hpp"
#include "support/bytes.hpp"
#include "wire/gnutella/framer.hpp"
#include "wire/gnutella/ggep.hpp"
#include "wire/gnutella/huge.hpp"

namespace sv::test {

namespace gn = sv::wire::gnutella;


struct Outbox {
  std::map<std::uint64_t, wire::Bytes> sent;  // all bytes per connection
  std::vector<action::Close> closes;
  std::vector<action::Connect> connects;
};

struct Harness {
  share::Library lib;
  GnutellaCore core;
  Outbox out;
  Instant now{Duration(1000)};
  std::uint64_t next_id = 1;

  // A relaying node (an ultrapeer) unless a test asks for another config.
  explicit Harness(GnutellaConfig cfg = ultrapeer()) : core(lib, with_address(cfg), 42) {}
  static GnutellaConfig ultrapeer() {
    GnutellaConfig c;
    c.mode = NodeMode::Ultrapeer;
    return c;
  }
  static GnutellaConfig with_address(GnutellaConfig c) {
    c.advertised = Endpoint{0x7f000001, 6346};
    return c;
  }

  void drain() {
    while (auto a = core.poll_action()) {
      std::visit(
          [&](auto& act) {
            using T = std::decay_t<decltype(act)>;
            if constexpr (std::is_same_v<T, action::Send>) {
              auto& b = out.sent[act.conn.value];
              b.insert(b.end(), act.bytes->begin(), act.bytes->end());
            } else if constexpr (std::is_same_v<T, action::Broadcast>) {
              for (ConnId c : act.conns) {
                auto& b = out.sent[c.value];
                b.insert(b.end(), act.bytes->begin(), act.bytes->end());
              }
            } else if constexpr (std::is_same_v<T, action::Close>) {
              out.closes.push_back(act);
            } else if constexpr (std::is_same_v<T, action::Connect>) {
              out.connects.push_back(act);
            }
          },
          *a);
    }
  }
  std::string take_text(ConnId c) {
    auto& b = out.sent[c.value];
    std::string s(b.begin(), b.end());
    b.clear();
    return s;
  }
  // The handshake message at the front of what was sent to `c` (descriptors
  // sent behind it stay).
  std::string take_handshake(ConnId c) {
    auto& b = out.sent[c.value];
    const std::string all(b.begin(), b.end());
    const auto end = all.find("\r\n\r\n");
    if (end == std::string::npos) return {};
    b.erase(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(end + 4));
    return all.substr(0, end + 4);
  }
  // Descriptors sent to `c` since the last call.
  std::vector<std::pair<gn::Header, wire::Bytes>> take_descriptors(ConnId c) {
    gn::Framer f;
    f.feed(out.sent[c.value]);
    out.sent[c.value].clear();
    std::vector<std::pair<gn::Header, wire::Bytes>> v;
    for (;;) {
      auto r = f.next();
      if (!r) break;
      v.emplace_back(r->header, wire::Bytes(r->payload.begin(), r->payload.end()));
    }
    return v;
  }
  void feed(ConnId c, std::string_view s) {
    core.handle_bytes(c, wire::as_bytes(s), now);
    drain();
  }
  void feed(ConnId c, const wire::Bytes& b) {
    core.handle_bytes(c, b, now);
    drain();
  }
  // An inbound peer completing the 0.6 (or 0.4) handshake.
  ConnId peer(bool v04 = false) {
    ConnId c{next_id++};
    core.handle_connected(c, Endpoint{0x7f000002, static_cast<std::uint16_t>(40000 + c.value)}, Direction::Inbound, now);
    if (v04) {
      feed(c, gn::kConnect04);
    } else {
      feed(c, "GNUTELLA CONNECT/0.6\r\nUser-Agent: test/1\r\nX-Ultrapeer: True\r\n\r\n");
      feed(c, "GNUTELLA/0.6 200 OK\r\n\r\n");
    }
    take_text(c);
    return c;
  }
  // An inbound 0.6 peer completing the handshake with these headers (and
  // "200 OK" + `final_headers` as its last word); its answer is returned.
  std::string peer_06(ConnId c, std::string_view headers, std::string_view final_headers = "") {
    core.handle_connected(c, Endpoint{0x7f000002, static_cast<std::uint16_t>(40000 + c.value)}, Direction::Inbound, now);
    feed(c, "GNUTELLA CONNECT/0.6\r\nUser-Agent: test/1\r\n" + std::string(headers) + "\r\n");
    std::string answer = take_text(c);
    if (answer.starts_with("GNUTELLA/0.6 200")) feed(c, "GNUTELLA/0.6 200 OK\r\n" + std::string(final_headers) + "\r\n");
    return answer;
  }
  // add_peer + the timer firing + the driver completing the TCP connect.
  ConnId connect_out(Endpoint peer) {
    core.add_peer(peer, now);
    core.handle_timeout(now);
    drain();
    REQUIRE(!out.connects.empty());
    ConnId c = out.connects.back().conn;
    core.handle_connected(c, peer, Direction::Outbound, now);
    drain();
    return c;
  }
  bool closed(ConnId c) const {
    for (const auto& cl : out.closes) {
      if (cl.conn == c) return true;
    }
    return false;
  }
};

inline wire::Bytes descriptor(gn::Type t, std::uint8_t ttl, std::uint8_t hops, const wire::Bytes& payload,
                       std::uint8_t id_byte = 1) {
  gn::Header h;
  h.id.bytes.fill(id_byte);
  h.type = static_cast<std::uint8_t>(t);
  h.ttl = ttl;
  h.hops = hops;
  return gn::encode_descriptor(h, payload);
}

inline wire::Bytes query_payload(std::string criteria, std::uint16_t min_speed = 0x8000) {
  gn::Query q;
  q.min_speed = min_speed;
  q.criteria = std::move(criteria);
  wire::Bytes p;
  gn::encode_query(p, q);
  return p;
}

// A query extension block naming a file the way Shareaza does: its SHA1 in
// GGEP "H" (type 1, then the 20 bytes), with `text_urn` also before it.
inline wire::Bytes ggep_h_extensions(const std::array<std::uint8_t, 20>& sha, const std::string& text_urn = "") {
  gn::Extensions e;
  if (!text_urn.empty()) e.urns = {text_urn};
  wire::Bytes digest(1 + sha.size(), 0x01);
  std::copy(sha.begin(), sha.end(), digest.begin() + 1);
  e.ggep.emplace();
  gn::encode_ggep(*e.ggep, {{"H", digest, false, true}});
  return gn::encode_extensions(e);
}

inline wire::Bytes hit_payload(std::uint8_t servent_byte) {
  gn::QueryHit h;
  h.port = 6346;
  h.ip = 0x7f000009;
  h.speed = 100;
  h.results.push_back({3, 1234, "song.mp3", {}});
  h.servent_id.bytes.fill(servent_byte);
  wire::Bytes p;
  gn::encode_query_hit(p, h);
  return p;
}

}  // namespace sv::test
