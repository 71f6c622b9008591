// The terminal UI's state and drawing, without a terminal or a socket: keys
// and the node's JSON lines go in, control requests and a drawn Screen come
// out. tui_main.cpp connects it to ncurses and the control socket; the tests
// drive it directly.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "servent/tui/screen.hpp"

namespace sv::tui {

// Keys, independent of the terminal library. Printable characters are their
// Unicode code point.
enum Key : std::int32_t {
  kKeyUp = -100,
  kKeyDown,
  kKeyLeft,
  kKeyRight,
  kKeyPageUp,
  kKeyPageDown,
  kKeyHome,
  kKeyEnd,
  kKeyEnter,
  kKeyTab,
  kKeyBackTab,
  kKeyBackspace,
  kKeyEscape,
  kKeyDelete,
};

enum class View { Search, Downloads, Uploads, Network, Stats };

// Result table columns (the Napster client's, plus sources and the network).
enum class Column { Name, Size, Bitrate, Freq, Length, Sources, Host, Speed, Network };
inline constexpr int kColumns = 9;

using Clock = std::chrono::steady_clock;

class App {
 public:
  // At most this many distinct files per search tab; more are counted.
  static constexpr std::size_t kMaxGroups = 200'000;
  static constexpr std::size_t kMaxTabs = 9;

  explicit App(std::size_t max_groups = kMaxGroups);

  void key(std::int32_t k, Clock::time_point now);
  // A line from the node: a reply (has "id") or an event.
  void message(const nlohmann::json& j, Clock::time_point now);
  // Asks the node for what the screens show, about once a second.
  void tick(Clock::time_point now);
  // Requests for the node, in order (each with its "id").
  std::vector<nlohmann::json> take_requests();
  void draw(Screen& s) const;
  bool quitting() const { return quit_; }
  // The node went away: said on the status line, the screens stay.
  void disconnected(Clock::time_point now);

  // For tests and the status line.
  View view() const { return view_; }
  std::size_t tab_count() const { return tabs_.size(); }
  std::size_t current_tab() const { return tab_; }
  std::size_t group_count(std::size_t tab) const { return tabs_.at(tab).groups.size(); }
  std::uint64_t dropped_count(std::size_t tab) const { return tabs_.at(tab).dropped; }
  void open_search_for_test(const std::string& search_id, const std::string& query);

  struct Hit {
    nlohmann::json raw;  // as the node sent it: handed back to download it
    std::string host, name, urn, network;
    int port = 0;
    std::uint64_t size = 0;
    std::uint32_t speed = 0, bitrate = 0, freq = 0, length = 0;
  };

 private:
  struct Group {
    std::string name, lower_name, host, urn, network;
    std::uint64_t size = 0;
    std::uint32_t bitrate = 0, freq = 0, length = 0, speed = 0;
    std::uint32_t sources = 0;
    nlohmann::json first;  // the first source's hit
  };
  struct Tab {
    std::string search_id, query;
    std::vector<Group> groups;
    std::unordered_map<std::string, std::uint32_t> by_key;
    std::uint64_t hits = 0, dropped = 0;
    mutable std::vector<std::uint32_t> view;  // filtered and sorted, rebuilt when dirty
    mutable bool dirty = true;
    Column sort = Column::Sources;
    bool descending = true;
    std::string filter;
    bool wants_earlier = false;  // opened for a repeated search: takes its earlier results
    mutable std::size_t selected = 0, top = 0;  // in `view`
    mutable std::uint32_t selected_group = UINT32_MAX;  // kept selected while rows move
  };
  struct Download {
    std::uint64_t id = 0;
    std::string name, state, path;
    std::uint64_t have = 0, size = 0;
    std::uint32_t sources = 0, active = 0;
    double rate = 0;  // bytes/s, smoothed
    std::uint64_t last_have = 0;
    Clock::time_point last_time{};
  };
  enum class Input { None, Search, Filter };

  std::uint64_t send(nlohmann::json request, std::string purpose);
  void add_hit(Tab& t, const nlohmann::json& j);
  void rebuild(const Tab& t) const;
  void move(std::size_t& selected, std::size_t& top, std::size_t count, long delta, std::size_t rows);
  std::size_t table_rows() const { return static_cast<std::size_t>(height_ > 6 ? height_ - 5 : 1); }
  void key_search(std::int32_t k);
  void key_input(std::int32_t k);
  void status(std::string text, Clock::time_point now, bool bad = false);

  void draw_title(Screen& s) const;
  void draw_search(Screen& s) const;
  void draw_downloads(Screen& s) const;
  void draw_uploads(Screen& s) const;
  // Rows from `y` down: one per torrent (Downloads), or per torrent and peer (Uploads).
  void draw_torrents(Screen& s, int y) const;
  void draw_torrent_peers(Screen& s, int y) const;
  void draw_network(Screen& s) const;
  void draw_stats(Screen& s) const;
  void draw_help(Screen& s) const;
  void draw_status(Screen& s) const;

  View view_ = View::Search;
  bool help_ = false, quit_ = false;
  Input input_ = Input::None;
  std::string line_;  // what is being typed
  std::vector<Tab> tabs_;
  std::size_t tab_ = 0;
  std::vector<Download> downloads_;
  std::size_t dl_selected_ = 0, dl_top_ = 0;
  std::set<std::uint64_t> paused_;
  nlohmann::json peers_ = nlohmann::json::array();
  nlohmann::json dht_;              // the node's DHT ("dht": its place in the overlay), when it runs one
  bool dht_available_ = true;       // (a node without one says so once: not asked again)
  std::string role_;  // the node's own ("leaf" / "ultrapeer"), from the peers reply
  nlohmann::json uploads_ = nlohmann::json::object();
  // Per upload (peer, file, first byte): the last bytes sent and when, and the rate.
  struct UploadRate {
    std::uint64_t sent = 0;
    Clock::time_point at{};
    double rate = 0;
  };
  std::map<std::string, UploadRate> upload_rates_;
  nlohmann::json stats_ = nlohmann::json::object();
  nlohmann::json torrents_ = nlohmann::json::array();  // the node's BitTorrent side (servent run --torrent-dir)
  std::size_t net_top_ = 0, stats_top_ = 0, up_top_ = 0;
  std::string status_;
  bool status_bad_ = false;
  Clock::time_point status_until_{};
  Clock::time_point now_{};  // the latest time given to key/message/tick: what draw() shows the status against
  Clock::time_point next_poll_{};
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::string> pending_;  // request id -> what it was for
  std::map<std::uint64_t, std::string> pending_query_;  // search request id -> query
  std::vector<nlohmann::json> out_;
  mutable int height_ = 24;  // of the last drawn screen: paging uses it
  bool connected_ = true;
  std::size_t max_groups_;
};

// Cell text for numbers, as the columns show them.
std::string human_size(std::uint64_t bytes);
std::string human_rate(double bytes_per_second);
std::string clock_text(std::uint64_t seconds);  // m:ss or h:mm:ss

}  // namespace sv::tui
