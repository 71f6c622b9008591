// libFuzzer target: datagrams into a KelipsCore that is a member of a small
// overlay (two groups: members of its own, contacts in the other, values it
// is a home of, a tuple for a key another member holds, a lookup in flight).
// The input is cut into datagrams at each 0xFF 0x00 pair; each comes from
// one of four addresses (its first byte picks), every second datagram with
// the time moved on. Invariants: every action is a SendTo of a datagram that
// decodes, within the size cap, for the Kelips overlay; the view never holds
// the node itself nor a node of another group; contacts stay within c per
// group; stored keys stay bounded by max_keys.
#include <cstdint>

#include "servent/dht/kelips_core.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace sv;
using namespace sv::dht;
namespace dw = sv::wire::dht;

namespace {

void drain(KelipsCore& c, const KelipsConfig& cfg) {
  while (auto a = c.poll_action()) {
    const auto* s = std::get_if<action::SendTo>(&*a);
    FUZZ_CHECK(s != nullptr);
    FUZZ_CHECK(s->bytes->size() <= dw::kMaxDatagram);
    auto m = dw::decode_message(*s->bytes);
    FUZZ_CHECK(m.ok());
    FUZZ_CHECK(m->overlay == dw::Overlay::Kelips);
  }
  FUZZ_CHECK(!c.knows(c.self().id));
  FUZZ_CHECK(c.contacts() <= cfg.contacts * (cfg.groups - 1));
  FUZZ_CHECK(c.keys() <= cfg.max_keys);
}

// A node of the given group, on 127.0.0.1:port.
dw::NodeRef node_in(const KelipsCore& c, std::uint32_t group, std::uint16_t port) {
  dw::NodeRef n;
  n.ip = 0x7f000001;
  n.port = port;
  for (std::uint8_t b = 0;; ++b) {
    n.id.fill(b);
    if (c.group_of(n.id) == group && !(n.id == c.self().id)) return n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KelipsConfig cfg;
  cfg.bits = 16;
  cfg.groups = 2;
  cfg.max_keys = 64;
  const Endpoint self{0x7f000001, 4000};
  KelipsCore c(self, SocketId{1}, cfg, 7);
  Instant now{std::chrono::seconds(100)};
  c.join(std::nullopt, now);
  const std::uint32_t mine = c.group(), other = 1 - mine;
  c.learn(node_in(c, mine, 4001), now);
  c.learn(node_in(c, mine, 4002), now);
  c.learn(node_in(c, other, 4003), now);
  // A value of our group's (we are a home), one of the other's looked up.
  NodeId key{};
  for (std::uint8_t b = 0; c.group_of(key) != mine; ++b) key.fill(b);
  c.put(key, wire::Bytes{'v'}, now);
  NodeId far{};
  for (std::uint8_t b = 0; c.group_of(far) != other; ++b) far.fill(b);
  c.lookup(far, now);
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
