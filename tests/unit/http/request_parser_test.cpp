#include <doctest/doctest.h>

#include "http/request_parser.hpp"
#include "http/text.hpp"
#include "support/bytes.hpp"

using namespace sv;
using P = http::RequestParser;

namespace {
// From 08_push_giv_callback_download.pcap, frame 22: the GET sent on a GIV socket.
constexpr std::string_view kGet =
    "GET /get/1/hello%20gnutella.txt HTTP/1.1\r\nHost: 127.0.0.1:6350\r\n"
    "User-Agent: InteropProbe/0.1\r\nConnection: close\r\n\r\n";

P::State feed_all(P& p, std::string_view s) {
  std::size_t used = 0;
  return p.feed(wire::as_bytes(s), used);
}
}  // namespace

TEST_CASE("request_parser_reads_captured_get") {
  P p;
  REQUIRE(feed_all(p, kGet) == P::State::Complete);
  CHECK(p.request().method == "GET");
  CHECK(p.request().target == "/get/1/hello%20gnutella.txt");
  CHECK(p.request().headers.get("host") == "127.0.0.1:6350");
  CHECK_FALSE(p.request().keep_alive);
}

TEST_CASE("request_parser_every_chunking_gives_same_request") {
  for (std::size_t chunk = 1; chunk <= kGet.size(); ++chunk) {
    P p;
    P::State st = P::State::NeedMore;
    for (std::size_t i = 0; i < kGet.size(); i += chunk) {
      st = feed_all(p, kGet.substr(i, chunk));
      if (i + chunk < kGet.size()) REQUIRE(st == P::State::NeedMore);
    }
    REQUIRE(st == P::State::Complete);
    CHECK(p.request().target == "/get/1/hello%20gnutella.txt");
    CHECK(p.request().headers.get("User-Agent") == "InteropProbe/0.1");
  }
}

TEST_CASE("request_parser_truncated_prefixes_need_more") {
  for (std::size_t n = 0; n < kGet.size(); ++n) {
    P p;
    CHECK(feed_all(p, kGet.substr(0, n)) == P::State::NeedMore);
  }
}

TEST_CASE("request_parser_handles_pipelined_keep_alive_requests") {
  std::string two = "GET /get/1/a HTTP/1.1\r\nRange: bytes=0-1\r\n\r\nHEAD /get/2/b HTTP/1.1\r\n\r\n";
  P p;
  std::size_t used = 0;
  REQUIRE(p.feed(wire::as_bytes(two), used) == P::State::Complete);
  CHECK(p.request().keep_alive);
  CHECK(p.request().headers.get("Range") == "bytes=0-1");
  p.next();
  std::size_t used2 = 0;
  REQUIRE(p.feed(wire::as_bytes(std::string_view(two).substr(used)), used2) == P::State::Complete);
  CHECK(p.request().method == "HEAD");
  CHECK(p.request().target == "/get/2/b");
  CHECK(used + used2 == two.size());
}

TEST_CASE("request_parser_limits_header_size") {
  P p(1024);
  std::string line = "GET /" + std::string(1 << 20, 'a');
  CHECK(feed_all(p, line) == P::State::Error);
  CHECK(p.error_status() == 414);
  P q(1024);
  std::string hdrs = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) hdrs += "X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n";
  CHECK(feed_all(q, hdrs) == P::State::Error);
  CHECK(q.error_status() == 431);
}

TEST_CASE("request_parser_rejects_garbage") {
  P p;
  CHECK(feed_all(p, "\x01\x02\x03 nonsense\r\n\r\n") == P::State::Error);
  CHECK(p.error_status() == 400);
}

TEST_CASE("percent_decode_and_encode") {
  CHECK(http::percent_decode("hello%20gnutella.txt") == "hello gnutella.txt");
  CHECK(http::percent_decode("%2e%2E%2f") == "../");
  CHECK_FALSE(http::percent_decode("%2"));
  CHECK_FALSE(http::percent_decode("%zz"));
  CHECK_FALSE(http::percent_decode("a%00b"));
  CHECK(http::percent_encode("a b/c") == "a%20b%2Fc");
  CHECK(http::percent_decode(http::percent_encode("ü ~.-_")) == "ü ~.-_");
}
