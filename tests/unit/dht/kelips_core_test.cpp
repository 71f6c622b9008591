// KelipsCore with a hand-fed inbox and hand-moved time: hostile datagrams
// (malformed, another overlay, answers to nothing, entries that claim our
// id, stores for another group or past the cap, a join flood) are counted
// and dropped or refused; a lookup whose nodes only name themselves ends,
// bounded; a member whose heartbeat stops is dropped, and its tuples go; a
// request whose datagram is lost is sent once more.
#include <doctest/doctest.h>

#include <set>

#include "servent/dht/kelips_core.hpp"

using namespace sv;
using namespace sv::dht;
namespace dw = sv::wire::dht;

namespace {

struct Harness {
  KelipsConfig cfg;
  std::unique_ptr<KelipsCore> core;
  Instant now{std::chrono::seconds(100)};
  std::vector<std::pair<Endpoint, dw::Message>> sent;
  Harness() {
    cfg.bits = 32;
    cfg.groups = 2;
    cfg.max_keys = 4;
    core = std::make_unique<KelipsCore>(Endpoint{0x7f000001, 4000}, SocketId{1}, cfg, 1);
    core->join(std::nullopt, now);
  }
  std::uint32_t mine() const { return core->group(); }
  std::uint32_t other() const { return 1 - core->group(); }
  // A node of group g on 127.0.0.1:port (ids by a counter, the group by id).
  dw::NodeRef node_in(std::uint32_t g, std::uint16_t port) {
    dw::NodeRef n;
    n.ip = 0x7f000001;
    n.port = port;
    for (std::uint32_t v = port * 64u;; ++v) {  // (a range of its own per port)
      n.id.fill(0);
      n.id[17] = static_cast<std::uint8_t>(v >> 16);
      n.id[18] = static_cast<std::uint8_t>(v >> 8);
      n.id[19] = static_cast<std::uint8_t>(v);
      if (core->group_of(n.id) == g && !(n.id == core->self().id)) return n;
    }
  }
  NodeId key_in(std::uint32_t g, std::uint8_t salt = 0) {
    NodeId k{};
    k[17] = salt;
    for (std::uint8_t b = 0;; ++b) {
      k[19] = b;
      if (core->group_of(k) == g) return k;
    }
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
  dw::Message msg(dw::Type t, const dw::NodeRef& from) {
    dw::Message m;
    m.type = t;
    m.overlay = dw::Overlay::Kelips;
    m.sender = from;
    m.request = 77;
    return m;
  }
};

}  // namespace

TEST_CASE("kelips_hostile_datagrams_are_counted_and_dropped_or_refused") {
  Harness h;
  const auto member = h.node_in(h.mine(), 4001);
  h.core->learn(member, h.now);
  const Endpoint stranger{0x7f000009, 9999};
  h.core->handle_datagram(SocketId{1}, stranger, wire::as_bytes("not a datagram"), h.now);
  CHECK(h.core->stat(KelipsCore::kMalformed) == 1);
  dw::Message chord = h.msg(dw::Type::Ping, h.node_in(h.other(), 9999));
  chord.overlay = dw::Overlay::Chord;
  h.feed(chord, stranger);
  CHECK(h.core->stat(KelipsCore::kWrongOverlay) == 1);
  CHECK(h.sent.empty());  // (no reply to either)
  // An answer to nothing we asked.
  dw::Message late = h.msg(dw::Type::Gossip, member);
  late.response = true;
  late.request = 0x1234;
  h.feed(late, Endpoint{member.ip, member.port});
  CHECK(h.core->stat(KelipsCore::kUnexpected) == 1);

  // A gossip entry that claims our id from another address is not taken in.
  dw::Message g = h.msg(dw::Type::Gossip, member);
  dw::NodeRef fake = h.core->self();
  fake.port = 6666;
  g.entries = {{member, 9, 0}, {fake, 1000, 0}};
  h.feed(g, Endpoint{member.ip, member.port});
  CHECK(h.core->stat(KelipsCore::kSpoofed) == 1);
  CHECK_FALSE(h.core->knows(h.core->self().id));
  CHECK(h.core->members() == 1);

  // A store for a key of the other group: refused, nothing kept.
  dw::Message st = h.msg(dw::Type::Store, h.node_in(h.other(), 5000));
  st.key = h.key_in(h.other());
  st.lifetime = 60;
  st.values = {wire::Bytes{'x'}};
  h.sent.clear();
  h.feed(st, stranger);
  REQUIRE(h.sent.size() == 1);
  CHECK(h.sent.back().second.status == dw::StoreStatus::NotResponsible);
  CHECK(h.core->keys() == 0);
  // Stores past max_keys: Full.
  std::size_t full = 0;
  for (std::uint8_t i = 0; i < 8; ++i) {
    st.key = h.key_in(h.mine(), static_cast<std::uint8_t>(i + 1));
    h.sent.clear();
    h.feed(st, stranger);
    full += !h.sent.empty() && h.sent.front().second.status == dw::StoreStatus::Full;
  }
  CHECK(h.core->keys() == h.cfg.max_keys);
  CHECK(full == 8 - h.cfg.max_keys);
  CHECK(h.core->stat(KelipsCore::kStoresRefused) == 1 + full);
}

TEST_CASE("kelips_a_join_flood_gets_one_answer_each_and_contacts_stay_bounded") {
  Harness h;
  h.sent.clear();
  for (std::uint16_t p = 0; p < 500; ++p) {
    const auto joiner = h.node_in(h.other(), static_cast<std::uint16_t>(10000 + 3 * p));
    h.feed(h.msg(dw::Type::Neighbours, joiner), Endpoint{joiner.ip, joiner.port});
  }
  CHECK(h.sent.size() == 500);  // one reply each, no more (no amplification)
  for (const auto& [to, m] : h.sent) CHECK(m.nodes.size() <= dw::kMaxNodes);
  CHECK(h.core->contacts() <= h.cfg.contacts);
  CHECK(h.core->members() == 0);
}

TEST_CASE("kelips_a_lookup_among_nodes_that_only_name_themselves_ends") {
  Harness h;
  // Contacts in the other group that answer every lookup with themselves
  // and not as homes (owner = 0): the lookup asks each once, then fails.
  const auto c1 = h.node_in(h.other(), 5001), c2 = h.node_in(h.other(), 5002);
  h.core->learn(c1, h.now);
  h.core->learn(c2, h.now);
  h.sent.clear();
  const auto op = h.core->lookup(h.key_in(h.other()), h.now);
  h.drain();
  for (int round = 0; round < 20 && !h.sent.empty(); ++round) {
    auto [to, ask] = h.sent.front();
    h.sent.erase(h.sent.begin());
    if (ask.type != dw::Type::FindNode) continue;
    const auto& who = to.port == c1.port ? c1 : c2;
    dw::Message r = dw::response_to(ask, who);
    r.owner = false;
    r.nodes = {who, c1, c2};
    h.feed(r, to);
  }
  auto res = h.core->poll_result();
  REQUIRE(res);
  CHECK(res->op == op);
  CHECK_FALSE(res->ok);
  CHECK(res->route.size() == 2);  // each asked once
}

TEST_CASE("kelips_a_member_whose_heartbeat_stops_is_dropped_with_its_tuples") {
  Harness h;
  const auto a = h.node_in(h.mine(), 4001), b = h.node_in(h.mine(), 4002);
  const NodeId key = h.key_in(h.mine());
  // a gossips: itself, b, and a tuple (key at b).
  dw::Message g = h.msg(dw::Type::Gossip, a);
  g.entries = {{a, 3, 0}, {b, 3, 0}};
  g.tuples = {{key, b}};
  h.feed(g, Endpoint{a.ip, a.port});
  CHECK(h.core->members() == 2);
  CHECK(h.core->tuples() == 1);
  // a keeps gossiping with a growing heartbeat; b is never heard of again.
  for (std::uint32_t beat = 4; beat < 24; ++beat) {  // (20 s: past member_timeout, within the tombstone)
    h.now = h.now + 1s;
    g.entries = {{a, beat, 0}};
    g.tuples.clear();
    h.feed(g, Endpoint{a.ip, a.port});
    h.core->handle_timeout(h.now);
    h.drain();
    // (our own gossips to a and b go unanswered by b: answer a's)
    for (const auto& [to, m] : h.sent) {
      if (m.type == dw::Type::Gossip && !m.response && to.port == a.port) {
        dw::Message r = dw::response_to(m, a);
        r.entries = {{a, beat, 0}};
        h.core->handle_datagram(SocketId{1}, to, dw::encode_message(r), h.now);
      }
    }
    h.sent.clear();
    h.drain();
    h.sent.clear();
  }
  CHECK(h.core->knows(a.id));
  CHECK_FALSE(h.core->knows(b.id));
  CHECK(h.core->stat(KelipsCore::kMembersDead) >= 1);
  CHECK(h.core->tuples() == 0);
  // An old entry for b from someone else does not bring it back.
  dw::Message stale = h.msg(dw::Type::Gossip, a);
  stale.entries = {{a, 25, 0}, {b, 3, 0}};
  h.feed(stale, Endpoint{a.ip, a.port});
  CHECK_FALSE(h.core->knows(b.id));
}

TEST_CASE("kelips_the_view_finds_every_member_after_hundreds_arrive_and_half_of_them_leave") {
  // The view's index (open addressing, entries shifted back when one goes)
  // against a plain set, over growth and removals in every order.
  Harness h;
  std::vector<dw::NodeRef> nodes;
  for (std::uint16_t p = 0; p < 600; ++p) nodes.push_back(h.node_in(h.mine(), static_cast<std::uint16_t>(5000 + p)));
  for (std::size_t i = 0; i < nodes.size(); i += 20) {
    dw::Message g = h.msg(dw::Type::Gossip, nodes[i]);
    for (std::size_t j = i; j < i + 20; ++j) g.entries.push_back({nodes[j], 3, 0});
    h.feed(g, Endpoint{nodes[i].ip, nodes[i].port});
  }
  REQUIRE(h.core->members() == nodes.size());
  std::set<std::size_t> gone;
  sv::Rng rng(7);
  while (gone.size() < nodes.size() / 2) {
    const std::size_t i = rng.below(nodes.size());
    if (!gone.insert(i).second) continue;
    dw::Message bye = h.msg(dw::Type::Leave, nodes[i]);
    bye.flags = dw::kFlagLeaving;
    h.feed(bye, Endpoint{nodes[i].ip, nodes[i].port});
  }
  CHECK(h.core->members() == nodes.size() - gone.size());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) wrong += h.core->knows(nodes[i].id) == (gone.count(i) != 0);
  CHECK(wrong == 0);
  // Those that went come back (a newer heartbeat): found again.
  for (std::size_t i : gone) {
    dw::Message g = h.msg(dw::Type::Gossip, nodes[i]);
    g.entries = {{nodes[i], 9, 0}};
    h.feed(g, Endpoint{nodes[i].ip, nodes[i].port});
  }
  CHECK(h.core->members() == nodes.size());
  for (const auto& n : nodes) wrong += !h.core->knows(n.id);
  CHECK(wrong == 0);
}

TEST_CASE("kelips_a_gone_members_handle_is_not_given_again_while_a_tuple_names_it") {
  // Tuples name homes by 2-byte member handles; a member that goes frees
  // its handle only once the tuples that name it are swept (repair), so a
  // newcomer is never taken for the home of the gone member's keys.
  Harness h;
  const auto a = h.node_in(h.mine(), 4001), c = h.node_in(h.mine(), 4003), d = h.node_in(h.mine(), 4004);
  const NodeId key = h.key_in(h.mine(), 1), key2 = h.key_in(h.mine(), 2);
  dw::Message g = h.msg(dw::Type::Gossip, a);
  g.entries = {{a, 3, 0}};
  g.tuples = {{key, a}};
  h.feed(g, Endpoint{a.ip, a.port});
  REQUIRE(h.core->tuples() == 1);
  auto homes_of = [&](const NodeId& k) {
    dw::Message f = h.msg(dw::Type::FindNode, d);
    f.key = k;
    h.sent.clear();
    h.feed(f, Endpoint{d.ip, d.port});
    REQUIRE(h.sent.size() == 1);
    const dw::Message r = h.sent.back().second;
    h.sent.clear();
    return r.owner ? r.nodes : std::vector<dw::NodeRef>{};
  };
  CHECK(homes_of(key) == std::vector<dw::NodeRef>{a});
  // a leaves; c arrives before the tuples are swept.
  dw::Message bye = h.msg(dw::Type::Leave, a);
  bye.flags = dw::kFlagLeaving;
  h.feed(bye, Endpoint{a.ip, a.port});
  CHECK_FALSE(h.core->knows(a.id));
  dw::Message gc = h.msg(dw::Type::Gossip, c);
  gc.entries = {{c, 5, 0}};
  h.feed(gc, Endpoint{c.ip, c.port});
  REQUIRE(h.core->knows(c.id));
  CHECK(homes_of(key).empty());  // not c
  // The sweep drops the tuple; handles are given again after it, rightly.
  h.now = h.now + h.cfg.repair_every + 1s;
  h.core->handle_timeout(h.now);
  h.drain();
  CHECK(h.core->tuples() == 0);
  dw::Message gd = h.msg(dw::Type::Gossip, d);
  gd.entries = {{d, 5, 0}};
  gd.tuples = {{key2, d}};
  h.feed(gd, Endpoint{d.ip, d.port});
  CHECK(homes_of(key2) == std::vector<dw::NodeRef>{d});
  CHECK(homes_of(key).empty());
}

TEST_CASE("kelips_a_note_of_homes_is_taken_in_and_answered_empty") {
  // A home that copies a value tells the other homes of each other with a
  // Gossip flagged as a note: its tuples are kept, the answer carries no
  // gossip of ours (an ordinary Gossip is answered with ours).
  Harness h;
  const auto a = h.node_in(h.mine(), 4001), b = h.node_in(h.mine(), 4002);
  h.core->learn(a, h.now);
  h.core->learn(b, h.now);
  const NodeId key = h.key_in(h.mine(), 3);
  dw::Message note = h.msg(dw::Type::Gossip, a);
  note.flags = dw::kFlagReplica;
  note.entries = {{a, 9, 0}};
  note.tuples = {{key, a}, {key, b}};
  h.sent.clear();
  h.feed(note, Endpoint{a.ip, a.port});
  CHECK(h.core->tuples() == 1);
  REQUIRE(h.sent.size() == 1);
  CHECK(h.sent[0].second.response);
  CHECK(h.sent[0].second.entries.empty());
  CHECK(h.sent[0].second.tuples.empty());
  dw::Message plain = h.msg(dw::Type::Gossip, a);
  plain.entries = {{a, 10, 0}};
  h.sent.clear();
  h.feed(plain, Endpoint{a.ip, a.port});
  REQUIRE(h.sent.size() == 1);
  CHECK_FALSE(h.sent[0].second.entries.empty());  // ours: at least ourselves
  CHECK_FALSE(h.sent[0].second.tuples.empty());
}

namespace {
// A put through an entry node whose first answers are lost: the FindNode to
// the entry and the Store to the member it names each go unanswered once.
// Returns the put's result (and whether the member is still in our view).
std::pair<bool, bool> put_with_one_loss_each(int retries) {
  Harness h;
  h.cfg.retries = retries;
  h.core = std::make_unique<KelipsCore>(Endpoint{0x7f000001, 4000}, SocketId{1}, h.cfg, 1);
  h.core->join(std::nullopt, h.now);
  const auto member = h.node_in(h.mine(), 4001);
  h.core->learn(member, h.now);
  const Endpoint entry{member.ip, member.port};  // (entered through a member we know)
  h.sent.clear();
  const auto op = h.core->put(h.key_in(h.mine(), 5), wire::Bytes{0x76}, h.now, 60s, entry);
  h.drain();
  // Loses the put's datagram (the member answers our gossip meanwhile),
  // waits out the timeout, and returns what is sent of that type next.
  auto find_answering_gossip = [&](dw::Type type) -> std::optional<std::pair<Endpoint, dw::Message>> {
    auto sent = std::move(h.sent);
    h.sent.clear();
    std::optional<std::pair<Endpoint, dw::Message>> found;
    for (const auto& [to, m] : sent) {
      if (m.type == type && !m.response) found = std::pair{to, m};
      if (m.type == dw::Type::Gossip && !m.response) h.feed(dw::response_to(m, member), to);
    }
    return found;
  };
  auto lose_and_wait = [&](dw::Type type) {
    REQUIRE(find_answering_gossip(type));
    h.now = h.now + 600ms;
    h.core->handle_timeout(h.now);
    h.drain();
    return find_answering_gossip(type);
  };
  auto ended = [&] {  // (the put's result, when nothing was sent again)
    auto res = h.core->poll_result();
    REQUIRE(res);
    return std::pair{res->ok, h.core->knows(member.id)};
  };
  auto again = lose_and_wait(dw::Type::FindNode);
  if (!again) return ended();
  CHECK(again->first == entry);
  dw::Message r = dw::response_to(again->second, member);
  h.sent.clear();
  h.feed(r, entry);  // (the entry is a member of the key's group: it is asked to store)
  again = lose_and_wait(dw::Type::Store);
  if (!again) return ended();
  dw::Message stored = dw::response_to(again->second, member);
  h.sent.clear();
  h.feed(stored, again->first);
  auto res = h.core->poll_result();
  REQUIRE(res);
  CHECK(res->op == op);
  return {res->ok, h.core->knows(member.id)};
}
}  // namespace

TEST_CASE("kelips_a_request_whose_datagram_is_lost_is_sent_once_more_before_the_node_counts_as_dead") {
  // One lost datagram (a full receive buffer in a burst) costs a put nothing:
  // the FindNode and the Store are each sent again, waiting twice as long.
  const auto [ok, kept] = put_with_one_loss_each(1);
  CHECK(ok);
  CHECK(kept);
  // Without the second try the same losses fail the put.
  CHECK_FALSE(put_with_one_loss_each(0).first);
}

TEST_CASE("kelips_a_lookup_for_another_group_names_our_contacts_there_then_members_of_ours") {
  // The contacts first; then members of our group, through whom the asker
  // goes on when the contacts are dead (each member has contacts of its own).
  Harness h;
  const auto contact = h.node_in(h.other(), 5001);
  const auto a = h.node_in(h.mine(), 4001), b = h.node_in(h.mine(), 4002);
  h.core->learn(contact, h.now);
  h.core->learn(a, h.now);
  h.core->learn(b, h.now);
  const auto asker = h.node_in(h.other(), 6001);
  dw::Message ask = h.msg(dw::Type::FindNode, asker);
  ask.key = h.key_in(h.other(), 7);
  h.sent.clear();
  h.feed(ask, Endpoint{asker.ip, asker.port});
  REQUIRE(h.sent.size() == 1);
  const auto& r = h.sent[0].second;
  REQUIRE(r.nodes.size() == 3);
  CHECK(r.nodes[0] == contact);
  CHECK(std::count(r.nodes.begin(), r.nodes.end(), a) == 1);
  CHECK(std::count(r.nodes.begin(), r.nodes.end(), b) == 1);
  CHECK_FALSE(r.owner);
}

TEST_CASE("kelips_a_node_that_lost_every_member_and_contact_joins_again_through_its_introducer") {
  Harness h;
  const auto member = h.node_in(h.mine(), 4001);  // (the introducer, a member of our group)
  const Endpoint introducer{member.ip, member.port};
  h.core = std::make_unique<KelipsCore>(Endpoint{0x7f000001, 4000}, SocketId{1}, h.cfg, 1);
  h.core->join(introducer, h.now);
  h.sent.clear();
  h.drain();
  REQUIRE(h.sent.size() == 1);
  dw::Message welcome = dw::response_to(h.sent[0].second, member);
  h.sent.clear();
  h.feed(welcome, introducer);
  CHECK(h.core->knows(member.id));
  // Nothing answers for a while (an outage): the member is dropped; then
  // the node asks its introducer again, once per expiry round.
  std::set<std::uint64_t> requests;  // (each asked once more on a timeout: the same request)
  for (int s = 0; s < 40; ++s) {
    h.now = h.now + 1s;
    h.core->handle_timeout(h.now);
    h.drain();
    for (const auto& [to, m] : h.sent) {
      if (!m.response && m.type == dw::Type::Neighbours && to == introducer) requests.insert(m.request);
    }
    h.sent.clear();
  }
  const std::size_t asked_again = requests.size();
  CHECK_FALSE(h.core->knows(member.id));
  CHECK(asked_again >= 1);
  CHECK(asked_again <= 40 / 3);  // (not every second)
  CHECK(h.core->stat(KelipsCore::kRejoins) == asked_again);
}
