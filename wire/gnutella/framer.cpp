#include "wire/gnutella/framer.hpp"

namespace sv::wire::gnutella {

void Framer::feed(ByteView bytes) {
  // Compact lazily: only when the consumed prefix dominates, so the amortised
  // cost per byte stays constant.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > 64 * 1024 || pos_ * 2 > buf_.size())) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

Result<Frame> Framer::next() {
  ByteView avail(buf_.data() + pos_, buf_.size() - pos_);
  auto h = decode_header(avail);
  if (!h) return h.error();
  if (h->payload_length > max_payload_) return WireError::TooLarge;
  if (avail.size() < kHeaderSize + h->payload_length) return WireError::NeedMore;
  Frame f{*h, avail.subspan(kHeaderSize, h->payload_length)};
  pos_ += kHeaderSize + h->payload_length;
  return f;
}

Bytes Framer::take_rest() {
  Bytes rest(buf_.begin() + static_cast<std::ptrdiff_t>(pos_), buf_.end());
  buf_.clear();
  pos_ = 0;
  return rest;
}

}  // namespace sv::wire::gnutella
