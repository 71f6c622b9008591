// A blocking loopback TCP client for tests, every call bounded by a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <memory>
#include <string_view>

namespace sv::test {

class SocketClient {
 public:
  // Connects to 127.0.0.1:port; throws on failure.
  explicit SocketClient(std::uint16_t port);
  // Takes over a connected socket (from TestListener::accept).
  struct Adopt {};
  SocketClient(int fd, Adopt) : fd_(fd) {}
  ~SocketClient();
  SocketClient(const SocketClient&) = delete;
  SocketClient& operator=(const SocketClient&) = delete;

  // Sends everything; false if the peer is gone.
  bool send(std::string_view bytes);
  // Reads until `bytes` holds at least `n` bytes, the peer closes, or the
  // deadline passes. Returns what was read since the last take.
  std::string read_at_least(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads until `marker` appears in the buffer (or close/timeout).
  std::string read_until(std::string_view marker, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Reads until `marker` appears; returns the bytes through it and keeps
  // what follows in the buffer (a handshake, then descriptors behind it).
  std::string take_through(std::string_view marker, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Waits for more bytes into the buffer; false at close or the deadline.
  bool read_more(std::chrono::steady_clock::time_point deadline) { return fill(deadline); }
  // Waits for the peer to close; true when it did within the timeout.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool closed() const { return closed_; }
  std::string& buffer() { return buf_; }
  // A small kernel receive buffer: a peer that does not read fills the other
  // side's queues soon, not after megabytes.
  void shrink_receive_buffer();

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  bool closed_ = false;
  std::string buf_;
};

// A listening socket on 127.0.0.1 (a free port), for a test playing the
// side a servent dials.
class TestListener {
 public:
  TestListener();
  ~TestListener();
  TestListener(const TestListener&) = delete;
  TestListener& operator=(const TestListener&) = delete;
  std::uint16_t port() const { return port_; }
  // The next connection, or null at the deadline.
  std::unique_ptr<SocketClient> accept(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace sv::test
