// A Napster client's server side (OpenNap protocol, napster.txt §3), as a
// sans-I/O core: it logs in to one server, shares the library there, searches
// and browses, and brokers transfers. The transfers themselves run peer to
// peer on other connections (DownloadCore and UploadCore speak the transfer
// protocol); this core tells its owner when one can start (events).
//
// - Login 2 with our data port (0 when firewalled) and link type; on 3 the
//   library is shared (100 per file: its Napster name, md5 of the first
//   299,008 bytes when known else zeros, size, MP3 bitrate/frequency/length).
//   A refused login (0) is reported and retried with backoff, as is a lost
//   connection.
// - search(): 200 -> 201... 202. Results carry no search id, so searches are
//   answered in the order they were sent; one more is sent only after the
//   previous 202 (opennap-ng answers in order anyway).
// - download(): 203 -> 204 (the sharer's address: DownloadReady), 206 (an
//   error), or a 204 with port 0 (a firewalled sharer): then 500 if we have a
//   data port (the sharer will connect to us and SEND), else it fails.
// - 607 (someone wants one of our files): 608 when we share it. 501 (we are
//   firewalled and a downloader waits): PushUpload, the owner connects out.
// - 751 ping is answered 752; 214 stats are kept.
#pragma once

#include <array>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "servent/core/core.hpp"
#include "share/library.hpp"
#include "wire/napster/napster.hpp"

namespace sv {

struct NapsterClientConfig {
  Endpoint server;
  std::string nick = "servent";
  std::string password = "servent";
  std::uint16_t data_port = 0;  // 0: firewalled (uploads by SEND only)
  std::uint32_t link = 8;       // link type 0..10 (8: cable)
  std::string client = "servent 0.1";
  std::uint32_t max_results = 100;
  Duration retry_min = 2s;
  Duration retry_max = 120s;
  std::size_t max_payload = 4096;  // what we accept from the server
};

namespace napster_event {
struct LoggedIn {
  std::string server;  // "ip:port"
  std::string email;
};
struct LoginFailed {
  std::string reason;
};
struct Disconnected {
  std::string reason;
};
struct Result {
  std::uint64_t search;
  wire::napster::SearchResult result;
};
struct SearchDone {
  std::uint64_t search;
  std::size_t results;
};
struct BrowseResult {
  std::string nick;
  wire::napster::ShareEntry file;
};
struct BrowseDone {
  std::string nick;
};
// 204: connect to `at` and GET `file` from `nick`.
struct DownloadReady {
  std::string nick, file;
  Endpoint at;
};
// 206, or no way to reach a firewalled sharer.
struct DownloadError {
  std::string nick, file, reason;
};
// 501: we are firewalled; connect to the downloader and SEND `file`.
struct PushUpload {
  std::string nick, file;
  Endpoint to;
};
struct ServerMessage {
  std::string text;  // 404 and the like
};
}  // namespace napster_event
using NapsterEvent =
    std::variant<napster_event::LoggedIn, napster_event::LoginFailed, napster_event::Disconnected, napster_event::Result,
                 napster_event::SearchDone, napster_event::BrowseResult, napster_event::BrowseDone,
                 napster_event::DownloadReady, napster_event::DownloadError, napster_event::PushUpload,
                 napster_event::ServerMessage>;

class NapsterClient final : public Core {
 public:
  enum Stat : std::size_t {
    kConnects,
    kLogins,
    kLoginsRefused,
    kDisconnects,
    kShared,
    kSearches,
    kResults,
    kBrowses,
    kDownloadRequests,
    kDownloadAcks,
    kDownloadErrors,
    kAltRequests,
    kUploadRequests,
    kUploadsAccepted,
    kUploadsRefused,
    kPushUploads,
    kServerErrors,
    kBadFrames,
    kStatCount
  };

  NapsterClient(const share::Library& library, NapsterClientConfig config);

  // Starts (connects and logs in; reconnects with backoff from then on).
  void start(Instant now);
  // Returns the search's id (results come as events); 0 when the query has no
  // word or we are not logged in.
  std::uint64_t search(std::string_view words, Instant now);
  bool browse(std::string_view nick);
  // Asks the server for `file` shared by `nick` (203); the answer is an event.
  bool download(std::string_view nick, std::string_view file);
  // The library changed: share it again (110 then the shares).
  void reshare();
  // An md5 (hex) of a file's first 299,008 bytes, as real clients send it.
  void set_md5(std::uint32_t file_index, std::string md5_hex) { md5_[file_index] = std::move(md5_hex); }
  // Tells the server a transfer started/ended (218/219, 220/221).
  void transfer_started(bool upload);
  void transfer_ended(bool upload);

  void handle_connected(ConnId conn, Endpoint remote, Direction dir, Instant now) override;
  void handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) override;
  void handle_closed(ConnId conn, CloseReason reason, Instant now) override;
  void handle_timeout(Instant now) override;
  std::optional<Action> poll_action() override { return take_front(actions_); }
  std::optional<Instant> poll_timeout() const override;
  std::optional<NapsterEvent> poll_event() { return take_front(events_); }

  bool logged_in() const { return state_ == State::LoggedIn; }
  const NapsterClientConfig& config() const { return config_; }
  const wire::napster::Stats& server_stats() const { return server_stats_; }
  std::vector<Counter> counters() const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }

 private:
  enum class State { Idle, Connecting, LoggingIn, LoggedIn, Waiting };
  void connect(Instant now);
  void lost(const std::string& reason, Instant now);
  void on_frame(const wire::napster::Frame& f, Instant now);
  void send(std::uint16_t type, std::string_view payload);
  void share_library();
  void send_next_search();

  const share::Library& library_;
  NapsterClientConfig config_;
  State state_ = State::Idle;
  ConnId conn_;
  std::uint64_t next_conn_ = 1;
  wire::napster::Framer framer_;
  Duration backoff_{0};
  Instant retry_at_;
  struct PendingSearch {
    std::uint64_t id;
    std::string query;  // the 200 payload
    std::size_t results = 0;
  };
  std::deque<PendingSearch> searches_;  // front: sent, waiting for 202
  bool search_in_flight_ = false;
  std::uint64_t next_search_ = 1;
  std::map<std::uint32_t, std::string> md5_;
  wire::napster::Stats server_stats_;
  std::deque<Action> actions_;
  std::deque<NapsterEvent> events_;
  std::array<std::uint64_t, kStatCount> stats_{};
};

}  // namespace sv
