#include "wire/gnutella/ggep.hpp"

#include "wire/common/zlib_stream.hpp"

namespace sv::wire::gnutella {

const GgepExtension* GgepBlock::find(std::string_view id) const {
  for (const auto& e : extensions) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

Bytes cobs_encode(ByteView in) {
  Bytes out;
  out.reserve(in.size() + in.size() / 254 + 2);
  std::size_t code_pos = out.size();
  out.push_back(0);
  std::uint8_t code = 1;
  for (std::uint8_t b : in) {
    if (b == 0) {
      out[code_pos] = code;
      code_pos = out.size();
      out.push_back(0);
      code = 1;
      continue;
    }
    out.push_back(b);
    if (++code == 0xFF) {
      out[code_pos] = code;
      code_pos = out.size();
      out.push_back(0);
      code = 1;
    }
  }
  out[code_pos] = code;
  return out;
}

Result<Bytes> cobs_decode(ByteView in) {
  Bytes out;
  std::size_t i = 0;
  while (i < in.size()) {
    const std::uint8_t code = in[i++];
    if (code == 0) return WireError::Malformed;
    for (std::uint8_t k = 1; k < code; ++k) {
      if (i >= in.size() || in[i] == 0) return WireError::Malformed;
      out.push_back(in[i++]);
    }
    if (code != 0xFF && i < in.size()) out.push_back(0);
  }
  return out;
}

Result<GgepBlock> decode_ggep(ByteView b, std::size_t max_data) {
  if (b.empty() || b[0] != kGgepBlockMagic) return WireError::Malformed;
  GgepBlock block;
  std::size_t pos = 1;
  for (;;) {
    if (pos >= b.size()) return WireError::Malformed;
    const std::uint8_t flags = b[pos++];
    const std::size_t id_len = flags & 0x0F;
    if (id_len == 0 || (flags & 0x10)) return WireError::Malformed;
    if (pos + id_len > b.size()) return WireError::Malformed;
    GgepExtension ext;
    ext.id.assign(b.begin() + static_cast<std::ptrdiff_t>(pos), b.begin() + static_cast<std::ptrdiff_t>(pos + id_len));
    for (char c : ext.id) {
      if (c == 0) return WireError::Malformed;
    }
    pos += id_len;
    std::size_t len = 0;
    bool last_len = false;
    for (int i = 0; i < 3 && !last_len; ++i) {
      if (pos >= b.size()) return WireError::Malformed;
      const std::uint8_t l = b[pos++];
      len = (len << 6) | (l & 0x3F);
      if (l & 0x40) {
        last_len = true;
      } else if (!(l & 0x80)) {
        return WireError::Malformed;
      }
    }
    if (!last_len || pos + len > b.size()) return WireError::Malformed;
    ByteView data = b.subspan(pos, len);
    pos += len;
    ext.cobs = (flags & 0x40) != 0;
    ext.compressed = (flags & 0x20) != 0;
    Bytes decoded(data.begin(), data.end());
    if (ext.cobs) {
      auto d = cobs_decode(decoded);
      if (!d) return d.error();
      decoded = std::move(*d);
    }
    if (ext.compressed) {
      auto d = inflate_bytes(decoded, max_data);
      if (!d) return d.error();
      decoded = std::move(*d);
    }
    if (decoded.size() > max_data) return WireError::TooLarge;
    ext.data = std::move(decoded);
    block.extensions.push_back(std::move(ext));
    if (flags & 0x80) break;
  }
  block.consumed = pos;
  return block;
}

void encode_ggep(Bytes& out, const std::vector<GgepExtension>& exts) {
  out.push_back(kGgepBlockMagic);
  for (std::size_t i = 0; i < exts.size(); ++i) {
    const auto& e = exts[i];
    Bytes data = e.data;
    if (e.compressed) data = deflate_bytes(data);
    if (e.cobs) data = cobs_encode(data);
    std::uint8_t flags = static_cast<std::uint8_t>(e.id.size() & 0x0F);
    if (i + 1 == exts.size()) flags |= 0x80;
    if (e.cobs) flags |= 0x40;
    if (e.compressed) flags |= 0x20;
    out.push_back(flags);
    put_string(out, e.id);
    const std::size_t len = data.size();
    if (len < (1u << 6)) {
      out.push_back(static_cast<std::uint8_t>(0x40 | len));
    } else if (len < (1u << 12)) {
      out.push_back(static_cast<std::uint8_t>(0x80 | (len >> 6)));
      out.push_back(static_cast<std::uint8_t>(0x40 | (len & 0x3F)));
    } else {
      out.push_back(static_cast<std::uint8_t>(0x80 | ((len >> 12) & 0x3F)));
      out.push_back(static_cast<std::uint8_t>(0x80 | ((len >> 6) & 0x3F)));
      out.push_back(static_cast<std::uint8_t>(0x40 | (len & 0x3F)));
    }
    put_bytes(out, data);
  }
}

}  // namespace sv::wire::gnutella
