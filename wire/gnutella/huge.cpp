#include "wire/gnutella/huge.hpp"

#include <algorithm>

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

}  // namespace sv::wire::gnutella
