// libFuzzer target: raw bytes into one connection of a GnutellaCore (first
// input byte even) or of an UploadCore (odd), next to a quiet second peer.
// Invariants over every action: nothing is sent on a connection after it was
// closed or to one that never existed; descriptors sent are whole and within
// the payload bound; an upload only ever streams a byte range inside a file
// of the shared folder, and every HTTP answer is a status line.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "servent/gnutella/gnutella_core.hpp"
#include "servent/upload/upload_core.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "wire/gnutella/framer.hpp"

namespace fs = std::filesystem;
using namespace sv;

namespace {

struct Share {
  std::string root;
  share::Library library;
  Share() {
    char t[] = "/tmp/servent-fuzz-XXXXXX";
    const fs::path dir = mkdtemp(t);
    fs::create_directories(dir / "shared" / "sub");
    std::ofstream(dir / "shared" / "song one.mp3") << std::string(5000, 'a');
    std::ofstream(dir / "shared" / "sub" / "two.txt") << "two";
    std::ofstream(dir / "secret.txt") << "not shared";
    fs::create_symlink(dir / "secret.txt", dir / "shared" / "link.txt");
    root = fs::canonical(dir / "shared").string();
    library = share::Library({root}, "");
    library.rescan();
    for (const auto& job : library.take_hash_jobs()) {
      if (auto h = share::sha1_of_file(job.path)) library.apply_hash(job, *h);
    }
  }
};

Share& shared() {
  static Share s;
  return s;
}

const ConnId kFuzzed{1}, kQuiet{2};

void check_gnutella(const std::uint8_t* data, std::size_t size) {
  GnutellaConfig cfg;
  cfg.max_payload = 4096;
  GnutellaCore core(shared().library, cfg, 42);
  Instant now{Duration(1'000'000)};
  std::set<std::uint64_t> open = {kFuzzed.value, kQuiet.value}, closed;
  core.handle_connected(kQuiet, Endpoint{0x7f000002, 6346}, Direction::Inbound, now);
  const std::string quiet = "GNUTELLA CONNECT/0.6\r\nUser-Agent: quiet\r\nX-Ultrapeer: False\r\n\r\n";
  core.handle_bytes(kQuiet, wire::as_bytes(quiet), now);
  core.handle_connected(kFuzzed, Endpoint{0x7f000001, 40000}, Direction::Inbound, now);
  std::uint64_t sent = 0;
  auto drain = [&] {
    while (auto a = core.poll_action()) {
      if (auto* s = std::get_if<action::Send>(&*a)) {
        FUZZ_CHECK(open.count(s->conn.value) || (s->conn.value & kCoreConnIdBit));
        FUZZ_CHECK(!closed.count(s->conn.value));
        sent += s->bytes->size();
      } else if (auto* b = std::get_if<action::Broadcast>(&*a)) {
        for (auto c : b->conns) FUZZ_CHECK(open.count(c.value) && !closed.count(c.value));
        // A relayed descriptor is one whole descriptor within the bound.
        auto h = wire::gnutella::decode_header(*b->bytes);
        FUZZ_CHECK(h && h->payload_length <= cfg.max_payload &&
                   b->bytes->size() == wire::gnutella::kHeaderSize + h->payload_length);
        FUZZ_CHECK(h->ttl + h->hops <= cfg.max_ttl);
        sent += b->bytes->size() * b->conns.size();
      } else if (auto* c = std::get_if<action::Close>(&*a)) {
        closed.insert(c->conn.value);
      }
    }
  };
  drain();
  std::size_t pos = 0;
  while (pos < size) {
    const std::size_t n = std::min<std::size_t>(size - pos, 1 + data[pos] % 200);
    ++pos;
    core.handle_bytes(kFuzzed, {data + pos, std::min(n, size - pos)}, now);
    pos += n;
    drain();
    now = now + Duration(100);
    core.handle_timeout(now);
    drain();
  }
  // Output stays proportional to input: no amplification beyond a bound.
  FUZZ_CHECK(sent <= 64 * 1024 + 200 * size);
  if (closed.count(kFuzzed.value)) core.handle_closed(kFuzzed, CloseReason::Normal, now);
  drain();
}

void check_upload(const std::uint8_t* data, std::size_t size) {
  UploadConfig cfg;
  cfg.max_header_bytes = 2048;
  UploadCore core(shared().library, cfg);
  Instant now{Duration(1'000'000)};
  core.handle_connected(kFuzzed, now);
  bool closed = false;
  auto drain = [&] {
    while (auto a = core.poll_action()) {
      if (auto* s = std::get_if<action::Send>(&*a)) {
        FUZZ_CHECK(!closed && s->conn == kFuzzed);
        const std::string_view head(reinterpret_cast<const char*>(s->bytes->data()), s->bytes->size());
        // An HTTP status line, or a Napster data-port answer ("GET" then
        // nick, name, offset: the file's size in digits, or a refusal).
        const bool napster = head == "INVALID REQUEST" ||
                             (!head.empty() && head.find_first_not_of("0123456789") == std::string_view::npos);
        FUZZ_CHECK(head.starts_with("HTTP/1.1 ") || head.starts_with("HTTP/1.0 ") || napster);
      } else if (auto* f = std::get_if<action::SendFile>(&*a)) {
        FUZZ_CHECK(!closed && f->conn == kFuzzed);
        if (f->head) {
          const std::string_view head(reinterpret_cast<const char*>(f->head->data()), f->head->size());
          FUZZ_CHECK(head.starts_with("HTTP/1.1 ") || head.starts_with("HTTP/1.0 "));
        }
        // Only files of the shared folder, only bytes inside them.
        const std::string canon = fs::canonical(f->path).string();
        FUZZ_CHECK(canon.rfind(shared().root + "/", 0) == 0);
        FUZZ_CHECK(f->offset + f->length <= fs::file_size(canon));
        core.handle_send_done(f->conn, true, now);
      } else if (auto* c = std::get_if<action::Close>(&*a)) {
        FUZZ_CHECK(c->conn == kFuzzed);
        closed = true;
      }
    }
  };
  std::size_t pos = 0;
  while (pos < size && !closed) {
    const std::size_t n = std::min<std::size_t>(size - pos, 1 + data[pos] % 200);
    ++pos;
    core.handle_bytes(kFuzzed, {data + pos, std::min(n, size - pos)}, now);
    pos += n;
    drain();
  }
  now = now + Duration(60'000);
  core.handle_timeout(now);
  drain();
  core.handle_closed(kFuzzed, now);
  drain();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  if (data[0] & 1) {
    check_upload(data + 1, size - 1);
  } else {
    check_gnutella(data + 1, size - 1);
  }
  return 0;
}
