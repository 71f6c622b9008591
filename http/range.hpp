// Byte ranges (RFC 7233 §2.1, §4.2) as Gnutella servents use them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sv::http {

struct ByteRange {
  std::uint64_t first = 0;  // inclusive
  std::uint64_t last = 0;   // inclusive
  std::uint64_t length() const { return last - first + 1; }
  bool operator==(const ByteRange&) const = default;
};

// What a Range request header means for a representation of `size` bytes.
struct RangeRequest {
  enum class Kind {
    None,           // no header, syntactically invalid, or several ranges: send 200 with all
    Satisfiable,    // send 206 with `range`
    Unsatisfiable,  // send 416 with Content-Range: bytes */size
  };
  Kind kind = Kind::None;
  ByteRange range;
};

// `header` is the Range header value (without the name), e.g. "bytes=0-99",
// "bytes=100-", "bytes=-500". Overflowing numbers make the header invalid.
RangeRequest parse_range(std::string_view header, std::uint64_t size);

// "bytes a-b/total"; also Shareaza's "bytes=a-b/total".
struct ContentRange {
  ByteRange range;
  std::uint64_t total = 0;
};
std::optional<ContentRange> parse_content_range(std::string_view value);
std::string format_content_range(const ByteRange& r, std::uint64_t total);

}  // namespace sv::http
