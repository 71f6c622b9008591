// libFuzzer target: bytes as HTTP requests (what uploads parse) and as HTTP
// responses (what downloads parse), whole and in pieces. Properties: the same
// requests come out however the bytes are cut, a parser never consumes more
// than it was given, header bytes stay under the bound it was made with.
#include <cstdint>
#include <string>
#include <vector>

#include "http/request_parser.hpp"
#include "http/response_parser.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using sv::wire::ByteView;

namespace {

template <typename Parser, typename Describe>
std::vector<std::string> run(ByteView in, std::size_t piece, std::size_t max_header, Describe describe) {
  Parser p(max_header);
  std::vector<std::string> out;
  std::size_t pos = 0;
  ByteView pending;
  while (pos < in.size() || !pending.empty()) {
    if (pending.empty()) {
      pending = in.subspan(pos, std::min(piece, in.size() - pos));
      pos += pending.size();
    }
    std::size_t used = 0;
    auto st = p.feed(pending, used);
    FUZZ_CHECK(used <= pending.size());
    pending = pending.subspan(used);
    if (st == Parser::State::Error) {
      out.push_back("error");
      return out;
    }
    if (st == Parser::State::Complete) {
      out.push_back(describe(p));
      p.next();
      if (out.size() > 1000) return out;
      continue;
    }
    FUZZ_CHECK(pending.empty());  // NeedMore takes everything it was given
  }
  return out;
}

std::string describe_request(const sv::http::RequestParser& p) {
  const auto& r = p.request();
  std::string s = r.method + " " + r.target + " " + std::to_string(r.version_major) + std::to_string(r.keep_alive);
  std::size_t bytes = 0;
  for (const auto& [k, v] : r.headers.all()) {
    s += "|" + k + ":" + v;
    bytes += k.size() + v.size();
  }
  FUZZ_CHECK(bytes + r.target.size() <= 2048);
  return s;
}

std::string describe_response(const sv::http::ResponseParser& p) {
  const auto& r = p.response();
  FUZZ_CHECK(r.status >= 100 && r.status <= 999);
  std::string s = std::to_string(r.status) + " " + r.reason + (r.content_length ? std::to_string(*r.content_length) : "-");
  for (const auto& [k, v] : r.headers.all()) s += "|" + k + ":" + v;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t piece = 1 + data[0] % 97;
  ByteView in(data + 1, size - 1);
  auto a = run<sv::http::RequestParser>(in, in.size() + 1, 2048, describe_request);
  auto b = run<sv::http::RequestParser>(in, piece, 2048, describe_request);
  FUZZ_CHECK(a == b);
  auto c = run<sv::http::ResponseParser>(in, in.size() + 1, 2048, describe_response);
  auto d = run<sv::http::ResponseParser>(in, piece, 2048, describe_response);
  FUZZ_CHECK(c == d);
  return 0;
}
