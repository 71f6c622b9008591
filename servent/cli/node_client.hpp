// A client of a running node's control socket (JSON lines), for `servent
// search`, `servent get` and `servent tui` when a node runs. It runs on the
// Driver (servent/uv/stream_client.hpp); every call is bounded in time.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "servent/uv/stream_client.hpp"

namespace sv::cli {

class NodeClient {
 public:
  // Connects to STATE_DIR/control.sock; ok() tells whether a node answered.
  explicit NodeClient(const std::string& state_dir);
  NodeClient(const NodeClient&) = delete;
  NodeClient& operator=(const NodeClient&) = delete;
  bool ok() const { return ok_; }
  // The node closed the connection (next() then returns nullopt at once).
  bool closed() const { return !ok_ || stream_.closed(); }
  // Waits until a line may be ready, `input` (see watch_input) is readable,
  // or the timeout.
  void wait(std::chrono::milliseconds timeout) { stream_.wait(timeout); }
  // wait() also returns when `fd` (the terminal) has input.
  bool watch_input(int fd) { return stream_.watch_input(fd); }
  const std::string& path() const { return path_; }

  bool send(const nlohmann::json& request);
  // The next line as JSON, or nullopt at the deadline / when the node goes away.
  std::optional<nlohmann::json> next(std::chrono::milliseconds timeout);
  // Sends a request with a fresh id and waits for its reply (events that
  // arrive meanwhile are handed to `on_event`).
  std::optional<nlohmann::json> call(nlohmann::json request, std::chrono::milliseconds timeout,
                                     const std::function<void(const nlohmann::json&)>& on_event = {});

 private:
  std::optional<nlohmann::json> take_line();
  StreamClient stream_;
  std::string path_;
  std::uint64_t next_id_ = 1;
  bool ok_ = false;
};

}  // namespace sv::cli
