// The Driver: the only code that includes <uv.h>. One libuv loop owns every
// socket, timer and file read; it feeds the cores events with the current time
// and executes the actions they return.
//
// Inbound connections are sniffed by their first bytes: "GNUTELLA CONNECT" goes
// to the GnutellaCore, "GET " / "HEAD " to the UploadCore; anything else is
// closed (counted). Files are streamed with asynchronous reads of
// kFileChunk bytes, at most a few chunks in flight per connection.
#pragma once

#include <functional>
#include <mutex>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "servent/control/control_core.hpp"
#include "servent/download/download_core.hpp"
#include "servent/gnutella/gnutella_core.hpp"
#include "servent/upload/upload_core.hpp"

struct uv_loop_s;

namespace sv {

struct DriverConfig {
  std::size_t max_connections = 1024;          // all sockets together
  std::size_t max_per_ip = 16;                 // inbound connections from one address (downloads + Gnutella)
  std::size_t max_write_queue = 4 * 1024 * 1024;  // per Gnutella connection
  Duration sniff_timeout = 10s;                // first bytes of an inbound connection
  Duration flush_timeout = 10s;                // for a close that waits for queued bytes
  bool handle_signals = true;                  // stop on SIGINT/SIGTERM
};

class Driver {
 public:
  enum Stat : std::size_t {
    kAccepted,
    kRefusedOverLimit,
    kRefusedPerIp,
    kConnectsOk,
    kConnectsFailed,
    kSniffUnknown,
    kSniffTimeout,
    kWriteQueueFull,
    kFlushTimeout,
    kBytesIn,
    kBytesOut,
    kFileBytesSent,
    kFileErrors,
    kFileSwapped,
    kControlRefusedUser,
    kStatCount
  };

  // `upload` may be null (no file serving, e.g. a short-lived search node).
  Driver(GnutellaCore& gnutella, UploadCore* upload, DriverConfig config = {});
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Binds and listens; returns the bound endpoint (port 0 picks a free one).
  // Throws std::runtime_error with a one-line message on failure.
  Endpoint listen(const std::string& host, std::uint16_t port);

  // Runs the loop until stop(); returns the uv_loop_close() result (0 when
  // every handle was closed).
  int run();
  // Stops: closes every connection and handle. Loop thread only.
  void stop();
  // Asks the loop to stop from any other thread.
  void request_stop();
  bool stopping() const { return stopping_; }

  // Called for every event the GnutellaCore emits, from the loop thread.
  std::function<void(const Event&)> on_event;
  // Downloads run on this driver when set (before run()).
  void set_download_core(DownloadCore* d) { download_ = d; }
  // The control socket: a Unix domain socket at `path`, mode 0600, accepting
  // only processes of our own user. Its requests go to on_control_request.
  // Throws std::runtime_error with a one-line message on failure.
  void listen_control(ControlCore& control, const std::string& path);
  std::function<void(const ControlRequest&)> on_control_request;
  std::function<void(const DownloadEvent&)> on_download_event;
  // Runs `fn` on the loop after `delay` (one shot).
  void after(Duration delay, std::function<void()> fn);
  // Runs `work` on libuv's thread pool, then `done` on the loop. Work not yet
  // started when the driver stops is cancelled (`done` is then not called).
  void run_in_pool(std::function<void()> work, std::function<void()> done);
  // Call after invoking a core command from outside a driver callback, so its
  // actions are executed.
  void pump();

  Instant now() const;
  std::vector<Counter> counters() const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }
  std::size_t connection_count() const { return conns_.size(); }
  std::vector<ConnId> control_connections() const;

  struct Impl;  // libuv callbacks live here

 private:
  struct Conn;
  struct FileSend;
  struct Timer;
  struct Work;
  enum class Owner { Sniffing, Gnutella, Upload, Download, Control };
  void execute(const Action& a, Owner from);
  void close_conn(Conn* c, CloseReason reason);
  void do_close(Conn* c);
  void arm_timer();
  void on_read(Conn* c, const std::uint8_t* data, std::size_t n);
  void sniff(Conn* c);
  void write(Conn* c, SharedBuffer bytes, bool batch = false);
  void submit(Conn* c, std::vector<SharedBuffer> bufs);
  void flush_writes();
  void housekeeping();
  void file_step(Conn* c);
  void file_finish(Conn* c, bool ok);

  GnutellaCore& gnutella_;
  UploadCore* upload_;
  DownloadCore* download_ = nullptr;
  ControlCore* control_ = nullptr;
  void* control_listener_ = nullptr;  // uv_pipe_t*
  std::string control_path_;
  DriverConfig config_;
  uv_loop_s* loop_;
  std::unordered_map<std::uint64_t, Conn*> conns_;
  std::unordered_map<std::uint32_t, std::size_t> inbound_per_ip_;  // open inbound TCP connections per address
  std::uint64_t next_inbound_ = 1;
  void* listener_ = nullptr;  // uv_tcp_t*
  void* core_timer_ = nullptr;
  void* house_timer_ = nullptr;
  void* async_ = nullptr;
  std::mutex async_mutex_;
  void* sig_int_ = nullptr;
  void* sig_term_ = nullptr;
  std::vector<Timer*> timers_;
  std::vector<Work*> work_;
  bool stopping_ = false;
  bool pumping_ = false;
  std::vector<std::uint64_t> dirty_;  // connections with pending_out, in order
  bool learned_address_ = false;
  std::array<std::uint64_t, kStatCount> stats_{};
  friend struct Impl;
};

}  // namespace sv
