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
  Result<Frame> next();  // inline below: called for every descriptor
  // Bytes received but not yet returned as frames.
  std::size_t buffered() const { return buf_.size() - pos_; }
  // Bytes still needed before next() can return the buffered descriptor (0
  // when nothing or a whole descriptor is buffered). Lets a caller copy only
  // a descriptor cut by a segment boundary and take the others in place.
  std::size_t missing() const {
    const std::size_t have = buffered();
    if (have == 0) return 0;
    if (have < kHeaderSize) return kHeaderSize - have;
    const std::size_t whole = kHeaderSize + get_le32(buf_.data() + pos_ + 19);
    return whole > have ? whole - have : 0;
  }
  // Takes the unconsumed bytes (used when a link switches codec).
  Bytes take_rest();

 private:
  Bytes buf_;
  std::size_t pos_ = 0;
  std::uint32_t max_payload_;
};

inline Result<Frame> Framer::next() {
  ByteView avail(buf_.data() + pos_, buf_.size() - pos_);
  auto h = decode_header(avail);
  if (!h) return h.error();
  if (h->payload_length > max_payload_) return WireError::TooLarge;
  if (avail.size() < kHeaderSize + h->payload_length) return WireError::NeedMore;
  Frame f{*h, avail.subspan(kHeaderSize, h->payload_length)};
  pos_ += kHeaderSize + h->payload_length;
  return f;
}

}  // namespace sv::wire::gnutella
