#include "wire/bt/peer.hpp"

#include <algorithm>

namespace sv::wire::bt {

namespace {

void put_be16(Bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

}  // namespace

Result<Handshake> decode_handshake(ByteView in) {
  // The fixed prefix is checked as far as it arrived, so a non-BitTorrent
  // peer is refused on its first bytes.
  const std::size_t n = std::min<std::size_t>(in.size(), 20);
  if (n >= 1 && in[0] != kProtocol.size()) return WireError::Malformed;
  for (std::size_t i = 1; i < n; ++i) {
    if (in[i] != static_cast<std::uint8_t>(kProtocol[i - 1])) return WireError::Malformed;
  }
  if (in.size() < kHandshakeSize) return WireError::NeedMore;
  Handshake h;
  std::copy_n(in.begin() + 20, 8, h.reserved.begin());
  std::copy_n(in.begin() + 28, 20, h.info_hash.begin());
  std::copy_n(in.begin() + 48, 20, h.peer_id.begin());
  return h;
}

Result<Sha1> peek_info_hash(ByteView in) {
  if (in.size() < 48) {
    auto r = decode_handshake(in);
    return r.ok() ? WireError::NeedMore : r.error();
  }
  Bytes padded(in.begin(), in.begin() + 48);
  padded.resize(kHandshakeSize);
  auto h = decode_handshake(padded);
  if (!h) return h.error();
  return h->info_hash;
}

void encode_handshake(Bytes& out, const Handshake& h) {
  out.push_back(static_cast<std::uint8_t>(kProtocol.size()));
  put_string(out, kProtocol);
  out.insert(out.end(), h.reserved.begin(), h.reserved.end());
  out.insert(out.end(), h.info_hash.begin(), h.info_hash.end());
  out.insert(out.end(), h.peer_id.begin(), h.peer_id.end());
}

std::string_view to_string(MsgType t) {
  switch (t) {
    case MsgType::Choke: return "choke";
    case MsgType::Unchoke: return "unchoke";
    case MsgType::Interested: return "interested";
    case MsgType::NotInterested: return "not interested";
    case MsgType::Have: return "have";
    case MsgType::Bitfield: return "bitfield";
    case MsgType::Request: return "request";
    case MsgType::Piece: return "piece";
    case MsgType::Cancel: return "cancel";
    case MsgType::Port: return "port";
    case MsgType::Suggest: return "suggest piece";
    case MsgType::HaveAll: return "have all";
    case MsgType::HaveNone: return "have none";
    case MsgType::Reject: return "reject request";
    case MsgType::AllowedFast: return "allowed fast";
    case MsgType::Extended: return "extended";
    case MsgType::KeepAlive: return "keep-alive";
  }
  return "unknown";
}

Result<Framed> decode_peer_message(ByteView in, std::size_t max_length) {
  if (in.size() < 4) return WireError::NeedMore;
  const std::uint32_t len = get_be32(in.data());
  if (len > max_length) return WireError::TooLarge;
  if (in.size() - 4 < len) return WireError::NeedMore;
  Framed f{{}, 4 + static_cast<std::size_t>(len)};
  if (len == 0) return f;  // keep-alive
  PeerMessage& m = f.msg;
  m.type = static_cast<MsgType>(in[4]);
  const ByteView p = in.subspan(5, len - 1);
  auto fixed = [&](std::size_t n) { return p.size() == n; };
  switch (m.type) {
    case MsgType::Choke:
    case MsgType::Unchoke:
    case MsgType::Interested:
    case MsgType::NotInterested:
    case MsgType::HaveAll:
    case MsgType::HaveNone:
      if (!fixed(0)) return WireError::Malformed;
      break;
    case MsgType::Have:
    case MsgType::Suggest:
    case MsgType::AllowedFast:
      if (!fixed(4)) return WireError::Malformed;
      m.index = get_be32(p.data());
      break;
    case MsgType::Request:
    case MsgType::Cancel:
    case MsgType::Reject:
      if (!fixed(12)) return WireError::Malformed;
      m.index = get_be32(p.data());
      m.begin = get_be32(p.data() + 4);
      m.length = get_be32(p.data() + 8);
      break;
    case MsgType::Piece:
      if (p.size() < 8) return WireError::Malformed;
      m.index = get_be32(p.data());
      m.begin = get_be32(p.data() + 4);
      m.data.assign(p.begin() + 8, p.end());
      m.length = static_cast<std::uint32_t>(m.data.size());
      break;
    case MsgType::Port:
      if (!fixed(2)) return WireError::Malformed;
      m.port = static_cast<std::uint16_t>(p[0] << 8 | p[1]);
      break;
    case MsgType::Extended:
      if (p.empty()) return WireError::Malformed;
      m.ext_id = p[0];
      m.data.assign(p.begin() + 1, p.end());
      break;
    case MsgType::Bitfield:
    default:
      m.data.assign(p.begin(), p.end());
      break;
  }
  return f;
}

void encode_peer_message(Bytes& out, const PeerMessage& m) {
  if (m.type == MsgType::KeepAlive) {
    put_be32(out, 0);
    return;
  }
  Bytes p;
  switch (m.type) {
    case MsgType::Have:
    case MsgType::Suggest:
    case MsgType::AllowedFast:
      put_be32(p, m.index);
      break;
    case MsgType::Request:
    case MsgType::Cancel:
    case MsgType::Reject:
      put_be32(p, m.index);
      put_be32(p, m.begin);
      put_be32(p, m.length);
      break;
    case MsgType::Piece:
      put_be32(p, m.index);
      put_be32(p, m.begin);
      put_bytes(p, m.data);
      break;
    case MsgType::Port:
      put_be16(p, m.port);
      break;
    case MsgType::Extended:
      p.push_back(m.ext_id);
      put_bytes(p, m.data);
      break;
    case MsgType::Choke:
    case MsgType::Unchoke:
    case MsgType::Interested:
    case MsgType::NotInterested:
    case MsgType::HaveAll:
    case MsgType::HaveNone:
      break;
    default:  // bitfield, unknown ids: their bytes
      put_bytes(p, m.data);
      break;
  }
  put_be32(out, static_cast<std::uint32_t>(p.size() + 1));
  out.push_back(static_cast<std::uint8_t>(m.type));
  put_bytes(out, p);
}

Bytes encode_peer_message(const PeerMessage& m) {
  Bytes out;
  encode_peer_message(out, m);
  return out;
}

PeerMessage msg_simple(MsgType t) {
  PeerMessage m;
  m.type = t;
  return m;
}

PeerMessage msg_have(std::uint32_t index) {
  PeerMessage m = msg_simple(MsgType::Have);
  m.index = index;
  return m;
}

PeerMessage msg_request(MsgType t, std::uint32_t index, std::uint32_t begin, std::uint32_t length) {
  PeerMessage m = msg_simple(t);
  m.index = index;
  m.begin = begin;
  m.length = length;
  return m;
}

PeerMessage msg_piece(std::uint32_t index, std::uint32_t begin, Bytes block) {
  PeerMessage m = msg_simple(MsgType::Piece);
  m.index = index;
  m.begin = begin;
  m.length = static_cast<std::uint32_t>(block.size());
  m.data = std::move(block);
  return m;
}

PeerMessage msg_bitfield(const std::vector<bool>& have) {
  PeerMessage m = msg_simple(MsgType::Bitfield);
  m.data.assign((have.size() + 7) / 8, 0);
  for (std::size_t i = 0; i < have.size(); ++i) {
    if (have[i]) m.data[i / 8] |= static_cast<std::uint8_t>(0x80 >> (i % 8));
  }
  return m;
}

PeerMessage msg_extended(std::uint8_t ext_id, const Value& dict, ByteView trailing) {
  PeerMessage m = msg_simple(MsgType::Extended);
  m.ext_id = ext_id;
  encode_bencode(m.data, dict);
  put_bytes(m.data, trailing);
  return m;
}

std::optional<std::vector<bool>> decode_bitfield(ByteView bits, std::size_t pieces) {
  if (bits.size() != (pieces + 7) / 8) return std::nullopt;
  std::vector<bool> have(pieces);
  for (std::size_t i = 0; i < bits.size() * 8; ++i) {
    const bool set = (bits[i / 8] & (0x80 >> (i % 8))) != 0;
    if (i < pieces) {
      have[i] = set;
    } else if (set) {
      return std::nullopt;  // a spare bit
    }
  }
  return have;
}

std::uint8_t ExtHandshake::id_of(std::string_view name) const {
  for (const auto& [n, id] : m) {
    if (n == name) return id;
  }
  return 0;
}

std::optional<ExtHandshake> decode_ext_handshake(ByteView payload) {
  BencodeLimits limits;
  limits.max_depth = 8;
  limits.max_size = 64 * 1024;
  auto r = decode_bencode(payload, limits);
  const auto* d = std::get_if<Decoded>(&r);
  if (!d || !d->value.dict()) return std::nullopt;
  const Value& v = d->value;
  ExtHandshake h;
  if (const Value* m = v.find("m")) {
    if (!m->dict()) return std::nullopt;
    for (const auto& [name, id] : *m->dict()) {
      // id 0 means "disabled" (BEP 10); ids past a byte are not ids.
      if (id.integer() && *id.integer() > 0 && *id.integer() < 256) {
        h.m.emplace_back(name, static_cast<std::uint8_t>(*id.integer()));
      }
    }
  }
  if (const Value* s = v.find("metadata_size"); s && s->integer() && *s->integer() >= 0) h.metadata_size = *s->integer();
  if (const Value* s = v.find("v"); s && s->string()) h.client = *s->string();
  if (const Value* s = v.find("p"); s && s->integer() && *s->integer() > 0 && *s->integer() < 65536) {
    h.port = static_cast<std::uint16_t>(*s->integer());
  }
  if (const Value* s = v.find("reqq"); s && s->integer() && *s->integer() > 0) h.reqq = *s->integer();
  return h;
}

Value encode_ext_handshake(const ExtHandshake& h) {
  std::vector<std::pair<std::string, Value>> m;
  for (const auto& [name, id] : h.m) m.emplace_back(name, std::int64_t{id});
  std::vector<std::pair<std::string, Value>> d{{"m", make_dict(std::move(m))}};
  if (h.metadata_size) d.emplace_back("metadata_size", *h.metadata_size);
  if (!h.client.empty()) d.emplace_back("v", h.client);
  if (h.port != 0) d.emplace_back("p", std::int64_t{h.port});
  if (h.reqq) d.emplace_back("reqq", *h.reqq);
  return make_dict(std::move(d));
}

std::optional<MetadataMsg> decode_metadata_msg(ByteView payload) {
  BencodeLimits limits;
  limits.max_depth = 4;
  limits.max_size = payload.size();
  auto r = decode_bencode(payload, limits);
  const auto* d = std::get_if<Decoded>(&r);
  if (!d || !d->value.dict()) return std::nullopt;
  const Value* type = d->value.find("msg_type");
  const Value* piece = d->value.find("piece");
  if (!type || !type->integer() || *type->integer() < 0 || *type->integer() > 2) return std::nullopt;
  if (!piece || !piece->integer() || *piece->integer() < 0) return std::nullopt;
  MetadataMsg m;
  m.type = static_cast<int>(*type->integer());
  m.piece = *piece->integer();
  if (const Value* t = d->value.find("total_size"); t && t->integer() && *t->integer() >= 0) m.total_size = *t->integer();
  m.data.assign(payload.begin() + static_cast<std::ptrdiff_t>(d->consumed), payload.end());
  if (m.type != 1 && !m.data.empty()) return std::nullopt;
  if (m.data.size() > kMetadataPiece) return std::nullopt;
  return m;
}

PeerMessage msg_metadata(std::uint8_t ext_id, const MetadataMsg& m) {
  std::vector<std::pair<std::string, Value>> d{{"msg_type", std::int64_t{m.type}}, {"piece", m.piece}};
  if (m.total_size) d.emplace_back("total_size", *m.total_size);
  return msg_extended(ext_id, make_dict(std::move(d)), m.data);
}

}  // namespace sv::wire::bt
