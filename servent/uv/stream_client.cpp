#include "servent/uv/stream_client.hpp"

#include <sys/un.h>

#include <deque>

namespace sv {

// The client's side as a core: one connection at a time, its bytes kept
// until the straight-line code consumes them.
class StreamClient::Link final : public Core {
 public:
  ConnId conn;
  bool up = false, closed = true, activity = false;
  CloseReason reason = CloseReason::Normal;
  wire::Bytes in;
  std::deque<Action> out;
  std::uint64_t seq = 0;

  void open(Endpoint to, std::string unix_path) {
    conn = core_conn_id(ConnSpace::StreamClient, ++seq);
    up = false;
    closed = false;
    in.clear();
    out.push_back(action::Connect{conn, to, std::move(unix_path)});
  }
  void handle_connected(ConnId c, Endpoint, Direction, Instant) override {
    if (c != conn) return;
    up = true;
    activity = true;
  }
  void handle_bytes(ConnId c, wire::ByteView bytes, Instant) override {
    if (c != conn) return;
    in.insert(in.end(), bytes.begin(), bytes.end());
    activity = true;
  }
  void handle_closed(ConnId c, CloseReason r, Instant) override {
    if (c != conn) return;
    up = false;
    closed = true;
    reason = r;
    activity = true;
  }
  void handle_timeout(Instant) override {}
  std::optional<Action> poll_action() override {
    if (out.empty()) return std::nullopt;
    Action a = std::move(out.front());
    out.pop_front();
    return a;
  }
  std::optional<Instant> poll_timeout() const override { return std::nullopt; }
};

namespace {
DriverConfig client_config() {
  DriverConfig c;
  c.max_connections = 4;
  c.handle_signals = false;  // the process's own handlers (or the default) decide
  return c;
}
}  // namespace

StreamClient::StreamClient() : link_(std::make_unique<Link>()), driver_(std::make_unique<Driver>(client_config())) {
  driver_->add_core(*link_);
}

StreamClient::~StreamClient() { driver_.reset(); }

bool StreamClient::finish_connect(Duration timeout, const std::string& what) {
  error_.clear();
  driver_->run_until([&] { return link_->up || link_->closed; }, timeout);
  if (link_->up) return true;
  if (!link_->closed) {
    link_->out.push_back(action::Close{link_->conn, CloseReason::ConnectFailed, false});
    driver_->pump();
    error_ = "cannot connect to " + what + ": no answer";
  } else {
    error_ = "cannot connect to " + what;
  }
  return false;
}

bool StreamClient::connect(Endpoint to, Duration timeout) {
  link_->open(to, {});
  return finish_connect(timeout, to.to_string());
}

bool StreamClient::connect_unix(const std::string& path, Duration timeout) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    error_ = "socket path too long: " + path;
    return false;
  }
  link_->open(Endpoint{}, path);
  return finish_connect(timeout, path);
}

bool StreamClient::connected() const { return link_->up; }
bool StreamClient::closed() const { return link_->closed; }
CloseReason StreamClient::close_reason() const { return link_->reason; }
wire::Bytes& StreamClient::received() { return link_->in; }

bool StreamClient::send(wire::ByteView bytes, Duration timeout) {
  if (!link_->up) return false;
  link_->out.push_back(action::Send{link_->conn, std::make_shared<const Buffer>(bytes.begin(), bytes.end())});
  const ConnId c = link_->conn;
  driver_->run_until([&] { return !link_->up || driver_->pending_bytes(c) == 0; }, timeout);
  if (link_->up) return driver_->pending_bytes(c) == 0;
  // Closed meanwhile: by the peer after reading (an answer and a close, say)
  // is fine; a write error is not.
  return link_->reason == CloseReason::PeerClosed;
}

bool StreamClient::read_until(const std::function<bool(wire::Bytes&)>& done, Duration timeout) {
  bool ok = done(link_->in);
  if (ok) return true;
  driver_->run_until(
      [&] {
        if (!link_->activity) return false;
        link_->activity = false;
        ok = done(link_->in);
        return ok || link_->closed;
      },
      timeout);
  return ok;
}

void StreamClient::wait(Duration timeout) {
  link_->activity = false;
  driver_->run_until([&] { return link_->activity; }, timeout);
  link_->activity = false;
}

bool StreamClient::watch_input(int fd) {
  return driver_->watch_readable(fd, [this] { link_->activity = true; });
}

}  // namespace sv
