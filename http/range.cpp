#include "http/range.hpp"

#include <charconv>

#include "wire/common/text.hpp"

namespace sv::http {

namespace {

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  s = wire::trim(s);
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

RangeRequest parse_range(std::string_view header, std::uint64_t size) {
  RangeRequest out;
  header = wire::trim(header);
  auto eq = header.find('=');
  if (eq == std::string_view::npos || !wire::iequals(wire::trim(header.substr(0, eq)), "bytes")) return out;
  auto spec = wire::trim(header.substr(eq + 1));
  if (spec.find(',') != std::string_view::npos) return out;  // several ranges: serve it all
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return out;
  auto a = wire::trim(spec.substr(0, dash));
  auto b = wire::trim(spec.substr(dash + 1));
  if (a.empty()) {
    // Suffix range: the last N bytes.
    auto n = parse_u64(b);
    if (!n) return out;
    if (*n == 0 || size == 0) {
      out.kind = RangeRequest::Kind::Unsatisfiable;
      return out;
    }
    const std::uint64_t len = *n < size ? *n : size;
    out.kind = RangeRequest::Kind::Satisfiable;
    out.range = {size - len, size - 1};
    return out;
  }
  auto first = parse_u64(a);
  if (!first) return out;
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!b.empty()) {
    auto l = parse_u64(b);
    if (!l || *l < *first) return out;  // invalid: ignore the header
    if (*l < last) last = *l;
  }
  if (*first >= size) {
    out.kind = RangeRequest::Kind::Unsatisfiable;
    return out;
  }
  out.kind = RangeRequest::Kind::Satisfiable;
  out.range = {*first, last};
  return out;
}

std::optional<ContentRange> parse_content_range(std::string_view value) {
  value = wire::trim(value);
  if (value.size() < 6 || !wire::iequals(value.substr(0, 5), "bytes")) return std::nullopt;
  value.remove_prefix(5);
  if (!value.empty() && (value.front() == '=' || value.front() == ' ')) value.remove_prefix(1);
  value = wire::trim(value);
  auto dash = value.find('-');
  auto slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return std::nullopt;
  auto a = parse_u64(value.substr(0, dash));
  auto b = parse_u64(value.substr(dash + 1, slash - dash - 1));
  auto t = parse_u64(value.substr(slash + 1));
  if (!a || !b || !t || *b < *a || *b >= *t) return std::nullopt;
  return ContentRange{{*a, *b}, *t};
}

std::string format_content_range(const ByteRange& r, std::uint64_t total) {
  return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" + std::to_string(total);
}

}  // namespace sv::http
