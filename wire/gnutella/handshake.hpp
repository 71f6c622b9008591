// Gnutella connection handshakes.
//
// 0.4 (v0.4 spec §"Connection"): "GNUTELLA CONNECT/0.4\n\n" answered by
// "GNUTELLA OK\n\n".
// 0.6 (0.6 RFC draft §2.2, three-way): "GNUTELLA CONNECT/0.6\r\n" headers
// "\r\n", answered "GNUTELLA/0.6 <code> <reason>\r\n" headers "\r\n", and the
// initiator confirms with a final "GNUTELLA/0.6 200 OK\r\n" headers "\r\n".
// Headers follow RFC 822 (continuation lines start with SP/HT). Bare "\n"
// line endings are accepted (0.4 uses them; some servents mix them) and
// reported in `bare_lf` so interop checks can flag them.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"
#include "wire/common/text.hpp"

namespace sv::wire::gnutella {

inline constexpr std::string_view kConnect04 = "GNUTELLA CONNECT/0.4\n\n";
inline constexpr std::string_view kOk04 = "GNUTELLA OK\n\n";
inline constexpr std::size_t kMaxHandshakeSize = 8 * 1024;


struct Handshake {
  enum class Kind { Connect, Response };
  Kind kind = Kind::Connect;
  int major = 0, minor = 0;  // protocol version from the first line
  int status = 0;            // Response only; "GNUTELLA OK" is 200
  std::string reason;        // Response only
  Headers headers;
  bool bare_lf = false;      // some line ended in "\n" instead of "\r\n"
  std::size_t consumed = 0;  // bytes of the input this block used

  bool is_04() const { return major == 0 && minor == 4; }
};

// Decodes one handshake block from the start of `b`. NeedMore while the block
// is incomplete; Malformed as soon as the bytes cannot start a Gnutella
// handshake; TooLarge when no end is found within max_size bytes.
Result<Handshake> decode_handshake(ByteView b, std::size_t max_size = kMaxHandshakeSize);

std::string encode_connect06(const Headers& h);
std::string encode_response06(int status, std::string_view reason, const Headers& h);


}  // namespace sv::wire::gnutella
