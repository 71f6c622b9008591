#include "servent/tui/app.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace sv::tui {

using nlohmann::json;

namespace {

constexpr const char* kViewNames[] = {"Search", "Downloads", "Uploads", "Network", "Stats"};
constexpr const char* kColumnNames[] = {"Filename", "Size", "Kbps", "kHz", "Length", "Src", "Host", "Speed", "Network"};
constexpr const char* kShortNetwork = "Net";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ') {
      if (!cur.empty()) out.push_back(lower(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(lower(cur));
  return out;
}

template <typename T>
T num(const json& j, const char* key, T fallback = 0) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return fallback;
  return it->get<T>();
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// Drops the last UTF-8 character of s.
void pop_utf8(std::string& s) {
  while (!s.empty()) {
    const auto c = static_cast<unsigned char>(s.back());
    s.pop_back();
    if ((c & 0xC0) != 0x80) break;
  }
}

void append_utf8(std::string& s, char32_t cp) {
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

struct Layout {
  int width[kColumns] = {0, 8, 5, 5, 6, 4, 21, 6, 8};
  bool shown[kColumns] = {true, true, true, true, true, true, true, true, true};
};

// Column widths for a screen `w` wide: the name takes what is left; narrow
// screens lose the least useful columns first.
Layout layout(int w) {
  Layout l;
  if (w < 100) {
    l.width[static_cast<int>(Column::Host)] = 16;
    l.width[static_cast<int>(Column::Network)] = 3;  // "Gnu" / "Nap"
  }
  if (w < 90) l.shown[static_cast<int>(Column::Speed)] = false;  // names need the room more
  const Column drop_order[] = {Column::Host,    Column::Freq,    Column::Speed,  Column::Length,
                               Column::Bitrate, Column::Network, Column::Sources};
  for (std::size_t d = 0;; ++d) {
    int used = 0;
    for (int c = 1; c < kColumns; ++c) {
      if (l.shown[c]) used += l.width[c] + 1;
    }
    l.width[0] = w - used;
    if (l.width[0] >= 16 || d == std::size(drop_order)) break;
    l.shown[static_cast<int>(drop_order[d])] = false;
  }
  if (l.width[0] < 1) l.width[0] = 1;
  return l;
}

}  // namespace

std::string human_size(std::uint64_t b) {
  char buf[32];
  if (b < 1000) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " B", b);
  } else if (b < 1000 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(b) / 1024);
  } else if (b < 1000ull * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(b) / (1024 * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(b) / (1024.0 * 1024 * 1024));
  }
  return buf;
}

std::string human_rate(double r) {
  if (r < 1) return "-";
  return human_size(static_cast<std::uint64_t>(r)) + "/s";
}

std::string clock_text(std::uint64_t s) {
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
  }
  return buf;
}

App::App(std::size_t max_groups) : max_groups_(max_groups) {}

std::uint64_t App::send(json request, std::string purpose) {
  const std::uint64_t id = next_id_++;
  request["id"] = id;
  pending_[id] = std::move(purpose);
  out_.push_back(std::move(request));
  return id;
}

std::vector<json> App::take_requests() { return std::exchange(out_, {}); }

void App::status(std::string text, Clock::time_point now, bool bad) {
  status_ = std::move(text);
  status_bad_ = bad;
  status_until_ = now + std::chrono::seconds(8);
}

void App::disconnected(Clock::time_point now) {
  connected_ = false;
  status("the node has gone away (q quits)", now, true);
  status_until_ = Clock::time_point::max();
}

void App::open_search_for_test(const std::string& search_id, const std::string& query) {
  Tab t;
  t.search_id = search_id;
  t.query = query;
  tabs_.push_back(std::move(t));
  tab_ = tabs_.size() - 1;
}

void App::tick(Clock::time_point now) {
  now_ = std::max(now_, now);
  if (now < next_poll_ || !connected_) return;
  next_poll_ = now + std::chrono::seconds(1);
  // Only what is waiting to be answered is not asked again.
  auto asked = [&](const std::string& what) {
    for (const auto& [id, p] : pending_) {
      if (p == what) return true;
    }
    return false;
  };
  if (!asked("downloads")) send({{"cmd", "downloads"}}, "downloads");
  if (!asked("peers")) send({{"cmd", "peers"}}, "peers");
  if (view_ == View::Network && dht_available_ && !asked("dht")) send({{"cmd", "dht"}}, "dht");
  if (view_ == View::Uploads && !asked("uploads")) send({{"cmd", "uploads"}}, "uploads");
  if (view_ == View::Stats && !asked("stats")) send({{"cmd", "stats"}}, "stats");
  if ((view_ == View::Downloads || view_ == View::Uploads) && !asked("torrents")) send({{"cmd", "torrents"}}, "torrents");
}

void App::message(const json& j, Clock::time_point now) {
  now_ = std::max(now_, now);
  if (!j.is_object()) return;
  if (j.contains("event")) {
    const std::string ev = str(j, "event");
    if (ev == "result") {
      const std::string sid = str(j, "search");
      // Earlier results of a repeated search go only to the tab opened for
      // the repeat: a tab that was already there has them.
      const bool earlier = j.value("earlier", false);
      for (auto& t : tabs_) {
        if (t.search_id == sid && (!earlier || t.wants_earlier)) add_hit(t, j);
      }
    } else if (ev == "download-done") {
      status("downloaded " + str(j, "path"), now);
    } else if (ev == "download-failed") {
      status("download failed: " + str(j, "reason"), now, true);
    }
    return;
  }
  if (!j.contains("id") || !j["id"].is_number_unsigned()) return;
  const auto id = j["id"].get<std::uint64_t>();
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  const std::string purpose = it->second;
  pending_.erase(it);
  if (purpose == "dht" && !j.value("ok", false)) {
    dht_available_ = false;  // no DHT on this node
    dht_ = nullptr;
    return;
  }
  if (!j.value("ok", false)) {
    status(purpose + ": " + str(j, "error"), now, true);
    return;
  }
  if (purpose == "dht") {
    dht_ = j;
    return;
  }
  if (purpose == "search") {
    auto q = pending_query_.find(id);
    if (q == pending_query_.end()) return;
    const std::string query = q->second;
    pending_query_.erase(q);
    const bool repeat = j.value("repeat", false);
    for (auto& t : tabs_) t.wants_earlier = false;
    if (repeat) {
      // Ultrapeers drop an identical query for a while (gtk-gnutella: 1,700 s);
      // the node answers with what the first one found.
      const auto mins = (j.value("requery_in", std::int64_t{0}) + 59) / 60;
      status("same search as before: " + std::to_string(j.value("earlier", 0)) + " earlier results; full re-query in " +
                 std::to_string(mins) + " min (ultrapeers drop repeats)",
             now);
    }
    const std::string sid = str(j, "search");
    for (std::size_t i = 0; i < tabs_.size(); ++i) {
      if (tabs_[i].search_id == sid) {
        tab_ = i;  // the search is open already: go to it
        return;
      }
    }
    Tab t;
    t.search_id = sid;
    t.query = query;
    t.wants_earlier = repeat;
    if (tabs_.size() >= kMaxTabs) {
      send({{"cmd", "stop-search"}, {"search", tabs_.front().search_id}}, "stop-search");
      tabs_.erase(tabs_.begin());
    }
    tabs_.push_back(std::move(t));
    tab_ = tabs_.size() - 1;
  } else if (purpose == "downloads") {
    std::vector<Download> next;
    for (const auto& d : j.value("downloads", json::array())) {
      Download n;
      n.id = num<std::uint64_t>(d, "download");
      n.name = str(d, "name");
      n.state = str(d, "state");
      n.path = str(d, "path");
      n.have = num<std::uint64_t>(d, "have");
      n.size = num<std::uint64_t>(d, "size");
      n.sources = num<std::uint32_t>(d, "sources");
      n.active = num<std::uint32_t>(d, "active_sources");
      n.last_have = n.have;
      n.last_time = now;
      for (const auto& old : downloads_) {
        if (old.id != n.id) continue;
        const double dt = std::chrono::duration<double>(now - old.last_time).count();
        const double inst = dt > 0 && n.have >= old.last_have ? static_cast<double>(n.have - old.last_have) / dt : 0;
        n.rate = old.rate == 0 ? inst : 0.6 * old.rate + 0.4 * inst;  // smoothed, as ETAs should be
      }
      next.push_back(std::move(n));
    }
    downloads_ = std::move(next);
  } else if (purpose == "peers") {
    peers_ = j.value("peers", json::array());
    if (j.contains("role") && j["role"].is_string()) role_ = j["role"].get<std::string>();
  } else if (purpose == "uploads") {
    uploads_ = j;
    // Rates from two polls, smoothed as the downloads' are; finished uploads are forgotten.
    std::map<std::string, UploadRate> next;
    for (const auto& u : uploads_.value("list", json::array())) {
      const std::string key = str(u, "peer") + '\0' + str(u, "name") + '\0' + std::to_string(num<std::uint64_t>(u, "first"));
      UploadRate r;
      r.sent = num<std::uint64_t>(u, "sent");
      r.at = now;
      if (auto old = upload_rates_.find(key); old != upload_rates_.end()) {
        const double secs = std::chrono::duration<double>(now - old->second.at).count();
        if (secs > 0 && r.sent >= old->second.sent) {
          const double inst = static_cast<double>(r.sent - old->second.sent) / secs;
          r.rate = old->second.rate == 0 ? inst : 0.6 * old->second.rate + 0.4 * inst;
        } else {
          r.rate = old->second.rate;
          r.at = old->second.at;
          r.sent = old->second.sent;
        }
      }
      next.emplace(key, r);
    }
    upload_rates_ = std::move(next);
  } else if (purpose == "stats") {
    stats_ = j.value("stats", json::object());
  } else if (purpose == "torrents") {
    torrents_ = j.value("torrents", json::array());
  } else if (purpose == "download") {
    status("download " + std::to_string(num<std::uint64_t>(j, "download")) + " started", now);
    next_poll_ = now;  // show it at once
  }
}

void App::add_hit(Tab& t, const json& j) {
  ++t.hits;
  Hit h;
  h.name = str(j, "name");
  h.host = str(j, "host");
  h.port = num<int>(j, "port");
  h.size = num<std::uint64_t>(j, "size");
  h.urn = str(j, "urn");
  h.speed = num<std::uint32_t>(j, "speed");
  h.bitrate = num<std::uint32_t>(j, "bitrate");
  h.freq = num<std::uint32_t>(j, "freq");
  h.length = num<std::uint32_t>(j, "length");
  h.network = str(j, "network") == "napster" ? "Napster" : "Gnutella";
  // Files are grouped by content: urn:sha1 when the hit has one, else network, name and size.
  std::string key = h.urn.empty() ? h.network + '\0' + h.name + '\0' + std::to_string(h.size) : h.urn;
  auto found = t.by_key.find(key);
  if (found != t.by_key.end()) {
    Group& g = t.groups[found->second];
    ++g.sources;
    g.speed = std::max(g.speed, h.speed);
    if (!g.bitrate) g.bitrate = h.bitrate;
    if (!g.freq) g.freq = h.freq;
    if (!g.length) g.length = h.length;
    t.dirty = true;
    return;
  }
  if (t.groups.size() >= max_groups_) {
    ++t.dropped;
    return;
  }
  Group g;
  g.name = h.name;
  g.lower_name = lower(h.name);
  g.host = h.network == "Napster" ? str(j, "nick") + "@" + h.host : h.host + ":" + std::to_string(h.port);
  g.network = h.network;
  g.urn = h.urn;
  g.size = h.size;
  g.bitrate = h.bitrate;
  g.freq = h.freq;
  g.length = h.length;
  g.speed = h.speed;
  g.sources = 1;
  g.first = j;
  g.first.erase("event");
  g.first.erase("search");
  t.by_key.emplace(std::move(key), static_cast<std::uint32_t>(t.groups.size()));
  t.groups.push_back(std::move(g));
  t.dirty = true;
}

void App::rebuild(const Tab& t) const {
  if (!t.dirty) return;
  t.dirty = false;
  const auto want = words(t.filter);
  t.view.clear();
  for (std::uint32_t i = 0; i < t.groups.size(); ++i) {
    const auto& g = t.groups[i];
    bool ok = true;
    for (const auto& w : want) {
      if (g.lower_name.find(w) == std::string::npos) {
        ok = false;
        break;
      }
    }
    if (ok) t.view.push_back(i);
  }
  auto key_less = [&](std::uint32_t a, std::uint32_t b) {
    const Group& x = t.groups[a];
    const Group& y = t.groups[b];
    switch (t.sort) {
      case Column::Name: return x.lower_name < y.lower_name;
      case Column::Size: return x.size < y.size;
      case Column::Bitrate: return x.bitrate < y.bitrate;
      case Column::Freq: return x.freq < y.freq;
      case Column::Length: return x.length < y.length;
      case Column::Sources: return x.sources < y.sources;
      case Column::Host: return x.host < y.host;
      case Column::Network: return x.network < y.network;
      case Column::Speed: return x.speed < y.speed;
    }
    return false;
  };
  if (t.descending) {
    std::stable_sort(t.view.begin(), t.view.end(), [&](auto a, auto b) { return key_less(b, a); });
  } else {
    std::stable_sort(t.view.begin(), t.view.end(), key_less);
  }
  // The selection stays on its file while rows move under it.
  if (t.selected_group != UINT32_MAX) {
    auto pos = std::find(t.view.begin(), t.view.end(), t.selected_group);
    if (pos != t.view.end()) t.selected = static_cast<std::size_t>(pos - t.view.begin());
  }
  if (t.selected >= t.view.size()) t.selected = t.view.empty() ? 0 : t.view.size() - 1;
}

void App::move(std::size_t& selected, std::size_t& top, std::size_t count, long delta, std::size_t rows) {
  if (count == 0) {
    selected = top = 0;
    return;
  }
  long s = static_cast<long>(selected) + delta;
  s = std::clamp(s, 0L, static_cast<long>(count) - 1);
  selected = static_cast<std::size_t>(s);
  if (selected < top) top = selected;
  if (selected >= top + rows) top = selected - rows + 1;
}

void App::key(std::int32_t k, Clock::time_point now) {
  now_ = std::max(now_, now);
  if (input_ != Input::None) return key_input(k);
  if (help_) {
    help_ = false;  // any key closes the help
    if (k != 'q') return;
  }
  const std::size_t rows = table_rows();
  switch (k) {
    case 'q': quit_ = true; return;
    case '?': help_ = true; return;
    case kKeyTab: view_ = static_cast<View>((static_cast<int>(view_) + 1) % 5); next_poll_ = now; return;
    case kKeyBackTab: view_ = static_cast<View>((static_cast<int>(view_) + 4) % 5); next_poll_ = now; return;
    default: break;
  }
  // The header's promise holds on every screen: a digit is text only while
  // a search or a filter is typed (key_input, above).
  if (k >= '1' && k <= '5') {
    view_ = static_cast<View>(k - '1');
    next_poll_ = now;
    return;
  }
  long delta = 0;
  switch (k) {
    case kKeyUp: case 'k': delta = -1; break;
    case kKeyDown: case 'j': delta = 1; break;
    case kKeyPageUp: delta = -static_cast<long>(rows); break;
    case kKeyPageDown: delta = static_cast<long>(rows); break;
    case kKeyHome: case 'g': delta = -(1L << 40); break;
    case kKeyEnd: case 'G': delta = 1L << 40; break;
    default: break;
  }
  switch (view_) {
    case View::Search:
      if (delta != 0 && !tabs_.empty()) {
        Tab& t = tabs_[tab_];
        rebuild(t);
        move(t.selected, t.top, t.view.size(), delta, rows);
        if (!t.view.empty()) t.selected_group = t.view[t.selected];
        return;
      }
      return key_search(k);
    case View::Downloads:
      if (delta != 0) return move(dl_selected_, dl_top_, downloads_.size(), delta, rows);
      if (dl_selected_ < downloads_.size()) {
        const auto& d = downloads_[dl_selected_];
        if (k == 'c' || k == kKeyDelete) {
          send({{"cmd", "cancel"}, {"download", d.id}}, "cancel");
          status("cancelling " + d.name, now);
          next_poll_ = now;
        } else if (k == 'p' || k == ' ') {
          const bool paused = d.state == "paused";
          send({{"cmd", paused ? "resume" : "pause"}, {"download", d.id}}, paused ? "resume" : "pause");
          next_poll_ = now;
        }
      }
      return;
    case View::Uploads: {
      std::size_t sel = up_top_;
      if (delta != 0) move(sel, up_top_, uploads_.value("list", json::array()).size(), delta, rows);
      return;
    }
    case View::Network: {
      std::size_t sel = net_top_;
      const std::size_t dht_lines = dht_.is_object() ? 1 + dht_.value("nodes", json::array()).size() : 0;
      if (delta != 0) move(sel, net_top_, peers_.size() + dht_lines, delta, rows);
      return;
    }
    case View::Stats: {
      std::size_t sel = stats_top_;
      if (delta != 0) move(sel, stats_top_, 1000, delta, rows);
      return;
    }
  }
}

void App::key_search(std::int32_t k) {
  switch (k) {
    case '/':
      input_ = Input::Search;
      line_.clear();
      return;
    case 'f':
      if (tabs_.empty()) return;
      input_ = Input::Filter;
      line_ = tabs_[tab_].filter;
      return;
    default: break;
  }
  if (tabs_.empty()) return;
  Tab& t = tabs_[tab_];
  switch (k) {
    case kKeyLeft: case '[': tab_ = (tab_ + tabs_.size() - 1) % tabs_.size(); return;
    case kKeyRight: case ']': tab_ = (tab_ + 1) % tabs_.size(); return;
    case 's':
      t.sort = static_cast<Column>((static_cast<int>(t.sort) + 1) % kColumns);
      t.descending = t.sort != Column::Name && t.sort != Column::Host && t.sort != Column::Network;
      t.dirty = true;
      return;
    case 'S':
      t.descending = !t.descending;
      t.dirty = true;
      return;
    case 'x':
      send({{"cmd", "stop-search"}, {"search", t.search_id}}, "stop-search");
      tabs_.erase(tabs_.begin() + static_cast<long>(tab_));
      if (tab_ >= tabs_.size() && tab_ > 0) --tab_;
      return;
    case kKeyEnter: case 'd': {
      rebuild(t);
      if (t.selected >= t.view.size()) return;
      const Group& g = t.groups[t.view[t.selected]];
      send({{"cmd", "download"}, {"result", g.first}}, "download");
      return;
    }
    default: return;
  }
}

void App::key_input(std::int32_t k) {
  Tab* t = tabs_.empty() ? nullptr : &tabs_[tab_];
  switch (k) {
    case kKeyEscape:
      if (input_ == Input::Filter && t) {
        t->filter.clear();
        t->dirty = true;
      }
      input_ = Input::None;
      return;
    case kKeyEnter:
      if (input_ == Input::Search) {
        const auto w = words(line_);
        if (!w.empty()) {
          const auto id = send({{"cmd", "search"}, {"query", line_}}, "search");
          pending_query_[id] = line_;
        }
      }
      input_ = Input::None;
      return;
    case kKeyBackspace:
      pop_utf8(line_);
      break;
    default:
      if (k >= 0x20 && k != 0x7f && k < 0x110000 && line_.size() < 200) append_utf8(line_, static_cast<char32_t>(k));
      break;
  }
  if (input_ == Input::Filter && t) {
    t->filter = line_;  // as you type
    t->dirty = true;
    t->selected = t->top = 0;
    t->selected_group = UINT32_MAX;
  }
}

// ---- drawing ----

void App::draw(Screen& s) const {
  height_ = s.height();
  s.clear();
  draw_title(s);
  switch (view_) {
    case View::Search: draw_search(s); break;
    case View::Downloads: draw_downloads(s); break;
    case View::Uploads: draw_uploads(s); break;
    case View::Network: draw_network(s); break;
    case View::Stats: draw_stats(s); break;
  }
  draw_status(s);
  if (help_) draw_help(s);
}

void App::draw_title(Screen& s) const {
  s.fill(0, 0, s.width(), Attr::Title);
  int x = 0;
  for (int v = 0; v < 5; ++v) {
    const bool on = static_cast<int>(view_) == v;
    const std::string label = " " + std::to_string(v + 1) + " " + kViewNames[v] + " ";
    x += s.put(x, 0, label, on ? Attr::TabActive : Attr::Title);
  }
  std::size_t up = 0;
  for (const auto& p : peers_) up += p.value("established", false);
  const std::string right =
      "servent " + (role_.empty() ? std::string() : role_ + " ") + " " + std::to_string(up) + (up == 1 ? " peer " : " peers ");
  s.put_right(x, 0, right, Attr::Title, s.width() - x);
}

void App::draw_search(Screen& s) const {
  // Row 1: one tab per search.
  int x = 0;
  if (tabs_.empty()) {
    s.put(0, 1, "No search yet: press / and type what you are looking for.", Attr::Dim);
  }
  for (std::size_t i = 0; i < tabs_.size() && x < s.width(); ++i) {
    const Tab& t = tabs_[i];
    const std::string label = " " + t.query + " (" + std::to_string(t.groups.size()) + ") ";
    x += s.put(x, 1, label, i == tab_ ? Attr::TabActive : Attr::Normal, std::min(s.width() - x, 30));
    x += s.put(x, 1, " ", Attr::Normal);
  }
  // Row 2: the input line, or the filter in force.
  s.fill(0, 2, s.width(), Attr::Input);
  if (input_ == Input::Search) {
    int w = s.put(0, 2, "Search: ", Attr::Input);
    w += s.put(w, 2, line_, Attr::Input, s.width() - w - 1);
    s.put(w, 2, "_", Attr::Input);
  } else if (input_ == Input::Filter) {
    int w = s.put(0, 2, "Filter: ", Attr::Input);
    w += s.put(w, 2, line_, Attr::Input, s.width() - w - 1);
    s.put(w, 2, "_", Attr::Input);
  } else if (!tabs_.empty() && !tabs_[tab_].filter.empty()) {
    int w = s.put(0, 2, "Filter: ", Attr::Input);
    s.put(w, 2, tabs_[tab_].filter, Attr::Input, s.width() - w);
  } else if (!tabs_.empty()) {
    s.put(0, 2, "Results for \"" + tabs_[tab_].query + "\"", Attr::Input);
  }
  if (tabs_.empty()) return;
  const Tab& t = tabs_[tab_];
  rebuild(t);
  const Layout l = layout(s.width());
  // Row 3: headers, the sorted one marked.
  s.fill(0, 3, s.width(), Attr::Header);
  x = 0;
  for (int c = 0; c < kColumns; ++c) {
    if (!l.shown[c]) continue;
    std::string h = c == static_cast<int>(Column::Network) && l.width[c] < 8 ? kShortNetwork : kColumnNames[c];
    if (static_cast<int>(t.sort) == c) h += t.descending ? (s.utf8() ? "\u25bc" : "v") : (s.utf8() ? "\u25b2" : "^");
    if (c == 0 || c == static_cast<int>(Column::Host) || c == static_cast<int>(Column::Network)) {
      s.put(x, 3, h, Attr::Header, l.width[c]);
    } else {
      s.put_right(x, 3, h, Attr::Header, l.width[c]);
    }
    x += l.width[c] + 1;
  }
  // Rows: only the visible slice of the view is drawn.
  const std::size_t rows = static_cast<std::size_t>(std::max(1, s.height() - 5));
  std::size_t top = t.top;
  if (t.selected < top) top = t.selected;
  if (t.selected >= top + rows) top = t.selected - rows + 1;
  t.top = top;
  for (std::size_t r = 0; r < rows && top + r < t.view.size(); ++r) {
    const Group& g = t.groups[t.view[top + r]];
    const int y = 4 + static_cast<int>(r);
    const bool sel = top + r == t.selected;
    const Attr a = sel ? Attr::Selected : Attr::Normal;
    if (sel) s.fill(0, y, s.width(), a);
    x = 0;
    for (int c = 0; c < kColumns; ++c) {
      if (!l.shown[c]) continue;
      std::string cell;
      switch (static_cast<Column>(c)) {
        case Column::Name: cell = g.name; break;
        case Column::Size: cell = human_size(g.size); break;
        case Column::Bitrate: cell = g.bitrate ? std::to_string(g.bitrate) : ""; break;
        case Column::Freq:
          if (g.freq) {
            char b[16];
            std::snprintf(b, sizeof b, "%.1f", g.freq / 1000.0);
            cell = b;
          }
          break;
        case Column::Length: cell = g.length ? clock_text(g.length) : ""; break;
        case Column::Sources: cell = std::to_string(g.sources); break;
        case Column::Host: cell = g.sources > 1 ? g.host + " +" + std::to_string(g.sources - 1) : g.host; break;
        case Column::Speed: cell = std::to_string(g.speed); break;
        case Column::Network: cell = l.width[c] < 8 ? g.network.substr(0, 3) : g.network; break;
      }
      if (c == 0 || c == static_cast<int>(Column::Host) || c == static_cast<int>(Column::Network)) {
        s.put(x, y, cell, a, l.width[c]);
      } else {
        s.put_right(x, y, cell, a, l.width[c]);
      }
      x += l.width[c] + 1;
    }
  }
  // Where we are in a long list.
  std::string where = std::to_string(t.view.empty() ? 0 : t.selected + 1) + "/" + std::to_string(t.view.size()) + " files, " +
                      std::to_string(t.hits) + " hits";
  if (t.dropped) where += ", " + std::to_string(t.dropped) + " over the limit";
  if (input_ == Input::None) {
    const int ww = std::min(s.width(), text_width(where, s.utf8()) + 2);
    s.put_right(s.width() - ww, 2, where, Attr::Input, ww);
  }
}

void App::draw_downloads(Screen& s) const {
  s.fill(0, 1, s.width(), Attr::Header);
  const int bar = s.width() >= 100 ? 24 : 10;
  const int fixed = bar + 1 + 4 + 1 + 9 + 1 + 10 + 1 + 7 + 1 + 5 + 1 + 9;
  const int name_w = std::max(8, s.width() - fixed);
  int x = 0;
  auto head = [&](const char* h, int w, bool right) {
    if (right) {
      s.put_right(x, 1, h, Attr::Header, w);
    } else {
      s.put(x, 1, h, Attr::Header, w);
    }
    x += w + 1;
  };
  head("Name", name_w, false);
  head("Progress", bar, false);
  head("%", 4, true);
  head("Size", 9, true);
  head("Rate", 10, true);
  head("ETA", 7, true);
  head("Src", 5, true);
  head("State", 9, false);
  if (downloads_.empty()) s.put(0, 2, "No downloads: pick a search result and press Enter.", Attr::Dim);
  const std::size_t rows = static_cast<std::size_t>(std::max(1, s.height() - 3));
  for (std::size_t r = 0; r < rows && dl_top_ + r < downloads_.size(); ++r) {
    const Download& d = downloads_[dl_top_ + r];
    const int y = 2 + static_cast<int>(r);
    const bool sel = dl_top_ + r == dl_selected_;
    const Attr a = sel ? Attr::Selected : Attr::Normal;
    if (sel) s.fill(0, y, s.width(), a);
    x = 0;
    s.put(x, y, d.name, a, name_w);
    x += name_w + 1;
    const double frac = d.size ? std::min(1.0, static_cast<double>(d.have) / static_cast<double>(d.size)) : 0;
    const int filled = static_cast<int>(frac * bar + 0.5);
    // '#' filled and '.' to go: readable without colour too.
    for (int i = 0; i < bar; ++i) s.put(x + i, y, i < filled ? "#" : ".", i < filled ? Attr::Bar : Attr::Dim, 1);
    x += bar + 1;
    char pct[16];
    std::snprintf(pct, sizeof pct, "%.0f%%", frac * 100);
    s.put_right(x, y, d.size ? pct : "?", a, 4);
    x += 5;
    s.put_right(x, y, human_size(d.size ? d.size : d.have), a, 9);
    x += 10;
    const bool running = d.state != "done" && d.state != "failed" && d.state != "paused" && d.state != "cancelled";
    s.put_right(x, y, running ? human_rate(d.rate) : "", a, 10);
    x += 11;
    std::string eta;
    if (running && d.rate >= 1 && d.size > d.have) eta = clock_text(static_cast<std::uint64_t>(static_cast<double>(d.size - d.have) / d.rate));
    s.put_right(x, y, eta, a, 7);
    x += 8;
    s.put_right(x, y, std::to_string(d.active) + "/" + std::to_string(d.sources), a, 5);
    x += 6;
    const Attr st = d.state == "done" ? Attr::Good : d.state == "failed" ? Attr::Bad : a;
    s.put(x, y, d.state, st, 9);
  }
  const std::size_t shown = std::min(rows, downloads_.size() - std::min(dl_top_, downloads_.size()));
  draw_torrents(s, 2 + static_cast<int>(std::max<std::size_t>(shown, downloads_.empty() ? 1 : 0)) + 1);
}

// Torrents under the downloads, in the same columns: progress of the pieces
// we have, the download rate over the node's last choke interval, peers in
// the Src column, and seeding / leeching / checking / metadata.
void App::draw_torrents(Screen& s, int y) const {
  if (torrents_.empty() || y >= s.height() - 1) return;
  s.put(0, y++, "Torrents", Attr::Header, s.width());
  const int bar = s.width() >= 100 ? 24 : 10;
  const int fixed = bar + 1 + 4 + 1 + 9 + 1 + 10 + 1 + 7 + 1 + 5 + 1 + 9;
  const int name_w = std::max(8, s.width() - fixed);
  for (const auto& t : torrents_) {
    if (y >= s.height() - 1) break;
    const auto size = num<std::uint64_t>(t, "size"), have = num<std::uint64_t>(t, "have_bytes");
    const double rate = static_cast<double>(num<std::uint64_t>(t, "down_rate"));
    const std::string state = str(t, "state");
    int x = 0;
    s.put(x, y, str(t, "name"), Attr::Normal, name_w);
    x += name_w + 1;
    const double frac = size ? std::min(1.0, static_cast<double>(have) / static_cast<double>(size)) : 0;
    const int filled = static_cast<int>(frac * bar + 0.5);
    for (int i = 0; i < bar; ++i) s.put(x + i, y, i < filled ? "#" : ".", i < filled ? Attr::Bar : Attr::Dim, 1);
    x += bar + 1;
    char pct[16];
    std::snprintf(pct, sizeof pct, "%.0f%%", frac * 100);
    s.put_right(x, y, size ? pct : "?", Attr::Normal, 4);
    x += 5;
    s.put_right(x, y, size ? human_size(size) : "?", Attr::Normal, 9);
    x += 10;
    s.put_right(x, y, state == "leeching" ? human_rate(rate) : "", Attr::Normal, 10);
    x += 11;
    std::string eta;
    if (state == "leeching" && rate >= 1 && size > have) eta = clock_text(static_cast<std::uint64_t>(static_cast<double>(size - have) / rate));
    s.put_right(x, y, eta, Attr::Normal, 7);
    x += 8;
    s.put_right(x, y, std::to_string(t.value("peers", json::array()).size()), Attr::Normal, 5);
    x += 6;
    s.put(x, y, state, state == "seeding" ? Attr::Good : Attr::Normal, 9);
    ++y;
  }
}

// Per torrent: what we sent, the ratio, the upload rate; then its peers with
// who chokes whom (D we download from it, d it chokes us while we want its
// pieces, U we upload to it, u we choke it while it wants ours, S snubbed),
// the pieces it has, both rates and its client.
void App::draw_torrent_peers(Screen& s, int y) const {
  if (torrents_.empty() || y >= s.height() - 1) return;
  s.fill(0, y, s.width(), Attr::Header);
  s.put(0, y, "Torrent peer", Attr::Header, 21);
  s.put(22, y, "Flags", Attr::Header, 5);
  s.put_right(28, y, "Pieces", Attr::Header, 7);
  s.put_right(36, y, "Down", Attr::Header, 10);
  s.put_right(47, y, "Up", Attr::Header, 10);
  s.put(58, y, "Client", Attr::Header, std::max(6, s.width() - 58));
  ++y;
  for (const auto& t : torrents_) {
    if (y >= s.height() - 1) return;
    const auto size = num<std::uint64_t>(t, "size"), up = num<std::uint64_t>(t, "uploaded"), down = num<std::uint64_t>(t, "downloaded");
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.2f", static_cast<double>(up) / static_cast<double>(std::max<std::uint64_t>(1, down ? down : size)));
    s.put(0, y++, str(t, "name") + "  sent " + human_size(up) + "  ratio " + ratio + "  up " +
                      human_rate(static_cast<double>(num<std::uint64_t>(t, "up_rate"))),
          Attr::Normal, s.width());
    for (const auto& p : t.value("peers", json::array())) {
      if (y >= s.height() - 1) return;
      std::string flags;
      const bool am_choking = p.value("am_choking", true), peer_choking = p.value("peer_choking", true);
      if (p.value("am_interested", false)) flags += peer_choking ? 'd' : 'D';
      if (p.value("peer_interested", false)) flags += am_choking ? 'u' : 'U';
      if (p.value("snubbed", false)) flags += 'S';
      s.put(2, y, str(p, "address"), Attr::Normal, 19);
      s.put(22, y, flags, Attr::Normal, 5);
      s.put_right(28, y, std::to_string(num<std::uint64_t>(p, "pieces")), Attr::Normal, 7);
      s.put_right(36, y, human_rate(static_cast<double>(num<std::uint64_t>(p, "down_rate"))), Attr::Normal, 10);
      s.put_right(47, y, human_rate(static_cast<double>(num<std::uint64_t>(p, "up_rate"))), Attr::Normal, 10);
      s.put(58, y, str(p, "client"), Attr::Dim, std::max(6, s.width() - 58));
      ++y;
    }
  }
}

void App::draw_uploads(Screen& s) const {
  const auto n = [&](const char* k) { return uploads_.contains(k) && uploads_[k].is_number() ? uploads_[k].dump() : "-"; };
  s.put(0, 1, "Active " + n("active") + " of " + n("slots") + " slots   completed " + n("completed") + "   failed " + n("failed"),
        Attr::Normal);
  s.fill(0, 2, s.width(), Attr::Header);
  // Peer, file, progress bar and %, bytes sent of the range, rate, time.
  const int bar = s.width() >= 100 ? 20 : 10;
  const int name_w = std::max(8, s.width() - (21 + 1 + bar + 1 + 4 + 1 + 19 + 1 + 10 + 1 + 8));
  int x = 0;
  s.put(x, 2, "Peer", Attr::Header, 21);
  x += 22;
  s.put(x, 2, "File", Attr::Header, name_w);
  x += name_w + 1;
  s.put(x, 2, "Progress", Attr::Header, bar + 5);
  x += bar + 6;
  s.put_right(x, 2, "Sent", Attr::Header, 19);
  x += 20;
  s.put_right(x, 2, "Rate", Attr::Header, 10);
  x += 11;
  s.put_right(x, 2, "Time", Attr::Header, 8);
  const auto list = uploads_.value("list", json::array());
  if (list.empty()) s.put(0, 3, "Nobody is downloading from us right now.", Attr::Dim);
  const std::size_t rows = static_cast<std::size_t>(std::max(1, s.height() - 4));
  for (std::size_t r = 0; r < rows && up_top_ + r < list.size(); ++r) {
    const json& u = list[up_top_ + r];
    const int y = 3 + static_cast<int>(r);
    const auto length = num<std::uint64_t>(u, "length"), sent = std::min(num<std::uint64_t>(u, "sent"), length);
    const std::string key = str(u, "peer") + '\0' + str(u, "name") + '\0' + std::to_string(num<std::uint64_t>(u, "first"));
    const auto rate = upload_rates_.find(key);
    x = 0;
    s.put(x, y, str(u, "peer"), Attr::Normal, 21);
    x += 22;
    s.put(x, y, str(u, "name"), Attr::Normal, name_w);
    x += name_w + 1;
    const double frac = length ? static_cast<double>(sent) / static_cast<double>(length) : 1.0;
    const int filled = static_cast<int>(frac * bar + 0.5);
    for (int i = 0; i < bar; ++i) s.put(x + i, y, i < filled ? "#" : ".", i < filled ? Attr::Bar : Attr::Dim, 1);
    x += bar + 1;
    s.put_right(x, y, std::to_string(static_cast<int>(frac * 100)) + "%", Attr::Normal, 4);
    x += 5;
    s.put_right(x, y, human_size(sent) + " of " + human_size(length), Attr::Normal, 19);
    x += 20;
    s.put_right(x, y, rate != upload_rates_.end() && rate->second.rate > 0 ? human_rate(rate->second.rate) : "", Attr::Normal, 10);
    x += 11;
    s.put_right(x, y, clock_text(num<std::uint64_t>(u, "seconds")), Attr::Normal, 8);
  }
  const std::size_t shown = std::min(rows, list.size() - std::min(up_top_, list.size()));
  draw_torrent_peers(s, 3 + static_cast<int>(std::max<std::size_t>(shown, 1)) + 1);
}

void App::draw_network(Screen& s) const {
  s.fill(0, 1, s.width(), Attr::Header);
  // The peer's role replaces the protocol version (a 0.4 peer is "legacy").
  const int ua_w = std::max(8, s.width() - (21 + 1 + 3 + 1 + 9 + 1 + 4 + 1 + 8 + 1 + 6 + 1 + 6 + 1 + 5 + 1));
  struct Col {
    const char* name;
    int w;
    bool right;
  };
  const Col cols[] = {{"Address", 21, false},     {"Dir", 3, false},   {"Role", 9, false}, {"Rep", 4, true},
                      {"User agent", ua_w, false}, {"Uptime", 8, true}, {"In", 6, true},    {"Out", 6, true},
                      {"Drops", 5, true}};
  int x = 0;
  for (const auto& c : cols) {
    if (c.right) {
      s.put_right(x, 1, c.name, Attr::Header, c.w);
    } else {
      s.put(x, 1, c.name, Attr::Header, c.w);
    }
    x += c.w + 1;
  }
  if (peers_.empty() && !dht_.is_object()) s.put(0, 2, "No peers yet.", Attr::Dim);
  // The Gnutella peers, then the DHT: a line with the node's place in the
  // overlay, then the nodes it keeps (role, id) in the same columns.
  std::vector<json> lines(peers_.begin(), peers_.end());
  if (dht_.is_object()) {
    lines.push_back(json{{"heading", "DHT " + str(dht_, "summary")}});
    for (const auto& n : dht_.value("nodes", json::array())) {
      lines.push_back(json{{"address", str(n, "address")}, {"role", str(n, "role")}, {"user_agent", "node " + str(n, "id")},
                           {"dht", true}});
    }
  }
  const std::size_t rows = static_cast<std::size_t>(std::max(1, s.height() - 3));
  for (std::size_t r = 0; r < rows && net_top_ + r < lines.size(); ++r) {
    const json& p = lines[net_top_ + r];
    if (p.contains("heading")) {
      s.put(0, 2 + static_cast<int>(r), str(p, "heading"), Attr::Header, s.width());
      continue;
    }
    if (p.contains("dht")) {
      const int y = 2 + static_cast<int>(r);
      s.put(0, y, str(p, "address"), Attr::Normal, cols[0].w);
      s.put(cols[0].w + 1 + cols[1].w + 1, y, str(p, "role"), Attr::Normal, cols[2].w + 1 + cols[3].w);
      s.put(cols[0].w + 1 + cols[1].w + 1 + cols[2].w + 1 + cols[3].w + 1, y, str(p, "user_agent"), Attr::Dim, cols[4].w);
      continue;
    }
    const int y = 2 + static_cast<int>(r);
    const std::string cells[] = {str(p, "address"),
                                 str(p, "direction"),
                                 str(p, "role"),
                                 p.contains("reputation") ? std::to_string(num<std::int64_t>(p, "reputation")) : "",
                                 str(p, "user_agent"),
                                 p.contains("uptime") ? clock_text(num<std::uint64_t>(p, "uptime")) : "",
                                 std::to_string(num<std::uint64_t>(p, "messages_in")),
                                 std::to_string(num<std::uint64_t>(p, "messages_out")),
                                 p.contains("dropped") ? std::to_string(num<std::uint64_t>(p, "dropped")) : ""};
    const Attr a = p.value("established", true) ? Attr::Normal : Attr::Dim;
    x = 0;
    for (std::size_t c = 0; c < std::size(cols); ++c) {
      if (cols[c].right) {
        s.put_right(x, y, cells[c], a, cols[c].w);
      } else {
        s.put(x, y, cells[c], a, cols[c].w);
      }
      x += cols[c].w + 1;
    }
  }
}

void App::draw_stats(Screen& s) const {
  // Every counter of every part, "part.counter value", in two columns when wide.
  std::vector<std::pair<std::string, std::string>> lines;
  for (const auto& [part, v] : stats_.items()) {
    if (v.is_object()) {
      for (const auto& [name, value] : v.items()) lines.push_back({part + "." + name, value.dump()});
    } else {
      lines.push_back({part, v.dump()});
    }
  }
  if (lines.empty()) s.put(0, 1, "Waiting for the node's counters...", Attr::Dim);
  const int columns = s.width() >= 100 ? 2 : 1;
  const int col_w = s.width() / columns;
  const std::size_t rows = static_cast<std::size_t>(std::max(1, s.height() - 2));
  const std::size_t top = std::min(stats_top_, lines.size());
  for (std::size_t i = top; i < lines.size(); ++i) {
    const std::size_t k = i - top;
    const int col = static_cast<int>(k / rows);
    if (col >= columns) break;
    const int y = 1 + static_cast<int>(k % rows);
    const int x = col * col_w;
    s.put(x, y, lines[i].first, Attr::Normal, col_w - 14);
    s.put_right(x + col_w - 14, y, lines[i].second, Attr::Good, 12);
  }
}

void App::draw_help(Screen& s) const {
  static const char* kLines[] = {
      "Keys",
      "",
      "1-5 Tab Shift-Tab  go to a screen / next / previous",
      "Up Down j k        move;  PgUp PgDn Home End",
      "/                  new search (Enter starts it, Esc cancels)",
      "f                  filter the results as you type (Esc clears)",
      "s / S              sort by the next column / reverse the order",
      "[ ] Left Right     previous / next search tab;  x closes it",
      "Enter or d         download the selected file",
      "p or Space         pause / resume the selected download",
      "c or Delete        cancel the selected download",
      "?                  this help;  q quits",
  };
  const int w = std::min(s.width(), 70), h = std::min(s.height(), static_cast<int>(std::size(kLines)) + 2);
  const int x0 = (s.width() - w) / 2, y0 = (s.height() - h) / 2;
  for (int y = 0; y < h; ++y) s.fill(x0, y0 + y, w, Attr::Title);
  for (int i = 0; i + 1 < h - 0 && i < static_cast<int>(std::size(kLines)); ++i) {
    s.put(x0 + 2, y0 + 1 + i, kLines[i], Attr::Title, w - 4);
  }
}

void App::draw_status(Screen& s) const {
  const int y = s.height() - 1;
  s.fill(0, y, s.width(), Attr::Status);
  std::string right;
  std::size_t active = 0;
  for (const auto& d : downloads_) active += d.state != "done" && d.state != "failed" && d.state != "cancelled";
  right = std::to_string(active) + " downloading ";
  const bool show = !status_.empty() && now_ < status_until_;
  const char* hints = view_ == View::Search      ? "/ search  f filter  s sort  Enter get  [ ] tabs  ? help  q quit"
                      : view_ == View::Downloads ? "p pause/resume  c cancel  Tab screens  ? help  q quit"
                                                 : "Tab screens  ? help  q quit";
  const std::string left = show ? status_ : hints;
  const int rw = text_width(right, s.utf8());
  s.put(0, y, left, show && status_bad_ ? Attr::Bad : Attr::Status, std::max(1, s.width() - rw - 1));
  s.put_right(s.width() - rw, y, right, Attr::Status, rw);
}

}  // namespace sv::tui
