// libFuzzer target: raw bytes into one connection of a NapsterServer, next to
// a well-behaved user who shares a file and searches for it at the end.
// Properties: nothing is sent to a connection that was closed or never
// existed; every frame sent is whole and within the payload cap of real
// clients (64 KiB); the quiet user's search still finds its own file.
#include <cstdint>
#include <set>
#include <string>

#include "servent/napster/napster_server.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace sv;
namespace nap = sv::wire::napster;

namespace {

const ConnId kFuzzed{1}, kQuiet{2};

struct Outbox {
  std::set<std::uint64_t> closed;
  std::string quiet_frames;  // types seen by the quiet user, as text
  std::size_t quiet_results = 0;
};

// Executes like the driver: a Close is followed at once by handle_closed.
void drain(NapsterServer& s, Outbox& box, Instant now) {
  while (auto a = s.poll_action()) {
    auto check_bytes = [&](ConnId c, const Buffer& b) {
      FUZZ_CHECK(c == kFuzzed || c == kQuiet);
      FUZZ_CHECK(!box.closed.count(c.value));
      nap::Framer f(65535);
      f.feed(b);
      std::size_t n = 0;
      while (auto fr = f.next()) {
        ++n;
        if (c == kQuiet && fr->type == nap::kSearchResult) ++box.quiet_results;
      }
      FUZZ_CHECK(n > 0 && f.buffered() == 0);
    };
    if (auto* send = std::get_if<action::Send>(&*a)) {
      check_bytes(send->conn, *send->bytes);
    } else if (auto* b = std::get_if<action::Broadcast>(&*a)) {
      for (ConnId c : b->conns) check_bytes(c, *b->bytes);
    } else if (auto* c = std::get_if<action::Close>(&*a)) {
      if (box.closed.insert(c->conn.value).second) s.handle_closed(c->conn, c->reason, now);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  NapsterServerConfig cfg;
  cfg.max_shares_per_user = 50;
  NapsterServer s(cfg);
  Outbox box;
  Instant now{Duration(1000)};
  s.handle_connected(kQuiet, Endpoint{0x7f000002, 5000}, Direction::Inbound, now);
  s.handle_bytes(kQuiet, nap::encode_frame(nap::kLogin, R"(quiet pw 6699 "q" 4)"), now);
  s.handle_bytes(kQuiet, nap::encode_frame(nap::kShare, R"("C:\q\zebra quiet.mp3" 0 100 128 44100 5)"), now);
  s.handle_connected(kFuzzed, Endpoint{0x7f000001, 5001}, Direction::Inbound, now);
  drain(s, box, now);
  // The fuzzed bytes, in a few pieces, with time moving on.
  const std::size_t third = size / 3 + 1;
  for (std::size_t i = 0; i < size; i += third) {
    if (box.closed.count(kFuzzed.value)) break;
    s.handle_bytes(kFuzzed, sv::wire::ByteView(data + i, std::min(third, size - i)), now);
    drain(s, box, now);
    now = now + 31s;
    s.handle_timeout(now);
    drain(s, box, now);
  }
  if (!box.closed.count(kFuzzed.value)) s.handle_closed(kFuzzed, CloseReason::PeerClosed, now);
  drain(s, box, now);
  const std::size_t before = box.quiet_results;
  s.handle_bytes(kQuiet, nap::encode_frame(nap::kSearch, R"(FILENAME CONTAINS "zebra quiet" MAX_RESULTS 100)"), now);
  drain(s, box, now);
  FUZZ_CHECK(box.quiet_results >= before + 1);
  FUZZ_CHECK(!box.closed.count(kQuiet.value));
  return 0;
}
