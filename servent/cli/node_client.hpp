// A client of a running node's control socket (JSON lines), for `servent
// search` and `servent get` when a node runs. Every call is bounded in time.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace sv::cli {

class NodeClient {
 public:
  // Connects to STATE_DIR/control.sock; ok() tells whether a node answered.
  explicit NodeClient(const std::string& state_dir);
  ~NodeClient();
  NodeClient(const NodeClient&) = delete;
  NodeClient& operator=(const NodeClient&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // The node closed the connection (next() then returns nullopt at once).
  bool closed() const { return closed_; }
  const std::string& path() const { return path_; }

  bool send(const nlohmann::json& request);
  // The next line as JSON, or nullopt at the deadline / when the node goes away.
  std::optional<nlohmann::json> next(std::chrono::milliseconds timeout);
  // Sends a request with a fresh id and waits for its reply (events that
  // arrive meanwhile are handed to `on_event`).
  std::optional<nlohmann::json> call(nlohmann::json request, std::chrono::milliseconds timeout,
                                     const std::function<void(const nlohmann::json&)>& on_event = {});

 private:
  int fd_ = -1;
  std::string path_;
  std::string buf_;
  std::uint64_t next_id_ = 1;
  bool closed_ = false;
};

}  // namespace sv::cli
