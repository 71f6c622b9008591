// The decoder's own behaviour on captures made to measure: descriptors cut by
// segment boundaries anywhere, consumers that keep or drop the messages, and
// replies with and without their request.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "servent/pcap/capture.hpp"
#include "servent/pcap/recent_ids.hpp"
#include "servent/pcap/writer.hpp"
#include "wire/gnutella/descriptors.hpp"
#include "wire/gnutella/ggep.hpp"
#include "wire/gnutella/huge.hpp"
#include "wire/napster/napster.hpp"

using namespace sv;
namespace gn = sv::wire::gnutella;

namespace {

constexpr std::uint32_t kClient = 0x7f000001, kServer = 0x7f000002;
constexpr std::uint16_t kClientPort = 40000, kServerPort = 6346;

gn::Guid guid(std::uint8_t seed) {
  gn::Guid g;
  for (std::size_t i = 0; i < 16; ++i) g.bytes[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return g;
}

std::string descriptor(std::uint8_t type, const gn::Guid& id, const wire::Bytes& payload) {
  gn::Header h;
  h.id = id;
  h.type = type;
  h.ttl = 3;
  auto d = gn::encode_descriptor(h, payload);
  return std::string(d.begin(), d.end());
}

struct Conversation {
  std::string client = "GNUTELLA CONNECT/0.6\r\nUser-Agent: t/1\r\nX-Ultrapeer: False\r\n\r\n";
  std::string server = "GNUTELLA/0.6 200 OK\r\nUser-Agent: t/1\r\n\r\n";
  std::string client_data = "GNUTELLA/0.6 200 OK\r\n\r\n";
  std::string server_data;
};

// A 0.6 link: Pings answered by Pongs, Queries by QueryHits with names that
// need escaping, and one Pong nobody asked for.
Conversation conversation() {
  Conversation c;
  for (std::uint8_t i = 0; i < 6; ++i) {
    wire::Bytes p;
    if (i % 2 == 0) {
      c.client_data += descriptor(0x00, guid(i), {});
      gn::encode_pong(p, gn::Pong{6346, kServer, i, 1000u * i, {}});
      c.server_data += descriptor(0x01, guid(i), p);
    } else {
      gn::encode_query(p, gn::Query{0, "words " + std::to_string(i), {}});
      c.client_data += descriptor(0x80, guid(i), p);
      gn::QueryHit hit;
      hit.port = 6346;
      hit.ip = kServer;
      hit.results.push_back({i, 1000, "a \"quoted\"\x01 name \xc3\xa9.mp3", {}});
      hit.results.push_back({7, 2000, std::string(300, 'x'), {}});
      p.clear();
      gn::encode_query_hit(p, hit);
      c.server_data += descriptor(0x81, guid(i), p);
    }
  }
  wire::Bytes p;
  gn::encode_pong(p, gn::Pong{6346, kServer, 1, 1, {}});
  c.server_data += descriptor(0x01, guid(99), p);  // unmatched
  return c;
}

// The conversation as a capture whose data segments are at most `mss` bytes.
std::string capture(const Conversation& c, std::size_t mss) {
  pcap::PcapWriter w;
  std::uint32_t t = 0, cseq = 100, sseq = 900;
  w.packet(t++, pcap::ipv4_tcp_packet(kClient, kClientPort, kServer, kServerPort, cseq++, pcap::kTcpSyn, ""));
  w.packet(t++, pcap::ipv4_tcp_packet(kServer, kServerPort, kClient, kClientPort, sseq++, pcap::kTcpSyn | pcap::kTcpAck, ""));
  auto send = [&](bool from_client, const std::string& data) {
    for (std::size_t i = 0; i < data.size(); i += mss) {
      auto piece = std::string_view(data).substr(i, mss);
      if (from_client) {
        w.packet(t++, pcap::ipv4_tcp_packet(kClient, kClientPort, kServer, kServerPort, cseq, pcap::kTcpAck, piece));
        cseq += static_cast<std::uint32_t>(piece.size());
      } else {
        w.packet(t++, pcap::ipv4_tcp_packet(kServer, kServerPort, kClient, kClientPort, sseq, pcap::kTcpAck, piece));
        sseq += static_cast<std::uint32_t>(piece.size());
      }
    }
  };
  send(true, c.client);
  send(false, c.server);
  send(true, c.client_data);
  send(false, c.server_data);
  return w.take();
}

struct Decoded {
  std::string kind, info;
  wire::Bytes raw;
  std::vector<std::string> codes;
  bool operator==(const Decoded&) const = default;
};

std::vector<Decoded> decode(const std::string& cap, bool keep) {
  std::vector<Decoded> out;
  std::vector<pcap::Message> kept;
  pcap::decode_bytes(wire::as_bytes(cap), [&](pcap::Message&& m) {
    Decoded d{m.kind, m.info, m.raw, {}};
    for (const auto& v : m.violations) d.codes.push_back(v.first);
    out.push_back(d);
    if (keep) kept.push_back(std::move(m));  // the decoder must not mind
  });
  if (keep) {
    REQUIRE(kept.size() == out.size());
    for (std::size_t i = 0; i < kept.size(); ++i) CHECK(kept[i].info == out[i].info);
  }
  return out;
}

}  // namespace

TEST_CASE("descriptors_cut_by_segments_anywhere_decode_the_same") {
  const auto c = conversation();
  const auto whole = decode(capture(c, 65000), false);
  REQUIRE(whole.size() == 3 + 12 + 1);  // three handshake blocks, 12 descriptors, the stray Pong
  // Every descriptor's raw bytes are in the capture exactly as sent.
  std::string all = c.client_data + c.server_data;
  for (const auto& d : whole) {
    if (d.kind == "handshake") continue;
    CHECK(all.find(std::string(d.raw.begin(), d.raw.end())) != std::string::npos);
  }
  for (std::size_t mss : {1u, 2u, 5u, 22u, 23u, 24u, 61u, 100u, 536u, 1448u}) {
    CAPTURE(mss);
    CHECK(decode(capture(c, mss), false) == whole);
    CHECK(decode(capture(c, mss), true) == whole);
  }
}

TEST_CASE("a_reply_without_its_request_is_reported") {
  const auto got = decode(capture(conversation(), 1448), false);
  std::size_t unmatched = 0, replies = 0;
  for (const auto& d : got) {
    if (d.kind == "Pong" || d.kind == "QueryHit") ++replies;
    for (const auto& code : d.codes) {
      if (code == "unmatched-reply") ++unmatched;
    }
  }
  CHECK(replies == 7);
  CHECK(unmatched == 1);  // only the stray Pong
  // The text escapes what the name carries: quote, control byte, UTF-8, length.
  bool seen = false;
  for (const auto& d : got) {
    if (d.kind != "QueryHit") continue;
    seen = true;
    CHECK(d.info.find("\"a \\\"quoted\\\"\\\\x01 name \\u00c3\\u00a9.mp3\"") != std::string::npos);
    CHECK(d.info.find(std::string(80, 'x') + "...\"") != std::string::npos);
  }
  CHECK(seen);
}

TEST_CASE("a_query_naming_its_file_only_in_ggep_h_lists_that_urn") {
  // As Shareaza asks for a file: no text urn, the SHA1 in GGEP "H" (type 1).
  wire::Bytes digest(21, 0);
  digest[0] = 0x01;
  for (std::size_t i = 1; i < digest.size(); ++i) digest[i] = static_cast<std::uint8_t>(i);
  gn::Extensions e;
  e.ggep.emplace();
  gn::encode_ggep(*e.ggep, {{"H", digest, false, true}});
  const auto expected = gn::all_urns(e);
  REQUIRE(expected.size() == 1);
  wire::Bytes p;
  gn::encode_query(p, gn::Query{0x8000, "", gn::encode_extensions(e)});
  Conversation c;
  c.client_data += descriptor(0x80, guid(5), p);
  std::string urns;
  pcap::decode_bytes(wire::as_bytes(capture(c, 1448)), [&](pcap::Message&& m) {
    if (m.kind != "Query") return;
    for (const auto& f : m.fields) {
      if (f.first == "urns") urns = f.second;
    }
  });
  CHECK(urns == "[\"" + expected.front() + "\"]");
  CHECK(expected.front().starts_with("urn:sha1:AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYU"));  // base32 of bytes 1..20
}

TEST_CASE("an_out_of_band_reply_matches_a_query_seen_on_a_tcp_link") {
  auto c = conversation();
  pcap::PcapWriter w;
  std::string cap = capture(c, 1448);
  // A QueryHit by UDP to the querying host, for the Query of guid(1), and one
  // for a Query never seen.
  gn::QueryHit hit;
  hit.port = 6346;
  hit.ip = 0x7f000003;
  hit.results.push_back({1, 10, "oob.txt", {}});
  wire::Bytes p;
  gn::encode_query_hit(p, hit);
  w.packet(1000, pcap::ipv4_udp_packet(0x7f000003, 6346, kClient, 6346, descriptor(0x81, guid(1), p)));
  w.packet(1001, pcap::ipv4_udp_packet(0x7f000003, 6346, kClient, 6346, descriptor(0x81, guid(77), p)));
  std::string udp = w.take();
  cap += udp.substr(24);  // the same link type: append the records after the file header
  std::vector<std::pair<std::int64_t, bool>> oob;  // (stream, unmatched)
  pcap::decode_bytes(wire::as_bytes(cap), [&](pcap::Message&& m) {
    if (m.stream != -1) return;
    bool unmatched = false;
    for (const auto& v : m.violations) unmatched |= v.first == "unmatched-reply";
    oob.push_back({m.stream, unmatched});
  });
  REQUIRE(oob.size() == 2);
  CHECK_FALSE(oob[0].second);
  CHECK(oob[1].second);
}

TEST_CASE("recent_ids_remember_the_newest_and_stay_bounded") {
  pcap::RecentIds ids(1000);
  auto id = [](std::uint32_t n) {
    gn::Guid g;
    for (std::size_t i = 0; i < 4; ++i) g.bytes[i] = static_cast<std::uint8_t>(n >> (8 * i));
    return g;
  };
  for (std::uint32_t n = 0; n < 10'000; ++n) {
    ids.insert(id(n));
    CHECK(ids.contains(id(n)));  // at once, before its table write
  }
  for (std::uint32_t n = 9'000; n < 10'000; ++n) CHECK(ids.contains(id(n)));  // the newest 1000, always
  std::size_t old = 0;
  for (std::uint32_t n = 0; n < 7'000; ++n) old += ids.contains(id(n));
  CHECK(old == 0);  // at most twice the generation (plus those not yet written) is kept
  ids.insert(id(5));
  ids.insert(id(5));
  CHECK(ids.contains(id(5)));
  CHECK_FALSE(ids.contains(id(123'456)));
}

namespace {

// A Napster client-server conversation (search, results, end) with frames
// cut into segments of `mss` bytes; `login` says whether it starts with the
// login (sniffable) or in the middle (needs --napster-port).
std::string napster_capture(std::size_t mss, bool login) {
  namespace nap = sv::wire::napster;
  wire::Bytes client, server;
  if (login) nap::append_frame(client, nap::kLogin, R"(alice pw 6699 "a client 1.0" 4)");
  if (login) nap::append_frame(server, nap::kLoginAck, "anon@127.0.0.1");
  nap::append_frame(client, nap::kSearch, R"(FILENAME CONTAINS "free song" MAX_RESULTS 10)");
  for (int i = 0; i < 3; ++i) {
    nap::append_frame(server, nap::kSearchResult,
                      nap::encode_search_result({{"C:\\m\\free " + std::to_string(i) + " song.mp3", "", 1000u + i, 128, 44100, 5},
                                                 "bob", 0x7f000001, 8}));
  }
  nap::append_frame(server, nap::kSearchEnd, "");
  pcap::PcapWriter w;
  std::uint32_t t = 0, cseq = 100, sseq = 900;
  auto send = [&](bool from_client, const wire::Bytes& data) {
    for (std::size_t i = 0; i < data.size(); i += mss) {
      auto piece = wire::as_chars(wire::ByteView(data).subspan(i, std::min(mss, data.size() - i)));
      if (from_client) {
        w.packet(t++, pcap::ipv4_tcp_packet(kClient, kClientPort, kServer, 8888, cseq, pcap::kTcpAck, piece));
        cseq += static_cast<std::uint32_t>(piece.size());
      } else {
        w.packet(t++, pcap::ipv4_tcp_packet(kServer, 8888, kClient, kClientPort, sseq, pcap::kTcpAck, piece));
        sseq += static_cast<std::uint32_t>(piece.size());
      }
    }
  };
  send(true, client);
  send(false, server);
  return w.take();
}

std::vector<std::string> napster_kinds(const std::string& cap, std::vector<std::uint16_t> ports = {}) {
  std::vector<std::string> out;
  pcap::DecodeOptions o;
  o.napster_ports = std::move(ports);
  pcap::decode_bytes(wire::as_bytes(cap), [&](pcap::Message&& m) { out.push_back(m.proto + " " + m.kind + " " + m.info); }, o);
  return out;
}

}  // namespace

TEST_CASE("napster_frames_are_sniffed_by_their_login_and_cut_anywhere") {
  const auto whole = napster_kinds(napster_capture(100000, true));
  REQUIRE(whole.size() == 7);
  CHECK(whole[0] == R"(napster login nick=alice port=6699 client="a client 1.0" link=4)");
  CHECK(whole[3].starts_with(R"(napster search-result "C:\m\free 0 song.mp3" size=1000)"));
  CHECK(whole[6] == "napster search-end ");
  for (std::size_t mss : {1, 2, 3, 5, 7, 64}) {
    CAPTURE(mss);
    CHECK(napster_kinds(napster_capture(mss, true)) == whole);
  }
}

TEST_CASE("napster_mid_conversation_needs_its_port") {
  // Without a login at the start nothing says Napster...
  for (const auto& line : napster_kinds(napster_capture(1000, false))) CHECK_FALSE(line.starts_with("napster"));
  // ...unless the port is named.
  const auto named = napster_kinds(napster_capture(1000, false), {8888});
  REQUIRE(named.size() == 5);
  CHECK(named[0].starts_with("napster search FILENAME CONTAINS"));
  CHECK(named[4] == "napster search-end ");
}
