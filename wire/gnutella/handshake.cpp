#include "wire/gnutella/handshake.hpp"

#include <algorithm>
#include <charconv>

namespace sv::wire::gnutella {

namespace {

constexpr std::string_view kMagic = "GNUTELLA";

// Splits "GNUTELLA CONNECT/0.6" / "GNUTELLA/0.6 200 OK" / "GNUTELLA OK".
bool parse_first_line(std::string_view line, Handshake& hs) {
  auto parse_version = [&](std::string_view v) {
    auto dot = v.find('.');
    if (dot == std::string_view::npos) return false;
    auto r1 = std::from_chars(v.data(), v.data() + dot, hs.major);
    auto r2 = std::from_chars(v.data() + dot + 1, v.data() + v.size(), hs.minor);
    return r1.ec == std::errc{} && r1.ptr == v.data() + dot && r2.ec == std::errc{} &&
           r2.ptr == v.data() + v.size();
  };
  if (line.starts_with("GNUTELLA CONNECT/")) {
    hs.kind = Handshake::Kind::Connect;
    return parse_version(trim(line.substr(17)));
  }
  if (line == "GNUTELLA OK") {
    hs.kind = Handshake::Kind::Response;
    hs.major = 0;
    hs.minor = 4;
    hs.status = 200;
    hs.reason = "OK";
    return true;
  }
  if (line.starts_with("GNUTELLA/")) {
    hs.kind = Handshake::Kind::Response;
    auto rest = line.substr(9);
    auto sp = rest.find(' ');
    if (sp == std::string_view::npos || !parse_version(rest.substr(0, sp))) return false;
    rest = rest.substr(sp + 1);
    auto sp2 = rest.find(' ');
    auto code = rest.substr(0, sp2);
    auto r = std::from_chars(code.data(), code.data() + code.size(), hs.status);
    // Three digits, and a status class HTTP knows (0.6 draft §2.2: "the status codes are those of HTTP").
    if (r.ec != std::errc{} || r.ptr != code.data() + code.size() || code.size() != 3 || hs.status < 100) return false;
    hs.reason = sp2 == std::string_view::npos ? std::string() : std::string(trim(rest.substr(sp2 + 1)));
    return true;
  }
  return false;
}

}  // namespace

Result<Handshake> decode_handshake(ByteView b, std::size_t max_size) {
  // Reject garbage as early as possible: the first bytes must be "GNUTELLA".
  const std::size_t m = std::min(b.size(), kMagic.size());
  if (as_chars(b.first(m)) != kMagic.substr(0, m)) return WireError::Malformed;

  // Find the empty line that ends the block: "\n\n" or "\n\r\n".
  const std::string_view s = as_chars(b.first(std::min(b.size(), max_size)));
  std::size_t end = std::string_view::npos;
  for (std::size_t i = s.find('\n'); i != std::string_view::npos; i = s.find('\n', i + 1)) {
    if (i + 1 < s.size() && s[i + 1] == '\n') {
      end = i + 2;
      break;
    }
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') {
      end = i + 3;
      break;
    }
  }
  if (end == std::string_view::npos) {
    return b.size() >= max_size ? WireError::TooLarge : WireError::NeedMore;
  }

  Handshake hs;
  hs.consumed = end;
  std::string_view block = s.substr(0, end);
  bool first = true;
  std::size_t pos = 0;
  while (pos < block.size()) {
    std::size_t nl = block.find('\n', pos);
    std::string_view line = block.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line.back() != '\r') {
      hs.bare_lf = true;
    } else {
      line.remove_suffix(1);
    }
    if (line.empty()) break;  // end of block
    // NUL, and a CR that does not end the line (RFC 9112 §2.2: a bare CR
    // is to be rejected), would make the headers mean different things to
    // different readers.
    for (char c : line) {
      if (c == '\0' || c == '\r') return WireError::Malformed;
    }
    if (first) {
      if (!parse_first_line(line, hs)) return WireError::Malformed;
      first = false;
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      // Continuation line (RFC 822 folding): append to the previous header.
      if (!hs.headers.append_to_last(trim(line))) return WireError::Malformed;
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return WireError::Malformed;
    hs.headers.add(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  if (first) return WireError::Malformed;
  return hs;
}

std::string encode_connect06(const Headers& h) {
  std::string out = "GNUTELLA CONNECT/0.6\r\n";
  h.write_to(out);
  return out;
}

std::string encode_response06(int status, std::string_view reason, const Headers& h) {
  std::string out = "GNUTELLA/0.6 " + std::to_string(status) + " ";
  out += reason;
  out += "\r\n";
  h.write_to(out);
  return out;
}

}  // namespace sv::wire::gnutella
