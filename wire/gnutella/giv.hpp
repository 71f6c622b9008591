// The GIV line a firewalled servent sends after connecting back in answer to
// a Push (0.4 spec §"Firewalled Servents"):
//   GIV <FileIndex>:<ServentID as 32 hex digits>/<FileName>\n\n
// gtk-gnutella sends the literal name "file" and lowercase hex; both cases are
// accepted when decoding.
#pragma once

#include <string>

#include "wire/gnutella/descriptors.hpp"

namespace sv::wire::gnutella {

struct Giv {
  std::uint32_t file_index = 0;
  ServentId servent_id;
  std::string name;
  std::size_t consumed = 0;
  bool operator==(const Giv& o) const {
    return file_index == o.file_index && servent_id == o.servent_id && name == o.name;
  }
};

inline constexpr std::size_t kMaxGivSize = 4096;
Result<Giv> decode_giv(ByteView b, std::size_t max_size = kMaxGivSize);
std::string encode_giv(const Giv& g);

}  // namespace sv::wire::gnutella
