// A Napster directory server (OpenNap protocol, napster.txt §3), as a
// sans-I/O core: clients log in, share their file lists, search them and are
// put in touch with each other for transfers, which run peer to peer.
//
// Behaviour follows opennap-ng 0.50 as seen on the wire
// (../shared/captures/napster/README.md):
// - login 2 -> 3 <email>, the MOTD (621 per line), stats 214; an unknown nick
//   is registered on its first login; a wrong password gets `0 Invalid
//   Password`, a nick already online `0 Connecting too fast` (then close);
//   anything before login gets `0 invalid command` and a close.
// - 6 asks whether a nick is free (8 free, 9 registered, 10 invalid);
//   7 registers and logs in.
// - share 100 / 870, remove 102, remove-all 110; search 200 -> 201... 202
//   (all results of one search in one write, so a client's delayed ACK does
//   not stall it); a search without a usable word gets 404 then 202.
// - 203 -> 607 to the sharer; 608 -> 204 to the downloader with the sharer's
//   data port, after checking the share exists; a firewalled sharer (port 0)
//   gets an immediate 204 with port 0; 500 -> 607, 608 -> 501 to the sharer
//   (`firewallerror` in the md5 slot when both sides are firewalled); a 500
//   for a sharer that is not firewalled gets `404 <nick> is not firewalled`.
// - browse 211 -> 212... 213 <nick> <ip>; whois 603 -> 604 (online) or 605
//   (registered, offline); ping 751 / pong 752 relayed; data port 703;
//   version check 4 echoed empty; stats every 60 s.
// - Unknown types: `404 Unknown command code N`; unparsable arguments:
//   `404 parameters are unparsable`, the connection stays; a frame over the
//   payload cap: disconnect.
// Limits (config, each with a counter): payload cap, shares per user,
// search rate per connection (token bucket), results per search, login time,
// users, registered nicks.
#pragma once

#include <array>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "servent/core/core.hpp"
#include "servent/napster/share_index.hpp"
#include "wire/napster/napster.hpp"

namespace sv {

struct NapsterServerConfig {
  std::size_t max_payload = wire::napster::kDefaultMaxPayload;
  std::size_t max_shares_per_user = 10000;
  std::size_t max_users = 100000;
  std::size_t max_accounts = 1000000;  // registered nicks kept
  std::uint32_t max_results = 100;     // per search, whatever the client asks
  double search_rate = 10;             // searches per second per connection (0: unlimited)
  double search_burst = 50;
  std::size_t index_path_depth = 2;    // words from the last N path components
  Duration login_timeout = 30s;
  Duration stats_interval = 60s;
  std::string server_name = "servent";
  std::vector<std::string> motd = {"Welcome to a servent Napster server."};
};

class NapsterServer final : public Core {
 public:
  enum Stat : std::size_t {
    kConnections,
    kLogins,
    kRegistrations,
    kLoginBadPassword,
    kLoginNickOnline,
    kLoginInvalid,
    kLoginFull,
    kLoginTimeouts,
    kCommandsBeforeLogin,
    kFramesTooLarge,
    kShares,
    kSharesOverCap,
    kRemoves,
    kSearches,
    kSearchResults,
    kSearchesRateLimited,
    kSearchesUnusable,
    kDownloadRequests,
    kDownloadAcks,
    kDownloadErrors,
    kUploadAcceptsUnknown,
    kAltRequests,
    kBrowses,
    kWhois,
    kPings,
    kUnparsable,
    kUnknownCommands,
    kStatCount
  };

  explicit NapsterServer(NapsterServerConfig config = {});

  void handle_connected(ConnId conn, Endpoint remote, Direction dir, Instant now) override;
  void handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) override;
  void handle_closed(ConnId conn, CloseReason reason, Instant now) override;
  void handle_timeout(Instant now) override;
  std::optional<Action> poll_action() override { return take_front(actions_); }
  std::optional<Instant> poll_timeout() const override;

  std::vector<Counter> counters() const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }
  std::size_t users() const { return online_; }
  std::size_t shares() const { return index_.live(); }
  const napster::ShareIndex& index() const { return index_; }

 private:
  struct User {
    std::string nick;
    ConnId conn;
    std::uint32_t ip = 0;  // host order
    std::uint16_t port = 0;
    std::uint32_t link = 0;
    std::string client;
    std::vector<std::uint32_t> shares;  // ids in index_
    Instant since;
    std::uint32_t downloads = 0, uploads = 0;
    bool used = false;
  };
  struct Conn {
    wire::napster::Framer framer;
    Endpoint remote;
    std::uint32_t user = 0;  // slot + 1; 0 before login
    Instant deadline;        // login deadline
    double tokens = 0;
    Instant refilled;
    bool closing = false;  // refused or dropped: no more frames are read
    explicit Conn(std::size_t cap) : framer(cap) {}
  };
  struct Account {
    std::string password;
    std::string email;
    Instant last_seen;
  };
  // A 607 we sent, waiting for the sharer's 608: who asked, and how.
  struct Pending {
    std::uint32_t downloader;  // user slot
    bool alt;                  // 500 (firewalled sharer) rather than 203
  };

  void on_frame(ConnId id, Conn& c, const wire::napster::Frame& f, Instant now);
  void on_login(ConnId id, Conn& c, const wire::napster::Frame& f, Instant now);
  void on_search(User& u, Conn& c, std::string_view payload, Instant now);
  void on_download(User& u, std::string_view payload, bool alt);
  void on_upload_accept(User& sharer, std::string_view payload);
  void on_browse(User& u, std::string_view payload);
  void on_whois(User& u, std::string_view payload, Instant now);
  void add_share(User& u, wire::napster::ShareEntry e);
  static void append_result(Buffer& out, const napster::ShareRecord& r);
  void logout(std::uint32_t slot, Instant now);
  User* find_online(std::string_view nick);
  std::uint32_t slot_of(const User& u) const { return static_cast<std::uint32_t>(&u - users_.data()); }
  void send(ConnId id, Buffer bytes);
  void send(ConnId id, std::uint16_t type, std::string_view payload);
  void close(ConnId id, CloseReason reason, bool flush = true);
  Buffer stats_frame() const;
  void rebuild_user_shares();

  NapsterServerConfig config_;
  napster::ShareIndex index_;
  std::unordered_map<ConnId, Conn, ConnIdHash> conns_;
  std::vector<User> users_;
  std::vector<std::uint32_t> free_users_;
  std::unordered_map<std::string, std::uint32_t> online_by_nick_;  // slot
  std::unordered_map<std::string, Account> accounts_;
  // (sharer slot, downloader nick + file) -> request; bounded per sharer.
  std::unordered_map<std::string, Pending> pending_;
  std::size_t online_ = 0;
  std::uint64_t connections_seen_ = 0;
  std::uint64_t searches_done_ = 0;
  std::optional<Instant> next_stats_;
  std::deque<std::pair<Instant, ConnId>> login_deadlines_;  // in deadline order; stale entries skipped
  std::deque<Action> actions_;
  std::array<std::uint64_t, kStatCount> stats_{};
};

}  // namespace sv
