// The Napster client side with a fake outbox and hand-moved time: the
// NapsterClient core against scripted server frames, DownloadCore against a
// scripted Napster peer (GET and SEND, resumes that honour or ignore the
// offset, lying peers), and UploadCore serving Napster GETs and SENDs.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "servent/download/download_core.hpp"
#include "servent/napster/napster_client.hpp"
#include "servent/upload/upload_core.hpp"
#include "support/files.hpp"
#include "wire/napster/napster.hpp"

namespace fs = std::filesystem;
using namespace sv;
namespace nap = sv::wire::napster;

namespace {

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("servent-napc") {}
};

std::string bytes_of(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
  return s;
}

template <typename CoreT>
std::vector<Action> drain(CoreT& c) {
  std::vector<Action> out;
  while (auto a = c.poll_action()) out.push_back(std::move(*a));
  return out;
}

std::vector<std::pair<std::uint16_t, std::string>> frames_in(const std::vector<Action>& actions) {
  std::vector<std::pair<std::uint16_t, std::string>> out;
  for (const auto& a : actions) {
    const auto* s = std::get_if<action::Send>(&a);
    if (!s) continue;
    nap::Framer f(65535);
    f.feed(*s->bytes);
    while (auto fr = f.next()) out.emplace_back(fr->type, std::string(fr->payload));
  }
  return out;
}

std::string sent_text(const std::vector<Action>& actions) {
  std::string out;
  for (const auto& a : actions) {
    if (const auto* s = std::get_if<action::Send>(&a)) out.append(s->bytes->begin(), s->bytes->end());
    if (const auto* f = std::get_if<action::SendFile>(&a); f && f->head) out.append(f->head->begin(), f->head->end());
  }
  return out;
}

}  // namespace

// --- NapsterClient ----------------------------------------------------------------

TEST_CASE("napster_client_logs_in_shares_searches_and_brokers_transfers") {
  TempDir dir;
  fs::create_directories(dir.path / "Music" / "Artist");
  std::ofstream(dir.path / "Music" / "Artist" / "Song One.mp3") << bytes_of(5000, 1);
  share::Library lib({(dir.path / "Music").string()}, "");
  lib.rescan();
  NapsterClientConfig cfg;
  cfg.server = Endpoint{0x7f000001, 8888};
  cfg.nick = "me";
  cfg.data_port = 6699;
  NapsterClient c(lib, cfg);
  Instant now{Duration(1000)};
  c.start(now);
  auto acts = drain(c);
  REQUIRE(acts.size() == 1);
  const ConnId conn = std::get<action::Connect>(acts[0]).conn;
  CHECK(std::get<action::Connect>(acts[0]).to == cfg.server);
  c.handle_connected(conn, cfg.server, Direction::Outbound, now);
  auto login = frames_in(drain(c));
  REQUIRE(login.size() == 1);
  CHECK(login[0].first == nap::kLogin);
  auto l = nap::decode_login(login[0].second);
  REQUIRE(l.ok());
  CHECK(l->nick == "me");
  CHECK(l->port == 6699);

  // 3 (then MOTD and stats): logged in, the library shared under Napster names.
  wire::Bytes in;
  nap::append_frame(in, nap::kLoginAck, "anon@127.0.0.1");
  nap::append_frame(in, nap::kMotd, "hello");
  nap::append_frame(in, nap::kStats, "3 100 2");
  c.handle_bytes(conn, in, now);
  CHECK(c.logged_in());
  CHECK(c.server_stats().files == 100);
  auto shares = frames_in(drain(c));
  REQUIRE(shares.size() == 1);
  CHECK(shares[0].first == nap::kShare);
  auto e = nap::decode_share(shares[0].second);
  REQUIRE(e.ok());
  CHECK(e->name == "Music\\Artist\\Song One.mp3");
  CHECK(e->size == 5000);
  auto ev = c.poll_event();
  REQUIRE(ev);
  CHECK(std::holds_alternative<napster_event::LoggedIn>(*ev));

  // Search: one at a time, results tagged with the search they answer.
  const auto s1 = c.search("free \"software\"", now);
  const auto s2 = c.search("other", now);
  CHECK(s1 != 0);
  CHECK(s2 != s1);
  auto q = frames_in(drain(c));
  REQUIRE(q.size() == 1);  // the second waits for the first's 202
  CHECK(q[0].second == R"(FILENAME CONTAINS "free software" MAX_RESULTS 100)");
  in.clear();
  for (int i = 0; i < 2; ++i) {
    nap::append_frame(in, nap::kSearchResult,
                      nap::encode_search_result({{"C:\\x\\free software " + std::to_string(i) + ".mp3", "", 10, 128, 44100, 3},
                                                 "bob", 0x7f000002, 4}));
  }
  nap::append_frame(in, nap::kSearchEnd, "");
  c.handle_bytes(conn, in, now);
  int results = 0;
  bool done = false;
  while (auto x = c.poll_event()) {
    if (auto* r = std::get_if<napster_event::Result>(&*x)) {
      CHECK(r->search == s1);
      CHECK(r->result.nick == "bob");
      ++results;
    }
    if (auto* d = std::get_if<napster_event::SearchDone>(&*x)) done = d->search == s1 && d->results == 2;
  }
  CHECK(results == 2);
  CHECK(done);
  auto q2 = frames_in(drain(c));
  REQUIRE(q2.size() == 1);
  CHECK(q2[0].second.find("\"other\"") != std::string::npos);

  // 203 -> 204: where to connect; 204 with port 0: we ask with 500.
  CHECK(c.download("bob", "C:\\x\\f.mp3"));
  CHECK(frames_in(drain(c)).at(0).first == nap::kDownloadRequest);
  in.clear();
  nap::append_frame(in, nap::kDownloadAck, nap::encode_transfer_ack({"bob", 0x7f000002, 6700, "C:\\x\\f.mp3", "", 4}));
  nap::append_frame(in, nap::kDownloadAck, nap::encode_transfer_ack({"fw", 0x7f000003, 0, "C:\\x\\g.mp3", "", 4}));
  nap::append_frame(in, nap::kDownloadError, R"(gone "C:\x\h.mp3")");
  c.handle_bytes(conn, in, now);
  auto after = frames_in(drain(c));
  REQUIRE(after.size() == 1);
  CHECK(after[0].first == nap::kAltDownloadRequest);
  CHECK(after[0].second == R"(fw "C:\x\g.mp3")");
  bool ready = false, error = false;
  while (auto x = c.poll_event()) {
    if (auto* r = std::get_if<napster_event::DownloadReady>(&*x)) ready = r->at == Endpoint{0x7f000002, 6700};
    if (auto* r = std::get_if<napster_event::DownloadError>(&*x)) error = r->nick == "gone";
  }
  CHECK(ready);
  CHECK(error);

  // 607: accepted for a file we share, ignored for another; 501: push; ping.
  in.clear();
  nap::append_frame(in, nap::kUploadRequest, R"(alice "Music\Artist\Song One.mp3")");
  nap::append_frame(in, nap::kUploadRequest, R"(alice "Music\..\secret.txt")");
  nap::append_frame(in, nap::kAltDownloadAck, nap::encode_transfer_ack({"carol", 0x7f000004, 6701, "Music\\Artist\\Song One.mp3", "", 0}));
  nap::append_frame(in, nap::kPing, "alice");
  c.handle_bytes(conn, in, now);
  auto replies = frames_in(drain(c));
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].first == nap::kUploadAccept);
  CHECK(replies[0].second == R"(alice "Music\Artist\Song One.mp3")");
  CHECK(replies[1].first == nap::kPong);
  CHECK(c.stat(NapsterClient::kUploadsRefused) == 1);
  bool push = false;
  while (auto x = c.poll_event()) {
    if (auto* p = std::get_if<napster_event::PushUpload>(&*x)) push = p->to == Endpoint{0x7f000004, 6701} && p->nick == "carol";
  }
  CHECK(push);

  // Lost: reported, then a new connection after the backoff.
  c.handle_closed(conn, CloseReason::PeerClosed, now);
  CHECK_FALSE(c.logged_in());
  REQUIRE(c.poll_timeout());
  CHECK(drain(c).empty());
  now = *c.poll_timeout();
  c.handle_timeout(now);
  auto again = drain(c);
  REQUIRE(again.size() == 1);
  CHECK(std::get<action::Connect>(again[0]).conn != conn);
}

TEST_CASE("napster_client_login_refused_is_reported_and_retried") {
  share::Library lib;
  NapsterClientConfig cfg;
  cfg.server = Endpoint{0x7f000001, 8888};
  NapsterClient c(lib, cfg);
  Instant now{Duration(0)};
  c.start(now);
  const ConnId conn = std::get<action::Connect>(drain(c).at(0)).conn;
  c.handle_connected(conn, cfg.server, Direction::Outbound, now);
  drain(c);
  c.handle_bytes(conn, nap::encode_frame(nap::kError, "Invalid Password"), now);
  auto ev = c.poll_event();
  REQUIRE(ev);
  REQUIRE(std::holds_alternative<napster_event::LoginFailed>(*ev));
  CHECK(std::get<napster_event::LoginFailed>(*ev).reason == "Invalid Password");
  CHECK(c.search("x", now) == 0);  // not logged in
  REQUIRE(c.poll_timeout());
  CHECK(*c.poll_timeout() >= now + cfg.retry_min);
}

// --- DownloadCore with a Napster source ----------------------------------------

namespace {

struct NapsterPeer {
  std::string content;
  bool ignores_offset = false;  // TekNap's habit
  bool other_file = false;      // sends different bytes
  std::string answer;           // instead of the size: an error text
};

struct DownloadRig {
  TempDir dir;
  DownloadCore core;
  Instant now{Duration(1000)};
  std::vector<DownloadEvent> events;
  explicit DownloadRig() : core(config(dir.path)) {}
  static DownloadConfig config(const fs::path& p) {
    DownloadConfig c;
    c.state_dir = (p / "state").string();
    c.napster_nick = "me";
    return c;
  }
  void take_events() {
    while (auto e = core.poll_event()) events.push_back(*e);
  }
  template <typename T>
  const T* last() const {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (auto* e = std::get_if<T>(&*it)) return e;
    }
    return nullptr;
  }
  // One GET transfer from `peer`, cut after `cut` data bytes when given.
  // Returns the offset the GET line asked for.
  std::uint64_t get(const NapsterPeer& peer, std::optional<std::size_t> cut = std::nullopt) {
    take_events();
    const auto* need = last<event::NapsterNeeded>();
    REQUIRE(need);
    CHECK(need->nick == "bob");
    const std::string file = need->file;
    events.clear();
    core.napster_ready("bob", file, Endpoint{0x7f000002, 6699}, now);
    auto acts = drain(core);
    REQUIRE(acts.size() == 1);
    const ConnId conn = std::get<action::Connect>(acts[0]).conn;
    core.handle_connected(conn, now);
    CHECK(drain(core).empty());  // the sharer speaks first
    core.handle_bytes(conn, wire::as_bytes("1"), now);
    const std::string req = sent_text(drain(core));
    REQUIRE(req.starts_with("GETme \"" + file + "\" "));
    const std::uint64_t offset = std::stoull(req.substr(req.rfind(' ') + 1));
    std::string reply = peer.answer;
    if (reply.empty()) {
      std::string data = peer.other_file ? bytes_of(peer.content.size(), 99) : peer.content;
      reply = std::to_string(data.size()) + data.substr(peer.ignores_offset ? 0 : offset);
      if (cut) reply.resize(std::to_string(data.size()).size() + *cut);
    }
    for (std::size_t i = 0; i < reply.size(); i += 1000) {
      core.handle_bytes(conn, wire::as_bytes(std::string_view(reply).substr(i, 1000)), now);
      bool closed = false;
      for (const auto& a : drain(core)) closed = closed || std::holds_alternative<action::Close>(a);
      if (closed) {
        core.handle_closed(conn, CloseReason::Normal, now);
        take_events();
        return offset;
      }
    }
    core.handle_closed(conn, CloseReason::PeerClosed, now);
    drain(core);
    take_events();
    return offset;
  }
  void retry() {
    // The source waits out its backoff; then it is asked for again.
    now = now + 120s;
    core.handle_timeout(now);
    drain(core);
  }
};

DownloadSpec napster_spec(const TempDir& dir, std::uint64_t size) {
  DownloadSpec spec;
  spec.name = "Song.mp3";
  spec.size = size;
  DownloadSource src;
  src.napster = DownloadSource::NapsterVia{"bob", "C:\\m\\\"Quoted\" Song.mp3"};
  spec.sources.push_back(src);
  spec.out_dir = (dir.path / "out").string();
  return spec;
}

}  // namespace

TEST_CASE("napster_download_by_get_and_resume_whether_the_offset_is_honoured_or_not") {
  for (bool ignores : {false, true}) {
    CAPTURE(ignores);
    DownloadRig rig;
    NapsterPeer peer{bytes_of(300'000, 5), ignores, false, ""};
    std::string error;
    const auto id = rig.core.start(napster_spec(rig.dir, peer.content.size()), rig.now, error);
    REQUIRE(id != 0);
    CHECK(rig.get(peer, 123'456) == 0);  // first try: from 0, cut after 123,456 bytes
    CHECK_FALSE(rig.last<event::DownloadDone>());
    rig.retry();
    const std::uint64_t offset = rig.get(peer);
    // The resume asks for 4096 bytes we have, to see where the peer starts.
    CHECK(offset == 123'456 - 4096);
    const auto* done = rig.last<event::DownloadDone>();
    REQUIRE(done);
    CHECK(test::read_file(done->path) == peer.content);
    if (ignores) CHECK(rig.core.stat(DownloadCore::kBytesDiscarded) >= 123'456 - 4096);
  }
}

TEST_CASE("napster_download_drops_a_peer_that_sends_another_file_or_refuses") {
  {
    DownloadRig rig;
    NapsterPeer peer{bytes_of(100'000, 6), false, false, ""};
    std::string error;
    REQUIRE(rig.core.start(napster_spec(rig.dir, peer.content.size()), rig.now, error) != 0);
    rig.get(peer, 50'000);
    rig.retry();
    NapsterPeer liar = peer;
    liar.other_file = true;
    rig.get(liar);
    const auto* dropped = rig.last<event::SourceDropped>();
    REQUIRE(dropped);
    CHECK(dropped->reason.find("differ") != std::string::npos);
    CHECK(rig.core.stat(DownloadCore::kSourcesLying) == 1);
  }
  {
    DownloadRig rig;
    NapsterPeer refusing{bytes_of(1000, 7), false, false, "INVALID REQUEST"};
    std::string error;
    REQUIRE(rig.core.start(napster_spec(rig.dir, 1000), rig.now, error) != 0);
    rig.get(refusing);
    const auto* dropped = rig.last<event::SourceDropped>();
    REQUIRE(dropped);
    CHECK(dropped->reason.find("INVALID REQUEST") != std::string::npos);
  }
}

TEST_CASE("napster_download_from_a_firewalled_sharer_by_send") {
  DownloadRig rig;
  const std::string content = bytes_of(200'000, 8);
  std::string error;
  REQUIRE(rig.core.start(napster_spec(rig.dir, content.size()), rig.now, error) != 0);
  rig.take_events();
  REQUIRE(rig.last<event::NapsterNeeded>());
  // The sharer connects to our data port (where the driver said "1").
  const ConnId in{77};
  rig.core.handle_connected(in, Endpoint{0x7f000003, 40000}, Direction::Inbound, rig.now);
  const std::string line = "SENDbob \"C:\\m\\\"Quoted\" Song.mp3\" " + std::to_string(content.size());
  rig.core.handle_bytes(in, wire::as_bytes(line.substr(0, 10)), rig.now);  // cut anywhere
  CHECK(drain(rig.core).empty());
  rig.core.handle_bytes(in, wire::as_bytes(line.substr(10)), rig.now);
  CHECK(sent_text(drain(rig.core)) == "0");  // the offset
  for (std::size_t i = 0; i < content.size(); i += 7000) {
    rig.core.handle_bytes(in, wire::as_bytes(std::string_view(content).substr(i, 7000)), rig.now);
  }
  drain(rig.core);
  rig.take_events();
  const auto* done = rig.last<event::DownloadDone>();
  REQUIRE(done);
  CHECK(test::read_file(done->path) == content);
  // A SEND nobody waits for is refused.
  const ConnId stray{78};
  rig.core.handle_connected(stray, Endpoint{0x7f000003, 40001}, Direction::Inbound, rig.now);
  rig.core.handle_bytes(stray, wire::as_bytes("SENDeve \"x.mp3\" 10"), rig.now);
  bool closed = false;
  for (const auto& a : drain(rig.core)) closed = closed || std::holds_alternative<action::Close>(a);
  CHECK(closed);
}

// --- UploadCore serving Napster peers --------------------------------------------

TEST_CASE("napster_uploads_by_get_and_by_send_and_nothing_outside_the_share") {
  TempDir dir;
  fs::create_directories(dir.path / "Music");
  const std::string song = bytes_of(10'000, 9);
  std::ofstream(dir.path / "Music" / "Song.mp3") << song;
  std::ofstream(dir.path / "secret.txt") << "secret";
  share::Library lib({(dir.path / "Music").string()}, "");
  lib.rescan();
  UploadCore up(lib);
  Instant now{Duration(1000)};
  auto serve = [&](ConnId id, const std::string& request) {
    up.handle_connected(id, Endpoint{0x7f000009, 5000}, Direction::Inbound, now);
    up.handle_bytes(id, wire::as_bytes(request.substr(0, 3)), now);  // "GET" alone: cannot tell yet
    CHECK(drain(up).empty());
    up.handle_bytes(id, wire::as_bytes(request.substr(3)), now);
    return drain(up);
  };
  auto ok = serve(ConnId{1}, R"(GETbob "Music\Song.mp3" 4000)");
  CHECK(sent_text(ok) == "10000");  // the FULL size
  const action::SendFile* sf = nullptr;
  for (const auto& a : ok) {
    if (auto* f = std::get_if<action::SendFile>(&a)) sf = f;
  }
  REQUIRE(sf);
  CHECK(sf->offset == 4000);
  CHECK(sf->length == 6000);
  CHECK(up.active_uploads() == 1);
  // The driver tells how far the file has got; the uploads list shows it.
  up.handle_send_progress(ConnId{1}, 3000, now);
  REQUIRE(up.uploads().size() == 1);
  CHECK(up.uploads()[0].sent == 3000);
  CHECK(up.uploads()[0].length == 6000);
  up.handle_send_done(ConnId{1}, true, now);
  drain(up);
  std::uint64_t next = 10;
  for (const char* bad : {R"(GETbob "Music\..\secret.txt" 0)", R"(GETbob "Other\Song.mp3" 0)",
                          R"(GETbob "Music\Song.mp3" 10001)", R"(GETbob "Music\\Song.mp3" 0)"}) {
    CAPTURE(bad);
    auto no = serve(ConnId{next++}, bad);
    CHECK(sent_text(no) == "INVALID REQUEST");
    for (const auto& a : no) CHECK_FALSE(std::holds_alternative<action::SendFile>(a));
  }
  CHECK(up.stat(UploadCore::kNapsterRefused) == 4);
  // HTTP on the same core is untouched.
  up.handle_connected(ConnId{3}, Endpoint{0x7f000009, 5001}, Direction::Inbound, now);
  up.handle_bytes(ConnId{3}, wire::as_bytes("GET /get/1/Song.mp3 HTTP/1.0\r\n\r\n"), now);
  CHECK(sent_text(drain(up)).starts_with("HTTP/1.1 200"));

  // SEND: we connect out, read "1", say SEND and the line, read the offset.
  up.napster_push("Music\\Song.mp3", Endpoint{0x7f000008, 6699}, now);
  auto acts = drain(up);
  REQUIRE(acts.size() == 1);
  const ConnId out = std::get<action::Connect>(acts[0]).conn;
  up.handle_connected(out, Endpoint{0x7f000008, 6699}, Direction::Outbound, now);
  CHECK(drain(up).empty());
  up.handle_bytes(out, wire::as_bytes("1"), now);
  CHECK(sent_text(drain(up)) == "SENDservent \"Music\\Song.mp3\" 10000");
  up.handle_bytes(out, wire::as_bytes("2500"), now);
  bool sent = false;
  for (const auto& a : drain(up)) {
    if (auto* f = std::get_if<action::SendFile>(&a)) sent = f->offset == 2500 && f->length == 7500;
  }
  CHECK(sent);
  up.napster_push("Music\\..\\secret.txt", Endpoint{0x7f000008, 6699}, now);
  CHECK(drain(up).empty());
}

TEST_CASE("napster_peer_that_says_1_and_then_nothing_is_given_up_and_retried") {
  DownloadRig rig;
  std::string error;
  REQUIRE(rig.core.start(napster_spec(rig.dir, 1000), rig.now, error) != 0);
  rig.take_events();
  rig.core.napster_ready("bob", "C:\\m\\\"Quoted\" Song.mp3", Endpoint{0x7f000002, 6699}, rig.now);
  const ConnId conn = std::get<action::Connect>(drain(rig.core).at(0)).conn;
  rig.core.handle_connected(conn, rig.now);
  rig.core.handle_bytes(conn, wire::as_bytes("1"), rig.now);
  CHECK(sent_text(drain(rig.core)).starts_with("GET"));
  // ... and then nothing: the stall timeout closes it and the source waits.
  rig.now = rig.now + 31s;
  rig.core.handle_timeout(rig.now);
  bool closed = false;
  for (const auto& a : drain(rig.core)) closed = closed || std::holds_alternative<action::Close>(a);
  CHECK(closed);
  CHECK(rig.core.stat(DownloadCore::kStalls) == 1);
  rig.core.handle_closed(conn, CloseReason::HttpIdle, rig.now);
  rig.take_events();
  CHECK_FALSE(rig.last<event::DownloadFailed>());  // not given up: asked for again later
  rig.events.clear();
  rig.retry();
  rig.take_events();
  CHECK(rig.last<event::NapsterNeeded>());
}
