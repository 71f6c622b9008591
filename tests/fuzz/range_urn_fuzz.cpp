// libFuzzer target: text as a Range header (RFC 9110 §14.2), a Content-Range
// value (§14.4) and a urn:sha1 (HUGE §3, RFC 4648 base32). Properties: a
// satisfiable range lies inside the representation; a parsed Content-Range
// formats back to a value that parses equal; a parsed urn formats back to
// the canonical urn that parses to the same hash.
#include <cstdint>
#include <string_view>

#include "http/range.hpp"
#include "share/sha1.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  std::uint64_t total = 0;
  for (int i = 0; i < 8; ++i) total = (total << 8) | data[i];
  total >>= data[0] % 64;  // sizes of every magnitude, 0 included
  const std::string_view text(reinterpret_cast<const char*>(data + 8), size - 8);
  auto r = sv::http::parse_range(text, total);
  if (r.kind == sv::http::RangeRequest::Kind::Satisfiable) {
    FUZZ_CHECK(total > 0);
    FUZZ_CHECK(r.range.first <= r.range.last);
    FUZZ_CHECK(r.range.last < total);
  }
  if (auto cr = sv::http::parse_content_range(text)) {
    FUZZ_CHECK(cr->range.first <= cr->range.last);
    const std::string back = sv::http::format_content_range(cr->range, cr->total);
    std::string_view value = back;
    auto again = sv::http::parse_content_range(value);
    FUZZ_CHECK(again && again->range == cr->range && again->total == cr->total);
  }
  if (auto sha = sv::share::parse_sha1_urn(text)) {
    const std::string urn = sv::share::sha1_urn(*sha);
    FUZZ_CHECK(urn.size() == 9 + 32);
    auto again = sv::share::parse_sha1_urn(urn);
    FUZZ_CHECK(again && *again == *sha);
  }
  return 0;
}
