// libFuzzer target: datagrams into a ChordCore that is a member of a small
// ring (a successor, a predecessor, stored keys, a lookup in flight). The
// input is cut into datagrams at each 0xFF 0x00 pair; each comes from one of
// four addresses (its first byte picks), every second datagram with the time
// moved on. Invariants: every action is a SendTo of a datagram that decodes,
// within the size cap, for the Chord overlay; the successor list never holds
// the node itself nor exceeds r; stored keys stay bounded by max_keys.
#include <cstdint>

#include "servent/dht/chord_core.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace sv;
using namespace sv::dht;
namespace dw = sv::wire::dht;

namespace {

dw::NodeRef ref(std::uint8_t b, std::uint16_t port) {
  dw::NodeRef n;
  n.id.fill(b);
  n.ip = 0x7f000001;
  n.port = port;
  return n;
}

void drain(ChordCore& c, const ChordConfig& cfg) {
  while (auto a = c.poll_action()) {
    const auto* s = std::get_if<action::SendTo>(&*a);
    FUZZ_CHECK(s != nullptr);
    FUZZ_CHECK(s->bytes->size() <= dw::kMaxDatagram);
    auto m = dw::decode_message(*s->bytes);
    FUZZ_CHECK(m.ok());
    FUZZ_CHECK(m->overlay == dw::Overlay::Chord);
  }
  FUZZ_CHECK(c.successors().size() <= cfg.successors);
  for (const auto& n : c.successors()) FUZZ_CHECK(!(n.id == c.self().id));
  FUZZ_CHECK(c.keys() <= cfg.max_keys);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ChordConfig cfg;
  cfg.bits = 16;
  cfg.successors = 4;
  cfg.max_keys = 64;
  const Endpoint self{0x7f000001, 4000};
  ChordCore c(self, SocketId{1}, cfg, 7, NodeId{});
  Instant now{std::chrono::seconds(100)};
  // Join through a member that answers: its successor list is ours.
  c.join(Endpoint{0x7f000001, 4001}, now);
  dw::Message find;
  while (auto a = c.poll_action()) {
    if (const auto* s = std::get_if<action::SendTo>(&*a)) find = *dw::decode_message(*s->bytes);
  }
  dw::Message found = dw::response_to(find, ref(0x20, 4001));
  found.owner = true;
  found.nodes = {ref(0x20, 4001), ref(0x40, 4002), ref(0x60, 4003)};
  c.handle_datagram(SocketId{1}, Endpoint{0x7f000001, 4001}, dw::encode_message(found), now);
  c.put(NodeId{}, wire::Bytes{'v'}, now);
  c.lookup(ref(0x50, 0).id, now);
  drain(c, cfg);
  const Endpoint from[4] = {{0x7f000001, 4001}, {0x7f000001, 4002}, {0x7f000001, 4003}, {0x7f000002, 9999}};
  std::size_t start = 0, n = 0;
  for (std::size_t i = 0; i <= size; ++i) {
    const bool cut = i == size || (i + 1 < size && data[i] == 0xFF && data[i + 1] == 0x00);
    if (!cut) continue;
    if (i > start) {
      const wire::ByteView d(data + start, i - start);
      c.handle_datagram(SocketId{1}, from[data[start] % 4], d.subspan(1), now);
      drain(c, cfg);
    }
    if (++n % 2 == 0) {
      now = now + std::chrono::milliseconds(700);
      c.handle_timeout(now);
      drain(c, cfg);
    }
    start = i + 2;
  }
  return 0;
}
