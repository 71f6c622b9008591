// DownloadCore: the HTTP download client, as a sans-I/O core.
//
// Each download has a .part/.meta pair in the state directory (PartialFile)
// and any number of sources (HTTP URLs: /get/<index>/<name> or
// /uri-res/N2R?urn:sha1:..). Missing bytes are cut into chunks requested with
// `Range` from up to `max_connections_per_download` sources in parallel, on
// keep-alive connections. A failed or refused source backs off and is dropped
// after repeated failures; when nothing is left to assign, the tail of the
// slowest transfer is handed to an idle source. A source whose answer does not
// match what was asked (Content-Range, Content-Length, X-Gnutella-Content-URN)
// is dropped at once. When all bytes are there the file's urn:sha1 is checked;
// on a mismatch the largest contributor's bytes are fetched again from the
// others and it is dropped once the file verifies without it. The file moves
// to the output folder only when complete and verified.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "http/response_parser.hpp"
#include "servent/core/core.hpp"
#include "servent/core/types.hpp"
#include "share/partial_file.hpp"
#include "wire/gnutella/descriptors.hpp"

namespace sv {

struct DownloadSource {
  Endpoint endpoint;
  std::string target;  // request-target, already percent-encoded
  // A firewalled source (push flag in its QueryHit): reached by asking it, with
  // a Push, to connect to us and send GIV.
  struct PushVia {
    wire::gnutella::ServentId servent;
    std::uint32_t index = 0;
  };
  std::optional<PushVia> push;
  // A Napster sharer: the server tells us where it is (203 -> 204), or it
  // comes to us with SEND when it is firewalled; the transfer protocol is
  // Napster's (napster.txt "Client-Client"), not HTTP.
  struct NapsterVia {
    std::string nick;
    std::string file;  // the name as shared
  };
  std::optional<NapsterVia> napster = std::nullopt;
  // "http://a.b.c.d:port/target", "push://<ServentID hex>/get/<i>/<name>",
  // or "napster://<nick>/<file>" (both percent-encoded).
  std::string url() const;
  // The forms url() writes; nullopt for anything else.
  static std::optional<DownloadSource> from_url(std::string_view url);
};

struct DownloadSpec {
  std::string name;
  std::optional<std::uint64_t> size;
  std::optional<share::Sha1> sha1;
  std::vector<DownloadSource> sources;
  std::string out_dir;
  // Sources are on their way (a search, a DHT lookup): no source yet is
  // not a failure (a timeout, the caller's, ends the wait).
  bool await_sources = false;
};

struct DownloadConfig {
  std::string state_dir;                      // partial files go to <state_dir>/downloads
  std::size_t max_connections_per_download = 4;
  std::uint64_t chunk_min = 256 * 1024;
  std::uint64_t chunk_max = 16 * 1024 * 1024;
  Duration stall_timeout = 30s;               // no byte for this long: the source failed
  Duration retry_min = 1s;
  Duration retry_max = 60s;
  int max_failures = 4;                       // consecutive, before a source is dropped
  std::uint64_t max_skip = 64 * 1024 * 1024;  // bytes to discard when a source ignores Range
  Duration save_interval = 1s;
  std::string user_agent = "servent/0.1";
  std::string napster_nick = "servent";   // who we are in Napster GET lines
  std::uint64_t napster_overlap = 4096;   // bytes re-asked on a Napster resume, to see the offset honoured
};

namespace event {
struct DownloadProgress {
  std::uint64_t id;
  std::uint64_t have;
  std::uint64_t size;  // 0 while unknown
  std::size_t active_sources;
};
struct DownloadDone {
  std::uint64_t id;
  std::string path;
  bool verified;  // urn:sha1 checked
  std::vector<std::uint32_t> served_by;  // addresses of the sources that sent bytes (reputation)
};
struct DownloadFailed {
  std::uint64_t id;
  std::string reason;
};
// A firewalled source must be asked to connect back: route a Push for it.
struct PushNeeded {
  std::uint64_t id;
  wire::gnutella::ServentId servent;
  std::uint32_t index;
};
// A Napster source must be asked for through its server (203): call
// napster_ready() with the address the server gives, or napster_failed().
struct NapsterNeeded {
  std::uint64_t id;
  std::string nick, file;
};
struct SourceDropped {
  std::uint64_t id;
  std::string url;
  std::string reason;
};
}  // namespace event
using DownloadEvent = std::variant<event::DownloadProgress, event::DownloadDone, event::DownloadFailed,
                                   event::SourceDropped, event::PushNeeded, event::NapsterNeeded>;

class DownloadCore final : public Core {
 public:
  enum Stat : std::size_t {
    kStarted,
    kCompleted,
    kFailed,
    kVerifyFailures,
    kRequests,
    kBytesReceived,
    kBytesDiscarded,
    kSourceBusy,
    kSourceFailures,
    kSourcesDropped,
    kSourcesLying,
    kSourcesBadData,
    kSourcesWrongUrn,
    kSourcesAdded,
    kStalls,
    kWorkStolen,
    kPushesAsked,
    kGivMatched,
    kGivUnknown,
    kGivMalformed,
    kStatCount
  };

  explicit DownloadCore(DownloadConfig config);
  ~DownloadCore();

  // Starts (or resumes, when its partial file exists) a download; returns its
  // id, or 0 with `error` set.
  std::uint64_t start(const DownloadSpec& spec, Instant now, std::string& error);
  void add_source(std::uint64_t id, const DownloadSource& src, Instant now);
  void cancel(std::uint64_t id, Instant now);
  // Pause closes the download's connections keeping every byte and range
  // (the sources are not blamed); resume asks its sources again at once.
  // False for an unknown or finished download.
  bool pause(std::uint64_t id, Instant now);
  bool resume(std::uint64_t id, Instant now);

  void handle_connected(ConnId conn, Instant now);
  // An inbound connection that starts with "GIV " (a firewalled source
  // answering our Push), or with "SEND" (a firewalled Napster sharer on our
  // data port); its bytes follow through handle_bytes.
  void handle_inbound_giv(ConnId conn, Instant now);
  // The Napster server told us where `nick` serves `file` (204): connect.
  void napster_ready(std::string_view nick, std::string_view file, Endpoint at, Instant now);
  // The Napster server could not put us in touch (206, both firewalled...).
  void napster_failed(std::string_view nick, std::string_view file, const std::string& reason, Instant now);
  // Core: Outbound is one of our requests connecting, Inbound a GIV.
  void handle_connected(ConnId conn, Endpoint, Direction dir, Instant now) override {
    if (dir == Direction::Inbound) {
      handle_inbound_giv(conn, now);
    } else {
      handle_connected(conn, now);
    }
  }
  void handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) override;
  void handle_closed(ConnId conn, CloseReason reason, Instant now) override;
  void handle_timeout(Instant now) override;

  std::optional<Action> poll_action() override;
  std::optional<Instant> poll_timeout() const override;
  std::optional<DownloadEvent> poll_event();

  std::vector<Counter> counters() const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }
  std::size_t active() const;
  struct Info {
    std::uint64_t id;
    std::string name;
    std::uint64_t have, size;  // size 0 while unknown
    std::string state;         // "active", "done", "failed", "cancelled"
    std::size_t sources, busy;
    std::string path;          // when done
  };
  std::vector<Info> list() const;
  // The key of the partial file a spec maps to (its urn, else a hash of its
  // first source URL).
  static std::string key_for(const DownloadSpec& spec);

  struct Source;

 private:
  struct Conn;
  struct Download;
  void schedule(Download& d, Instant now);
  bool assign(Download& d, Source& s, Instant now);
  void request(Download& d, Conn& c, Instant now);
  void on_head(Download& d, Conn& c, Instant now);
  void on_body(Download& d, Conn& c, wire::ByteView bytes, Instant now);
  void napster_bytes(Download& d, Conn& c, wire::ByteView bytes, Instant now);
  void napster_send_line(ConnId id, Conn& c, Instant now);
  void napster_start_body(Download& d, Conn& c, std::uint64_t total, std::uint64_t offset_sent, Instant now);
  Conn* napster_placeholder(std::string_view nick, std::string_view file);
  void response_done(Download& d, Conn& c, Instant now);
  void release(Download& d, Conn& c);
  void source_failed(Download& d, Source& s, Stat why, const std::string& reason, bool fatal, Instant now);
  void drop_source(Download& d, Source& s, Stat why, const std::string& reason);
  void close_conn(Conn& c, CloseReason reason);
  void check_complete(Download& d, Instant now);
  void fail(Download& d, const std::string& reason);
  void progress(Download& d);
  std::uint64_t new_conn_id() { return core_conn_id(ConnSpace::Download, next_conn_++).value; }

  DownloadConfig config_;
  std::map<std::uint64_t, std::unique_ptr<Download>> downloads_;
  std::unordered_map<ConnId, std::unique_ptr<Conn>, ConnIdHash> conns_;
  std::deque<Action> actions_;
  std::deque<DownloadEvent> events_;
  std::vector<ConnId> stale_;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_conn_ = 1;
  std::array<std::uint64_t, kStatCount> stats_{};
};

}  // namespace sv

namespace sv {

// magnet:?xt=urn:sha1:<base32>&dn=<name>&xl=<size>&xs=<url>&as=<url>
// (the magnet URI scheme as Gnutella servents write it: xs/as carry HTTP
// sources, e.g. http://ip:port/uri-res/N2R?urn:sha1:...). nullopt when there is
// no urn:sha1 and no source.
std::optional<DownloadSpec> spec_from_magnet(std::string_view magnet);
// The last path component of a request-target, percent-decoded ("" if none).
std::string name_from_target(std::string_view target);

}  // namespace sv
