// libFuzzer target: datagrams into a PastryCore that is a member of a small
// overlay (leaves on both sides, table entries, a value it is the closest
// node for, a lookup in flight). The input is cut into datagrams at each
// 0xFF 0x00 pair; each comes from one of four addresses (its first byte
// picks), every second datagram with the time moved on. Invariants: every
// action is a SendTo of a datagram that decodes, within the size cap, for
// the Pastry overlay; the leaf set never holds the node itself nor more
// than L/2 a side; stored keys stay bounded by max_keys.
#include <cstdint>

#include "servent/dht/pastry_core.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace sv;
using namespace sv::dht;
namespace dw = sv::wire::dht;

namespace {

dw::NodeRef ref(std::uint8_t b, std::uint16_t port) {
  dw::NodeRef n;
  n.id.fill(0);
  n.id[18] = b;
  n.id[19] = b;
  n.ip = 0x7f000001;
  n.port = port;
  return n;
}

void drain(PastryCore& c, const PastryConfig& cfg) {
  while (auto a = c.poll_action()) {
    const auto* s = std::get_if<action::SendTo>(&*a);
    FUZZ_CHECK(s != nullptr);
    FUZZ_CHECK(s->bytes->size() <= dw::kMaxDatagram);
    auto m = dw::decode_message(*s->bytes);
    FUZZ_CHECK(m.ok());
    FUZZ_CHECK(m->overlay == dw::Overlay::Pastry);
  }
  const auto leaves = c.leaves();
  FUZZ_CHECK(leaves.size() <= cfg.leaf_set);
  for (const auto& n : leaves) FUZZ_CHECK(!(n.id == c.self().id));
  FUZZ_CHECK(c.keys() <= cfg.max_keys);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  PastryConfig cfg;
  cfg.bits = 16;
  cfg.leaf_set = 4;
  cfg.max_keys = 64;
  const Endpoint self{0x7f000001, 4000};
  NodeId id{};
  id[18] = 0x80;
  id[19] = 0x80;
  PastryCore c(self, SocketId{1}, cfg, 7, id);
  Instant now{std::chrono::seconds(100)};
  c.join(std::nullopt, now);
  for (std::uint8_t b : {0x70, 0x78, 0x90, 0xA0, 0x10, 0xF0}) c.learn(ref(b, static_cast<std::uint16_t>(4000 + b)), 5ms, now);
  NodeId key{};
  key[18] = 0x80;
  key[19] = 0x81;
  c.put(key, wire::Bytes{'v'}, now);
  c.lookup(ref(0x20, 0).id, now);
  drain(c, cfg);
  const Endpoint from[4] = {{0x7f000001, 4000 + 0x70}, {0x7f000001, 4000 + 0x90}, {0x7f000001, 4000 + 0x10},
                            {0x7f000002, 9999}};
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
