// NapsterServer with a fake outbox and hand-moved time: every command of
// napster.txt §3 the server answers, as opennap-ng answers it.
#include <doctest/doctest.h>

#include <map>

#include "servent/napster/napster_server.hpp"

using namespace sv;
namespace nap = sv::wire::napster;

namespace {

struct Out {
  std::uint16_t type;
  std::string payload;
};

struct Harness {
  NapsterServer server;
  Instant now{Duration(1000)};
  std::map<std::uint64_t, std::vector<Out>> frames;   // per connection, in order
  std::map<std::uint64_t, std::size_t> sends;         // Send actions per connection
  std::map<std::uint64_t, action::Close> closes;
  std::uint64_t next_id = 1;

  explicit Harness(NapsterServerConfig c = {}) : server(std::move(c)) {}

  ConnId connect(std::uint32_t ip = 0x7f000001) {
    ConnId id{next_id++};
    server.handle_connected(id, Endpoint{ip, 40000}, Direction::Inbound, now);
    drain();
    return id;
  }
  void raw(ConnId id, const wire::Bytes& b) {
    server.handle_bytes(id, b, now);
    drain();
  }
  void feed(ConnId id, std::uint16_t type, std::string_view payload) { raw(id, nap::encode_frame(type, payload)); }
  void drain() {
    while (auto a = server.poll_action()) {
      if (auto* s = std::get_if<action::Send>(&*a)) {
        ++sends[s->conn.value];
        add_frames(s->conn, *s->bytes);
      } else if (auto* b = std::get_if<action::Broadcast>(&*a)) {
        for (ConnId c : b->conns) add_frames(c, *b->bytes);
      } else if (auto* c = std::get_if<action::Close>(&*a)) {
        closes[c->conn.value] = *c;
      }
    }
  }
  void add_frames(ConnId c, const Buffer& bytes) {
    nap::Framer f(65535);
    f.feed(bytes);
    while (auto fr = f.next()) frames[c.value].push_back({fr->type, std::string(fr->payload)});
  }
  std::vector<Out> take(ConnId c) { return std::exchange(frames[c.value], {}); }
  ConnId login(std::string_view nick, std::uint16_t port = 6699, std::uint32_t link = 8, std::uint32_t ip = 0x7f000001) {
    ConnId id = connect(ip);
    feed(id, nap::kLogin, fmt(nick, port, link));
    auto got = take(id);
    REQUIRE(!got.empty());
    REQUIRE(got[0].type == nap::kLoginAck);
    return id;
  }
  static std::string fmt(std::string_view nick, std::uint16_t port, std::uint32_t link) {
    return std::string(nick) + " pw " + std::to_string(port) + " \"test 1.0\" " + std::to_string(link);
  }
  void share(ConnId id, std::string_view name, std::uint64_t size = 4000000, std::uint32_t bitrate = 128,
             std::uint32_t freq = 44100) {
    feed(id, nap::kShare, nap::encode_share({std::string(name), "0123456789abcdef0123456789abcdef", size, bitrate, freq, 240}));
  }
  std::vector<nap::SearchResult> search(ConnId id, std::string_view query) {
    feed(id, nap::kSearch, query);
    std::vector<nap::SearchResult> out;
    auto got = take(id);
    REQUIRE(!got.empty());
    CHECK(got.back().type == nap::kSearchEnd);
    for (const auto& o : got) {
      if (o.type != nap::kSearchResult) continue;
      auto r = nap::decode_search_result(o.payload);
      REQUIRE(r.ok());
      out.push_back(*r);
    }
    return out;
  }
};

std::vector<std::uint16_t> types(const std::vector<Out>& v) {
  std::vector<std::uint16_t> t;
  for (const auto& o : v) t.push_back(o.type);
  return t;
}

}  // namespace

TEST_CASE("napster_login_gets_ack_motd_and_stats_in_one_write") {
  Harness h;
  ConnId a = h.connect();
  h.feed(a, nap::kLogin, R"(tekuser tekpw 6699 "TekNap-1.3g" 0 5201 0)");
  auto got = h.take(a);
  REQUIRE(got.size() >= 3);
  CHECK(got.front().type == nap::kLoginAck);
  CHECK(got.front().payload == "anon@127.0.0.1");
  CHECK(got.back().type == nap::kStats);
  CHECK(got.back().payload == "1 0 0");
  for (std::size_t i = 1; i + 1 < got.size(); ++i) CHECK(got[i].type == nap::kMotd);
  CHECK(h.sends[a.value] == 1);
  CHECK(h.server.users() == 1);
}

TEST_CASE("napster_login_refusals_as_opennap_ng_words_them") {
  struct Case {
    const char* what;
    std::uint16_t type;
    std::string payload;
    std::string error;
    NapsterServer::Stat stat;
  };
  Harness h;
  ConnId first = h.login("alice");
  const std::vector<Case> cases = {
      {"nick already online", nap::kLogin, R"(alice pw 0 "x" 0)", "Connecting too fast", NapsterServer::kLoginNickOnline},
      {"command before login", nap::kSearch, R"(FILENAME CONTAINS "x" MAX_RESULTS 1)", "invalid command",
       NapsterServer::kCommandsBeforeLogin},
      {"unparsable login", nap::kLogin, "alice", "Invalid Nickname", NapsterServer::kLoginInvalid},
      {"nick with a quote", nap::kLogin, R"(al"ice pw 0 "x" 0)", "Invalid Nickname", NapsterServer::kLoginInvalid},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto before = h.server.stat(c.stat);
    ConnId id = h.connect();
    h.feed(id, c.type, c.payload);
    auto got = h.take(id);
    REQUIRE(got.size() == 1);
    CHECK(got[0].type == nap::kError);
    CHECK(got[0].payload == c.error);
    CHECK(h.closes.count(id.value) == 1);
    CHECK(h.server.stat(c.stat) == before + 1);
    // A second command on the refused connection is ignored.
    h.feed(id, nap::kLogin, Harness::fmt("someone", 0, 0));
    CHECK(h.take(id).empty());
  }
  // Registered on first login: a wrong password later is refused.
  h.server.handle_closed(first, CloseReason::PeerClosed, h.now);
  ConnId again = h.connect();
  h.feed(again, nap::kLogin, R"(alice wrong 0 "x" 0)");
  auto got = h.take(again);
  REQUIRE(got.size() == 1);
  CHECK(got[0].payload == "Invalid Password");
  CHECK(h.server.users() == 0);
}

TEST_CASE("napster_new_user_query_and_registration") {
  Harness h;
  ConnId q = h.connect();
  h.feed(q, nap::kNewUserQuery, "newbie");
  h.feed(q, nap::kNewUserQuery, "bad nick");
  CHECK(types(h.take(q)) == std::vector<std::uint16_t>{nap::kNickOk, nap::kNickInvalid});
  h.feed(q, nap::kNewUserLogin, R"(newbie secret 6699 "x" 4 newbie@example.org)");
  auto got = h.take(q);
  REQUIRE(!got.empty());
  CHECK(got[0].type == nap::kLoginAck);
  CHECK(got[0].payload == "newbie@example.org");
  ConnId other = h.connect();
  h.feed(other, nap::kNewUserQuery, "newbie");
  CHECK(types(h.take(other)) == std::vector<std::uint16_t>{nap::kNickTaken});
  CHECK(h.server.stat(NapsterServer::kRegistrations) == 1);
}

TEST_CASE("napster_search_finds_shares_by_every_word_with_filters") {
  Harness h;
  ConnId sharer = h.login("sharer", 6699, 8, 0x0a000002);
  ConnId slow = h.login("slow", 6699, 2, 0x0a000003);
  ConnId searcher = h.login("searcher");
  h.share(sharer, R"(C:\My Music\Free Software Song.mp3)", 4000000, 128, 44100);
  h.share(sharer, R"(C:\My Music\Free Software Song (live).mp3)", 5000000, 320, 48000);
  h.share(sharer, R"(C:\My Music\Other Song.mp3)");
  h.share(slow, R"(D:\mp3\free software song.mp3)", 3000000, 96, 22050);
  auto all = h.search(searcher, R"(FILENAME CONTAINS "free software" MAX_RESULTS 100)");
  CHECK(all.size() == 3);
  // The folder is indexed too (the last two path components).
  CHECK(h.search(searcher, R"(FILENAME CONTAINS "music song" MAX_RESULTS 100)").size() == 3);
  CHECK(h.search(searcher, R"(FILENAME CONTAINS "FREE" FILENAME CONTAINS "live" MAX_RESULTS 100)").size() == 1);
  CHECK(h.search(searcher, R"(FILENAME CONTAINS "free software" MAX_RESULTS 2)").size() == 2);
  auto hq = h.search(searcher, R"(FILENAME CONTAINS "song" MAX_RESULTS 100 BITRATE "AT LEAST" "192")");
  REQUIRE(hq.size() == 1);
  CHECK(hq[0].file.bitrate == 320);
  CHECK(hq[0].file.name == R"(C:\My Music\Free Software Song (live).mp3)");
  CHECK(hq[0].nick == "sharer");
  CHECK(hq[0].ip == 0x0a000002);
  CHECK(hq[0].link == 8);
  CHECK(hq[0].file.md5 == std::string(32, '0'));
  CHECK(h.search(searcher, R"(FILENAME CONTAINS "song" MAX_RESULTS 100 FREQ "EQUAL TO" "22050")").size() == 1);
  auto fast = h.search(searcher, R"(FILENAME CONTAINS "song" MAX_RESULTS 100 LINESPEED "AT LEAST" 6)");
  CHECK(fast.size() == 3);
  for (const auto& r : fast) CHECK(r.nick == "sharer");
  CHECK(h.search(searcher, R"(FILENAME CONTAINS "nothing here" MAX_RESULTS 100)").empty());
  // Every result of a search went out in one write.
  const auto before = h.sends[searcher.value];
  h.search(searcher, R"(FILENAME CONTAINS "song" MAX_RESULTS 100)");
  CHECK(h.sends[searcher.value] == before + 1);
}

TEST_CASE("napster_search_without_a_usable_word_gets_404_then_202") {
  Harness h;
  ConnId a = h.login("a");
  for (const char* q : {R"(FILENAME CONTAINS "-" MAX_RESULTS 10)", R"(MAX_RESULTS 10)", R"(BOGUS CLAUSE)"}) {
    CAPTURE(q);
    h.feed(a, nap::kSearch, q);
    CHECK(types(h.take(a)) == std::vector<std::uint16_t>{nap::kServerError, nap::kSearchEnd});
  }
  CHECK(h.server.stat(NapsterServer::kSearchesUnusable) == 3);
  CHECK(h.closes.empty());
}

TEST_CASE("napster_download_handshake_203_607_608_204") {
  Harness h;
  ConnId sharer = h.login("sharer", 6699, 8, 0x0a000002);
  ConnId getter = h.login("getter", 6700, 4);
  h.share(sharer, R"(C:\m\song.mp3)");
  h.feed(getter, nap::kDownloadRequest, R"(sharer "C:\m\song.mp3")");
  CHECK(h.take(getter).empty());  // nothing until the sharer accepts
  auto up = h.take(sharer);
  REQUIRE(up.size() == 1);
  CHECK(up[0].type == nap::kUploadRequest);
  CHECK(up[0].payload == R"(getter "C:\m\song.mp3")");
  h.feed(sharer, nap::kUploadAccept, R"(getter "C:\m\song.mp3")");
  auto ack = h.take(getter);
  REQUIRE(ack.size() == 1);
  CHECK(ack[0].type == nap::kDownloadAck);
  auto a = nap::decode_transfer_ack(ack[0].payload);
  REQUIRE(a.ok());
  CHECK(a->nick == "sharer");
  CHECK(a->ip == 0x0a000002);
  CHECK(a->port == 6699);
  CHECK(a->link == 8);
  // A sharer that accepts a file it does not share: the downloader gets 206.
  h.feed(getter, nap::kDownloadRequest, R"(sharer "C:\m\not shared.mp3")");
  h.take(sharer);
  h.feed(sharer, nap::kUploadAccept, R"(getter "C:\m\not shared.mp3")");
  auto err = h.take(getter);
  REQUIRE(err.size() == 1);
  CHECK(err[0].type == nap::kDownloadError);
  // A 608 nobody asked for is counted and ignored.
  h.feed(sharer, nap::kUploadAccept, R"(getter "C:\m\song.mp3")");
  CHECK(h.take(getter).empty());
  CHECK(h.server.stat(NapsterServer::kUploadAcceptsUnknown) == 1);
  // Asking for a nick that is not online: 206.
  h.feed(getter, nap::kDownloadRequest, R"(nobody "x.mp3")");
  CHECK(types(h.take(getter)) == std::vector<std::uint16_t>{nap::kDownloadError});
}

TEST_CASE("napster_firewalled_sharer_500_607_608_501") {
  Harness h;
  ConnId fw = h.login("probefw", 0, 8, 0x0a000002);
  ConnId getter = h.login("tekuser", 6778, 0, 0x0a000003);
  h.login("open", 6699);
  h.share(fw, R"(C:\probe\Pushed Tune.mp3)");
  // 203 to a firewalled sharer: an immediate 204 with port 0.
  h.feed(getter, nap::kDownloadRequest, R"(probefw "C:\probe\Pushed Tune.mp3")");
  auto ack = h.take(getter);
  REQUIRE(ack.size() == 1);
  auto a = nap::decode_transfer_ack(ack[0].payload);
  REQUIRE(a.ok());
  CHECK(a->port == 0);
  CHECK(h.take(fw).empty());
  // 500 -> 607 to the sharer; 608 -> 501 to the sharer with the downloader's address.
  h.feed(getter, nap::kAltDownloadRequest, R"(probefw "C:\probe\Pushed Tune.mp3")");
  auto up = h.take(fw);
  REQUIRE(up.size() == 1);
  CHECK(up[0].type == nap::kUploadRequest);
  h.feed(fw, nap::kUploadAccept, R"(tekuser "C:\probe\Pushed Tune.mp3")");
  auto alt = h.take(fw);
  REQUIRE(alt.size() == 1);
  CHECK(alt[0].type == nap::kAltDownloadAck);
  auto t = nap::decode_transfer_ack(alt[0].payload);
  REQUIRE(t.ok());
  CHECK(t->nick == "tekuser");
  CHECK(t->ip == 0x0a000003);
  CHECK(t->port == 6778);
  CHECK(t->md5 == std::string(32, '0'));
  // 500 for a sharer that is not firewalled.
  h.feed(getter, nap::kAltDownloadRequest, R"(open "x.mp3")");
  auto no = h.take(getter);
  REQUIRE(no.size() == 1);
  CHECK(no[0].payload == "open is not firewalled");
  // Both firewalled: the md5 slot says so.
  ConnId fw2 = h.login("fw2", 0);
  h.feed(fw2, nap::kAltDownloadRequest, R"(probefw "C:\probe\Pushed Tune.mp3")");
  h.take(fw);
  h.feed(fw, nap::kUploadAccept, R"(fw2 "C:\probe\Pushed Tune.mp3")");
  auto both = h.take(fw);
  REQUIRE(both.size() == 1);
  auto bt = nap::decode_transfer_ack(both[0].payload);
  REQUIRE(bt.ok());
  CHECK(bt->md5 == "firewallerror");
}

TEST_CASE("napster_browse_whois_ping_and_data_port") {
  Harness h;
  ConnId a = h.login("alice", 6699, 8, 0x0a000002);
  ConnId b = h.login("bob");
  h.share(a, R"(C:\m\one.mp3)");
  h.share(a, R"(C:\m\two.mp3)");
  h.feed(b, nap::kBrowse, "alice");
  auto got = h.take(b);
  CHECK(types(got) == std::vector<std::uint16_t>{nap::kBrowseResult, nap::kBrowseResult, nap::kBrowseEnd});
  auto r = nap::decode_browse_result(got[0].payload);
  REQUIRE(r.ok());
  CHECK(r->nick == "alice");
  CHECK(r->file.name == R"(C:\m\one.mp3)");
  CHECK(got[2].payload == "alice " + std::to_string(nap::to_napster_ip(0x0a000002)));
  h.feed(b, nap::kBrowse, "nobody");
  CHECK(types(h.take(b)) == std::vector<std::uint16_t>{nap::kServerError, nap::kBrowseEnd});

  h.now = h.now + 42s;
  h.feed(b, nap::kWhois, "alice");
  auto w = h.take(b);
  REQUIRE(w.size() == 1);
  CHECK(w[0].type == nap::kWhoisResponse);
  CHECK(w[0].payload.starts_with("alice \"User\" 42 "));
  CHECK(w[0].payload.find(" 2 0 0 8 \"test 1.0\"") != std::string::npos);

  h.feed(b, nap::kPing, "alice");
  CHECK(h.take(a).at(0).payload == "bob");
  h.feed(a, nap::kPong, "bob");
  auto pong = h.take(b);
  REQUIRE(pong.size() == 1);
  CHECK(pong[0].type == nap::kPong);
  CHECK(pong[0].payload == "alice");

  h.feed(a, nap::kDataPort, "7000");
  h.feed(b, nap::kDownloadRequest, R"(alice "C:\m\one.mp3")");
  h.take(a);
  h.feed(a, nap::kUploadAccept, R"(bob "C:\m\one.mp3")");
  auto ack = nap::decode_transfer_ack(h.take(b).at(0).payload);
  REQUIRE(ack.ok());
  CHECK(ack->port == 7000);

  // Whowas for a registered nick that left.
  h.server.handle_closed(a, CloseReason::PeerClosed, h.now);
  h.feed(b, nap::kWhois, "alice");
  CHECK(types(h.take(b)) == std::vector<std::uint16_t>{nap::kWhowas});
  h.feed(b, nap::kWhois, "never");
  CHECK(types(h.take(b)) == std::vector<std::uint16_t>{nap::kServerError});
}

TEST_CASE("napster_bad_input_keeps_the_connection_unless_the_frame_is_oversized") {
  Harness h;
  ConnId a = h.login("alice");
  ConnId watcher = h.login("watcher");
  h.share(watcher, R"(C:\w\kept.mp3)");
  struct Case {
    std::uint16_t type;
    std::string payload;
    std::string reply;
  };
  const std::vector<Case> cases = {
      {7777, "", "Unknown command code 7777"},
      {nap::kShare, R"("x.mp3" md5 notasize 1 2 3)", "parameters are unparsable"},
      {nap::kDownloadRequest, "nick", "parameters are unparsable"},
      {nap::kBrowse, "", "parameters are unparsable"},
      {nap::kDataPort, "99999", "parameters are unparsable"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.type);
    h.feed(a, c.type, c.payload);
    auto got = h.take(a);
    REQUIRE(got.size() == 1);
    CHECK(got[0].type == nap::kServerError);
    CHECK(got[0].payload == c.reply);
  }
  CHECK(h.closes.empty());
  h.feed(a, nap::kVersionCheck, "");
  CHECK(types(h.take(a)) == std::vector<std::uint16_t>{nap::kVersionCheck});
  // 2048 bytes are accepted; 2049 drop the client without a word.
  h.feed(a, nap::kPing, std::string(2048, 'x'));
  CHECK(h.closes.empty());
  h.take(a);
  h.raw(a, nap::encode_frame(nap::kPing, std::string(2049, 'x')));
  REQUIRE(h.closes.count(a.value) == 1);
  CHECK(h.closes[a.value].flush == false);
  CHECK(h.take(a).empty());
  CHECK(h.server.stat(NapsterServer::kFramesTooLarge) == 1);
  // Everyone else is still served.
  CHECK(h.search(watcher, R"(FILENAME CONTAINS "kept" MAX_RESULTS 5)").size() == 1);
}

TEST_CASE("napster_share_cap_search_rate_and_login_timeout_are_counted") {
  NapsterServerConfig cfg;
  cfg.max_shares_per_user = 100;
  cfg.search_rate = 1;
  cfg.search_burst = 3;
  cfg.login_timeout = 5s;
  Harness h(cfg);
  ConnId a = h.login("flooder");
  wire::Bytes many;
  for (int i = 0; i < 100000; ++i) {
    nap::append_frame(many, nap::kShare,
                      nap::encode_share({"C:\\f\\file " + std::to_string(i) + ".mp3", "x", 1, 128, 44100, 1}));
  }
  h.raw(a, many);
  CHECK(h.server.shares() == 100);
  CHECK(h.server.stat(NapsterServer::kSharesOverCap) == 99900);
  const auto replies = h.take(a).size();
  CHECK(replies >= 1);
  CHECK(replies <= 100);  // a flood gets few replies
  for (int i = 0; i < 5; ++i) h.feed(a, nap::kSearch, R"(FILENAME CONTAINS "file" MAX_RESULTS 1)");
  CHECK(h.server.stat(NapsterServer::kSearchesRateLimited) == 2);
  h.take(a);
  h.now = h.now + 2s;  // two tokens back
  CHECK(h.search(a, R"(FILENAME CONTAINS "file" MAX_RESULTS 1)").size() == 1);

  ConnId idle = h.connect();
  h.now = h.now + 6s;
  h.server.handle_timeout(h.now);
  h.drain();
  CHECK(h.closes.count(idle.value) == 1);
  CHECK(h.closes.count(a.value) == 0);
  CHECK(h.server.stat(NapsterServer::kLoginTimeouts) == 1);
}

TEST_CASE("napster_stats_every_60_s_to_every_user") {
  Harness h;
  ConnId a = h.login("a");
  ConnId b = h.login("b");
  h.share(a, "C:\\x\\one.mp3", 3ull << 30);
  REQUIRE(h.server.poll_timeout());
  CHECK(*h.server.poll_timeout() <= h.now + 60s);
  h.now = h.now + 30s;
  h.server.handle_timeout(h.now);
  h.drain();
  CHECK(h.take(a).empty());
  h.now = h.now + 30s;
  h.server.handle_timeout(h.now);
  h.drain();
  for (ConnId c : {a, b}) {
    auto got = h.take(c);
    REQUIRE(got.size() == 1);
    CHECK(got[0].type == nap::kStats);
    CHECK(got[0].payload == "2 1 3");
  }
}

TEST_CASE("napster_removes_and_logout_take_shares_out_of_the_index") {
  Harness h;
  ConnId a = h.login("a");
  ConnId b = h.login("b");
  for (int i = 0; i < 3000; ++i) h.share(a, "C:\\x\\tune t" + std::to_string(i) + ".mp3");
  h.share(b, R"(C:\y\tune b.mp3)");
  CHECK(h.server.shares() == 3001);
  h.feed(a, nap::kRemove, R"("C:\x\tune t7.mp3")");
  CHECK(h.search(b, R"(FILENAME CONTAINS "tune t7" MAX_RESULTS 100)").empty());
  CHECK(h.search(b, R"(FILENAME CONTAINS "tune t8" MAX_RESULTS 100)").size() == 1);
  // Removing 2,500 compacts the table; the rest are still found and browsed.
  for (int i = 0; i < 2500; ++i) {
    if (i == 7) continue;
    h.feed(a, nap::kRemove, "\"C:\\x\\tune t" + std::to_string(i) + ".mp3\"");
  }
  CHECK(h.server.shares() == 501);
  CHECK(h.search(b, R"(FILENAME CONTAINS "tune t2999" MAX_RESULTS 100)").size() == 1);
  CHECK(h.search(b, R"(FILENAME CONTAINS "tune t2000" MAX_RESULTS 100)").empty());
  h.feed(b, nap::kBrowse, "a");
  CHECK(h.take(b).size() == 501);  // 500 results + 213
  h.feed(a, nap::kRemoveAll, "");
  CHECK(h.server.shares() == 1);
  h.server.handle_closed(b, CloseReason::PeerClosed, h.now);
  CHECK(h.server.shares() == 0);
  CHECK(h.server.users() == 1);
}
