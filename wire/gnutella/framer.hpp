// Incremental descriptor framer over a TCP byte stream.
//
// feed() appends bytes; next() returns one whole descriptor (header + a view of
// its payload), NeedMore when the buffer holds only a prefix, or TooLarge when
// a header announces a payload above max_payload (the connection must then be
// closed: the stream cannot be resynchronised). The payload view stays valid
// until the next call to feed() or next().
#pragma once

#include <cstddef>

#include "wire/gnutella/descriptors.hpp"

namespace sv::wire::gnutella {

inline constexpr std::uint32_t kDefaultMaxPayload = 64 * 1024;

struct Frame {
  Header header;
  ByteView payload;
};

class Framer {
 public:
  explicit Framer(std::uint32_t max_payload = kDefaultMaxPayload) : max_payload_(max_payload) {}

  void feed(ByteView bytes);
  Result<Frame> next();
  // Bytes received but not yet returned as frames.
  std::size_t buffered() const { return buf_.size() - pos_; }
  // Takes the unconsumed bytes (used when a link switches codec).
  Bytes take_rest();

 private:
  Bytes buf_;
  std::size_t pos_ = 0;
  std::uint32_t max_payload_;
};

}  // namespace sv::wire::gnutella
