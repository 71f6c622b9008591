// bench/route: descriptors routed per second by one GnutellaCore on one core.
//
// A realistic mix arrives from 32 established 0.6 connections: Queries (5%
// of them match the library and are answered), Pings, QueryHits and Pongs
// routed back along the reverse path, Pushes, and 30% duplicates (the same
// DescriptorID arriving again over another connection). Every byte goes
// through the framer, the duplicate cache, the routing tables and the
// encoders; the actions are drained and discarded. Prints descriptors/s and
// the ratio to the 1,000,000/s goal (DESIGN.md section 6).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>

#include "servent/gnutella/gnutella_core.hpp"

using namespace sv;
namespace gn = sv::wire::gnutella;

namespace {

constexpr std::size_t kConns = 32;
constexpr double kGoal = 1'000'000;

struct Recent {
  gn::Guid id;
  std::size_t conn;
  std::uint8_t type;
};

}  // namespace

int main(int argc, char** argv) {
  const std::size_t total = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2'000'000;
  share::Library lib;
  for (int i = 0; i < 2000; ++i) lib.add_virtual("artist" + std::to_string(i % 300) + " track " + std::to_string(i) + ".mp3", 4'000'000);
  GnutellaConfig cfg;
  cfg.mode = NodeMode::Ultrapeer;  // a relaying node
  cfg.max_connections = kConns + 1;
  GnutellaCore core(lib, cfg, 1);
  Instant now{Duration(1)};
  for (std::size_t c = 1; c <= kConns; ++c) {
    core.handle_connected(ConnId{c}, Endpoint{0x7f000001, static_cast<std::uint16_t>(10000 + c)}, Direction::Inbound, now);
    std::string hs = "GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: True\r\n\r\nGNUTELLA/0.6 200 OK\r\n\r\n";
    core.handle_bytes(ConnId{c}, wire::as_bytes(hs), now);
  }
  while (core.poll_action()) {
  }

  // Generate the traffic first, so only routing is timed.
  Rng rng(7);
  std::vector<wire::Bytes> streams(kConns);
  std::vector<std::pair<std::size_t, std::size_t>> schedule;  // (conn, bytes) per descriptor in arrival order
  std::deque<Recent> recent;
  gn::QueryHit hit;
  hit.port = 6346;
  hit.ip = 0x0a000001;
  hit.speed = 500;
  hit.results.push_back({7, 3'500'000, "artist42 track 1234 live.mp3", {}});
  gn::Push push_tpl;
  push_tpl.ip = 0x0a000002;
  push_tpl.port = 6346;
  std::size_t dupes = 0;
  for (std::size_t k = 0; k < total; ++k) {
    const std::size_t conn = rng.below(kConns);
    gn::Header h;
    wire::Bytes payload;
    const auto roll = rng.below(100);
    if (roll < 30 && !recent.empty()) {
      // Duplicate: a recent request arriving again by another path.
      const Recent& r = recent[rng.below(recent.size())];
      h = gn::Header{r.id, r.type, 5, 2, 0};
      if (r.type == 0x80) {
        gn::encode_query(payload, gn::Query{0x8000, "some words", {}});
      }
      ++dupes;
    } else if (roll < 55) {
      rng.fill(h.id.bytes.data(), 16);
      h.type = 0x80;
      h.ttl = static_cast<std::uint8_t>(2 + rng.below(5));
      h.hops = static_cast<std::uint8_t>(rng.below(3));
      gn::Query q;
      q.min_speed = 0x8000;
      q.criteria = rng.below(20) == 0 ? "artist" + std::to_string(rng.below(300)) + " track"
                                      : "nomatch" + std::to_string(rng.below(100000)) + " words";
      gn::encode_query(payload, q);
      recent.push_back({h.id, conn, 0x80});
    } else if (roll < 65) {
      rng.fill(h.id.bytes.data(), 16);
      h.type = 0x00;
      h.ttl = static_cast<std::uint8_t>(1 + rng.below(4));
      h.hops = static_cast<std::uint8_t>(rng.below(3));
      recent.push_back({h.id, conn, 0x00});
    } else if (roll < 95 && !recent.empty()) {
      // A reply to a recent request, arriving on another connection.
      const Recent& r = recent[rng.below(recent.size())];
      std::size_t from = (r.conn + 1 + rng.below(kConns - 1)) % kConns;
      if (r.type == 0x80) {
        h = gn::Header{r.id, 0x81, 4, 2, 0};
        rng.fill(hit.servent_id.bytes.data(), 4);
        gn::encode_query_hit(payload, hit);
      } else {
        h = gn::Header{r.id, 0x01, 4, 2, 0};
        gn::encode_pong(payload, gn::Pong{6346, 0x0a000003, 100, 400000, {}});
      }
      auto d = gn::encode_descriptor(h, payload);
      streams[from].insert(streams[from].end(), d.begin(), d.end());
      schedule.emplace_back(from, d.size());
      continue;
    } else {
      rng.fill(h.id.bytes.data(), 16);
      h.type = 0x40;
      h.ttl = 5;
      h.hops = 1;
      rng.fill(push_tpl.servent_id.bytes.data(), 16);
      gn::encode_push(payload, push_tpl);
    }
    if (recent.size() > 4096) recent.pop_front();
    auto d = gn::encode_descriptor(h, payload);
    streams[conn].insert(streams[conn].end(), d.begin(), d.end());
    schedule.emplace_back(conn, d.size());
  }
  std::size_t bytes = 0;
  for (auto& s : streams) bytes += s.size();

  // Feed in arrival order, in batches of up to 16 descriptors per read, as a
  // socket read would deliver them.
  std::vector<std::size_t> pos(kConns, 0);
  std::size_t actions = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < schedule.size();) {
    const std::size_t conn = schedule[i].first;
    std::size_t len = 0;
    std::size_t n = 0;
    while (i < schedule.size() && schedule[i].first == conn && n < 16) {
      len += schedule[i].second;
      ++i;
      ++n;
    }
    core.handle_bytes(ConnId{conn + 1}, wire::ByteView(streams[conn].data() + pos[conn], len), now);
    pos[conn] += len;
    while (core.poll_action()) ++actions;
    if ((i & 1023) == 0) now = now + Duration(1);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = static_cast<double>(core.stat(GnutellaCore::kDescriptorsIn)) / secs;
  std::printf("route: %zu descriptors (%.1f MB, %zu generated as duplicates) from %zu connections in %.3f s\n",
              static_cast<std::size_t>(core.stat(GnutellaCore::kDescriptorsIn)), static_cast<double>(bytes) / 1e6,
              dupes, kConns, secs);
  std::printf("route: dropped as duplicate %llu, answered %llu queries, %zu send actions\n",
              static_cast<unsigned long long>(core.stat(GnutellaCore::kDropDuplicate)),
              static_cast<unsigned long long>(core.stat(GnutellaCore::kQueriesAnswered)), actions);
  std::printf("route: %.0f descriptors/s on one core; goal %.0f/s; ratio %.2f\n", rate, kGoal, rate / kGoal);
  return 0;
}
