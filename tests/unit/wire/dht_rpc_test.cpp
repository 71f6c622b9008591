// wire/dht: the RPC datagram (the layout is specified in wire/dht/rpc.hpp).
#include <doctest/doctest.h>

#include <string>

#include "wire/dht/rpc.hpp"

using namespace sv::wire;
using namespace sv::wire::dht;

namespace {

NodeId id_of(std::uint8_t fill) {
  NodeId id;
  id.fill(fill);
  return id;
}

NodeRef node(std::uint8_t fill, std::uint16_t port) { return NodeRef{id_of(fill), 0x7f000001, port}; }

Message request(Type t) {
  Message m;
  m.type = t;
  return m;
}

// Every kind of message with every field its type carries.
std::vector<Message> samples() {
  std::vector<Message> out;
  auto base = [](Type t, bool response) {
    Message m;
    m.type = t;
    m.response = response;
    m.overlay = Overlay::Pastry;
    m.request = 0x0102030405060708ull;
    m.sender = node(0xAA, 7000);
    return m;
  };
  out.push_back(base(Type::Ping, false));
  out.push_back(base(Type::Ping, true));
  Message find = base(Type::FindNode, false);
  find.key = id_of(0x42);
  out.push_back(find);
  Message found = base(Type::FindNode, true);
  found.owner = true;
  found.nodes = {node(1, 1), node(2, 2), node(3, 3)};
  out.push_back(found);
  out.push_back(base(Type::Neighbours, false));
  Message nb = base(Type::Neighbours, true);
  nb.predecessor = node(9, 9);
  nb.nodes = {node(4, 4)};
  out.push_back(nb);
  Message nb_none = base(Type::Neighbours, true);
  out.push_back(nb_none);
  out.push_back(base(Type::Notify, false));
  out.push_back(base(Type::Notify, true));
  Message store = base(Type::Store, false);
  store.key = id_of(0x11);
  store.lifetime = 3600;
  store.values = {Bytes{'h', 'i'}};
  store.flags = kFlagReplica;
  out.push_back(store);
  Message stored = base(Type::Store, true);
  stored.status = StoreStatus::NotResponsible;
  out.push_back(stored);
  Message get = base(Type::Get, false);
  get.key = id_of(0x11);
  out.push_back(get);
  Message got = base(Type::Get, true);
  got.values = {Bytes{'a'}, Bytes{}, Bytes(kMaxValue, 'z')};
  got.nodes = {node(5, 5)};
  out.push_back(got);
  Message gossip = base(Type::Gossip, false);
  gossip.entries = {GossipEntry{node(6, 6), 77, 12}, GossipEntry{node(7, 7), 1, 0}};
  gossip.tuples = {Tuple{id_of(0x33), node(8, 8)}};
  out.push_back(gossip);
  Message gossip_back = gossip;
  gossip_back.response = true;
  out.push_back(gossip_back);
  Message leave = base(Type::Leave, false);
  leave.flags = kFlagLeaving;
  leave.nodes = {node(1, 1)};
  out.push_back(leave);
  out.push_back(base(Type::Leave, true));
  Message error = base(Type::Error, true);
  error.error = ErrorCode::WrongOverlay;
  out.push_back(error);
  return out;
}

}  // namespace

TEST_CASE("dht_find_node_request_decodes_from_its_specified_bytes") {
  // magic, version 1, type 0x02, overlay 1 (Chord), flags 0, request id
  // 0x1122334455667788, sender id 20 x 0xAB, 127.0.0.1, port 6881, target
  // 20 x 0xCD.
  Bytes d = {'S', 'D', 0x01, 0x02, 0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
  d.insert(d.end(), 20, 0xAB);
  d.insert(d.end(), {0x7f, 0x00, 0x00, 0x01, 0x1a, 0xe1});
  d.insert(d.end(), 20, 0xCD);
  REQUIRE(d.size() == kHeaderSize + 20);
  auto m = decode_message(d);
  REQUIRE(m.ok());
  CHECK(m->type == Type::FindNode);
  CHECK_FALSE(m->response);
  CHECK(m->overlay == Overlay::Chord);
  CHECK(m->request == 0x1122334455667788ull);
  CHECK(m->sender.id == id_of(0xAB));
  CHECK(m->sender.ip == 0x7f000001);
  CHECK(m->sender.port == 6881);
  CHECK(m->key == id_of(0xCD));
  CHECK(encode_message(*m) == d);
  // Its answer: the response bit, the same request id, owner + nodes.
  Message r = response_to(*m, node(0xEE, 6882));
  r.owner = true;
  r.nodes = {node(0x01, 1)};
  const Bytes rb = encode_message(r);
  CHECK(rb[3] == 0x82);
  CHECK(rb.size() == kHeaderSize + 1 + 1 + kNodeSize);
  CHECK(decode_message(rb)->request == 0x1122334455667788ull);
}

TEST_CASE("dht_every_message_round_trips_and_every_truncation_is_malformed") {
  for (const Message& m : samples()) {
    CAPTURE(std::string(to_string(m.type)));
    CAPTURE(m.response);
    const Bytes b = encode_message(m);
    auto back = decode_message(b);
    REQUIRE(back.ok());
    CHECK(*back == m);
    // A datagram is whole or nothing: every shorter prefix is refused (no NeedMore).
    for (std::size_t n = 0; n < b.size(); ++n) {
      auto r = decode_message(ByteView(b.data(), n));
      CHECK_FALSE(r.ok());
      if (!r.ok()) CHECK(r.error() == WireError::Malformed);
    }
    // And nothing may follow the body.
    Bytes longer = b;
    longer.push_back(0);
    auto r = decode_message(longer);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == WireError::Malformed);
  }
}

TEST_CASE("dht_hostile_datagrams_are_refused_with_the_right_error") {
  Message ping;
  ping.sender = node(1, 1);
  const Bytes good = encode_message(ping);
  auto error_of = [](Bytes b) {
    auto r = decode_message(b);
    return r.ok() ? std::string("ok") : std::string(to_string(r.error()));
  };
  struct Case {
    const char* what;
    std::size_t at;
    std::uint8_t value;
    const char* error;
  };
  const Case cases[] = {
      {"bad magic", 0, 'X', "malformed"},          {"another version", 2, 2, "unsupported"},
      {"unknown type", 3, 0x09, "malformed"},      {"unknown response type", 3, 0x89, "malformed"},
      {"an error sent as a request", 3, 0x7F, "malformed"},
      {"overlay 0", 4, 0, "unsupported"},          {"overlay 4", 4, 4, "unsupported"},
      {"reserved flag bits", 5, 0x04, "malformed"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    Bytes b = good;
    b[c.at] = c.value;
    CHECK(error_of(b) == c.error);
  }
  // Over the datagram cap.
  Bytes big = good;
  big.resize(kMaxDatagram + 1);
  CHECK(error_of(big) == "too-large");
  // A node count past kMaxNodes, or past the end.
  Message found = response_to(request(Type::FindNode), node(1, 1));
  found.nodes = {node(2, 2)};
  Bytes b = encode_message(found);
  b[kHeaderSize + 1] = static_cast<std::uint8_t>(kMaxNodes + 1);
  CHECK(error_of(b) == "malformed");
  b[kHeaderSize + 1] = 2;
  CHECK(error_of(b) == "malformed");
  // An owner flag that is neither 0 nor 1.
  b[kHeaderSize + 1] = 1;
  b[kHeaderSize] = 2;
  CHECK(error_of(b) == "malformed");
  // A value longer than kMaxValue.
  Message store;
  store.type = Type::Store;
  store.sender = node(1, 1);
  store.values = {Bytes{'v'}};
  Bytes s = encode_message(store);
  const std::size_t len_at = kHeaderSize + 20 + 4;
  s[len_at] = static_cast<std::uint8_t>((kMaxValue + 1) >> 8);
  s[len_at + 1] = static_cast<std::uint8_t>(kMaxValue + 1);
  CHECK(error_of(s) == "too-large");
  // Unknown store status and error codes.
  Message stored = response_to(store, node(1, 1));
  Bytes st = encode_message(stored);
  st[kHeaderSize] = 4;
  CHECK(error_of(st) == "malformed");
  Message err = response_to(request(Type::Error), node(1, 1));
  err.error = ErrorCode::Overloaded;
  Bytes e = encode_message(err);
  CHECK(e[3] == 0xFF);
  e[kHeaderSize] = 0;
  CHECK(error_of(e) == "malformed");
}

TEST_CASE("dht_encoder_cuts_lists_to_fit_one_datagram_and_the_result_decodes") {
  Message got = response_to(request(Type::Get), node(1, 1));
  for (int i = 0; i < 5; ++i) got.values.push_back(Bytes(kMaxValue, static_cast<std::uint8_t>('a' + i)));
  for (int i = 0; i < 30; ++i) got.nodes.push_back(node(static_cast<std::uint8_t>(i), static_cast<std::uint16_t>(i)));
  const Bytes b = encode_message(got);
  CHECK(b.size() <= kMaxDatagram);
  auto back = decode_message(b);
  REQUIRE(back.ok());
  // Nodes go first, then values; what stays is a prefix of each list.
  CHECK(back->nodes.empty());
  REQUIRE(!back->values.empty());
  CHECK(back->values.size() < got.values.size());
  for (std::size_t i = 0; i < back->values.size(); ++i) CHECK(back->values[i] == got.values[i]);
  // A node list past kMaxNodes keeps its first kMaxNodes.
  Message found = response_to(request(Type::FindNode), node(1, 1));
  for (int i = 0; i < 60; ++i) found.nodes.push_back(node(static_cast<std::uint8_t>(i), 1));
  auto f = decode_message(encode_message(found));
  REQUIRE(f.ok());
  CHECK(f->nodes.size() == kMaxNodes);
  CHECK(f->nodes.back() == found.nodes[kMaxNodes - 1]);
}
