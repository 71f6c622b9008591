// One connection driven from straight-line code, on the Driver: the
// command-line clients of a node's control socket (`servent search --node`,
// `servent tui`) and `servent pcap replay` use it, so every byte they send or
// receive goes through the same loop, limits, counters and errors as the
// servent's own connections (a client core behind the one Core interface).
//
//   StreamClient c;
//   if (!c.connect(to, 5s)) fail(c.error());
//   c.send(bytes);
//   c.read_until([](wire::Bytes& in) { return complete(in); }, 10s);
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "servent/uv/driver.hpp"

namespace sv {

class StreamClient {
 public:
  StreamClient();
  ~StreamClient();
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  // Connects to a TCP endpoint, or to a Unix-domain socket at `path`; false
  // (with error()) when it fails or does not complete within `timeout`. A
  // client whose connection closed may connect again.
  bool connect(Endpoint to, Duration timeout);
  bool connect_unix(const std::string& path, Duration timeout);
  bool connected() const;
  // The connection closed (by the peer, an error, or a failed connect).
  bool closed() const;
  CloseReason close_reason() const;

  // Queues `bytes` and runs the loop until the kernel has taken them; false
  // when the connection was not up, failed writing, or `timeout` passed
  // first (a peer that closes once it has read is no failure).
  bool send(wire::ByteView bytes, Duration timeout = 10s);
  // Runs the loop until `done(received())` holds, the connection closes or
  // `timeout` passes; returns done's last answer. `done` may consume bytes.
  bool read_until(const std::function<bool(wire::Bytes&)>& done, Duration timeout);
  // Runs the loop until something happens (bytes arrive, the connection
  // closes, watched input is readable) or `timeout` passes.
  void wait(Duration timeout);
  // What has arrived and was not consumed.
  wire::Bytes& received();

  // wait() also returns when `fd` has input (a terminal); false when it
  // cannot be watched.
  bool watch_input(int fd);

  const std::string& error() const { return error_; }
  Driver& driver() { return *driver_; }

 private:
  class Link;
  bool finish_connect(Duration timeout, const std::string& what);
  std::unique_ptr<Link> link_;      // outlives the driver (which says goodbye to it)
  std::unique_ptr<Driver> driver_;
  std::string error_;
};

}  // namespace sv
