// The peer wire: libtorrent's own greeting decodes message by message,
// every message round-trips, every prefix needs more, every split gives the
// same messages, and wrong sizes are refused.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "unit/wire/vectors_bt.hpp"
#include "wire/bt/peer.hpp"

using namespace sv::wire;
using namespace sv::wire::bt;

namespace {

const ByteView kGreeting(sv::test::kLibtorrentGreeting, sizeof sv::test::kLibtorrentGreeting);

std::vector<PeerMessage> all_messages(ByteView in) {
  std::vector<PeerMessage> out;
  while (!in.empty()) {
    auto r = decode_peer_message(in);
    REQUIRE(r.ok());
    out.push_back(r->msg);
    in = in.subspan(r->consumed);
  }
  return out;
}

std::vector<PeerMessage> samples() {
  ExtHandshake eh;
  eh.m = {{"ut_metadata", 3}};
  eh.metadata_size = 1234;
  return {msg_simple(MsgType::KeepAlive),
          msg_simple(MsgType::Choke),
          msg_simple(MsgType::Unchoke),
          msg_simple(MsgType::Interested),
          msg_simple(MsgType::NotInterested),
          msg_have(0x01020304),
          msg_bitfield({true, false, true, true, false, false, false, false, true}),
          msg_request(MsgType::Request, 7, 16384, 16384),
          msg_piece(7, 16384, Bytes(100, 0x5a)),
          msg_request(MsgType::Cancel, 7, 16384, 16384),
          [] {
            auto m = msg_simple(MsgType::Port);
            m.port = 6881;
            return m;
          }(),
          msg_simple(MsgType::HaveAll),
          msg_simple(MsgType::HaveNone),
          msg_request(MsgType::Reject, 1, 2, 3),
          [] {
            auto m = msg_simple(MsgType::AllowedFast);
            m.index = 9;
            return m;
          }(),
          msg_extended(0, encode_ext_handshake(eh)),
          msg_metadata(3, MetadataMsg{1, 0, 1234, Bytes(50, 0x11)})};
}

}  // namespace

TEST_CASE("peer_wire_decodes_libtorrents_greeting") {
  auto hs = decode_handshake(kGreeting);
  REQUIRE(hs.ok());
  CHECK(hs->extended());
  CHECK(hs->fast());
  CHECK(hs->dht());
  CHECK(std::string(hs->peer_id.begin(), hs->peer_id.begin() + 8) == "-LT2000-");
  const Sha1 ih{0xa0, 0x17, 0xd6, 0x28, 0x1f, 0xd5, 0x12, 0x7f, 0x1f, 0x5c,
                0x51, 0xd1, 0x1b, 0x46, 0x86, 0xb8, 0x7e, 0x17, 0x9d, 0x86};
  CHECK(hs->info_hash == ih);
  auto peek = peek_info_hash(kGreeting.first(48));
  REQUIRE(peek.ok());
  CHECK(*peek == ih);
  Bytes again;
  encode_handshake(again, *hs);
  CHECK(again == Bytes(kGreeting.begin(), kGreeting.begin() + kHandshakeSize));

  const auto msgs = all_messages(kGreeting.subspan(kHandshakeSize));
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[0].type == MsgType::Extended);
  CHECK(msgs[0].ext_id == 0);
  auto eh = decode_ext_handshake(msgs[0].data);
  REQUIRE(eh);
  CHECK(eh->id_of("ut_metadata") == 2);
  CHECK(eh->id_of("ut_pex") == 1);
  CHECK(eh->id_of("lt_donthave") == 7);
  CHECK(eh->id_of("nothing") == 0);
  CHECK(eh->metadata_size == 187);
  CHECK(eh->client == "libtorrent/2.0.8.0");
  CHECK(eh->reqq == 2000);
  CHECK(msgs[1].type == MsgType::HaveAll);
  CHECK(msgs[2].type == MsgType::Unchoke);
  // Each message re-encodes to its bytes.
  Bytes all;
  for (const auto& m : msgs) encode_peer_message(all, m);
  CHECK(all == Bytes(kGreeting.begin() + kHandshakeSize, kGreeting.end()));
}

TEST_CASE("peer_wire_messages_round_trip_and_every_prefix_needs_more") {
  for (const auto& m : samples()) {
    CAPTURE(to_string(m.type));
    const Bytes b = encode_peer_message(m);
    auto r = decode_peer_message(b);
    REQUIRE(r.ok());
    CHECK(r->consumed == b.size());
    CHECK(encode_peer_message(r->msg) == b);
    CHECK(r->msg.index == m.index);
    CHECK(r->msg.begin == m.begin);
    CHECK(r->msg.length == m.length);
    CHECK(r->msg.data == m.data);
    for (std::size_t n = 0; n < b.size(); ++n) CHECK(decode_peer_message(ByteView(b).first(n)).need_more());
  }
  // The handshake: every prefix of the right protocol string needs more, a
  // wrong first byte is refused at once.
  Bytes hs;
  encode_handshake(hs, Handshake{});
  for (std::size_t n = 0; n < hs.size(); ++n) CHECK(decode_handshake(ByteView(hs).first(n)).need_more());
  CHECK(decode_handshake(as_bytes("GNUTELLA CONNECT/0.6")).error() == WireError::Malformed);
  CHECK(decode_handshake(as_bytes("\x13" "BitTorrent protocoX")).error() == WireError::Malformed);
  CHECK(peek_info_hash(as_bytes("GET / HTTP/1.1")).error() == WireError::Malformed);
}

TEST_CASE("peer_wire_split_at_every_point_gives_the_same_messages") {
  Bytes stream;
  for (const auto& m : samples()) encode_peer_message(stream, m);
  const auto whole = all_messages(stream);
  for (std::size_t chunk = 1; chunk <= 64; chunk *= 2) {
    CAPTURE(chunk);
    Bytes buf;
    std::vector<PeerMessage> got;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      const auto end = std::min(stream.size(), at + chunk);
      buf.insert(buf.end(), stream.begin() + static_cast<std::ptrdiff_t>(at), stream.begin() + static_cast<std::ptrdiff_t>(end));
      for (;;) {
        auto r = decode_peer_message(buf);
        if (!r.ok()) {
          REQUIRE(r.need_more());
          break;
        }
        got.push_back(r->msg);
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r->consumed));
      }
    }
    REQUIRE(got.size() == whole.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(encode_peer_message(got[i]) == encode_peer_message(whole[i]));
  }
}

TEST_CASE("peer_wire_refuses_wrong_sizes_and_oversized_lengths") {
  auto raw = [](std::uint32_t len, std::uint8_t id, std::size_t payload) {
    Bytes b;
    put_be32(b, len);
    b.push_back(id);
    b.resize(b.size() + payload, 0);
    return b;
  };
  CHECK(decode_peer_message(raw(2, 0, 1)).error() == WireError::Malformed);   // choke with a byte
  CHECK(decode_peer_message(raw(4, 4, 3)).error() == WireError::Malformed);   // short have
  CHECK(decode_peer_message(raw(12, 6, 11)).error() == WireError::Malformed); // short request
  CHECK(decode_peer_message(raw(8, 7, 7)).error() == WireError::Malformed);   // piece without its begin
  CHECK(decode_peer_message(raw(1, 20, 0)).error() == WireError::Malformed);  // extended without its id
  CHECK(decode_peer_message(raw(2, 9, 1)).error() == WireError::Malformed);   // short port
  // A length over the cap is refused before its bytes arrive.
  Bytes huge;
  put_be32(huge, 1u << 30);
  CHECK(decode_peer_message(huge).error() == WireError::TooLarge);
  CHECK(decode_peer_message(raw(200, 7, 0), 100).error() == WireError::TooLarge);
  // An id we do not know is carried whole (BEP 3: ignored by the caller).
  auto unknown = decode_peer_message(raw(4, 99, 3));
  REQUIRE(unknown.ok());
  CHECK(static_cast<int>(unknown->msg.type) == 99);
  CHECK(unknown->consumed == 8);
}

TEST_CASE("bitfields_have_exactly_their_bytes_and_no_spare_bits") {
  const std::vector<bool> have{true, false, true, true, false, false, false, false, true};
  const auto m = msg_bitfield(have);
  CHECK(m.data == Bytes{0xb0, 0x80});
  CHECK(decode_bitfield(m.data, 9) == have);
  CHECK_FALSE(decode_bitfield(m.data, 17));         // too short for 17 pieces
  CHECK_FALSE(decode_bitfield(m.data, 8));          // too long for 8
  CHECK_FALSE(decode_bitfield(Bytes{0xb0, 0xc0}, 9));  // a spare bit set
}

TEST_CASE("ut_metadata_messages_decode_and_refuse_what_bep_9_does_not_allow") {
  auto one = [](std::string_view dict, std::string_view tail = {}) {
    Bytes b(dict.begin(), dict.end());
    b.insert(b.end(), tail.begin(), tail.end());
    return decode_metadata_msg(b);
  };
  auto req = one("d8:msg_typei0e5:piecei2ee");
  REQUIRE(req);
  CHECK(req->type == 0);
  CHECK(req->piece == 2);
  auto data = one("d8:msg_typei1e5:piecei0e10:total_sizei5ee", "hello");
  REQUIRE(data);
  CHECK(data->total_size == 5);
  CHECK(data->data == Bytes{'h', 'e', 'l', 'l', 'o'});
  CHECK_FALSE(one("d8:msg_typei3e5:piecei0ee"));             // no such type
  CHECK_FALSE(one("d8:msg_typei0e5:piecei-1ee"));            // negative piece
  CHECK_FALSE(one("d5:piecei0ee"));                          // no type
  CHECK_FALSE(one("d8:msg_typei0e5:piecei0ee", "x"));        // a request with data
  CHECK_FALSE(one("d8:msg_typei1e5:piecei0ee", std::string(16385, 'x')));  // over a metadata piece
  CHECK_FALSE(one("i1e"));
  // Round trip through the extended message.
  const auto m = msg_metadata(3, MetadataMsg{1, 4, 100000, Bytes(16384, 1)});
  auto back = decode_peer_message(encode_peer_message(m));
  REQUIRE(back.ok());
  auto md = decode_metadata_msg(back->msg.data);
  REQUIRE(md);
  CHECK(md->piece == 4);
  CHECK(md->data.size() == 16384);
}
