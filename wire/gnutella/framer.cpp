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

Bytes Framer::take_rest() {
  Bytes rest(buf_.begin() + static_cast<std::ptrdiff_t>(pos_), buf_.end());
  buf_.clear();
  pos_ = 0;
  return rest;
}

}  // namespace sv::wire::gnutella
