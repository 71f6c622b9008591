// ChordCore with a hand-fed inbox and hand-moved time: hostile datagrams are
// counted and dropped, a lookup ends (bounded) whatever the nodes it asks
// answer, a graceful leave hands every key to the successor, a finger is
// checked with one RPC and looked up again only when it is wrong, and an
// operation's last candidate is asked twice before it fails.
#include <doctest/doctest.h>

#include "servent/dht/chord_core.hpp"

using namespace sv;
using namespace sv::dht;
namespace dw = sv::wire::dht;

namespace {

dw::NodeRef ref(std::uint8_t b, std::uint16_t port) {
  dw::NodeRef n;
  n.id.fill(0);
  n.id[19] = b;
  n.ip = 0x7f000001;
  n.port = port;
  return n;
}

struct Harness {
  ChordConfig cfg;
  std::unique_ptr<ChordCore> core;
  Instant now{std::chrono::seconds(100)};
  std::vector<std::pair<Endpoint, dw::Message>> sent;
  explicit Harness(int retries = 1) {
    cfg.bits = 8;
    cfg.successors = 3;
    cfg.retries = retries;
    NodeId id{};
    id[19] = 0x80;
    core = std::make_unique<ChordCore>(Endpoint{0x7f000001, 4000}, SocketId{1}, cfg, 1, id);
  }
  void drain() {
    while (auto a = core->poll_action()) {
      const auto& s = std::get<action::SendTo>(*a);
      auto m = dw::decode_message(*s.bytes);
      REQUIRE(m.ok());
      sent.emplace_back(s.to, *m);
    }
  }
  void feed(const dw::Message& m, Endpoint from) {
    core->handle_datagram(SocketId{1}, from, dw::encode_message(m), now);
    drain();
  }
  // Joined with successors 0x90, 0xA0 and predecessor 0x70.
  void member() {
    core->join(Endpoint{0x7f000001, 4001}, now);
    drain();
    REQUIRE(sent.size() == 1);
    dw::Message found = dw::response_to(sent.back().second, ref(0x10, 4001));
    found.owner = true;
    found.nodes = {ref(0x90, 4009), ref(0xA0, 4010)};
    feed(found, Endpoint{0x7f000001, 4001});
    REQUIRE(core->joined());
    dw::Message notify;
    notify.type = dw::Type::Notify;
    notify.sender = ref(0x70, 4007);
    notify.request = 5;
    feed(notify, Endpoint{0x7f000001, 4007});
    REQUIRE(core->predecessor());
    sent.clear();
  }
};

}  // namespace

TEST_CASE("chord_hostile_datagrams_are_counted_and_dropped") {
  Harness h;
  h.member();
  const Endpoint stranger{0x7f000009, 9999};
  h.core->handle_datagram(SocketId{1}, stranger, wire::as_bytes("not a datagram"), h.now);
  CHECK(h.core->stat(ChordCore::kMalformed) == 1);
  dw::Message kelips;
  kelips.overlay = dw::Overlay::Kelips;
  kelips.sender = ref(0x33, 9999);
  h.feed(kelips, stranger);
  CHECK(h.core->stat(ChordCore::kWrongOverlay) == 1);
  // An answer to nothing we asked (a spoofed or late response).
  dw::Message answer;
  answer.type = dw::Type::FindNode;
  answer.response = true;
  answer.owner = true;
  answer.request = 0xDEAD;
  answer.sender = ref(0x33, 9999);
  answer.nodes = {ref(0x33, 9999)};
  h.feed(answer, stranger);
  CHECK(h.core->stat(ChordCore::kUnexpected) == 1);
  // None of it was answered or changed the ring.
  CHECK(h.sent.empty());
  CHECK(h.core->successors().front() == ref(0x90, 4009));
}

TEST_CASE("chord_lookup_ends_even_when_every_node_asked_names_only_itself") {
  Harness h;
  h.member();
  NodeId key{};
  key[19] = 0x20;  // far from us: asked of a node that answers with itself, over and over
  const auto op = h.core->lookup(key, h.now);
  h.drain();
  std::size_t asked = 0;
  for (int step = 0; step < 100; ++step) {
    if (h.sent.empty()) break;
    auto [to, m] = h.sent.front();
    h.sent.erase(h.sent.begin());
    if (m.type != dw::Type::FindNode || m.response) continue;
    ++asked;
    dw::Message liar = dw::response_to(m, ref(0x21, to.port));
    liar.sender.ip = to.ip;
    liar.sender.port = to.port;
    liar.nodes = {liar.sender};  // "ask me" (never the owner)
    h.feed(liar, to);
  }
  h.now = h.now + std::chrono::seconds(5);
  h.core->handle_timeout(h.now);
  h.drain();
  std::optional<ChordCore::OpResult> r;
  while (auto x = h.core->poll_result()) {
    if (x->op == op) r = x;
  }
  REQUIRE(r);
  CHECK_FALSE(r->ok);
  CHECK(asked == 2);  // each candidate once (a liar is not asked again)
  CHECK(h.core->stat(ChordCore::kLookupsFailed) == 1);
}

TEST_CASE("chord_graceful_leave_hands_every_key_to_the_successor_and_tells_both_neighbours") {
  Harness h;
  h.member();
  // Keys arrive as the owner's copies (replicas) and as puts.
  for (std::uint8_t k : {0x75, 0x7A, 0x80}) {
    dw::Message store;
    store.type = dw::Type::Store;
    store.request = k;
    store.sender = ref(0x70, 4007);
    store.key.fill(0);
    store.key[19] = k;
    store.lifetime = 60;
    store.values = {wire::Bytes{k}};
    h.feed(store, Endpoint{0x7f000001, 4007});
  }
  CHECK(h.core->keys() == 3);
  h.sent.clear();
  h.core->handle_shutdown(h.now);
  h.drain();
  std::size_t handed = 0, leaves = 0;
  for (const auto& [to, m] : h.sent) {
    if (m.type == dw::Type::Store && to.port == 4009) ++handed;
    if (m.type == dw::Type::Leave) {
      ++leaves;
      CHECK((m.flags & dw::kFlagLeaving) != 0);
    }
  }
  CHECK(handed == 3);
  CHECK(leaves == 2);
  CHECK_FALSE(h.core->joined());
}

TEST_CASE("chord_checks_a_finger_with_one_neighbours_rpc_and_looks_it_up_again_only_when_someone_joined_before_it") {
  // Ring of 2^8, us 0x80: fingers 0-5 (starts 0x81..0xA0) come from the
  // successor list; finger 6 (start 0xC0) and 7 (start 0x00) need lookups.
  Harness h;
  h.member();
  const dw::NodeRef f6 = ref(0xC8, 4200), f7 = ref(0x08, 4208);
  std::optional<dw::NodeRef> f6_pred = ref(0xB0, 4176);  // before start 0xC0: still right
  std::size_t lookups_c0 = 0, checks_f6 = 0;
  auto step = [&] {
    h.now = h.now + std::chrono::milliseconds(50);
    h.core->handle_timeout(h.now);
    h.drain();
    while (!h.sent.empty()) {
      auto [to, m] = h.sent.front();
      h.sent.erase(h.sent.begin());
      if (m.response) continue;
      dw::Message a = dw::response_to(m, ref(0x01, to.port));
      a.sender.id.fill(0);
      if (to.port == 4009) a.sender = ref(0x90, 4009);
      if (to.port == 4010) a.sender = ref(0xA0, 4010);
      if (to.port == 4007) a.sender = ref(0x70, 4007);
      if (to.port == f6.port) a.sender = f6;
      if (to.port == f7.port) a.sender = f7;
      if (m.type == dw::Type::FindNode) {
        a.owner = true;
        if (m.key[19] == 0xC0) {
          ++lookups_c0;
          a.nodes = {f6};
        } else {
          a.nodes = {f7};
        }
      } else if (m.type == dw::Type::Neighbours) {
        if (to.port == f6.port) {
          ++checks_f6;
          a.predecessor = f6_pred;
        } else if (to.port == f7.port) {
          a.predecessor = ref(0xF0, 4240);  // before start 0x00
        } else {
          a.predecessor = ref(0x80, 4000);  // our successor's predecessor: us
          a.nodes = {ref(0xA0, 4010)};
        }
      }
      h.feed(a, to);
    }
  };
  auto run = [&](std::chrono::seconds d) {
    const Instant end = h.now + d;
    while (h.now < end) step();
  };
  run(std::chrono::seconds(5));
  REQUIRE(lookups_c0 == 1);  // first found by a lookup
  REQUIRE(h.core->fingers_set() == 8);
  // Then only checked: one Neighbours to the finger each pass, no lookup.
  run(std::chrono::seconds(30));
  CHECK(checks_f6 >= 3);
  CHECK(lookups_c0 == 1);
  // A node joins between start and the finger (its predecessor now lies
  // past start): the next check finds out and the finger is looked up again.
  f6_pred = ref(0xC4, 4196);
  const std::size_t checks = checks_f6;
  while (checks_f6 == checks && h.now < Instant{std::chrono::seconds(200)}) step();
  run(std::chrono::seconds(1));
  CHECK(lookups_c0 == 2);
}

TEST_CASE("chord_asks_an_operations_last_candidate_twice_before_it_fails") {
  // A short-lived node's lookup has one candidate, the node it entered by:
  // one lost datagram must not fail the user's put or get.
  for (const int retries : {1, 0}) {
    CAPTURE(retries);
    Harness h(retries);
    h.member();
    NodeId key{};
    key[19] = 0x20;
    const Endpoint entry{0x7f000001, 4050};
    const auto op = h.core->lookup(key, h.now, entry);
    h.drain();
    REQUIRE(h.sent.size() == 1);
    CHECK(h.sent[0].first == entry);
    const dw::Message first = h.sent[0].second;
    h.sent.clear();  // lost
    std::size_t asked_again = 0;
    for (int i = 0; i < 60; ++i) {
      h.now = h.now + std::chrono::milliseconds(50);
      h.core->handle_timeout(h.now);
      h.drain();
      for (const auto& [to, m] : std::vector(h.sent)) {
        if (to != entry || m.type != dw::Type::FindNode || m.response) continue;
        ++asked_again;
        CHECK(m.key == first.key);
        dw::Message a = dw::response_to(m, ref(0x21, 4050));
        a.owner = true;
        a.nodes = {ref(0x21, 4050)};
        h.feed(a, entry);
      }
      h.sent.clear();
    }
    CHECK(asked_again == (retries == 1 ? 1u : 0u));
    std::optional<ChordCore::OpResult> r;
    while (auto x = h.core->poll_result()) {
      if (x->op == op) r = x;
    }
    REQUIRE(r);
    CHECK(r->ok == (retries == 1));
  }
}
