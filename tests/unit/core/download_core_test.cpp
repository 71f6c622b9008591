// DownloadCore against scripted HTTP sources, with a fake outbox and
// hand-moved time: resume, multi-source, lying and corrupt sources.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "http/range.hpp"
#include "http/request_parser.hpp"
#include "servent/download/download_core.hpp"
#include "support/files.hpp"

namespace fs = std::filesystem;
using namespace sv;

namespace {

struct Behaviour {
  bool refuse = false;              // connection refused
  std::optional<std::size_t> cut;   // close after this many response bytes (first response only)
  bool cut_done = false;
  bool lie_range = false;           // Content-Range shifted by one
  bool lie_length = false;          // Content-Length one too many
  bool corrupt = false;             // flips one byte of every body
  int busy = 0;                     // answer 503 this many times first
  std::string urn_override;         // X-Gnutella-Content-URN to send instead
  std::size_t chunk = 4096;         // delivery chunk size
};

struct FakeNet {
  std::string content;
  std::map<Endpoint, Behaviour> sources;
  struct Link {
    Endpoint to;
    http::RequestParser parser;
    int responses = 0;
  };
  std::map<std::uint64_t, std::unique_ptr<Link>> links;
  std::vector<std::pair<ConnId, bool>> pending_connects;  // conn, ok
  std::vector<std::string> requests;                      // every Range asked, "host range"
  std::vector<std::size_t> head_sizes;                    // size of each response head
  std::vector<std::string> x_alts;                        // X-Alt of each request
  std::vector<DownloadEvent> events;
  std::map<Endpoint, std::uint64_t> served;

  std::string response_for(const Endpoint& ep, const http::Request& req, Link& link) {
    Behaviour& b = sources[ep];
    if (b.busy > 0) {
      --b.busy;
      return "HTTP/1.1 503 Busy\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n";
    }
    x_alts.push_back(req.headers.get("X-Alt").value_or(""));
    auto rr = http::parse_range(req.headers.get("Range").value_or(""), content.size());
    REQUIRE(rr.kind == http::RangeRequest::Kind::Satisfiable);
    requests.push_back(ep.to_string() + " " + std::to_string(rr.range.first) + "-" + std::to_string(rr.range.last));
    std::string body = content.substr(rr.range.first, rr.range.length());
    if (b.corrupt) body[body.size() / 2] ^= 0x5a;
    served[ep] += body.size();
    const auto first = rr.range.first + (b.lie_range ? 1 : 0);
    std::string head = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(first) + "-" +
                       std::to_string(first + body.size() - 1) + "/" + std::to_string(content.size()) +
                       "\r\nContent-Length: " + std::to_string(body.size() + (b.lie_length ? 1 : 0)) + "\r\n";
    std::string urn = b.urn_override.empty() ? share::sha1_urn(share::sha1_of(content)) : b.urn_override;
    head += "X-Gnutella-Content-URN: " + urn + "\r\n\r\n";
    ++link.responses;
    head_sizes.push_back(head.size());
    return head + body;
  }

  // Executes actions until the core is quiet; returns false if it never is.
  bool drive(DownloadCore& core, Instant now, int max_rounds = 100000) {
    for (int round = 0; round < max_rounds; ++round) {
      bool any = false;
      while (auto a = core.poll_action()) {
        any = true;
        if (auto* c = std::get_if<action::Connect>(&*a)) {
          auto link = std::make_unique<Link>();
          link->to = c->to;
          links[c->conn.value] = std::move(link);
          pending_connects.emplace_back(c->conn, !sources[c->to].refuse);
        } else if (auto* s = std::get_if<action::Send>(&*a)) {
          auto it = links.find(s->conn.value);
          REQUIRE(it != links.end());
          Link& l = *it->second;
          std::size_t used = 0;
          REQUIRE(l.parser.feed(*s->bytes, used) == http::RequestParser::State::Complete);
          auto resp = response_for(l.to, l.parser.request(), l);
          l.parser.next();
          Behaviour& b = sources[l.to];
          bool cut = false;
          if (b.cut && !b.cut_done && *b.cut < resp.size()) {
            resp.resize(*b.cut);
            cut = true;
            b.cut_done = true;
          }
          const ConnId id = s->conn;
          for (std::size_t i = 0; i < resp.size(); i += b.chunk) {
            core.handle_bytes(id, wire::as_bytes(std::string_view(resp).substr(i, b.chunk)), now);
            if (!links.count(id.value)) break;
          }
          if (cut && links.count(id.value)) {
            links.erase(id.value);
            core.handle_closed(id, CloseReason::PeerClosed, now);
          }
        } else if (auto* cl = std::get_if<action::Close>(&*a)) {
          if (links.erase(cl->conn.value)) core.handle_closed(cl->conn, cl->reason, now);
        }
      }
      if (!pending_connects.empty()) {
        any = true;
        auto pc = pending_connects;
        pending_connects.clear();
        for (auto [id, ok] : pc) {
          if (ok) {
            core.handle_connected(id, now);
          } else {
            links.erase(id.value);
            core.handle_closed(id, CloseReason::ConnectFailed, now);
          }
        }
      }
      while (auto e = core.poll_event()) {
        any = true;
        events.push_back(*e);
      }
      if (!any) return true;
    }
    return false;
  }

  bool done() const {
    for (const auto& e : events) {
      if (std::holds_alternative<event::DownloadDone>(e) || std::holds_alternative<event::DownloadFailed>(e)) return true;
    }
    return false;
  }
  // Runs, moving time forward to each timeout, until the download ends.
  void run(DownloadCore& core, Instant& now, int max_steps = 1000) {
    REQUIRE(drive(core, now));
    for (int i = 0; i < max_steps && !done(); ++i) {
      auto t = core.poll_timeout();
      REQUIRE(t);
      if (*t > now) now = *t;
      core.handle_timeout(now);
      REQUIRE(drive(core, now));
    }
    REQUIRE(done());
  }
  const event::DownloadDone* done_event() const {
    for (const auto& e : events) {
      if (auto* d = std::get_if<event::DownloadDone>(&e)) return d;
    }
    return nullptr;
  }
  std::size_t dropped(std::string_view reason_part = "") const {
    std::size_t n = 0;
    for (const auto& e : events) {
      if (auto* s = std::get_if<event::SourceDropped>(&e)) n += s->reason.find(reason_part) != std::string::npos;
    }
    return n;
  }
};

struct Dirs {
  fs::path root;
  Dirs() {
    char t[] = "/tmp/servent-dl-XXXXXX";
    root = mkdtemp(t);
  }
  ~Dirs() { fs::remove_all(root); }
  std::string state() const { return (root / "state").string(); }
  std::string out() const { return (root / "out").string(); }
};

std::string random_content(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::string s(n, '\0');
  rng.fill(reinterpret_cast<std::uint8_t*>(s.data()), n);
  return s;
}

std::string slurp(const std::string& path) { return test::read_file(path); }

Endpoint ep(int i) { return Endpoint{0x7f000001, static_cast<std::uint16_t>(7000 + i)}; }

DownloadSpec spec_for(const FakeNet& net, const Dirs& dirs, int nsources, bool with_sha1 = true) {
  DownloadSpec s;
  s.name = "file.bin";
  s.size = net.content.size();
  if (with_sha1) s.sha1 = share::sha1_of(net.content);
  s.out_dir = dirs.out();
  for (int i = 0; i < nsources; ++i) s.sources.push_back(DownloadSource{ep(i), "/get/1/file.bin", {}});
  return s;
}

DownloadConfig small_chunks(const Dirs& dirs) {
  DownloadConfig c;
  c.state_dir = dirs.state();
  c.chunk_min = 64 * 1024;
  c.chunk_max = 256 * 1024;
  return c;
}

}  // namespace

TEST_CASE("download_single_source_completes_verified") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(1'000'000, 1);
  DownloadCore core(small_chunks(dirs));
  Instant now{Duration(1000)};
  std::string err;
  REQUIRE(core.start(spec_for(net, dirs, 1), now, err) != 0);
  net.run(core, now);
  auto* d = net.done_event();
  REQUIRE(d);
  CHECK(d->verified);
  CHECK(slurp(d->path) == net.content);
  CHECK(fs::path(d->path).filename() == "file.bin");
  CHECK_FALSE(fs::exists(fs::path(dirs.state()) / "downloads" / (DownloadCore::key_for(spec_for(net, dirs, 1)) + ".meta")));
}

TEST_CASE("download_uses_several_sources_in_parallel") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(2'000'000, 2);
  DownloadCore core(small_chunks(dirs));
  Instant now{Duration(1000)};
  std::string err;
  core.start(spec_for(net, dirs, 3), now, err);
  net.run(core, now);
  REQUIRE(net.done_event());
  CHECK(slurp(net.done_event()->path) == net.content);
  for (int i = 0; i < 3; ++i) CHECK(net.served[ep(i)] > 0);
}

TEST_CASE("download_resumes_after_a_cut_at_any_point") {
  const std::string content = random_content(300'000, 3);
  // Cut points inside the response head, at its end, and through the body.
  for (std::size_t cut : {0, 1, 10, 60, 150, 199, 200, 201, 202, 1000, 65535, 65536, 150000, 300100}) {
    CAPTURE(cut);
    Dirs dirs;
    FakeNet net;
    net.content = content;
    net.sources[ep(0)].cut = cut;
    net.sources[ep(0)].chunk = 1000;
    DownloadConfig cfg = small_chunks(dirs);
    cfg.chunk_max = 1 << 20;
    DownloadCore core(cfg);
    Instant now{Duration(1000)};
    std::string err;
    core.start(spec_for(net, dirs, 1), now, err);
    net.run(core, now);
    REQUIRE(net.done_event());
    CHECK(slurp(net.done_event()->path) == content);
    // The retry asked only for what was missing: from the first byte the cut
    // response did not deliver.
    REQUIRE(net.requests.size() >= 2);
    const std::size_t head = net.head_sizes.at(0);
    const std::size_t have = cut > head ? cut - head : 0;
    if (have < content.size()) {
      CHECK(net.requests[1] == "127.0.0.1:7000 " + std::to_string(have) + "-" + std::to_string(content.size() - 1));
    }
  }
}

TEST_CASE("download_resumes_from_the_partial_file_after_a_restart") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(500'000, 4);
  net.sources[ep(0)].cut = 123'456;
  net.sources[ep(0)].chunk = 4096;
  DownloadConfig cfg = small_chunks(dirs);
  cfg.chunk_max = 1 << 20;
  Instant now{Duration(1000)};
  {
    DownloadCore first(cfg);
    std::string err;
    first.start(spec_for(net, dirs, 1), now, err);
    REQUIRE(net.drive(first, now));
    // The "process" ends here: the core goes away without finishing.
  }
  REQUIRE(net.requests.size() == 1);
  FakeNet again;
  again.content = net.content;
  DownloadCore second(cfg);
  std::string err;
  second.start(spec_for(again, dirs, 1), now, err);
  again.run(second, now);
  REQUIRE(again.done_event());
  CHECK(slurp(again.done_event()->path) == net.content);
  REQUIRE_FALSE(again.requests.empty());
  CHECK_FALSE(again.requests[0].ends_with(" 0-499999"));  // it did not start over
  std::uint64_t fetched = 0;
  for (auto& [e, n] : again.served) fetched += n;
  CHECK(fetched < 500'000);
}

TEST_CASE("download_drops_sources_that_lie") {
  SUBCASE("content-range") {
    Dirs dirs;
    FakeNet net;
    net.content = random_content(400'000, 5);
    net.sources[ep(0)].lie_range = true;
    DownloadCore core(small_chunks(dirs));
    Instant now{Duration(1000)};
    std::string err;
    core.start(spec_for(net, dirs, 2), now, err);
    net.run(core, now);
    REQUIRE(net.done_event());
    CHECK(slurp(net.done_event()->path) == net.content);
    CHECK(core.stat(DownloadCore::kSourcesLying) == 1);
    CHECK(net.dropped("Content-Range") == 1);
  }
  SUBCASE("content-length") {
    Dirs dirs;
    FakeNet net;
    net.content = random_content(400'000, 6);
    net.sources[ep(1)].lie_length = true;
    DownloadCore core(small_chunks(dirs));
    Instant now{Duration(1000)};
    std::string err;
    core.start(spec_for(net, dirs, 2), now, err);
    net.run(core, now);
    REQUIRE(net.done_event());
    CHECK(slurp(net.done_event()->path) == net.content);
    CHECK(core.stat(DownloadCore::kSourcesLying) == 1);
  }
  SUBCASE("another file's urn") {
    Dirs dirs;
    FakeNet net;
    net.content = random_content(100'000, 7);
    net.sources[ep(0)].urn_override = share::sha1_urn(share::sha1_of("something else"));
    DownloadCore core(small_chunks(dirs));
    Instant now{Duration(1000)};
    std::string err;
    core.start(spec_for(net, dirs, 2), now, err);
    net.run(core, now);
    REQUIRE(net.done_event());
    CHECK(core.stat(DownloadCore::kSourcesWrongUrn) == 1);
  }
}

TEST_CASE("download_finds_and_drops_the_source_of_bad_bytes") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(1'000'000, 8);
  net.sources[ep(1)].corrupt = true;
  DownloadCore core(small_chunks(dirs));
  Instant now{Duration(1000)};
  std::string err;
  core.start(spec_for(net, dirs, 3), now, err);
  net.run(core, now);
  auto* d = net.done_event();
  REQUIRE(d);
  CHECK(d->verified);
  CHECK(slurp(d->path) == net.content);
  CHECK(core.stat(DownloadCore::kVerifyFailures) >= 1);
  CHECK(core.stat(DownloadCore::kSourcesBadData) == 1);
  CHECK(net.dropped("urn:sha1") == 1);
}

TEST_CASE("download_with_only_a_bad_source_fails_and_keeps_nothing_bad") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(200'000, 9);
  net.sources[ep(0)].corrupt = true;
  DownloadCore core(small_chunks(dirs));
  Instant now{Duration(1000)};
  std::string err;
  core.start(spec_for(net, dirs, 1), now, err);
  net.run(core, now);
  CHECK(net.done_event() == nullptr);
  CHECK(core.stat(DownloadCore::kSourcesBadData) == 1);
  CHECK(core.stat(DownloadCore::kFailed) == 1);
  CHECK_FALSE(fs::exists(fs::path(dirs.out()) / "file.bin"));
}

TEST_CASE("download_waits_for_busy_sources_and_survives_refused_ones") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(300'000, 10);
  net.sources[ep(0)].busy = 2;
  net.sources[ep(1)].refuse = true;
  DownloadCore core(small_chunks(dirs));
  Instant now{Duration(1000)};
  const Instant start = now;
  std::string err;
  core.start(spec_for(net, dirs, 2), now, err);
  net.run(core, now);
  REQUIRE(net.done_event());
  CHECK(slurp(net.done_event()->path) == net.content);
  CHECK(core.stat(DownloadCore::kSourceBusy) == 2);
  CHECK(now - start >= Duration(10'000));  // honoured Retry-After: 5, twice
  CHECK(net.dropped("failures") == 1);     // the refusing one, after max_failures
}

TEST_CASE("download_without_urn_learns_it_from_the_source") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(50'000, 11);
  DownloadCore core(small_chunks(dirs));
  Instant now{Duration(1000)};
  std::string err;
  auto spec = spec_for(net, dirs, 1, false);
  spec.size.reset();
  core.start(spec, now, err);
  net.run(core, now);
  REQUIRE(net.done_event());
  CHECK(net.done_event()->verified);
  CHECK(slurp(net.done_event()->path) == net.content);
}

TEST_CASE("magnet_and_url_parsing") {
  auto m = spec_from_magnet(
      "magnet:?xt=urn:sha1:QEXMLRD6GKGWLOQLGT7O4ZEAXARBGBD3&dn=hello+gnutella.txt&xl=39"
      "&xs=http://127.0.0.1:6350/uri-res/N2R?urn:sha1:QEXMLRD6GKGWLOQLGT7O4ZEAXARBGBD3");
  REQUIRE(m);
  CHECK(m->name == "hello gnutella.txt");
  CHECK(m->size == 39u);
  CHECK(share::sha1_urn(*m->sha1) == "urn:sha1:QEXMLRD6GKGWLOQLGT7O4ZEAXARBGBD3");
  REQUIRE(m->sources.size() == 1);
  CHECK(m->sources[0].endpoint == Endpoint{0x7f000001, 6350});
  CHECK_FALSE(spec_from_magnet("magnet:?dn=x"));
  CHECK_FALSE(spec_from_magnet("http://x"));
  CHECK(DownloadSource::from_url("http://127.0.0.1:6346/get/1/a%20b")->target == "/get/1/a%20b");
  CHECK_FALSE(DownloadSource::from_url("http://127.0.0.1:6346/get/1/a b"));
  CHECK_FALSE(DownloadSource::from_url("ftp://127.0.0.1/x"));
  CHECK(name_from_target("/get/1/a%20b.mp3") == "a b.mp3");
  CHECK(name_from_target("/get/1/..%2f..%2fetc%2fpasswd").empty());
}

TEST_CASE("download_from_a_firewalled_source_asks_for_a_push_and_uses_the_giv_connection") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(100'000, 12);
  DownloadCore core(small_chunks(dirs));
  Instant now{Duration(1000)};
  std::string err;
  DownloadSpec spec = spec_for(net, dirs, 0);
  wire::gnutella::ServentId sid;
  sid.bytes.fill(0x42);
  spec.sources.push_back(DownloadSource{ep(0), "/get/3/file.bin", DownloadSource::PushVia{sid, 3}});
  core.start(spec, now, err);
  REQUIRE(net.drive(core, now));
  CHECK(net.links.empty());  // no outgoing connection: it cannot be reached
  const event::PushNeeded* push = nullptr;
  for (const auto& e : net.events) {
    if (auto* p = std::get_if<event::PushNeeded>(&e)) push = p;
  }
  REQUIRE(push);
  CHECK(push->servent == sid);
  CHECK(push->index == 3);

  // A GIV naming someone else is refused.
  ConnId stranger{900};
  core.handle_inbound_giv(stranger, now);
  core.handle_bytes(stranger, wire::as_bytes("GIV 3:" + std::string(32, 'a') + "/file.bin\n\n"), now);
  // So is a line that is not a GIV at all.
  ConnId garbage{901};
  core.handle_inbound_giv(garbage, now);
  core.handle_bytes(garbage, wire::as_bytes("GIV nonsense\n\n"), now);
  std::vector<ConnId> closed;
  while (auto a = core.poll_action()) {
    if (auto* c = std::get_if<action::Close>(&*a)) closed.push_back(c->conn);
  }
  CHECK(closed == std::vector<ConnId>{stranger, garbage});
  CHECK(core.stat(DownloadCore::kGivUnknown) == 1);
  CHECK(core.stat(DownloadCore::kGivMalformed) == 1);
  core.handle_closed(stranger, CloseReason::HandshakeRefused, now);
  core.handle_closed(garbage, CloseReason::HandshakeMalformed, now);

  // The right one connects back: the request goes out on its connection.
  ConnId giv{902};
  auto link = std::make_unique<FakeNet::Link>();
  link->to = ep(0);
  net.links[giv.value] = std::move(link);
  core.handle_inbound_giv(giv, now);
  core.handle_bytes(giv, wire::as_bytes("GIV 3:" + sid.hex() + "/file.bin\n\n"), now);
  net.run(core, now);
  REQUIRE(net.done_event());
  CHECK(slurp(net.done_event()->path) == net.content);
  CHECK(core.stat(DownloadCore::kGivMatched) == 1);
}

TEST_CASE("download_requests_tell_each_source_about_the_others") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(600'000, 13);
  DownloadCore core(small_chunks(dirs));
  Instant now{Duration(1000)};
  std::string err;
  core.start(spec_for(net, dirs, 3), now, err);
  net.run(core, now);
  REQUIRE(net.done_event());
  REQUIRE_FALSE(net.x_alts.empty());
  for (const auto& alt : net.x_alts) {
    // Two other sources each time, never the one asked.
    CHECK(std::count(alt.begin(), alt.end(), ',') == 1);
  }
}

TEST_CASE("download_pause_closes_its_connections_and_resume_finishes_it") {
  Dirs dirs;
  FakeNet net;
  net.content = random_content(600'000, 9);
  DownloadCore core(small_chunks(dirs));
  Instant now{Duration(1000)};
  std::string err;
  const auto id = core.start(spec_for(net, dirs, 2), now, err);
  REQUIRE(id != 0);
  // The connects are out; pause before they complete.
  std::vector<ConnId> connecting;
  while (auto a = core.poll_action()) {
    if (auto* c = std::get_if<action::Connect>(&*a)) connecting.push_back(c->conn);
  }
  REQUIRE(connecting.size() == 2);
  CHECK(core.pause(id, now));
  std::vector<ConnId> closed;
  while (auto a = core.poll_action()) {
    if (auto* c = std::get_if<action::Close>(&*a)) closed.push_back(c->conn);
  }
  CHECK(closed.size() == 2);
  for (auto c : closed) core.handle_closed(c, CloseReason::Normal, now);
  REQUIRE(core.list().size() == 1);
  CHECK(core.list()[0].state == "paused");
  // Time passes: a paused download asks nobody.
  now = now + Duration(600'000);
  core.handle_timeout(now);
  CHECK_FALSE(core.poll_action().has_value());
  // Resumed, it completes from its sources, none of them blamed for the pause.
  CHECK(core.resume(id, now));
  CHECK(core.list()[0].state == "active");
  net.run(core, now);
  REQUIRE(net.done_event());
  CHECK(slurp(net.done_event()->path) == net.content);
  CHECK(net.dropped() == 0);
  CHECK_FALSE(core.pause(id, now));   // finished: nothing to pause
  CHECK_FALSE(core.pause(999, now));  // unknown
}
