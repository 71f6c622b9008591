// The HTTP file server, as a sans-I/O core.
//
// Serves `GET`/`HEAD /get/<index>/<name>` (0.4 spec §"File Downloads") with a
// single `Range` (200, 206 + Content-Range, 416), HTTP/1.1 keep-alive, and a
// fixed number of upload slots (503 + Retry-After when all are busy). The
// requested name must equal the shared file's name: traversal (`..`, encoded
// `%2e%2e`/`%2f`, absolute paths) never reaches the filesystem. File bytes are
// streamed by the driver (action::SendFile), never loaded whole.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <unordered_map>

#include "http/request_parser.hpp"
#include "servent/core/core.hpp"
#include "servent/core/types.hpp"
#include "share/library.hpp"
#include "wire/gnutella/giv.hpp"

namespace sv {

struct UploadConfig {
  std::size_t slots = 4;
  Duration header_timeout = 10s;  // time to send a whole request (slowloris)
  Duration idle_timeout = 30s;    // keep-alive wait for the next request
  std::size_t max_header_bytes = 8 * 1024;
  std::string server = "servent/0.1";
  std::size_t max_pending_pushes = 16;
  std::uint32_t retry_after_s = 30;
  std::string napster_nick = "servent";  // who we are in Napster SEND lines
};

class UploadCore final : public Core {
 public:
  enum Stat : std::size_t {
    kConnections,
    kRequests,
    kStatus200,
    kStatus206,
    kStatus400,
    kStatus404,
    kStatus416,
    kStatus431,
    kStatus501,
    kStatus503,
    kHeaderTimeouts,
    kIdleTimeouts,
    kTraversalRejected,
    kUploadsCompleted,
    kUploadsFailed,
    kPushConnects,
    kPushUnknownFile,
    kPushBadAddress,
    kPushDuplicate,
    kPushConnectFailed,
    kAltLocsLearned,
    kNapsterGets,
    kNapsterSends,
    kNapsterRefused,
    kStatCount
  };

  UploadCore(const share::Library& library, UploadConfig config = {});

  void handle_connected(ConnId conn, Instant now);
  // Core: an inbound HTTP connection (the remote is kept for X-Alt), or our
  // push connection is up.
  void handle_connected(ConnId conn, Endpoint remote, Direction dir, Instant now) override;
  // The peer's address, when the driver knows it (alternate locations skip it).
  void set_remote(ConnId conn, Endpoint remote);
  // A Push naming our ServentID arrived (0.4 spec §"Firewalled Servents"):
  // connect to `to` and offer the file with a GIV line, then serve the GET
  // that comes back on that connection. Pushes for files we do not share,
  // bad addresses and repeats are dropped and counted.
  void handle_push(std::uint32_t file_index, Endpoint to, const wire::gnutella::ServentId& ours, Instant now);
  // Napster: besides HTTP, a connection may carry a Napster GET (after the
  // driver's "1": "GET" then `<nick> "<file>" <offset>`, answered with the
  // file's size in ASCII and the data from the offset; the file is named as
  // Library::napster_name). napster_push() is the firewalled side (a 501 from
  // the server): connect to `to`, read "1", send "SEND" and
  // `<our nick> "<file>" <size>`, read the offset, send the data.
  void napster_push(std::string_view file, Endpoint to, Instant now);
  void handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) override;
  // The driver finished (ok) or abandoned a SendFile.
  void handle_send_done(ConnId conn, bool ok, Instant now) override;
  void handle_send_progress(ConnId conn, std::uint64_t bytes, Instant now) override;
  void handle_closed(ConnId conn, Instant now);
  void handle_closed(ConnId conn, CloseReason, Instant now) override { handle_closed(conn, now); }
  void handle_timeout(Instant now) override;

  std::optional<Action> poll_action() override;
  std::optional<Instant> poll_timeout() const override;
  // The address of each peer an upload to completed, once (reputation).
  std::optional<std::uint32_t> poll_completed();

  std::vector<Counter> counters() const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }
  std::size_t active_uploads() const { return active_; }
  std::size_t slots() const { return config_.slots; }
  // The transfers in flight: who, which file, how many bytes since when.
  struct UploadInfo {
    std::optional<Endpoint> peer;
    std::string name;
    std::uint64_t first = 0, length = 0, file_size = 0;
    Instant started;
    std::uint64_t sent = 0;  // of `length`, so far
  };
  std::vector<UploadInfo> uploads() const;

 private:
  struct PendingPush {
    std::string giv;
    Endpoint to;
    std::uint32_t index;
    Instant at;
  };
  std::unordered_map<ConnId, PendingPush, ConnIdHash> pushes_;
  // Alternate locations per urn:sha1 (HUGE §5 X-Alt), learned from the
  // X-Alt headers downloaders send us; bounded per urn and in urns.
  std::map<share::Sha1, std::vector<Endpoint>> alt_locs_;
  void learn_alts(const share::Sha1& sha, std::string_view header, std::optional<Endpoint> requester);
  std::uint64_t next_push_ = 1;
  struct Conn {
    std::unique_ptr<http::RequestParser> parser;
    wire::Bytes pending;  // bytes received while a response is in flight
    bool sending = false;
    bool keep_alive = false;
    bool closing = false;
    Instant deadline;
    bool idle = true;  // waiting for a request's first byte
    std::optional<Endpoint> remote;
    UploadInfo current;  // while sending
    bool fresh = true;   // nothing received yet: HTTP or a Napster GET?
    enum class Nap { None, Get, SendHello, SendOffset } nap = Nap::None;
    const share::SharedFile* nap_file = nullptr;  // for SEND
  };
  void napster_get(ConnId id, Conn& c, Instant now);
  void napster_send(ConnId id, Conn& c, Instant now);
  void napster_serve(ConnId id, Conn& c, const share::SharedFile& f, std::uint64_t size, std::uint64_t offset, Instant now);
  std::map<std::uint64_t, std::string> napster_pushes_;  // conn id -> file name
  void process(ConnId id, Conn& c, Instant now);
  void respond(ConnId id, Conn& c, const http::Request& req, Instant now);
  void respond_error(ConnId id, Conn& c, int status, bool close, Instant now);
  void close(ConnId id, Conn& c, CloseReason reason);
  // Sets a connection's deadline; the core's wake-up time only moves earlier
  // here (handle_timeout recomputes it), so poll_timeout() is O(1).
  void arm(Conn& c, Instant at);

  const share::Library& library_;
  UploadConfig config_;
  std::unordered_map<ConnId, Conn, ConnIdHash> conns_;
  std::deque<Action> actions_;
  std::deque<std::uint32_t> completed_;
  std::optional<Instant> wake_;
  std::size_t active_ = 0;
  std::array<std::uint64_t, kStatCount> stats_{};
};

// Splits "/get/<index>/<name>" into its parts; the name is percent-decoded.
// nullopt for any other shape, or when the decoded name could name a path
// (contains '/', '\\', is "." or "..").
struct GetTarget {
  std::uint32_t index = 0;
  std::string name;
};
std::optional<GetTarget> parse_get_target(std::string_view target);

}  // namespace sv
