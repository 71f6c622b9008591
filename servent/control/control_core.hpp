// The control socket protocol (DESIGN.md section 1), as a sans-I/O core: JSON
// objects, one per line, over a Unix domain socket in the state directory.
//
//   request:  {"id": 7, "cmd": "search", "query": "free software", "ttl": 7}
//   reply:    {"id": 7, "ok": true, "search": "<guid>"}
//             {"id": 7, "ok": false, "error": "unknown command 'serch'"}
//   event:    {"event": "result", "search": "<guid>", "host": ..., ...}
//
// Commands: search, results, stop-search, download, downloads, cancel,
// uploads, peers, stats, rescan, connect, quit, browse (a Napster user's files). This core checks the framing
// and the command names; the node that owns it carries the commands out.
// Malformed JSON, unknown commands and lines over max_line get an error
// object and the connection stays open.
#pragma once

#include <nlohmann/json.hpp>

#include <deque>
#include <unordered_map>

#include "servent/core/core.hpp"
#include "servent/core/types.hpp"
#include "wire/common/bytes.hpp"

namespace sv {

struct ControlRequest {
  ConnId conn;
  nlohmann::json id;  // echoed back (null when the request had none)
  std::string cmd;
  nlohmann::json args;  // the whole request object
};

class ControlCore final : public Core {
 public:
  enum Stat : std::size_t { kConnections, kRequests, kBadJson, kUnknownCommand, kLineTooLong, kStatCount };
  explicit ControlCore(std::size_t max_line = 64 * 1024) : max_line_(max_line) {}

  void handle_connected(ConnId conn, Instant now);
  void handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) override;
  void handle_closed(ConnId conn, Instant now);
  // Core: connections come from the Unix-domain listener bound to us.
  void handle_connected(ConnId conn, Endpoint, Direction, Instant now) override { handle_connected(conn, now); }
  void handle_closed(ConnId conn, CloseReason, Instant now) override { handle_closed(conn, now); }
  void handle_timeout(Instant) override {}
  std::optional<Instant> poll_timeout() const override { return std::nullopt; }

  std::optional<ControlRequest> poll_request() { return take_front(requests_); }
  void reply(ConnId conn, const nlohmann::json& id, nlohmann::json body);
  void error(ConnId conn, const nlohmann::json& id, std::string_view message);
  void event(ConnId conn, const nlohmann::json& ev);
  bool connected(ConnId conn) const { return conns_.count(conn) != 0; }
  // Every open control connection, oldest first.
  std::vector<ConnId> connections() const;
  void close(ConnId conn);

  std::optional<Action> poll_action() override { return take_front(actions_); }
  std::vector<Counter> counters() const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }

  static const std::vector<std::string>& commands();

 private:
  void send(ConnId conn, const nlohmann::json& j);
  struct Conn {
    std::string buf;
    bool discarding = false;  // inside an over-long line: drop until its newline
  };
  std::size_t max_line_;
  std::unordered_map<ConnId, Conn, ConnIdHash> conns_;
  std::deque<ControlRequest> requests_;
  std::deque<Action> actions_;
  std::array<std::uint64_t, kStatCount> stats_{};
};

}  // namespace sv
