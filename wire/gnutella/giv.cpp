#include "wire/gnutella/giv.hpp"

#include <charconv>

namespace sv::wire::gnutella {

Result<Giv> decode_giv(ByteView b, std::size_t max_size) {
  constexpr std::string_view kPrefix = "GIV ";
  const std::size_t m = std::min(b.size(), kPrefix.size());
  if (as_chars(b.first(m)) != kPrefix.substr(0, m)) return WireError::Malformed;
  std::string_view s = as_chars(b.first(std::min(b.size(), max_size)));
  // The line ends at "\n\n" (also tolerate "\r\n\r\n").
  std::size_t end = std::string_view::npos, line_end = 0;
  if (auto i = s.find("\n\n"); i != std::string_view::npos) {
    end = i + 2;
    line_end = i;
  }
  if (auto i = s.find("\r\n\r\n"); i != std::string_view::npos && (end == std::string_view::npos || i + 4 < end)) {
    end = i + 4;
    line_end = i;
  }
  if (end == std::string_view::npos) return b.size() >= max_size ? WireError::TooLarge : WireError::NeedMore;
  std::string_view line = s.substr(kPrefix.size(), line_end - kPrefix.size());
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // One line: a CR, LF or NUL inside would make the end of the line ambiguous.
  if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) return WireError::Malformed;
  Giv g;
  auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return WireError::Malformed;
  auto r = std::from_chars(line.data(), line.data() + colon, g.file_index);
  if (r.ec != std::errc{} || r.ptr != line.data() + colon) return WireError::Malformed;
  auto rest = line.substr(colon + 1);
  if (rest.size() < 33 || rest[32] != '/') return WireError::Malformed;
  auto id = ServentId::from_hex(rest.substr(0, 32));
  if (!id) return WireError::Malformed;
  g.servent_id = *id;
  g.name = std::string(rest.substr(33));
  g.consumed = end;
  return g;
}

std::string encode_giv(const Giv& g) {
  // The name is informative (the GET that follows names the file): line
  // breaks and NULs, which a file name may hold, become '_'.
  std::string name = g.name;
  for (char& c : name) {
    if (c == '\r' || c == '\n' || c == '\0') c = '_';
  }
  return "GIV " + std::to_string(g.file_index) + ":" + g.servent_id.hex() + "/" + name + "\n\n";
}

}  // namespace sv::wire::gnutella
