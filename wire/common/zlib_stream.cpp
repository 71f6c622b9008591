#include "wire/common/zlib_stream.hpp"

#include <zlib.h>

#include <array>
#include <cstring>

namespace sv::wire {

struct Deflater::Impl {
  z_stream z{};
};

Deflater::Deflater(int level) : impl_(std::make_unique<Impl>()) { deflateInit(&impl_->z, level); }
Deflater::~Deflater() { deflateEnd(&impl_->z); }

void Deflater::write(ByteView in, Bytes& out) {
  z_stream& z = impl_->z;
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  std::array<std::uint8_t, 16 * 1024> buf;
  do {
    z.next_out = buf.data();
    z.avail_out = static_cast<uInt>(buf.size());
    deflate(&z, Z_SYNC_FLUSH);
    out.insert(out.end(), buf.data(), buf.data() + (buf.size() - z.avail_out));
  } while (z.avail_out == 0);
}

std::uint64_t Deflater::total_in() const { return impl_->z.total_in; }
std::uint64_t Deflater::total_out() const { return impl_->z.total_out; }

struct Inflater::Impl {
  z_stream z{};
  bool ended = false;
};

Inflater::Inflater() : impl_(std::make_unique<Impl>()) { inflateInit(&impl_->z); }
Inflater::~Inflater() { inflateEnd(&impl_->z); }

Result<bool> Inflater::read(ByteView in, const std::function<bool(ByteView)>& sink, std::size_t piece) {
  z_stream& z = impl_->z;
  if (impl_->ended) return in.empty() ? Result<bool>(true) : Result<bool>(WireError::Malformed);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  Bytes buf(piece);
  for (;;) {
    z.next_out = buf.data();
    z.avail_out = static_cast<uInt>(buf.size());
    int rc = inflate(&z, Z_SYNC_FLUSH);
    const std::size_t produced = buf.size() - z.avail_out;
    if (produced > 0 && !sink(ByteView(buf.data(), produced))) return WireError::TooLarge;
    if (rc == Z_STREAM_END) {
      impl_->ended = true;
      return true;
    }
    if (rc == Z_BUF_ERROR || (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0)) return true;
    if (rc != Z_OK) return WireError::Malformed;
  }
}

std::uint64_t Inflater::total_in() const { return impl_->z.total_in; }
std::uint64_t Inflater::total_out() const { return impl_->z.total_out; }

Bytes deflate_bytes(ByteView in) {
  Bytes out(compressBound(static_cast<uLong>(in.size())));
  uLongf len = static_cast<uLongf>(out.size());
  compress2(out.data(), &len, in.data(), static_cast<uLong>(in.size()), 9);
  out.resize(len);
  return out;
}

Result<Bytes> inflate_bytes(ByteView in, std::size_t max_out) {
  Inflater inf;
  Bytes out;
  auto r = inf.read(in, [&](ByteView piece) {
    if (out.size() + piece.size() > max_out) return false;
    out.insert(out.end(), piece.begin(), piece.end());
    return true;
  }, 4096);
  if (!r) return r.error();
  return out;
}

}  // namespace sv::wire
