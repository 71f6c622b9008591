// TCP stream reassembly for one direction of one connection (RFC 793
// sequence space, with 32-bit wrap-around): in-order bytes are handed on as
// they become contiguous; retransmissions and overlaps are trimmed; segments
// after a hole wait (bounded) and, when the hole never fills, the gap is
// reported with its size rather than guessed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "wire/common/bytes.hpp"

namespace sv::pcap {

class StreamReassembler {
 public:
  // bytes, frame number of the segment that completed them
  using Sink = std::function<void(wire::ByteView, std::uint64_t)>;
  // missing byte count, frame number where the gap was declared
  using GapSink = std::function<void(std::uint64_t, std::uint64_t)>;

  StreamReassembler(Sink sink, GapSink gap, std::size_t max_pending = 8 * 1024 * 1024)
      : sink_(std::move(sink)), gap_(std::move(gap)), max_pending_(max_pending) {}

  void segment(std::uint32_t seq, bool syn, wire::ByteView data, std::uint64_t frame);
  // End of the connection or of the capture: hand on what waits, with gaps.
  void finish(std::uint64_t frame);

  std::uint64_t delivered() const { return next_abs_; }
  std::uint64_t retransmitted() const { return retransmitted_; }
  std::uint64_t gap_bytes() const { return gap_bytes_; }

 private:
  void drain(std::uint64_t frame);
  void skip_to_pending(std::uint64_t frame);

  Sink sink_;
  GapSink gap_;
  std::size_t max_pending_;
  bool started_ = false;
  std::uint32_t next_seq_ = 0;  // sequence number of the next expected byte
  std::uint64_t next_abs_ = 0;  // the same, as a stream offset
  std::map<std::uint64_t, wire::Bytes> pending_;
  std::size_t pending_bytes_ = 0;
  std::uint64_t retransmitted_ = 0;
  std::uint64_t gap_bytes_ = 0;
};

}  // namespace sv::pcap
