// The terminal UI without a terminal: keys and node lines in, requests and a
// drawn fixed-size screen out.
#include <doctest/doctest.h>

#include <clocale>
#include <string>

#include "servent/tui/app.hpp"

using namespace sv::tui;
using nlohmann::json;

namespace {

const Clock::time_point kT0 = Clock::time_point{} + std::chrono::hours(1);

struct Locale {
  Locale() { std::setlocale(LC_CTYPE, "C.UTF-8"); }
} locale_once;

json hit(const std::string& search, const std::string& name, std::uint64_t size, const std::string& host,
         const std::string& urn = "", std::uint32_t bitrate = 0) {
  json j = {{"event", "result"}, {"search", search}, {"host", host}, {"port", 6346}, {"index", 1},
            {"name", name},      {"size", size},     {"servent_id", std::string(32, 'a')}, {"speed", 100}};
  if (!urn.empty()) j["urn"] = urn;
  if (bitrate) {
    j["bitrate"] = bitrate;
    j["freq"] = 44100;
    j["length"] = 225;
  }
  return j;
}

std::string screen_text(const Screen& s) {
  std::string out;
  for (int y = 0; y < s.height(); ++y) out += s.row_text(y) + "\n";
  return out;
}

// Every row is exactly as wide as the screen, and nothing in it is a control
// character: what a hostile name can do to a terminal is nothing.
void check_safe(const Screen& s) {
  for (int y = 0; y < s.height(); ++y) {
    int cols = 0;
    for (int x = 0; x < s.width(); ++x) {
      const auto& g = s.at(x, y).glyph;
      for (unsigned char c : g) {
        CHECK(c >= 0x20);
        CHECK(c != 0x7f);
      }
      cols += g.empty() ? 0 : 1;
    }
    CHECK(cols <= s.width());
  }
}

void type(App& app, const std::string& text) {
  for (unsigned char c : text) app.key(c, kT0);
}

// A search typed: the one request it makes of the node.
json type_search(App& app, const std::string& query) {
  app.key('/', kT0);
  type(app, query);
  app.key(kKeyEnter, kT0);
  auto req = app.take_requests();
  REQUIRE(req.size() == 1);
  CHECK(req[0]["cmd"] == "search");
  CHECK(req[0]["query"] == query);
  return req[0];
}

// A search typed and its reply from the node: the App then has a tab.
void start_search(App& app, const std::string& query, const std::string& search_id) {
  const json req = type_search(app, query);
  app.message({{"id", req["id"]}, {"ok", true}, {"search", search_id}}, kT0);
}

}  // namespace

TEST_CASE("results_are_grouped_by_content_counted_sorted_and_filtered") {
  App app;
  start_search(app, "free software", "S1");
  REQUIRE(app.tab_count() == 1);
  const std::string urn = "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB";
  app.message(hit("S1", "free software song.mp3", 3'000'000, "10.0.0.1", urn, 128), kT0);
  app.message(hit("S1", "free software song (copy).mp3", 3'000'000, "10.0.0.2", urn, 128), kT0);  // same content
  app.message(hit("S1", "free software manual.pdf", 500'000, "10.0.0.3"), kT0);
  app.message(hit("S1", "other search", 1, "10.0.0.9"), kT0);
  app.message(hit("S9", "not ours", 1, "10.0.0.9"), kT0);  // another search's result
  CHECK(app.group_count(0) == 3);

  Screen s(80, 24);
  app.draw(s);
  check_safe(s);
  const std::string text = screen_text(s);
  CHECK(s.row_text(0).find("Search") != std::string::npos);
  CHECK(text.find("free software (3)") != std::string::npos);
  CHECK(s.row_text(3).find("Filename") != std::string::npos);
  CHECK(s.row_text(3).find("Kbps") != std::string::npos);
  // Sorted by sources first: the song with two sources leads, its metadata shown.
  CHECK(s.row_text(4).find("free software song.mp3") != std::string::npos);
  CHECK(s.row_text(4).find("128") != std::string::npos);
  CHECK(s.row_text(4).find("44.1") != std::string::npos);
  CHECK(s.row_text(4).find("3:45") != std::string::npos);
  CHECK(s.row_text(4).find("10.0.0.1:6346 +1") != std::string::npos);
  CHECK(s.at(0, 4).attr == Attr::Selected);
  CHECK(s.at(0, 5).attr == Attr::Normal);

  // 's' moves the sort to the next column: Filename, ascending.
  for (int i = 0; i < kColumns - static_cast<int>(Column::Sources); ++i) app.key('s', kT0);
  app.draw(s);
  CHECK(s.row_text(4).find("free software manual.pdf") != std::string::npos);
  CHECK(s.row_text(6).find("other search") != std::string::npos);
  app.key('S', kT0);  // reversed
  app.draw(s);
  CHECK(s.row_text(4).find("other search") != std::string::npos);

  // Filter as you type: every keystroke narrows the rows.
  app.key('f', kT0);
  type(app, "man");
  app.draw(s);
  CHECK(s.row_text(2).find("Filter: man") != std::string::npos);
  CHECK(s.row_text(4).find("manual.pdf") != std::string::npos);
  CHECK(s.row_text(5).find_first_not_of(' ') == std::string::npos);
  app.key(kKeyBackspace, kT0);
  app.key(kKeyBackspace, kT0);
  app.key(kKeyBackspace, kT0);
  type(app, "SONG");  // case does not matter
  app.draw(s);
  CHECK(s.row_text(4).find("song") != std::string::npos);
  CHECK(s.row_text(5).find_first_not_of(' ') == std::string::npos);
  app.key(kKeyEnter, kT0);  // leaves the filter line, the filter stays

  // Enter downloads the selected file: the node gets the hit as it sent it.
  app.key(kKeyEnter, kT0);
  auto req = app.take_requests();
  REQUIRE(req.size() == 1);
  CHECK(req[0]["cmd"] == "download");
  CHECK(req[0]["result"]["urn"] == urn);
  CHECK(req[0]["result"]["host"] == "10.0.0.1");
  CHECK_FALSE(req[0]["result"].contains("event"));
}

TEST_CASE("hostile_names_cannot_break_the_screen") {
  App app;
  start_search(app, "x", "S1");
  const std::string names[] = {
      "clear\x1b[2J\x1b[31mred\x07" "bell\rcr\nnl\tname.mp3",  // ANSI escapes and control characters
      std::string("bad \xff\xfe utf8 \xc3 cut \xed\xa0\x80 surrogate"),
      "c1 \xc2\x9b" "31m csi",                                // the 8-bit CSI
      std::string(10'000, 'L') + ".mp3",                     // 10 KB
      "wide \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e name",       // CJK: two columns each
      "combining e\xcc\x81",
  };
  for (std::size_t i = 0; i < std::size(names); ++i) app.message(hit("S1", names[i], i + 1, "10.0.0.1"), kT0);
  CHECK(app.group_count(0) == std::size(names));
  for (int w : {80, 40, 132}) {
    Screen s(w, 24);
    app.draw(s);
    check_safe(s);
    const std::string text = screen_text(s);
    CHECK(text.find('\x1b') == std::string::npos);
    CHECK(text.find("^[[2J") != std::string::npos);  // shown, not obeyed
    CHECK(text.find("\\xff") != std::string::npos);
    CHECK(text.find("\\u009b") != std::string::npos);
    CHECK(text.find("\u2026") != std::string::npos);  // the long name is cut
  }
  // A terminal without UTF-8 gets ASCII only.
  Screen ascii(80, 24, false);
  app.draw(ascii);
  for (int y = 0; y < 24; ++y) {
    for (unsigned char c : ascii.row_text(y)) CHECK(c < 0x80);
  }
}

TEST_CASE("a_hundred_thousand_results_scroll_and_stay_bounded") {
  App app(150'000);
  start_search(app, "many", "S1");
  for (int i = 0; i < 100'000; ++i) {
    app.message(hit("S1", "file " + std::to_string(i), static_cast<std::uint64_t>(i), "10.0.0.1"), kT0);
  }
  CHECK(app.group_count(0) == 100'000);
  // Sort by size, descending: file 99999 first.
  app.key('s', kT0);  // Sources -> Host
  app.key('s', kT0);  // Host -> Speed
  app.key('s', kT0);  // Speed -> Network
  app.key('s', kT0);  // Network -> Name
  app.key('s', kT0);  // Name -> Size
  Screen s(80, 24);
  app.draw(s);
  CHECK(s.row_text(4).find("file 99999 ") != std::string::npos);
  CHECK(s.row_text(2).find("1/100000 files") != std::string::npos);
  app.key(kKeyEnd, kT0);
  app.draw(s);
  CHECK(s.row_text(22).find("file 0 ") != std::string::npos);  // the last row of the table
  CHECK(s.at(0, 22).attr == Attr::Selected);
  CHECK(s.row_text(2).find("100000/100000 files") != std::string::npos);
  app.key(kKeyPageUp, kT0);
  app.draw(s);
  CHECK(s.row_text(2).find("99981/100000 files") != std::string::npos);

  // Past the bound, results are counted, not kept.
  App small(1000);
  start_search(small, "many", "S1");
  for (int i = 0; i < 1500; ++i) small.message(hit("S1", "f" + std::to_string(i), 1, "10.0.0.1"), kT0);
  CHECK(small.group_count(0) == 1000);
  CHECK(small.dropped_count(0) == 500);
  small.draw(s);
  CHECK(s.row_text(2).find("500 over the limit") != std::string::npos);
}

TEST_CASE("every_screen_draws_at_80x24_and_when_resized") {
  App app;
  app.tick(kT0);
  auto req = app.take_requests();
  std::map<std::string, json> ids;
  for (const auto& r : req) ids[r["cmd"].get<std::string>()] = r["id"];
  REQUIRE(ids.count("downloads"));
  REQUIRE(ids.count("peers"));
  app.message({{"id", ids["downloads"]},
               {"ok", true},
               {"downloads",
                {{{"download", 7}, {"name", "album.mp3"}, {"have", 2'500'000}, {"size", 10'000'000}, {"state", "active"},
                  {"sources", 3}, {"active_sources", 2}, {"path", ""}},
                 {{"download", 8}, {"name", "done.txt"}, {"have", 10}, {"size", 10}, {"state", "done"}, {"sources", 1},
                  {"active_sources", 0}, {"path", "/x/done.txt"}}}}},
              kT0);
  app.message({{"id", ids["peers"]},
               {"ok", true},
               {"peers",
                {{{"address", "127.0.0.1:6346"}, {"direction", "out"}, {"established", true}, {"protocol", "0.6"},
                  {"user_agent", "gtk-gnutella/1.2.2"}, {"messages_in", 42}, {"messages_out", 17}, {"uptime", 3725},
                  {"dropped", 3}, {"role", "ultrapeer"}, {"reputation", 377}}}},
                {"role", "leaf"}},
              kT0);
  // A second poll a second later: the rate and ETA come from the progress.
  app.tick(kT0 + std::chrono::seconds(1));
  for (const auto& r : app.take_requests()) {
    if (r["cmd"] == "downloads") {
      app.message({{"id", r["id"]},
                   {"ok", true},
                   {"downloads",
                    {{{"download", 7}, {"name", "album.mp3"}, {"have", 3'500'000}, {"size", 10'000'000},
                      {"state", "active"}, {"sources", 3}, {"active_sources", 2}, {"path", ""}}}}},
                  kT0 + std::chrono::seconds(1));
    }
  }
  Screen s(80, 24);
  app.key(kKeyTab, kT0);
  CHECK(app.view() == View::Downloads);
  app.draw(s);
  check_safe(s);
  CHECK(s.row_text(1).find("Progress") != std::string::npos);
  const std::string row = s.row_text(2);
  CHECK(row.find("album.mp3") != std::string::npos);
  CHECK(row.find("####......") != std::string::npos);  // 35 % of ten cells, rounded
  CHECK(row.find("35%") != std::string::npos);
  CHECK(row.find("976.6 KB/s") != std::string::npos);  // 1,000,000 bytes in a second
  CHECK(row.find("0:06") != std::string::npos);        // 6.5 MB to go at that rate
  CHECK(row.find("2/3") != std::string::npos);
  // p pauses the selected download, c cancels it.
  app.key('p', kT0);
  app.key('c', kT0);
  auto acts = app.take_requests();
  REQUIRE(acts.size() >= 2);
  CHECK(acts[0]["cmd"] == "pause");
  CHECK(acts[0]["download"] == 7);
  CHECK(acts[1]["cmd"] == "cancel");

  app.key(kKeyTab, kT0);  // Uploads
  app.draw(s);
  CHECK(s.row_text(2).find("Peer") != std::string::npos);
  app.key(kKeyTab, kT0);  // Network
  app.draw(s);
  CHECK(s.row_text(2).find("127.0.0.1:6346") != std::string::npos);
  CHECK(s.row_text(2).find("gtk-gnu") != std::string::npos);  // cut to its column at 80
  CHECK(s.row_text(2).find("1:02:05") != std::string::npos);
  CHECK(s.row_text(2).find("ultrapeer") != std::string::npos);  // its role
  CHECK(s.row_text(2).find(" 377 ") != std::string::npos);      // its reputation
  CHECK(s.row_text(1).find("Role") != std::string::npos);
  CHECK(s.row_text(1).find("Rep") != std::string::npos);
  CHECK(s.row_text(0).find("1 peer") != std::string::npos);
  CHECK(s.row_text(0).find("leaf") != std::string::npos);  // our own role
  app.key(kKeyTab, kT0);  // Stats
  app.draw(s);
  check_safe(s);
  app.key('?', kT0);
  app.draw(s);
  CHECK(screen_text(s).find("download the selected file") != std::string::npos);
  app.key('x', kT0);  // closes the help only
  CHECK_FALSE(app.quitting());

  // Tiny and huge terminals: everything still fits.
  for (auto [w, h] : {std::pair{20, 5}, std::pair{1, 1}, std::pair{250, 80}}) {
    for (int v = 0; v < 5; ++v) {
      Screen r(w, h);
      app.draw(r);
      check_safe(r);
      app.key(kKeyTab, kT0);
    }
  }
  app.key('q', kT0);
  CHECK(app.quitting());
}

TEST_CASE("results_from_both_networks_show_their_network_and_download_as_given") {
  App app;
  start_search(app, "free software", "S1");
  app.message(hit("S1", "free software song.ogg", 3'000'000, "10.0.0.1"), kT0);
  json nap = {{"event", "result"}, {"search", "S1"},  {"network", "napster"}, {"host", "10.0.0.5"},
              {"port", 0},         {"nick", "bob"},   {"name", "Free Software Song.mp3"},
              {"path", "C:\\Music\\Free Software Song.mp3"}, {"size", 4'000'000}, {"bitrate", 128},
              {"freq", 44100},     {"length", 240}};
  app.message(nap, kT0);
  CHECK(app.group_count(0) == 2);
  Screen wide(120, 24);
  app.draw(wide);
  const std::string text = screen_text(wide);
  CHECK(wide.row_text(3).find("Network") != std::string::npos);
  CHECK(text.find("Napster") != std::string::npos);
  CHECK(text.find("Gnutella") != std::string::npos);
  CHECK(text.find("bob@10.0.0.5") != std::string::npos);
  Screen narrow(80, 24);
  app.draw(narrow);
  const std::string small = screen_text(narrow);
  CHECK(narrow.row_text(3).find("Net") != std::string::npos);
  CHECK(small.find("Nap") != std::string::npos);
  CHECK(small.find("Gnu") != std::string::npos);
  // Enter on the Napster row hands its result back as the node sent it.
  int row = -1;
  for (int y = 4; y < 24; ++y) {
    if (narrow.row_text(y).find("Free Software Song.mp3") != std::string::npos) row = y;
  }
  REQUIRE(row >= 4);
  app.take_requests();
  if (row == 5) app.key(kKeyDown, kT0);
  app.key(kKeyEnter, kT0);
  auto req = app.take_requests();
  REQUIRE(req.size() == 1);
  CHECK(req[0]["cmd"] == "download");
  CHECK(req[0]["result"]["network"] == "napster");
  CHECK(req[0]["result"]["path"] == "C:\\Music\\Free Software Song.mp3");
}

TEST_CASE("digits_switch_screens_everywhere_but_are_text_while_typing") {
  App app;
  start_search(app, "track 5", "S1");  // the digit was text while typing
  CHECK(app.view() == View::Search);
  for (auto [key, view] : {std::pair{'2', View::Downloads}, std::pair{'3', View::Uploads}, std::pair{'4', View::Network},
                           std::pair{'5', View::Stats}, std::pair{'1', View::Search}}) {
    app.key(key, kT0);
    CHECK(app.view() == view);
  }
  // From the Search screen itself (with results), and while filtering.
  app.message(hit("S1", "track 5.mp3", 1000, "10.0.0.1"), kT0);
  app.key('3', kT0);
  CHECK(app.view() == View::Uploads);
  app.key('1', kT0);
  app.key('f', kT0);
  app.key('2', kT0);  // text of the filter
  CHECK(app.view() == View::Search);
  app.key(kKeyEnter, kT0);
  app.key('2', kT0);
  CHECK(app.view() == View::Downloads);
}

TEST_CASE("uploads_show_live_progress_and_rate") {
  App app;
  app.key('3', kT0);
  REQUIRE(app.view() == View::Uploads);
  auto reply = [&](Clock::time_point at, std::uint64_t sent) {
    app.tick(at);
    bool answered = false;
    for (const auto& r : app.take_requests()) {
      if (r["cmd"] != "uploads") continue;
      app.message({{"id", r["id"]},
                   {"ok", true},
                   {"active", 1},
                   {"slots", 4},
                   {"completed", 0},
                   {"failed", 0},
                   {"list",
                    {{{"peer", "10.0.0.7:40000"}, {"name", "album.mp3"}, {"first", 0}, {"length", 4'000'000},
                      {"file_size", 4'000'000}, {"seconds", 2}, {"sent", sent}}}}},
                  at);
      answered = true;
    }
    REQUIRE(answered);
  };
  reply(kT0, 1'000'000);
  reply(kT0 + std::chrono::seconds(2), 3'000'000);  // 2 MB in 2 s
  Screen s(100, 24);
  app.draw(s);
  check_safe(s);
  CHECK(s.row_text(2).find("Progress") != std::string::npos);
  const std::string row = s.row_text(3);
  CHECK(row.find("album.mp3") != std::string::npos);
  CHECK(row.find("75%") != std::string::npos);
  CHECK(row.find("###############.....") != std::string::npos);  // 75 % of twenty cells
  CHECK(row.find("2.9 MB of 3.8 MB") != std::string::npos);
  CHECK(row.find("976.6 KB/s") != std::string::npos);
}

TEST_CASE("a_repeated_search_shows_its_earlier_results_and_when_a_requery_is_allowed") {
  auto repeat_reply = [](const json& req, const std::string& sid) {
    return json{{"id", req["id"]}, {"ok", true}, {"search", sid}, {"repeat", true}, {"links", 0},
                {"held_back", 2},  {"earlier", 1}, {"requery_in", 1640}};
  };
  auto earlier = [](json j) {
    j["earlier"] = true;
    return j;
  };
  SUBCASE("its tab is still open: the App goes back to it, nothing counted twice") {
    App app;
    start_search(app, "free song", "S1");
    start_search(app, "other", "S2");
    app.message(hit("S1", "free song.mp3", 1000, "10.0.0.1"), kT0);
    CHECK(app.current_tab() == 1);
    app.message(repeat_reply(type_search(app, "free song"), "S1"), kT0);
    app.message(earlier(hit("S1", "free song.mp3", 1000, "10.0.0.1")), kT0);
    CHECK(app.tab_count() == 2);
    CHECK(app.current_tab() == 0);
    CHECK(app.group_count(0) == 1);
    Screen s(100, 24, true);
    app.draw(s);
    const std::string text = screen_text(s);
    CHECK(text.find("1 earlier results") != std::string::npos);
    CHECK(text.find("re-query in 28 min") != std::string::npos);
    INFO(text);
    CHECK(text.find("1/1 files, 1 hits") != std::string::npos);  // the earlier one is not counted again
  }
  SUBCASE("no tab has it: a new tab takes the earlier results") {
    App app;
    app.message(repeat_reply(type_search(app, "free song"), "S1"), kT0);
    app.message(earlier(hit("S1", "free song.mp3", 1000, "10.0.0.1")), kT0);
    app.message(hit("S1", "free song live.mp3", 2000, "10.0.0.2"), kT0);  // a new one
    CHECK(app.tab_count() == 1);
    CHECK(app.group_count(0) == 2);
  }
}

TEST_CASE("torrents_show_in_downloads_and_their_peers_with_choke_state_in_uploads") {
  App app;
  const json torrents = json::array(
      {{{"info_hash", std::string(40, 'a')},
        {"name", "album"},
        {"state", "leeching"},
        {"pieces", 100},
        {"have", 25},
        {"size", 4'000'000},
        {"have_bytes", 1'000'000},
        {"downloaded", 1'000'000},
        {"uploaded", 500'000},
        {"down_rate", 100'000},
        {"up_rate", 20'000},
        {"peers",
         {{{"address", "10.0.0.9:6881"}, {"direction", "out"}, {"client", "Transmission 3.00"}, {"am_choking", false},
           {"am_interested", true}, {"peer_choking", false}, {"peer_interested", true}, {"snubbed", false},
           {"pieces", 100}, {"down_rate", 100'000}, {"up_rate", 20'000}, {"downloaded", 1'000'000}, {"uploaded", 500'000}},
          {{"address", "10.0.0.10:51413"}, {"direction", "in"}, {"client", "\x1b[31mevil"}, {"am_choking", true},
           {"am_interested", false}, {"peer_choking", true}, {"peer_interested", true}, {"snubbed", false},
           {"pieces", 0}, {"down_rate", 0}, {"up_rate", 0}, {"downloaded", 0}, {"uploaded", 0}}}}}});
  auto answer = [&] {
    app.tick(kT0 + std::chrono::seconds(5));
    bool asked = false;
    for (const auto& r : app.take_requests()) {
      if (r["cmd"] != "torrents") continue;
      app.message({{"id", r["id"]}, {"ok", true}, {"torrents", torrents}}, kT0);
      asked = true;
    }
    return asked;
  };
  CHECK_FALSE(answer());  // the Search screen does not ask
  app.key('2', kT0);
  REQUIRE(app.view() == View::Downloads);
  REQUIRE(answer());
  Screen s(100, 24);
  app.draw(s);
  check_safe(s);
  const std::string text = screen_text(s);
  CHECK(text.find("Torrents") != std::string::npos);
  std::string row;
  for (int y = 0; y < s.height(); ++y) {
    if (s.row_text(y).find("album") != std::string::npos) row = s.row_text(y);
  }
  CHECK(row.find("25%") != std::string::npos);
  CHECK(row.find("leeching") != std::string::npos);
  CHECK(row.find("97.7 KB/s") != std::string::npos);
  CHECK(row.find("0:30") != std::string::npos);  // 3 MB to go at 100 KB/s
  app.key('3', kT0);
  REQUIRE(app.view() == View::Uploads);
  REQUIRE(answer());
  Screen u(100, 24);
  app.draw(u);
  check_safe(u);
  const std::string up = screen_text(u);
  CHECK(up.find("ratio 0.50") != std::string::npos);
  std::string unchoked, choked;
  for (int y = 0; y < u.height(); ++y) {
    if (u.row_text(y).find("10.0.0.9:6881") != std::string::npos) unchoked = u.row_text(y);
    if (u.row_text(y).find("10.0.0.10:51413") != std::string::npos) choked = u.row_text(y);
  }
  CHECK(unchoked.find(" DU ") != std::string::npos);  // we download from it and upload to it
  CHECK(unchoked.find("Transmission 3.00") != std::string::npos);
  CHECK(choked.find(" u ") != std::string::npos);  // it wants our pieces, we choke it
}

TEST_CASE("the_network_screen_shows_the_dht_node_and_the_nodes_it_keeps") {
  App app;
  const json dht = {{"overlay", "chord"},
                    {"node_id", "d58cd0a0"},
                    {"summary", "chord node d58cd0a0 on 10.0.0.1:6346: predecessor 358863a9, successor 9a0b1c2d"},
                    {"nodes",
                     {{{"role", "predecessor"}, {"id", "358863a9"}, {"address", "10.0.0.2:6346"}},
                      {{"role", "successor"}, {"id", "9a0b1c2d"}, {"address", "10.0.0.3:6346"}},
                      {{"role", "\x1b[2Jevil"}, {"id", "00000000"}, {"address", "10.0.0.4:6346"}}}}};
  auto answer = [&](bool with_dht) {
    app.tick(kT0 + std::chrono::seconds(5));
    bool asked = false;
    for (const auto& r : app.take_requests()) {
      if (r["cmd"] != "dht") continue;
      asked = true;
      if (with_dht) {
        json reply = dht;
        reply["id"] = r["id"];
        reply["ok"] = true;
        app.message(reply, kT0);
      } else {
        app.message({{"id", r["id"]}, {"ok", false}, {"error", "no DHT here"}}, kT0);
      }
    }
    return asked;
  };
  CHECK_FALSE(answer(true));  // only the Network screen asks
  app.key('4', kT0);
  REQUIRE(app.view() == View::Network);
  REQUIRE(answer(true));
  Screen s(100, 24);
  app.draw(s);
  check_safe(s);
  const std::string text = screen_text(s);
  CHECK(text.find("DHT chord node d58cd0a0") != std::string::npos);
  std::string succ;
  for (int y = 0; y < s.height(); ++y) {
    if (s.row_text(y).find("successor") != std::string::npos) succ = s.row_text(y);
  }
  CHECK(succ.find("10.0.0.3:6346") != std::string::npos);
  CHECK(succ.find("node 9a0b1c2d") != std::string::npos);
  // A node without a DHT says so once; it is not asked again, nothing shows.
  App plain;
  plain.key('4', kT0);
  plain.tick(kT0 + std::chrono::seconds(5));
  for (const auto& r : plain.take_requests()) {
    if (r["cmd"] == "dht") plain.message({{"id", r["id"]}, {"ok", false}, {"error", "no DHT here"}}, kT0);
  }
  plain.tick(kT0 + std::chrono::seconds(10));
  bool again = false;
  for (const auto& r : plain.take_requests()) again = again || r["cmd"] == "dht";
  CHECK_FALSE(again);
  Screen p(100, 24);
  plain.draw(p);
  CHECK(screen_text(p).find("DHT") == std::string::npos);
}
