// The Driver: the only code that includes <uv.h>. One libuv loop owns every
// socket, timer and file read; it feeds cores (servent/core/core.hpp) events
// with the current time and executes the actions they return. It knows no
// protocol: main() registers the cores, binds listeners to them, and fills
// the sniffing table.
//
//   driver.add_core(gnutella);  driver.add_core(upload);
//   driver.sniff("GNUTELLA CONNECT", gnutella);  driver.sniff("GET ", upload);
//   driver.listen_tcp("0.0.0.0", 6346);          // a listener on the sniffing table
//   driver.listen_tcp("0.0.0.0", 8888, &server)  // a listener bound to one core
//   driver.listen_udp("0.0.0.0", 4000, dht);
//
// An inbound connection on a sniffing listener is held until its first bytes
// match one registered prefix (then the core gets handle_connected and those
// bytes) or can match none (closed, counted); a silent one is closed after
// sniff_timeout. A file (action::SendFile) goes out one of three ways: a
// small range already in the page cache is read on the loop (preadv2 with
// RWF_NOWAIT, descriptors kept in an open-file cache by inode) and written
// with its head in one writev; a larger one on TCP with sendfile(2) in the
// thread pool; anything else (a Unix socket) by reads in the pool. The opened
// file must be the inode the core validated. Writes go straight to the
// socket when it takes them; every connection's output queue is bounded
// (max_write_queue): a peer that does not read is dropped.
#pragma once

#include <array>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "servent/core/core.hpp"

struct uv_loop_s;

namespace sv {

struct DriverConfig {
  std::size_t max_connections = 1024;          // all sockets together
  std::size_t max_per_ip = 16;                 // inbound TCP connections from one address
  std::size_t max_write_queue = 4 * 1024 * 1024;  // per connection
  Duration sniff_timeout = 10s;                // first bytes of an inbound connection
  Duration flush_timeout = 10s;                // for a close that waits for queued bytes
  bool handle_signals = true;                  // stop on SIGINT/SIGTERM
};

// How a TCP listener treats what it accepts.
struct ListenOptions {
  int table = 0;         // the sniffing table (when the listener is not bound to a core)
  std::string greeting;  // sent at once on every accepted connection (for protocols where the listener speaks first)
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
    kUnixRefusedUser,
    kDatagramsIn,
    kDatagramsOut,
    kDatagramsDropped,
    kConnIdCollisions,
    kFileJobs,
    kFileJobErrors,
    kStatCount
  };

  explicit Driver(DriverConfig config = {});
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Hosts `core`: its actions are executed, its timeouts run. Before run().
  void add_core(Core& core);
  // Inbound connections on sniffing listeners (of sniffing table `table`)
  // whose first bytes start with `prefix` go to `core` (added with add_core
  // if it was not).
  void sniff(std::string_view prefix, Core& core, int table = 0);

  // Binds and listens on TCP; returns the bound endpoint (port 0 picks a free
  // one). With `core`, every connection goes to it directly; without, to the
  // sniffing table. Throws std::runtime_error with a one-line message.
  Endpoint listen_tcp(const std::string& host, std::uint16_t port, Core* core = nullptr, ListenOptions options = {});
  // Binds a UDP socket for `core`: datagrams arrive through handle_datagram,
  // action::SendTo with the returned id sends from it. Throws like listen_tcp.
  struct UdpSocket {
    SocketId id;
    Endpoint bound;
  };
  UdpSocket listen_udp(const std::string& host, std::uint16_t port, Core& core);
  // A Unix domain socket at `path`, mode 0600, accepting only processes of
  // our own user (SO_PEERCRED); connections go to `core`. A stale socket file
  // is replaced; one that answers means another process owns it (throws).
  void listen_unix(const std::string& path, Core& core);

  // Runs the loop until stop(); returns the uv_loop_close() result (0 when
  // every handle was closed).
  int run();
  // Stops: every core says goodbye (handle_shutdown), then every connection
  // and handle is closed. Loop thread only.
  void stop();
  // Asks the loop to stop from any other thread.
  void request_stop();
  bool stopping() const { return stopping_; }

  // Hooks run by pump() after the cores' actions, until cores and hooks are
  // all quiet; a hook returns whether it did anything. This is how a front
  // end takes a core's events (see forward()).
  void add_pump_hook(std::function<bool()> hook) { hooks_.push_back(std::move(hook)); }
  // Hands every item `poll()` yields (an optional) to `handle`, from pump().
  template <typename Poll, typename Handle>
  void forward(Poll poll, Handle handle) {
    add_pump_hook([poll = std::move(poll), handle = std::move(handle)]() mutable {
      bool any = false;
      while (auto item = poll()) {
        any = true;
        handle(*item);
      }
      return any;
    });
  }
  // Runs `fn` on the loop after `delay` (one shot).
  void after(Duration delay, std::function<void()> fn);
  // Runs `work` on libuv's thread pool, then `done` on the loop. Work not yet
  // started when the driver stops is cancelled (`done` is then not called).
  void run_in_pool(std::function<void()> work, std::function<void()> done);
  // Call after invoking a core command from outside a driver callback, so its
  // actions are executed.
  void pump();

  // For short-lived clients that drive the loop from straight-line code (the
  // command-line clients, pcap replay): runs the loop until `done()` holds,
  // `timeout` passes or the driver stops; returns done(). Not from inside a
  // loop callback.
  bool run_until(const std::function<bool()>& done, Duration timeout);
  // Calls `on_ready` on the loop whenever `fd` (a terminal, a pipe) has input
  // to read; false when the descriptor cannot be watched.
  bool watch_readable(int fd, std::function<void()> on_ready);
  // Bytes written to `conn` and not yet taken by the kernel.
  std::size_t pending_bytes(ConnId conn) const;

  Instant now() const;
  std::vector<Counter> counters() const;
  std::uint64_t stat(Stat s) const { return stats_[s]; }
  std::size_t connection_count() const { return conns_.size(); }

  struct Impl;  // libuv callbacks live here

 private:
  struct Conn;
  struct Listener;
  struct Udp;
  struct FileSend;
  struct Timer;
  struct Work;
  struct Watch;
  void execute(const Action& a, Core& from);
  void close_conn(Conn* c, CloseReason reason);
  void arm_timer();
  void sniff(Conn* c);
  void write(Conn* c, SharedBuffer bytes, bool batch = false);
  void submit(Conn* c, std::vector<SharedBuffer> bufs);
  void flush_writes();
  // Bytes of `c` reached the socket: feed its file, or close it once flushed.
  void written(Conn* c);
  void housekeeping();
  void file_step(Conn* c);
  void file_finish(Conn* c, bool ok);
  // The next sendfile(2) of a large file, in the pool.
  void sendfile_step(Conn* c);
  // A small SendFile served at once from the page cache; false to use the pool.
  bool send_cached_file(Conn* c, const action::SendFile& act);
  // The file's descriptor from the open-file cache, or opened and checked
  // (-1 when it is not the file the core validated).
  int cached_fd(const action::SendFile& act);
  void offer_local_address(Conn* c);

  DriverConfig config_;
  uv_loop_s* loop_;
  std::vector<Core*> cores_;
  struct Sniffer {
    int table;
    std::string prefix;
    Core* core;
  };
  std::vector<Sniffer> sniffers_;
  std::vector<std::function<bool()>> hooks_;
  std::vector<Listener*> listeners_;
  std::vector<Udp*> udps_;
  std::vector<std::string> unix_paths_;  // removed on stop
  std::unordered_map<std::uint64_t, Conn*> conns_;
  std::unordered_map<std::uint32_t, std::size_t> inbound_per_ip_;  // open inbound TCP connections per address
  std::uint64_t next_inbound_ = 1;
  void* core_timer_ = nullptr;
  void* house_timer_ = nullptr;
  void* async_ = nullptr;
  void* wait_timer_ = nullptr;  // run_until's deadline
  bool wait_expired_ = false;
  std::vector<Watch*> watches_;
  struct OpenFile {
    std::uint64_t dev = 0, ino = 0;
    int fd = -1;
    // A SendFile without an inode (a torrent's block) finds its descriptor
    // by path, opened at most kPathFdAge ago (a file replaced meanwhile is
    // picked up then); empty for one found by inode.
    std::string path;
    Instant opened{};
  };
  std::list<OpenFile> open_files_;  // most recently used first
  std::mutex async_mutex_;
  void* sig_int_ = nullptr;
  void* sig_term_ = nullptr;
  std::vector<Timer*> timers_;
  std::vector<Work*> work_;
  bool stopping_ = false;
  bool pumping_ = false;
  bool woken_ = false;  // a core was called back while pump() flushed writes
  std::vector<std::uint64_t> dirty_;  // connections with pending_out, in order
  std::array<std::uint64_t, kStatCount> stats_{};
  friend struct Impl;
};

}  // namespace sv
