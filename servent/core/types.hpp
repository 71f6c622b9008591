// Types every core shares: time, connection names, endpoints, actions.
// Cores are sans-I/O: the driver (real libuv or the simulator) feeds them
// events with the current Instant and executes the Actions they return.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <compare>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sv {

using Duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

// A point in time as the driver sees it (milliseconds on a monotonic clock).
struct Instant {
  Duration since_epoch{0};
  auto operator<=>(const Instant&) const = default;
  Instant operator+(Duration d) const { return {since_epoch + d}; }
  Duration operator-(Instant o) const { return since_epoch - o.since_epoch; }
};

struct ConnId {
  std::uint64_t value = 0;
  auto operator<=>(const ConnId&) const = default;
};
struct ConnIdHash {
  std::size_t operator()(ConnId c) const { return std::hash<std::uint64_t>{}(c.value); }
};
// A UDP socket the driver opened for a core (Driver::listen_udp).
struct SocketId {
  std::uint32_t value = 0;
  auto operator<=>(const SocketId&) const = default;
};

// A file job a core asked the driver for (action::FileJob), named by the core.
struct JobId {
  std::uint64_t value = 0;
  auto operator<=>(const JobId&) const = default;
};

// Ids the cores allocate for outgoing connections carry this bit; the driver
// numbers inbound connections from 1 without it, so the two never collide.
inline constexpr std::uint64_t kCoreConnIdBit = std::uint64_t{1} << 63;

// IPv4 endpoint (Gnutella 0.4 addresses are IPv4), ip in host order.
struct Endpoint {
  std::uint32_t ip = 0;
  std::uint16_t port = 0;
  auto operator<=>(const Endpoint&) const = default;
  std::string to_string() const;
  // "a.b.c.d:port"; nullopt on anything else.
  static std::optional<Endpoint> parse(std::string_view s);
};

struct EndpointHash {
  std::size_t operator()(const Endpoint& e) const noexcept {
    return std::hash<std::uint64_t>{}((std::uint64_t{e.ip} << 16 | e.port) * 0x9E3779B97F4A7C15ull);
  }
};

enum class Direction { Inbound, Outbound };

enum class CloseReason {
  Normal,
  PeerClosed,
  Shutdown,
  ConnectFailed,
  NotOurProtocol,     // first bytes match no protocol we speak
  HandshakeMalformed,
  HandshakeRefused,   // the other side answered with a non-200 code
  HandshakeTimeout,
  Full,               // we are at our connection limit
  PayloadTooLarge,
  PayloadMalformed,
  Bye,
  HttpBadRequest,
  HttpHeaderTimeout,
  HttpIdle,
  WriteQueueFull,     // slow reader
  IoError,
};
std::string_view to_string(CloseReason r);

using Buffer = std::vector<std::uint8_t>;
// Broadcast payloads are shared between the sends of one flood.
using SharedBuffer = std::shared_ptr<const Buffer>;

namespace action {
struct Send {
  ConnId conn;
  SharedBuffer bytes;
  // false: written at once when the socket is free (a handshake, a reply
  // alone in its segment); true: gathered with the connection's other bytes
  // of this turn of the loop and written in one writev when the cores are
  // quiet (a stream of small messages: a syscall per turn, not per message).
  bool batch = false;
};
// The same bytes to several connections (a flood): one action, one buffer.
struct Broadcast {
  std::vector<ConnId> conns;
  SharedBuffer bytes;
};
// Stream [offset, offset+length) of a file the core has validated.
struct SendFile {
  ConnId conn;
  std::string path;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  // The file the core validated: the opened file must be this one (0: any).
  std::uint64_t dev = 0, ino = 0;
  // Bytes to send first (an HTTP response head): a small file goes out with
  // them in one write.
  SharedBuffer head = nullptr;
};
// Close after the bytes already queued are written (flush) or at once.
struct Close {
  ConnId conn;
  CloseReason reason = CloseReason::Normal;
  bool flush = true;
};
struct Connect {
  ConnId conn;  // allocated by the core, with kCoreConnIdBit
  Endpoint to;
  std::string unix_path = {};  // when set: a Unix-domain stream socket at this path instead of `to`
};
// One datagram from a UDP socket of the core's (best effort: dropped and
// counted when the socket cannot take it).
struct SendTo {
  SocketId socket;
  Endpoint to;
  SharedBuffer bytes;
};
// Blocking file work, done on the driver's thread pool (never on the loop),
// answered by Core::handle_file_done:
//  Write: `data` goes, in order, over `ranges` (their lengths add up to its
//         size); with `expect`, only when the SHA-1 of `data` is that (else
//         nothing is written: a bad piece never touches the disk);
//  Hash:  the SHA-1 of `ranges` read in order (a piece on disk).
// Files are opened with O_NOFOLLOW; Write creates missing ones (0644), never
// directories: the core made (and validated) the paths.
struct FileRange {
  std::string path;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};
struct FileJob {
  enum class Op : std::uint8_t { Write, Hash };
  JobId job;
  Op op = Op::Write;
  std::vector<FileRange> ranges;
  SharedBuffer data = nullptr;
  std::optional<std::array<std::uint8_t, 20>> expect = std::nullopt;
};
}  // namespace action
using Action = std::variant<action::Send, action::Broadcast, action::SendFile, action::Close, action::Connect,
                            action::SendTo, action::FileJob>;

struct FileResult {
  bool ok = false;            // the I/O worked (and, with expect, the hash matched)
  bool hash_matched = true;   // false: expect was set and the data hashed to something else
  std::array<std::uint8_t, 20> sha1{};  // Hash: the digest; Write with expect: the data's
};

// Pops the oldest queued item (actions, events) if any.
template <typename Queue>
std::optional<typename Queue::value_type> take_front(Queue& q) {
  if (q.empty()) return std::nullopt;
  auto v = std::move(q.front());
  q.pop_front();
  return v;
}

// Named counters, exported as (name, value) pairs for stats and tests.
struct Counter {
  std::string_view name;
  std::uint64_t value;
};

// Seeded xoshiro256** so cores and simulations are reproducible.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  // Uniform in [0, n).
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  void fill(std::uint8_t* p, std::size_t n);

 private:
  std::uint64_t s_[4];
};

}  // namespace sv
