// UploadCore with a fake outbox: request -> response head + SendFile.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "servent/upload/upload_core.hpp"
#include "wire/common/text.hpp"

namespace fs = std::filesystem;
using namespace sv;

namespace {

struct Fixture {
  fs::path dir, outside;
  share::Library lib;
  std::unique_ptr<UploadCore> core;
  Instant now{Duration(5000)};
  std::string text;
  std::vector<action::SendFile> files;
  std::vector<action::Close> closes;

  explicit Fixture(UploadConfig cfg = {}) {
    char t1[] = "/tmp/servent-up-XXXXXX";
    char t2[] = "/tmp/servent-out-XXXXXX";
    dir = mkdtemp(t1);
    outside = mkdtemp(t2);
    std::ofstream(dir / "hello gnutella.txt") << "Hello from the servent over loopback!\n";
    std::ofstream(outside / "secret") << "secret";
    lib = share::Library({dir.string()}, "");
    lib.rescan();
    core = std::make_unique<UploadCore>(lib, cfg);
  }
  ~Fixture() {
    fs::remove_all(dir);
    fs::remove_all(outside);
  }
  void drain() {
    while (auto a = core->poll_action()) {
      if (auto* s = std::get_if<action::Send>(&*a)) text.append(s->bytes->begin(), s->bytes->end());
      if (auto* f = std::get_if<action::SendFile>(&*a)) {
        if (f->head) text.append(f->head->begin(), f->head->end());  // the response head rides with the file
        files.push_back(*f);
      }
      if (auto* c = std::get_if<action::Close>(&*a)) closes.push_back(*c);
    }
  }
  std::string request(ConnId c, std::string_view req) {
    text.clear();
    core->handle_bytes(c, wire::as_bytes(req), now);
    drain();
    return text;
  }
  int status() const { return std::stoi(text.substr(9, 3)); }
};

}  // namespace

TEST_CASE("get_by_index_and_name_streams_the_file") {
  Fixture f;
  ConnId c{1};
  f.core->handle_connected(c, f.now);
  f.request(c, "GET /get/1/hello%20gnutella.txt HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(f.status() == 200);
  CHECK(f.text.find("Content-Length: 38\r\n") != std::string::npos);
  CHECK(f.text.find("Connection: keep-alive") != std::string::npos);
  REQUIRE(f.files.size() == 1);
  CHECK(f.files[0].offset == 0);
  CHECK(f.files[0].length == 38);
  CHECK(fs::path(f.files[0].path).filename() == "hello gnutella.txt");
  CHECK(f.core->active_uploads() == 1);
  f.core->handle_send_done(c, true, f.now);
  f.drain();
  CHECK(f.core->active_uploads() == 0);
  CHECK(f.closes.empty());  // keep-alive
  // A second request on the same connection, with a Range.
  f.request(c, "GET /get/1/hello%20gnutella.txt HTTP/1.1\r\nRange: bytes=6-9\r\n\r\n");
  CHECK(f.status() == 206);
  CHECK(f.text.find("Content-Range: bytes 6-9/38\r\n") != std::string::npos);
  CHECK(f.files.back().offset == 6);
  CHECK(f.files.back().length == 4);
}

TEST_CASE("head_sends_headers_only_and_http10_closes") {
  Fixture f;
  ConnId c{1};
  f.core->handle_connected(c, f.now);
  f.request(c, "HEAD /get/1/hello%20gnutella.txt HTTP/1.0\r\n\r\n");
  CHECK(f.status() == 200);
  CHECK(f.files.empty());
  CHECK(f.closes.size() == 1);
}

TEST_CASE("unsatisfiable_range_is_416") {
  Fixture f;
  ConnId c{1};
  f.core->handle_connected(c, f.now);
  f.request(c, "GET /get/1/hello%20gnutella.txt HTTP/1.1\r\nRange: bytes=100-\r\n\r\n");
  CHECK(f.status() == 416);
  CHECK(f.text.find("Content-Range: bytes */38") != std::string::npos);
  CHECK(f.files.empty());
}

TEST_CASE("traversal_and_mismatched_names_never_reach_a_file") {
  const char* targets[] = {
      "/get/1/../../etc/passwd",
      "/get/1/..%2f..%2fetc%2fpasswd",
      "/get/1/%2e%2e",
      "/get/1/%2E%2E%2Fsecret",
      "/etc/passwd",
      "/get/1//etc/passwd",
      "/get/1/hello%20gnutella.txt%00.jpg",
      "/get/2/hello%20gnutella.txt",
      "/get/1/other.txt",
      "/get/-1/x",
      "/get/99999999999999999999/x",
      "http://evil/get/1/hello%20gnutella.txt",
      "/get/1/hello gnutella.txt?x=1",
      "/../../../etc/passwd",
  };
  for (const char* t : targets) {
    CAPTURE(t);
    Fixture f;
    ConnId c{1};
    f.core->handle_connected(c, f.now);
    f.request(c, std::string("GET ") + t + " HTTP/1.1\r\n\r\n");
    const int st = f.text.size() >= 12 ? f.status() : 0;
    CHECK((st == 400 || st == 404));
    CHECK(f.files.empty());
  }
}

TEST_CASE("busy_slots_answer_503_with_retry_after") {
  UploadConfig cfg;
  cfg.slots = 1;
  Fixture f(cfg);
  ConnId a{1}, b{2};
  f.core->handle_connected(a, f.now);
  f.core->handle_connected(b, f.now);
  f.request(a, "GET /get/1/hello%20gnutella.txt HTTP/1.1\r\n\r\n");
  CHECK(f.status() == 200);
  f.request(b, "GET /get/1/hello%20gnutella.txt HTTP/1.1\r\n\r\n");
  CHECK(f.status() == 503);
  CHECK(f.text.find("Retry-After: 30") != std::string::npos);
  CHECK(f.core->stat(UploadCore::kStatus503) == 1);
  f.core->handle_closed(a, f.now);
  CHECK(f.core->active_uploads() == 0);
}

TEST_CASE("half_sent_request_times_out") {
  Fixture f;
  ConnId c{1};
  f.core->handle_connected(c, f.now);
  f.request(c, "GET /get/1/hello");
  REQUIRE(f.core->poll_timeout());
  CHECK(*f.core->poll_timeout() <= f.now + 10s);
  f.now = *f.core->poll_timeout();
  f.core->handle_timeout(f.now);
  f.drain();
  REQUIRE(f.closes.size() == 1);
  CHECK(f.closes[0].reason == CloseReason::HttpHeaderTimeout);
  CHECK(f.core->stat(UploadCore::kHeaderTimeouts) == 1);
}

TEST_CASE("megabyte_request_line_is_refused") {
  Fixture f;
  ConnId c{1};
  f.core->handle_connected(c, f.now);
  f.request(c, "GET /" + std::string(1 << 20, 'a'));
  CHECK(f.status() == 414);
  CHECK(f.closes.size() == 1);
}

TEST_CASE("other_methods_get_501") {
  Fixture f;
  ConnId c{1};
  f.core->handle_connected(c, f.now);
  f.request(c, "POST /get/1/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(f.status() == 501);
}

TEST_CASE("uri_res_n2r_serves_by_urn_with_content_urn_header") {
  Fixture f;
  f.lib.hash_all_now();
  const std::string urn = share::sha1_urn(share::sha1_of("Hello from the servent over loopback!\n"));
  ConnId c{1};
  f.core->handle_connected(c, f.now);
  f.request(c, "GET /uri-res/N2R?" + urn + " HTTP/1.1\r\nRange: bytes=0-4\r\n\r\n");
  CHECK(f.status() == 206);
  CHECK(f.text.find("X-Gnutella-Content-URN: " + urn + "\r\n") != std::string::npos);
  REQUIRE(f.files.size() == 1);
  CHECK(f.files[0].length == 5);
  f.core->handle_send_done(c, true, f.now);
  f.request(c, "GET /uri-res/N2R?urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5 HTTP/1.1\r\n\r\n");
  CHECK(f.status() == 404);
  f.request(c, "GET /uri-res/N2R?urn:sha1:nonsense HTTP/1.1\r\n\r\n");
  CHECK(f.status() == 400);
  // /get/ answers carry the urn too.
  f.request(c, "HEAD /get/1/hello%20gnutella.txt HTTP/1.1\r\n\r\n");
  CHECK(f.text.find("X-Gnutella-Content-URN: " + urn) != std::string::npos);
}

TEST_CASE("push_connects_back_with_giv_then_serves_the_get") {
  Fixture f;
  wire::gnutella::ServentId ours;
  ours.bytes.fill(0x11);
  f.core->handle_push(1, Endpoint{0x7f000005, 6399}, ours, f.now);
  std::optional<action::Connect> connect;
  while (auto a = f.core->poll_action()) {
    if (auto* c = std::get_if<action::Connect>(&*a)) connect = *c;
  }
  REQUIRE(connect);
  CHECK(connect->to == Endpoint{0x7f000005, 6399});
  // The same Push again while the first is pending: ignored.
  f.core->handle_push(1, Endpoint{0x7f000005, 6399}, ours, f.now);
  CHECK(f.core->stat(UploadCore::kPushDuplicate) == 1);
  f.core->handle_connected(connect->conn, f.now);
  f.drain();
  CHECK(f.text == "GIV 1:" + ours.hex() + "/hello gnutella.txt\n\n");
  f.request(connect->conn, "GET /get/1/hello%20gnutella.txt HTTP/1.1\r\n\r\n");
  CHECK(f.status() == 200);
  CHECK(f.files.size() == 1);
}

TEST_CASE("push_for_a_file_we_do_not_share_or_a_bad_address_is_dropped") {
  Fixture f;
  wire::gnutella::ServentId ours;
  f.core->handle_push(99, Endpoint{0x7f000005, 6399}, ours, f.now);
  f.core->handle_push(1, Endpoint{0, 6399}, ours, f.now);
  f.core->handle_push(1, Endpoint{0xE0000001, 6399}, ours, f.now);  // multicast
  f.core->handle_push(1, Endpoint{0x7f000005, 0}, ours, f.now);
  CHECK_FALSE(f.core->poll_action());
  CHECK(f.core->stat(UploadCore::kPushUnknownFile) == 1);
  CHECK(f.core->stat(UploadCore::kPushBadAddress) == 3);
}

TEST_CASE("x_alt_locations_from_one_downloader_are_offered_to_the_next") {
  Fixture f;
  f.lib.hash_all_now();
  ConnId first{1}, second{2};
  f.core->handle_connected(first, f.now);
  f.core->set_remote(first, Endpoint{0x0a000001, 40000});
  f.request(first, "HEAD /get/1/hello%20gnutella.txt HTTP/1.1\r\nX-Alt: 10.0.0.2:6346, 10.0.0.3, bogus, 0.0.0.0:1\r\n\r\n");
  CHECK(f.text.find("X-Alt") == std::string::npos);  // nothing known before
  CHECK(f.core->stat(UploadCore::kAltLocsLearned) == 2);
  f.core->handle_connected(second, f.now);
  f.core->set_remote(second, Endpoint{0x0a000002, 50000});
  f.request(second, "HEAD /get/1/hello%20gnutella.txt HTTP/1.1\r\n\r\n");
  // The second downloader is 10.0.0.2 itself: it is not told about itself.
  CHECK(f.text.find("X-Alt: 10.0.0.3:6346\r\n") != std::string::npos);
}
