#include "wire/gnutella/huge.hpp"

#include <algorithm>

#include "wire/common/base32.hpp"
#include "wire/gnutella/ggep.hpp"

namespace sv::wire::gnutella {

Extensions decode_extensions(ByteView block) {
  Extensions e;
  while (!block.empty() && block.back() == 0) block = block.first(block.size() - 1);
  std::size_t pos = 0;
  while (pos < block.size()) {
    if (block[pos] == kGgepMagic) {
      e.ggep = Bytes(block.begin() + static_cast<std::ptrdiff_t>(pos), block.end());
      break;
    }
    auto end = std::find(block.begin() + static_cast<std::ptrdiff_t>(pos), block.end(), kExtensionSeparator);
    ByteView item(block.data() + pos, static_cast<std::size_t>(end - block.begin()) - pos);
    if (!item.empty()) {
      std::string_view text = as_chars(item);
      if (text.size() >= 4 && (text.substr(0, 4) == "urn:" || text.substr(0, 4) == "URN:")) {
        e.urns.emplace_back(text);
      } else {
        e.other.emplace_back(item.begin(), item.end());
      }
    }
    pos = static_cast<std::size_t>(end - block.begin()) + 1;
  }
  return e;
}

Bytes encode_extensions(const Extensions& e) {
  Bytes out;
  auto sep = [&] {
    if (!out.empty()) out.push_back(kExtensionSeparator);
  };
  for (const auto& u : e.urns) {
    sep();
    put_string(out, u);
  }
  for (const auto& o : e.other) {
    sep();
    put_bytes(out, o);
  }
  if (e.ggep) {
    sep();
    put_bytes(out, *e.ggep);
  }
  return out;
}

std::vector<std::string> all_urns(const Extensions& e) {
  std::vector<std::string> out = e.urns;
  if (!e.ggep) return out;
  auto block = decode_ggep(*e.ggep);
  if (!block) return out;
  if (const auto* h = block->find("H")) {
    constexpr std::uint8_t kSha1 = 0x01, kBitprint = 0x02;
    const auto& d = h->data;
    if ((d.size() == 1 + 20 && d[0] == kSha1) || (d.size() == 1 + 20 + 24 && d[0] == kBitprint)) {
      out.push_back("urn:sha1:" + base32_encode(d.data() + 1, 20));
    }
  }
  return out;
}

Bytes encode_lf(std::uint64_t size) {
  Bytes out;
  do {
    out.push_back(static_cast<std::uint8_t>(size & 0xff));
    size >>= 8;
  } while (size != 0);
  return out;
}

std::optional<std::uint64_t> decode_lf(ByteView data) {
  if (data.empty() || data.size() > 8) return std::nullopt;
  std::uint64_t v = 0;
  for (std::size_t i = data.size(); i-- > 0;) v = (v << 8) | data[i];
  return v;
}

void append_lf(Bytes& extensions, std::uint64_t size) {
  GgepExtension lf{"LF", encode_lf(size), false, false};
  lf.cobs = std::find(lf.data.begin(), lf.data.end(), 0) != lf.data.end();
  if (!extensions.empty()) extensions.push_back(kExtensionSeparator);
  encode_ggep(extensions, {lf});
}

std::uint64_t result_size(std::uint32_t size32, ByteView extensions) {
  const auto ext = decode_extensions(extensions);
  if (!ext.ggep) return size32;
  auto block = decode_ggep(*ext.ggep);
  if (!block) return size32;
  if (const auto* lf = block->find("LF")) {
    if (auto v = decode_lf(lf->data)) return *v;
  }
  return size32;
}

}  // namespace sv::wire::gnutella
