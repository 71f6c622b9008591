// zlib streams (RFC 1950) for Gnutella link compression (0.6 draft §2.4,
// "Accept-Encoding: deflate") and compressed GGEP extensions (GGEP 0.51 §2.3).
// Output is produced in bounded pieces so a small input that expands to
// gigabytes never sits in memory at once.
#pragma once

#include <functional>
#include <memory>

#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire {

class Deflater {
 public:
  explicit Deflater(int level = 6);
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  // Compresses `in` and flushes (Z_SYNC_FLUSH) so the peer can decode
  // everything sent so far; appends to `out`.
  void write(ByteView in, Bytes& out);
  std::uint64_t total_in() const;
  std::uint64_t total_out() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Inflater {
 public:
  Inflater();
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  // Decompresses `in`, handing the output to `sink` in pieces of at most
  // `piece` bytes; a sink returning false stops it (TooLarge). Malformed on a
  // corrupt stream.
  Result<bool> read(ByteView in, const std::function<bool(ByteView)>& sink, std::size_t piece = 64 * 1024);
  std::uint64_t total_in() const;
  std::uint64_t total_out() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot helpers (GGEP): TooLarge when the output would exceed `max_out`.
Bytes deflate_bytes(ByteView in);
Result<Bytes> inflate_bytes(ByteView in, std::size_t max_out);

}  // namespace sv::wire
