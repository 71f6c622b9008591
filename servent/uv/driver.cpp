#include "servent/uv/driver.hpp"
#include "servent/uv/file_job.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace sv {

namespace {

constexpr std::array<std::string_view, Driver::kStatCount> kStatNames = {
    "accepted",        "refused_over_limit", "refused_per_ip",   "connects_ok",       "connects_failed",
    "sniff_unknown",   "sniff_timeout",      "write_queue_full", "flush_timeout",     "bytes_in",
    "bytes_out",       "file_bytes_sent",    "file_errors",      "file_swapped",      "unix_refused_user",
    "datagrams_in",    "datagrams_out",      "datagrams_dropped", "conn_id_collisions", "file_jobs",
    "file_job_errors",
};

constexpr std::size_t kReadBuffer = 256 * 1024;
constexpr std::size_t kFileChunk = 256 * 1024;
constexpr std::size_t kFileHighWater = 1024 * 1024;  // queued bytes before reading more
// A file range up to this size whose bytes are all in the page cache is read
// on the loop itself (preadv2 with RWF_NOWAIT never waits for the disk) and
// written with the response head in one writev; anything else goes through
// the thread pool.
constexpr std::size_t kInlineFile = 64 * 1024;
// Descriptors of recently served files kept open, by inode (an open file
// cache: a small file asked again and again costs no open/fstat/close), or
// by path for a second when the core gave no inode (a torrent's blocks: a
// 512 MiB seed opened, checked and closed its file 32,768 times).
constexpr std::size_t kOpenFiles = 64;
constexpr Duration kPathFdAge = 1s;
// Larger files go from the page cache to the socket with sendfile(2), run in
// the thread pool (a read from the disk never blocks the loop), up to this
// much per call; when the socket is full the loop waits for it to drain.
constexpr std::size_t kSendfileChunk = 16 * 1024 * 1024;

Endpoint endpoint_of(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    e.ip = ntohl(in->sin_addr.s_addr);
    e.port = ntohs(in->sin_port);
  }
  return e;
}

sockaddr_in sockaddr_of(Endpoint e) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(e.port);
  addr.sin_addr.s_addr = htonl(e.ip);
  return addr;
}

// true: `have` could still become `magic` (or already starts with it).
bool prefix_compatible(std::string_view have, std::string_view magic) {
  const std::size_t n = std::min(have.size(), magic.size());
  return have.substr(0, n) == magic.substr(0, n);
}

sockaddr_in parse_ipv4(const std::string& host, std::uint16_t port, std::string_view what) {
  sockaddr_in addr{};
  if (uv_ip4_addr(host.c_str(), port, &addr) != 0) {
    throw std::runtime_error(std::string("cannot ") + std::string(what) + " on " + host + ":" + std::to_string(port) +
                             ": not an IPv4 address");
  }
  return addr;
}

}  // namespace

struct Driver::FileSend {
  uv_fs_t req{};
  Conn* conn = nullptr;  // null once the connection went away
  uv_file fd = -1;
  std::uint64_t offset = 0;
  std::uint64_t remaining = 0;
  std::uint64_t done = 0;  // bytes read and queued so far
  bool busy = false;     // an fs request is in flight
  std::shared_ptr<Buffer> chunk;
  std::string path;
  std::uint64_t dev = 0, ino = 0;  // what the path must still be
  bool sendfile = false;           // a TCP connection: the kernel copies the file (see kSendfileChunk)
  int sock = -1;                   // its socket, for sendfile
  struct Writable {
    uv_poll_t handle{};
    int dup = -1;  // libuv watches one handle per descriptor: the poll gets a dup of the socket
  };
  Writable* writable = nullptr;  // when a full socket has drained
};

// A listening socket: TCP (bound to a core, or to the sniffing table) or a
// Unix domain socket (bound to a core, own user only).
struct Driver::Listener {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  };
  Driver* driver = nullptr;
  Core* core = nullptr;  // null: sniff
  bool is_pipe = false;
  int table = 0;
  SharedBuffer greeting;
  Listener() { std::memset(static_cast<void*>(&pipe), 0, std::max(sizeof pipe, sizeof tcp)); }
  uv_handle_t* handle() { return is_pipe ? reinterpret_cast<uv_handle_t*>(&pipe) : reinterpret_cast<uv_handle_t*>(&tcp); }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(handle()); }
};

struct Driver::Udp {
  uv_udp_t handle{};
  Driver* driver = nullptr;
  Core* core = nullptr;
  SocketId id;
};

struct Driver::Conn {
  Driver* driver = nullptr;
  ConnId id;
  // A TCP connection, or a Unix-domain one (listen_unix).
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  };
  bool is_pipe = false;
  Conn() { std::memset(static_cast<void*>(&pipe), 0, std::max(sizeof pipe, sizeof tcp)); }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(is_pipe ? static_cast<void*>(&pipe) : static_cast<void*>(&tcp)); }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(stream()); }
  Core* owner = nullptr;  // null while its first bytes are sniffed
  int table = 0;          // the sniffing table of its listener
  Direction dir = Direction::Inbound;
  Endpoint remote;
  bool counted_ip = false;  // in inbound_per_ip_
  std::vector<SharedBuffer> pending_out;  // bytes not yet handed to libuv (see Driver::write)
  Buffer sniff;
  bool connecting = false;
  bool closing = false;
  bool close_after_flush = false;
  CloseReason flush_reason = CloseReason::Normal;
  std::size_t queued = 0;
  Instant deadline;  // sniff or flush deadline
  FileSend* file = nullptr;
  // A SendFile served from the page cache whose bytes still fill the queue
  // past kFileHighWater: its send-done waits until the socket drains below it,
  // so a core that sends the next block on send-done never overfills the queue.
  std::uint64_t done_pending = 0;  // its length (for handle_send_progress), 0: none
  bool done_waits = false;
};

struct Driver::Timer {
  uv_timer_t handle{};
  Driver* driver = nullptr;
  std::function<void()> fn;
};

struct Driver::Work {
  uv_work_t req{};
  Driver* driver = nullptr;
  std::function<void()> work;
  std::function<void()> done;
};

struct Driver::Watch {
  uv_poll_t handle{};
  Driver* driver = nullptr;
  std::function<void()> fn;
};

struct WriteReq {
  uv_write_t req{};
  std::vector<SharedBuffer> bytes;  // one writev
  std::size_t size = 0;
};

struct UdpSendReq {
  uv_udp_send_t req{};
  SharedBuffer bytes;
};

struct ConnectReq {
  uv_connect_t req{};
};

struct Driver::Impl {
  static void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf) {
    // One buffer for all reads: each read is consumed before the next.
    static thread_local std::array<char, kReadBuffer> storage;
    *buf = uv_buf_init(storage.data(), static_cast<unsigned>(storage.size()));
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(s->data);
    if (!c || c->closing) return;
    Driver& d = *c->driver;
    if (n < 0) {
      d.close_conn(c, n == UV_EOF ? CloseReason::PeerClosed : CloseReason::IoError);
      d.pump();
      return;
    }
    if (n == 0) return;
    d.stats_[kBytesIn] += static_cast<std::uint64_t>(n);
    const auto* data = reinterpret_cast<const std::uint8_t*>(buf->base);
    const auto len = static_cast<std::size_t>(n);
    if (c->owner) {
      c->owner->handle_bytes(c->id, {data, len}, d.now());
    } else {
      c->sniff.insert(c->sniff.end(), data, data + len);
      d.sniff(c);
    }
    d.pump();
  }

  static void on_write(uv_write_t* req, int status) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* c = static_cast<Conn*>(req->handle->data);
    const std::size_t size = w->size;
    delete w;
    if (!c) return;
    Driver& d = *c->driver;
    c->queued -= size;
    if (c->closing) return;
    if (status < 0) {
      d.close_conn(c, CloseReason::IoError);
      d.pump();
      return;
    }
    d.stats_[kBytesOut] += size;
    d.written(c);
    d.pump();
  }

  static void on_close(uv_handle_t* h) { delete static_cast<Conn*>(h->data); }

  static void on_connection(uv_stream_t* server, int status) {
    auto* l = static_cast<Listener*>(server->data);
    Driver& d = *l->driver;
    if (status < 0 || d.stopping_) return;
    auto* c = new Conn;
    c->driver = &d;
    uv_tcp_init(d.loop_, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, c->stream()) != 0) {
      uv_close(c->handle(), on_close);
      return;
    }
    if (d.conns_.size() >= d.config_.max_connections) {
      ++d.stats_[kRefusedOverLimit];
      uv_close(c->handle(), on_close);
      return;
    }
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) c->remote = endpoint_of(ss);
    // One address cannot take every slot: over max_per_ip it is refused.
    std::size_t& from_ip = d.inbound_per_ip_[c->remote.ip];
    if (from_ip >= d.config_.max_per_ip) {
      ++d.stats_[kRefusedPerIp];
      uv_close(c->handle(), on_close);
      return;
    }
    ++from_ip;
    c->counted_ip = true;
    ++d.stats_[kAccepted];
    c->id = ConnId{d.next_inbound_++};
    c->dir = Direction::Inbound;
    uv_tcp_nodelay(&c->tcp, 1);
    d.offer_local_address(c);
    d.conns_[c->id.value] = c;
    uv_read_start(c->stream(), on_alloc, on_read);
    c->table = l->table;
    if (l->greeting) d.write(c, l->greeting);
    if (l->core) {
      c->owner = l->core;
      c->owner->handle_connected(c->id, c->remote, Direction::Inbound, d.now());
      d.pump();
    } else {
      c->deadline = d.now() + d.config_.sniff_timeout;
    }
  }

  static void on_unix_connection(uv_stream_t* server, int status) {
    auto* l = static_cast<Listener*>(server->data);
    Driver& d = *l->driver;
    if (status < 0 || d.stopping_) return;
    auto* c = new Conn;
    c->driver = &d;
    c->is_pipe = true;
    uv_pipe_init(d.loop_, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, c->stream()) != 0) {
      uv_close(c->handle(), on_close);
      return;
    }
    // Only our own user (the socket is 0600 too; this also covers a changed mode).
    uv_os_fd_t fd;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (uv_fileno(c->handle(), &fd) != 0 || ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        cred.uid != ::getuid()) {
      ++d.stats_[kUnixRefusedUser];
      uv_close(c->handle(), on_close);
      return;
    }
    c->id = ConnId{d.next_inbound_++};
    c->owner = l->core;
    d.conns_[c->id.value] = c;
    c->owner->handle_connected(c->id, Endpoint{}, Direction::Inbound, d.now());
    uv_read_start(c->stream(), on_alloc, on_read);
    d.pump();
  }

  static void on_connect(uv_connect_t* req, int status) {
    auto* c = static_cast<Conn*>(req->handle->data);
    delete reinterpret_cast<ConnectReq*>(req);
    if (!c || c->closing) return;
    Driver& d = *c->driver;
    c->connecting = false;
    if (status < 0) {
      ++d.stats_[kConnectsFailed];
      d.close_conn(c, CloseReason::ConnectFailed);
      d.pump();
      return;
    }
    ++d.stats_[kConnectsOk];
    if (!c->is_pipe) {
      uv_tcp_nodelay(&c->tcp, 1);
      d.offer_local_address(c);
    }
    uv_read_start(c->stream(), on_alloc, on_read);
    c->owner->handle_connected(c->id, c->remote, Direction::Outbound, d.now());
    d.pump();
  }

  static void on_udp_recv(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* addr, unsigned) {
    auto* u = static_cast<Udp*>(h->data);
    if (!u || n <= 0 || !addr || addr->sa_family != AF_INET) return;  // 0 with no address: nothing more to read
    Driver& d = *u->driver;
    if (d.stopping_) return;
    ++d.stats_[kDatagramsIn];
    d.stats_[kBytesIn] += static_cast<std::uint64_t>(n);
    sockaddr_storage ss{};
    std::memcpy(&ss, addr, sizeof(sockaddr_in));
    u->core->handle_datagram(u->id, endpoint_of(ss),
                             {reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(n)}, d.now());
    d.pump();
  }

  static void on_udp_send(uv_udp_send_t* req, int status) {
    auto* r = reinterpret_cast<UdpSendReq*>(req);
    auto* u = static_cast<Udp*>(req->handle->data);
    if (u) {
      if (status < 0) {
        ++u->driver->stats_[kDatagramsDropped];
      } else {
        ++u->driver->stats_[kDatagramsOut];
        u->driver->stats_[kBytesOut] += r->bytes->size();
      }
    }
    delete r;
  }

  static void on_core_timer(uv_timer_t* t) {
    Driver& d = *static_cast<Driver*>(t->data);
    const Instant now = d.now();
    for (Core* core : d.cores_) core->handle_timeout(now);
    d.pump();
  }

  static void on_house_timer(uv_timer_t* t) {
    Driver& d = *static_cast<Driver*>(t->data);
    d.housekeeping();
    d.pump();
  }

  static void on_user_timer(uv_timer_t* t) {
    auto* tm = static_cast<Timer*>(t->data);
    Driver& d = *tm->driver;
    auto fn = std::move(tm->fn);
    std::erase(d.timers_, tm);
    uv_close(reinterpret_cast<uv_handle_t*>(&tm->handle),
             [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
    if (fn && !d.stopping_) fn();
    d.pump();
  }

  static void on_wait_timer(uv_timer_t* t) { static_cast<Driver*>(t->data)->wait_expired_ = true; }

  static void on_watch(uv_poll_t* p, int, int) {
    auto* w = static_cast<Watch*>(p->data);
    Driver& d = *w->driver;
    if (d.stopping_) return;
    w->fn();
    d.pump();
  }

  static void on_work(uv_work_t* req) { static_cast<Work*>(req->data)->work(); }

  static void on_work_done(uv_work_t* req, int status) {
    auto* w = static_cast<Work*>(req->data);
    Driver& d = *w->driver;
    std::erase(d.work_, w);
    if (status == 0 && !d.stopping_ && w->done) w->done();
    delete w;
    d.pump();
  }

  static void on_async(uv_async_t* a) {
    Driver& d = *static_cast<Driver*>(a->data);
    d.stop();
  }

  static void on_signal(uv_signal_t* s, int) {
    Driver& d = *static_cast<Driver*>(s->data);
    d.stop();
  }

  static void on_file_open(uv_fs_t* req) {
    auto* f = static_cast<FileSend*>(req->data);
    const auto result = req->result;
    uv_fs_req_cleanup(req);
    f->busy = false;
    if (!f->conn) {
      if (result >= 0) close_fd(static_cast<uv_file>(result));
      delete f;
      return;
    }
    Conn* c = f->conn;
    Driver& d = *c->driver;
    if (result < 0) {
      ++d.stats_[kFileErrors];
      d.file_finish(c, false);
      d.pump();
      return;
    }
    f->fd = static_cast<uv_file>(result);
    struct stat st {};
    if (::fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (f->ino != 0 && (static_cast<std::uint64_t>(st.st_dev) != f->dev || static_cast<std::uint64_t>(st.st_ino) != f->ino))) {
      // Not the file that was shared: something was swapped in on the way.
      ++d.stats_[kFileSwapped];
      d.file_finish(c, false);  // closes the descriptor
      d.pump();
      return;
    }
    uv_os_fd_t sock = -1;
    if (!c->is_pipe && uv_fileno(c->handle(), &sock) == 0) {
      f->sendfile = true;
      f->sock = sock;
    }
    d.file_step(c);
    d.pump();
  }

  static void on_file_read(uv_fs_t* req) {
    auto* f = static_cast<FileSend*>(req->data);
    const auto result = req->result;
    uv_fs_req_cleanup(req);
    f->busy = false;
    if (!f->conn) {
      close_fd(f->fd);
      delete f;
      return;
    }
    Conn* c = f->conn;
    Driver& d = *c->driver;
    if (result <= 0) {
      // Error, or the file shrank under us: the response cannot be completed.
      ++d.stats_[kFileErrors];
      d.file_finish(c, false);
      d.pump();
      return;
    }
    auto n = static_cast<std::size_t>(result);
    f->chunk->resize(n);
    f->offset += n;
    f->remaining -= n;
    f->done += n;
    d.stats_[kFileBytesSent] += n;
    SharedBuffer out = std::move(f->chunk);
    d.write(c, std::move(out));
    if (c->owner && !c->closing) c->owner->handle_send_progress(c->id, f->done, d.now());
    d.file_step(c);
    d.pump();
  }

  // Frees a FileSend no request refers to any more.
  static void release(FileSend* f) {
    close_fd(f->fd);
    if (f->writable) {
      uv_poll_stop(&f->writable->handle);
      f->writable->handle.data = f->writable;
      uv_close(reinterpret_cast<uv_handle_t*>(&f->writable->handle), [](uv_handle_t* h) {
        auto* w = static_cast<FileSend::Writable*>(h->data);
        ::close(w->dup);  // the socket itself closes only when this copy does too
        delete w;
      });
    }
    delete f;
  }

  static void on_writable(uv_poll_t* p, int, int) {
    auto* f = static_cast<FileSend*>(p->data);
    uv_poll_stop(p);
    if (!f->conn) return;
    Driver& d = *f->conn->driver;
    d.file_step(f->conn);
    d.pump();
  }

  static void close_fd(uv_file fd) {
    if (fd < 0) return;
    uv_fs_t req;
    uv_fs_close(nullptr, &req, fd, nullptr);  // synchronous; closing a read fd is cheap
    uv_fs_req_cleanup(&req);
  }
};

Driver::Driver(DriverConfig config) : config_(config), loop_(new uv_loop_t) {
  uv_loop_init(loop_);
  auto* t = new uv_timer_t;
  uv_timer_init(loop_, t);
  t->data = this;
  core_timer_ = t;
  auto* h = new uv_timer_t;
  uv_timer_init(loop_, h);
  h->data = this;
  house_timer_ = h;
  uv_timer_start(h, Impl::on_house_timer, 250, 250);
  auto* a = new uv_async_t;
  uv_async_init(loop_, a, Impl::on_async);
  a->data = this;
  async_ = a;
  if (config_.handle_signals) {
    auto* si = new uv_signal_t;
    uv_signal_init(loop_, si);
    si->data = this;
    uv_signal_start(si, Impl::on_signal, SIGINT);
    sig_int_ = si;
    auto* st = new uv_signal_t;
    uv_signal_init(loop_, st);
    st->data = this;
    uv_signal_start(st, Impl::on_signal, SIGTERM);
    sig_term_ = st;
  }
}

Driver::~Driver() {
  if (loop_) {
    // run() closes everything; if it was never called, close here.
    if (!stopping_) stop();
    uv_run(loop_, UV_RUN_DEFAULT);
    uv_loop_close(loop_);
    delete loop_;
  }
}

Instant Driver::now() const { return Instant{Duration(uv_now(loop_))}; }

void Driver::add_core(Core& core) {
  if (std::find(cores_.begin(), cores_.end(), &core) == cores_.end()) cores_.push_back(&core);
}

void Driver::sniff(std::string_view prefix, Core& core, int table) {
  add_core(core);
  sniffers_.push_back(Sniffer{table, std::string(prefix), &core});
}

void Driver::listen_unix(const std::string& path, Core& core) {
  add_core(core);
  // A socket file left by a process that died: remove it, unless someone answers.
  sockaddr_un probe{};
  probe.sun_family = AF_UNIX;
  if (path.size() >= sizeof probe.sun_path) throw std::runtime_error("socket path too long: " + path);
  std::memcpy(probe.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&probe), sizeof probe) == 0) {
    ::close(fd);
    throw std::runtime_error("another servent already runs with this state directory (" + path + " answers)");
  }
  if (fd >= 0) ::close(fd);
  ::unlink(path.c_str());
  auto* l = new Listener;
  l->driver = this;
  l->core = &core;
  l->is_pipe = true;
  uv_pipe_init(loop_, &l->pipe, 0);
  l->pipe.data = l;
  listeners_.push_back(l);
  const mode_t old = ::umask(0077);  // created 0600 from the start
  int rc = uv_pipe_bind(&l->pipe, path.c_str());
  ::umask(old);
  if (rc == 0) rc = ::chmod(path.c_str(), 0600) == 0 ? 0 : UV_EPERM;
  if (rc == 0) rc = uv_listen(l->stream(), 16, Impl::on_unix_connection);
  if (rc != 0) throw std::runtime_error("cannot open the Unix socket " + path + ": " + uv_strerror(rc));
  unix_paths_.push_back(path);
}

Endpoint Driver::listen_tcp(const std::string& host, std::uint16_t port, Core* core, ListenOptions options) {
  sockaddr_in addr = parse_ipv4(host, port, "listen");
  if (core) add_core(*core);
  auto* l = new Listener;
  l->driver = this;
  l->core = core;
  l->table = options.table;
  if (!options.greeting.empty()) l->greeting = std::make_shared<Buffer>(options.greeting.begin(), options.greeting.end());
  uv_tcp_init(loop_, &l->tcp);
  l->tcp.data = l;
  listeners_.push_back(l);
  int rc = uv_tcp_bind(&l->tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(l->stream(), 128, Impl::on_connection);
  if (rc != 0) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + uv_strerror(rc));
  }
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_tcp_getsockname(&l->tcp, reinterpret_cast<sockaddr*>(&ss), &len);
  return endpoint_of(ss);
}

Driver::UdpSocket Driver::listen_udp(const std::string& host, std::uint16_t port, Core& core) {
  sockaddr_in addr = parse_ipv4(host, port, "bind UDP");
  add_core(core);
  auto* u = new Udp;
  u->driver = this;
  u->core = &core;
  u->id = SocketId{static_cast<std::uint32_t>(udps_.size() + 1)};
  uv_udp_init(loop_, &u->handle);
  u->handle.data = u;
  udps_.push_back(u);
  int rc = uv_udp_bind(&u->handle, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_udp_recv_start(&u->handle, Impl::on_alloc, Impl::on_udp_recv);
  if (rc != 0) {
    throw std::runtime_error("cannot bind UDP on " + host + ":" + std::to_string(port) + ": " + uv_strerror(rc));
  }
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_udp_getsockname(&u->handle, reinterpret_cast<sockaddr*>(&ss), &len);
  return UdpSocket{u->id, endpoint_of(ss)};
}

int Driver::run() {
  pump();
  uv_run(loop_, UV_RUN_DEFAULT);
  // stop() closed every handle; let their close callbacks run.
  uv_run(loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(loop_);
  if (rc == 0) {
    delete loop_;
    loop_ = nullptr;
  }
  return rc;
}

void Driver::stop() {
  if (stopping_) return;
  stopping_ = true;
  // Goodbyes first (a Gnutella 0.6 Bye, say): each core queues them, and a
  // goodbye for a connection with nothing queued is written now
  // (non-blocking), since every connection closes right after.
  const Instant t = now();
  for (Core* core : cores_) {
    core->handle_shutdown(t);
    while (auto a = core->poll_action()) {
      const auto* send = std::get_if<action::Send>(&*a);
      if (!send) {
        execute(*a, *core);
        continue;
      }
      auto it = conns_.find(send->conn.value);
      if (it == conns_.end() || it->second->closing || it->second->queued > 0 || !it->second->pending_out.empty()) {
        continue;
      }
      uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(send->bytes->data())),
                                 static_cast<unsigned>(send->bytes->size()));
      uv_try_write(it->second->stream(), &buf, 1);
    }
  }
  std::vector<Conn*> all;
  for (auto& [_, c] : conns_) all.push_back(c);
  for (Conn* c : all) close_conn(c, CloseReason::Shutdown);
  auto close_handle = [](void*& h) {
    if (!h) return;
    uv_close(static_cast<uv_handle_t*>(h), [](uv_handle_t* hh) {
      switch (hh->type) {
        case UV_TIMER: delete reinterpret_cast<uv_timer_t*>(hh); break;
        case UV_ASYNC: delete reinterpret_cast<uv_async_t*>(hh); break;
        case UV_SIGNAL: delete reinterpret_cast<uv_signal_t*>(hh); break;
        default: break;
      }
    });
    h = nullptr;
  };
  for (Listener* l : listeners_) {
    l->handle()->data = l;
    uv_close(l->handle(), [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
  }
  listeners_.clear();
  for (const auto& path : unix_paths_) ::unlink(path.c_str());
  unix_paths_.clear();
  for (Udp* u : udps_) {
    uv_udp_recv_stop(&u->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&u->handle), [](uv_handle_t* h) {
      // Sends still queued complete (cancelled) before this callback.
      delete static_cast<Udp*>(h->data);
    });
  }
  udps_.clear();
  for (const auto& f : open_files_) ::close(f.fd);
  open_files_.clear();
  close_handle(core_timer_);
  close_handle(house_timer_);
  close_handle(wait_timer_);
  for (Watch* w : watches_) {
    uv_poll_stop(&w->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->handle), [](uv_handle_t* h) { delete static_cast<Watch*>(h->data); });
  }
  watches_.clear();
  {
    std::lock_guard<std::mutex> lock(async_mutex_);
    close_handle(async_);
  }
  close_handle(sig_int_);
  close_handle(sig_term_);
  for (Timer* tm : timers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tm->handle), [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
  }
  timers_.clear();
  // Pool work that has not started is cancelled; running work finishes.
  for (Work* w : work_) uv_cancel(reinterpret_cast<uv_req_t*>(&w->req));
  // Drain what the cores queued in reaction (no new sockets are opened).
  pump();
}

void Driver::request_stop() {
  std::lock_guard<std::mutex> lock(async_mutex_);
  if (async_) uv_async_send(static_cast<uv_async_t*>(async_));
}

void Driver::run_in_pool(std::function<void()> work, std::function<void()> done) {
  if (stopping_) return;
  auto* w = new Work;
  w->driver = this;
  w->work = std::move(work);
  w->done = std::move(done);
  w->req.data = w;
  work_.push_back(w);
  if (uv_queue_work(loop_, &w->req, Impl::on_work, Impl::on_work_done) != 0) {
    std::erase(work_, w);
    delete w;
  }
}

void Driver::after(Duration delay, std::function<void()> fn) {
  if (stopping_) return;
  auto* t = new Timer;
  t->driver = this;
  t->fn = std::move(fn);
  uv_timer_init(loop_, &t->handle);
  t->handle.data = t;
  timers_.push_back(t);
  uv_timer_start(&t->handle, Impl::on_user_timer, static_cast<std::uint64_t>(delay.count()), 0);
}

bool Driver::run_until(const std::function<bool()>& done, Duration timeout) {
  pump();
  if (done() || stopping_) return done();
  if (!wait_timer_) {
    auto* t = new uv_timer_t;
    uv_timer_init(loop_, t);
    t->data = this;
    wait_timer_ = t;
  }
  auto* t = static_cast<uv_timer_t*>(wait_timer_);
  wait_expired_ = false;
  uv_timer_start(t, Impl::on_wait_timer, static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout.count())), 0);
  while (!done() && !wait_expired_ && !stopping_) uv_run(loop_, UV_RUN_ONCE);
  if (wait_timer_) uv_timer_stop(t);
  return done();
}

bool Driver::watch_readable(int fd, std::function<void()> on_ready) {
  if (stopping_) return false;
  auto* w = new Watch;
  w->driver = this;
  w->fn = std::move(on_ready);
  w->handle.data = w;
  if (uv_poll_init(loop_, &w->handle, fd) != 0) {
    delete w;
    return false;
  }
  watches_.push_back(w);
  uv_poll_start(&w->handle, UV_READABLE, Impl::on_watch);
  return true;
}

std::size_t Driver::pending_bytes(ConnId conn) const {
  auto it = conns_.find(conn.value);
  if (it == conns_.end()) return 0;
  std::size_t n = it->second->queued;
  for (const auto& b : it->second->pending_out) n += b->size();
  return n;
}

void Driver::sniff(Conn* c) {
  std::string_view have(reinterpret_cast<const char*>(c->sniff.data()), c->sniff.size());
  bool possible = false;
  for (const auto& [table, prefix, core] : sniffers_) {
    if (table != c->table) continue;
    if (have.starts_with(prefix)) {
      c->owner = core;
      const Buffer first = std::exchange(c->sniff, {});
      const Instant now = this->now();
      core->handle_connected(c->id, c->remote, Direction::Inbound, now);
      if (!c->closing) core->handle_bytes(c->id, first, now);
      return;
    }
    possible = possible || prefix_compatible(have, prefix);
  }
  if (!possible) {
    ++stats_[kSniffUnknown];
    close_conn(c, CloseReason::NotOurProtocol);
  }
}

void Driver::offer_local_address(Conn* c) {
  std::optional<Endpoint> local;
  for (Core* core : cores_) {
    if (!core->wants_local_address()) continue;
    if (!local) {
      sockaddr_storage ss{};
      int len = sizeof ss;
      if (uv_tcp_getsockname(&c->tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
      local = endpoint_of(ss);
    }
    core->handle_local_address(*local);
  }
}

void Driver::write(Conn* c, SharedBuffer bytes, bool batch) {
  if (c->closing || bytes->empty()) return;
  if (c->queued + bytes->size() > config_.max_write_queue) {
    // A peer that does not read is dropped rather than buffered forever.
    ++stats_[kWriteQueueFull];
    close_conn(c, CloseReason::WriteQueueFull);
    return;
  }
  c->queued += bytes->size();
  if (batch || !c->pending_out.empty()) {
    // Broadcast bytes for one connection are gathered while the cores run
    // and go out in one writev at the end of pump(): a syscall per batch,
    // not per message. A Send behind them waits too, so the order stays; one
    // alone (a handshake, a reply) goes at once, in its own segment, as
    // real servents send it (Wireshark's dissector expects a handshake alone).
    if (c->pending_out.empty()) dirty_.push_back(c->id.value);
    c->pending_out.push_back(std::move(bytes));
    return;
  }
  std::vector<SharedBuffer> one;
  one.push_back(std::move(bytes));
  submit(c, std::move(one));
}

void Driver::submit(Conn* c, std::vector<SharedBuffer> bufs) {
  std::vector<uv_buf_t> iov;
  iov.reserve(bufs.size());
  std::size_t total = 0;
  for (const auto& b : bufs) {
    iov.push_back(uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(b->data())), static_cast<unsigned>(b->size())));
    total += b->size();
  }
  // Straight into the socket when it takes it all (the usual case): no write
  // request, no completion callback, no epoll change. uv_try_write refuses
  // while earlier writes are queued, so the order holds.
  const int n = uv_try_write(c->stream(), iov.data(), static_cast<unsigned>(iov.size()));
  if (n < 0 && n != UV_EAGAIN) {
    c->queued -= total;
    close_conn(c, CloseReason::IoError);
    return;
  }
  std::size_t done = n > 0 ? static_cast<std::size_t>(n) : 0;
  c->queued -= done;
  stats_[kBytesOut] += done;
  if (done == total) {
    written(c);
    return;
  }
  // The rest waits in libuv for the socket to drain.
  std::size_t skip = done, first = 0;
  while (skip >= iov[first].len) skip -= iov[first++].len;
  iov[first].base += skip;
  iov[first].len -= static_cast<unsigned>(skip);
  auto* w = new WriteReq;
  w->bytes = std::move(bufs);  // keeps every buffer alive until the callback
  w->size = total - done;
  int rc = uv_write(&w->req, c->stream(), iov.data() + first, static_cast<unsigned>(iov.size() - first), Impl::on_write);
  if (rc != 0) {
    c->queued -= w->size;
    delete w;
    close_conn(c, CloseReason::IoError);
  }
}

void Driver::written(Conn* c) {
  if (c->closing) return;
  if (c->done_waits && c->queued < kFileHighWater) {
    c->done_waits = false;
    if (c->owner) {
      woken_ = true;  // pump() runs the cores again
      c->owner->handle_send_progress(c->id, std::exchange(c->done_pending, 0), now());
      c->owner->handle_send_done(c->id, true, now());
    }
    if (c->closing) return;
  }
  if (c->file) file_step(c);
  if (c->close_after_flush && c->queued == 0 && !c->file) close_conn(c, c->flush_reason);
}

void Driver::flush_writes() {
  auto dirty = std::exchange(dirty_, {});
  for (std::uint64_t id : dirty) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;  // closed meanwhile: its pending bytes went with it
    Conn* c = it->second;
    auto out = std::exchange(c->pending_out, {});
    if (c->closing || out.empty()) continue;
    constexpr std::size_t kMaxIov = 512;
    for (std::size_t i = 0; i < out.size(); i += kMaxIov) {
      std::vector<SharedBuffer> part(std::make_move_iterator(out.begin() + static_cast<std::ptrdiff_t>(i)),
                                     std::make_move_iterator(out.begin() + static_cast<std::ptrdiff_t>(std::min(out.size(), i + kMaxIov))));
      submit(c, std::move(part));
      if (c->closing) break;
    }
  }
}

void Driver::execute(const Action& a, Core& from) {
  std::visit(
      [&](const auto& act) {
        using T = std::decay_t<decltype(act)>;
        if constexpr (std::is_same_v<T, action::Send>) {
          auto it = conns_.find(act.conn.value);
          if (it != conns_.end()) write(it->second, act.bytes, act.batch);
        } else if constexpr (std::is_same_v<T, action::Broadcast>) {
          for (ConnId id : act.conns) {
            auto it = conns_.find(id.value);
            if (it != conns_.end()) write(it->second, act.bytes, true);
          }
        } else if constexpr (std::is_same_v<T, action::SendTo>) {
          if (act.socket.value == 0 || act.socket.value > udps_.size() || act.bytes->empty()) {
            ++stats_[kDatagramsDropped];
            return;
          }
          Udp* u = udps_[act.socket.value - 1];
          const sockaddr_in to = sockaddr_of(act.to);
          uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(act.bytes->data())),
                                     static_cast<unsigned>(act.bytes->size()));
          const int rc = uv_udp_try_send(&u->handle, &buf, 1, reinterpret_cast<const sockaddr*>(&to));
          if (rc >= 0) {
            ++stats_[kDatagramsOut];
            stats_[kBytesOut] += act.bytes->size();
            return;
          }
          if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
            ++stats_[kDatagramsDropped];
            return;
          }
          // The socket is busy: queue it (the request keeps the bytes alive).
          auto* r = new UdpSendReq;
          r->bytes = act.bytes;
          if (uv_udp_send(&r->req, &u->handle, &buf, 1, reinterpret_cast<const sockaddr*>(&to), Impl::on_udp_send) != 0) {
            ++stats_[kDatagramsDropped];
            delete r;
          }
        } else if constexpr (std::is_same_v<T, action::SendFile>) {
          auto it = conns_.find(act.conn.value);
          if (it == conns_.end()) return;
          Conn* c = it->second;
          if (act.length <= kInlineFile && !c->file && !c->done_waits && send_cached_file(c, act)) return;
          if (act.head) write(c, act.head);
          if (c->closing) return;
          auto* f = new FileSend;
          f->conn = c;
          f->offset = act.offset;
          f->remaining = act.length;
          f->path = act.path;
          f->dev = act.dev;
          f->ino = act.ino;
          f->req.data = f;
          c->file = f;
          f->busy = true;
          // O_NOFOLLOW: a symlink swapped in since the request was checked is
          // refused; O_NONBLOCK: a FIFO swapped in cannot hang the thread pool.
          // After the open, the file must be the scanned inode (see on_file_open).
          int rc = uv_fs_open(loop_, &f->req, f->path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0,
                              Impl::on_file_open);
          if (rc != 0) {
            f->busy = false;
            ++stats_[kFileErrors];
            file_finish(c, false);
          }
        } else if constexpr (std::is_same_v<T, action::Close>) {
          auto it = conns_.find(act.conn.value);
          if (it == conns_.end()) return;
          Conn* c = it->second;
          if (act.flush && (c->queued > 0 || c->file)) {
            c->close_after_flush = true;
            c->flush_reason = act.reason;
            c->deadline = now() + config_.flush_timeout;
            uv_read_stop(c->stream());
          } else {
            close_conn(c, act.reason);
          }
        } else if constexpr (std::is_same_v<T, action::Connect>) {
          if (stopping_) {
            from.handle_closed(act.conn, CloseReason::Shutdown, now());
            return;
          }
          if (conns_.count(act.conn.value) != 0) {
            // A core reused an id that is still open: refuse the new one.
            ++stats_[kConnIdCollisions];
            from.handle_closed(act.conn, CloseReason::ConnectFailed, now());
            return;
          }
          auto* c = new Conn;
          c->driver = this;
          c->id = act.conn;
          c->dir = Direction::Outbound;
          c->owner = &from;
          c->remote = act.to;
          c->connecting = true;
          conns_[c->id.value] = c;
          auto* req = new ConnectReq;
          int rc = 0;
          if (!act.unix_path.empty()) {
            c->is_pipe = true;
            uv_pipe_init(loop_, &c->pipe, 0);
            c->pipe.data = c;
            uv_pipe_connect(&req->req, &c->pipe, act.unix_path.c_str(), Impl::on_connect);  // errors come to on_connect
          } else {
            uv_tcp_init(loop_, &c->tcp);
            c->tcp.data = c;
            const sockaddr_in addr = sockaddr_of(act.to);
            rc = uv_tcp_connect(&req->req, &c->tcp, reinterpret_cast<const sockaddr*>(&addr), Impl::on_connect);
          }
          if (rc != 0) {
            delete req;
            ++stats_[kConnectsFailed];
            close_conn(c, CloseReason::ConnectFailed);
          }
        } else if constexpr (std::is_same_v<T, action::FileJob>) {
          // Blocking file work goes to the pool; the core hears back on the loop.
          auto result = std::make_shared<FileResult>();
          ++stats_[kFileJobs];
          Core* owner = &from;
          run_in_pool(
              [job = act, result]() mutable {
                *result = run_file_job(job);
                job.data.reset();  // done with the bytes: the core may reuse the buffer
              },
                      [this, owner, id = act.job, result] {
                        if (!result->ok) ++stats_[kFileJobErrors];
                        owner->handle_file_done(id, *result, now());
                      });
        }
      },
      a);
}

void Driver::close_conn(Conn* c, CloseReason reason) {
  if (c->closing) return;
  c->closing = true;
  conns_.erase(c->id.value);
  if (c->counted_ip) {
    auto it = inbound_per_ip_.find(c->remote.ip);
    if (it != inbound_per_ip_.end() && --it->second == 0) inbound_per_ip_.erase(it);
    c->counted_ip = false;
  }
  if (c->file) {
    // An fs request in flight owns the FileSend until its callback.
    c->file->conn = nullptr;
    if (!c->file->busy) Impl::release(c->file);
    c->file = nullptr;
  }
  uv_close(c->handle(), Impl::on_close);
  if (c->owner) {
    woken_ = true;
    c->owner->handle_closed(c->id, reason, now());
  }
}

void Driver::file_step(Conn* c) {
  FileSend* f = c->file;
  if (!f || f->busy || f->fd < 0) return;
  if (f->remaining == 0) {
    if (c->queued == 0) file_finish(c, true);
    return;
  }
  if (f->sendfile) {
    if (c->queued > 0) return;  // the head goes first; written() comes back here
    sendfile_step(c);
    return;
  }
  if (c->queued >= kFileHighWater) return;  // wait for the socket to drain
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kFileChunk, f->remaining));
  f->chunk = std::make_shared<Buffer>(n);
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(f->chunk->data()), static_cast<unsigned>(n));
  f->busy = true;
  int rc = uv_fs_read(loop_, &f->req, f->fd, &buf, 1, static_cast<std::int64_t>(f->offset), Impl::on_file_read);
  if (rc != 0) {
    f->busy = false;
    ++stats_[kFileErrors];
    file_finish(c, false);
  }
}

void Driver::sendfile_step(Conn* c) {
  FileSend* f = c->file;
  struct Result {
    ssize_t n = 0;
    int err = 0;
  };
  auto r = std::make_shared<Result>();
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kSendfileChunk, f->remaining));
  const int sock = f->sock, fd = f->fd;
  const off_t at = static_cast<off_t>(f->offset);
  f->busy = true;
  run_in_pool(
      [r, sock, fd, at, want] {
        off_t off = at;
        r->n = ::sendfile(sock, fd, &off, want);
        r->err = r->n < 0 ? errno : 0;
      },
      [this, f, r] {
        f->busy = false;
        if (!f->conn) {
          Impl::release(f);
          return;
        }
        Conn* conn = f->conn;
        if (r->n > 0) {
          const auto n = static_cast<std::uint64_t>(r->n);
          f->offset += n;
          f->remaining -= n;
          f->done += n;
          stats_[kFileBytesSent] += n;
          stats_[kBytesOut] += n;
          if (conn->owner) conn->owner->handle_send_progress(conn->id, f->done, now());
          if (conn->file == f) file_step(conn);
          return;
        }
        if (r->n < 0 && (r->err == EAGAIN || r->err == EWOULDBLOCK)) {
          // The socket is full: on when it has drained.
          if (!f->writable) {
            auto* w = new FileSend::Writable;
            w->dup = ::dup(f->sock);
            if (w->dup < 0 || uv_poll_init(loop_, &w->handle, w->dup) != 0) {
              if (w->dup >= 0) ::close(w->dup);
              delete w;
              ++stats_[kFileErrors];
              file_finish(conn, false);
              return;
            }
            w->handle.data = f;
            f->writable = w;
          }
          uv_poll_start(&f->writable->handle, UV_WRITABLE, Impl::on_writable);
          return;
        }
        // An error, or the file shrank under us: the response cannot be completed.
        ++stats_[kFileErrors];
        file_finish(conn, false);
      });
  if (stopping_) f->busy = false;  // not queued
}

int Driver::cached_fd(const action::SendFile& act) {
  const Instant now = this->now();
  for (auto it = open_files_.begin(); it != open_files_.end(); ++it) {
    if (act.ino != 0 ? (it->dev != act.dev || it->ino != act.ino || !it->path.empty()) : it->path != act.path) continue;
    if (act.ino == 0 && now - it->opened >= kPathFdAge) {
      // Too old: it goes, and the file is looked at afresh.
      ::close(it->fd);
      open_files_.erase(it);
      break;
    }
    open_files_.splice(open_files_.begin(), open_files_, it);  // most recent first
    return it->fd;
  }
  // The same checks as the pool's path (on_file_open): no symlink, no FIFO,
  // the scanned inode.
  const int fd = ::open(act.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      (act.ino != 0 && (static_cast<std::uint64_t>(st.st_dev) != act.dev || static_cast<std::uint64_t>(st.st_ino) != act.ino))) {
    ::close(fd);
    return -1;
  }
  OpenFile f;
  f.dev = act.dev;
  f.ino = act.ino;
  f.fd = fd;
  if (act.ino == 0) {
    f.path = act.path;
    f.opened = now;
  }
  open_files_.push_front(f);
  if (open_files_.size() > kOpenFiles) {
    ::close(open_files_.back().fd);
    open_files_.pop_back();
  }
  return fd;
}

bool Driver::send_cached_file(Conn* c, const action::SendFile& act) {
  // Anything unexpected falls back to the pool's path, which then counts it.
  const int fd = cached_fd(act);
  if (fd < 0) return false;
  auto chunk = std::make_shared<Buffer>(act.length);
  bool ok = true;
  if (act.length > 0) {
    iovec iov{chunk->data(), chunk->size()};
    const ssize_t n = ::preadv2(fd, &iov, 1, static_cast<off_t>(act.offset), RWF_NOWAIT);
    ok = n == static_cast<ssize_t>(act.length);  // EAGAIN (not cached), short (shrunk), EOPNOTSUPP: the pool
  }
  if (!ok) return false;
  stats_[kFileBytesSent] += act.length;
  // The head and the bytes in one writev, one segment.
  if (act.head) write(c, act.head, true);
  write(c, std::move(chunk), true);
  if (c->closing) return true;
  if (c->queued >= kFileHighWater) {
    c->done_waits = true;
    c->done_pending = act.length;
    return true;
  }
  if (c->owner) {
    c->owner->handle_send_progress(c->id, act.length, now());
    c->owner->handle_send_done(c->id, true, now());
  }
  return true;
}

void Driver::file_finish(Conn* c, bool ok) {
  FileSend* f = c->file;
  if (!f) return;
  c->file = nullptr;
  Impl::release(f);
  woken_ = true;
  if (c->owner) c->owner->handle_send_done(c->id, ok, now());
  if (!ok) close_conn(c, CloseReason::IoError);
}

void Driver::housekeeping() {
  const Instant now = this->now();
  std::vector<Conn*> expired;
  for (auto& [_, c] : conns_) {
    if (!c->owner && !c->connecting && c->deadline <= now) expired.push_back(c);
    if (c->close_after_flush && c->deadline <= now) expired.push_back(c);
  }
  for (Conn* c : expired) {
    if (c->closing) continue;
    if (c->close_after_flush) {
      ++stats_[kFlushTimeout];
      close_conn(c, c->flush_reason);
    } else {
      ++stats_[kSniffTimeout];
      close_conn(c, CloseReason::HandshakeTimeout);
    }
  }
}

void Driver::pump() {
  if (pumping_) return;  // re-entrant calls are folded into the outer loop
  pumping_ = true;
  for (;;) {
    bool any = false;
    for (Core* core : cores_) {
      while (auto a = core->poll_action()) {
        any = true;
        execute(*a, *core);
      }
    }
    for (auto& hook : hooks_) any = hook() || any;
    if (any) continue;
    // Writes go out once the cores are quiet; a core called back meanwhile
    // (a send-done, a close) may have queued more.
    woken_ = false;
    flush_writes();
    if (!woken_) break;
  }
  pumping_ = false;
  arm_timer();
}

void Driver::arm_timer() {
  if (!core_timer_ || stopping_) return;
  std::optional<Instant> next;
  for (const Core* core : cores_) {
    auto due = core->poll_timeout();
    if (due && (!next || *due < *next)) next = due;
  }
  auto* t = static_cast<uv_timer_t*>(core_timer_);
  if (!next) {
    uv_timer_stop(t);
    return;
  }
  const Instant now = this->now();
  const auto delay = *next > now ? (*next - now).count() : 0;
  uv_timer_start(t, Impl::on_core_timer, static_cast<std::uint64_t>(delay), 0);
}

std::vector<Counter> Driver::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

}  // namespace sv
