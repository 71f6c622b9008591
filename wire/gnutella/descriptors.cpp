#include "wire/gnutella/descriptors.hpp"

#include <algorithm>
#include <cstring>

namespace sv::wire::gnutella {

std::string_view type_name(std::uint8_t type) {
  switch (static_cast<Type>(type)) {
    case Type::Ping: return "Ping";
    case Type::Pong: return "Pong";
    case Type::Bye: return "Bye";
    case Type::Qrp: return "QRP";
    case Type::Vendor: return "Vendor";
    case Type::StdVendor: return "StdVendor";
    case Type::Push: return "Push";
    case Type::Query: return "Query";
    case Type::QueryHit: return "QueryHit";
  }
  return "Unknown";
}

void encode_header(Bytes& out, const Header& h) {
  out.insert(out.end(), h.id.bytes.begin(), h.id.bytes.end());
  out.push_back(h.type);
  out.push_back(h.ttl);
  out.push_back(h.hops);
  put_le32(out, h.payload_length);
}

Bytes encode_descriptor(const Header& h, ByteView payload) {
  Bytes out;
  out.reserve(kHeaderSize + payload.size());
  Header hh = h;
  hh.payload_length = static_cast<std::uint32_t>(payload.size());
  encode_header(out, hh);
  put_bytes(out, payload);
  return out;
}

Result<Pong> decode_pong(ByteView p) {
  if (p.size() < 14) return WireError::Malformed;
  Pong pong;
  pong.port = get_le16(p.data());
  pong.ip = get_be32(p.data() + 2);
  pong.files_shared = get_le32(p.data() + 6);
  pong.kb_shared = get_le32(p.data() + 10);
  pong.extensions.assign(p.begin() + 14, p.end());
  return pong;
}

void encode_pong(Bytes& out, const Pong& p) {
  put_le16(out, p.port);
  put_be32(out, p.ip);
  put_le32(out, p.files_shared);
  put_le32(out, p.kb_shared);
  put_bytes(out, p.extensions);
}

bool decode_query_into(ByteView p, Query& q) {
  // MinSpeed + at least the criteria NUL.
  if (p.size() < 3) return false;
  q.min_speed = get_le16(p.data());
  auto begin = p.begin() + 2;
  auto nul = std::find(begin, p.end(), std::uint8_t{0});
  if (nul == p.end()) return false;
  // As chars: assign() from byte iterators would build a temporary string.
  q.criteria.assign(as_chars(p.subspan(2, static_cast<std::size_t>(nul - begin))));
  auto ext_begin = nul + 1;
  // Some servents terminate the extension block with a second NUL; keep the
  // bytes verbatim so a re-encode is byte-identical.
  q.extensions.assign(ext_begin, p.end());
  return true;
}

Result<Query> decode_query(ByteView p) {
  Query q;
  if (!decode_query_into(p, q)) return WireError::Malformed;
  return q;
}

void encode_query(Bytes& out, const Query& q) {
  put_le16(out, q.min_speed);
  put_string(out, q.criteria);
  out.push_back(0);
  put_bytes(out, q.extensions);
}

Result<ServentId> peek_query_hit_servent(ByteView p) {
  if (p.size() < kQueryHitMinSize) return WireError::Malformed;
  ServentId id;
  std::copy_n(p.end() - 16, 16, id.bytes.begin());
  return id;
}

bool decode_query_hit_into(ByteView p, QueryHit& h) {
  if (p.size() < kQueryHitMinSize) return false;
  const std::size_t n = p[0];
  h.port = get_le16(p.data() + 1);
  h.ip = get_be32(p.data() + 3);
  h.speed = get_le32(p.data() + 7);
  const std::size_t end = p.size() - 16;  // ServentID is the last 16 bytes
  std::copy_n(p.data() + end, 16, h.servent_id.bytes.begin());
  std::size_t pos = 11;
  // Elements are assigned, not made: a reused QueryHit keeps its storage.
  h.results.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (pos + 8 > end) return false;
    HitResult& r = h.results[i];
    r.index = get_le32(p.data() + pos);
    r.size = get_le32(p.data() + pos + 4);
    pos += 8;
    auto name_end = std::find(p.begin() + pos, p.begin() + end, std::uint8_t{0});
    if (name_end == p.begin() + end) return false;
    r.name.assign(as_chars(p.subspan(pos, static_cast<std::size_t>(name_end - (p.begin() + pos)))));
    pos = static_cast<std::size_t>(name_end - p.begin()) + 1;
    auto ext_end = std::find(p.begin() + pos, p.begin() + end, std::uint8_t{0});
    if (ext_end == p.begin() + end) return false;
    r.extensions.assign(p.begin() + pos, ext_end);
    pos = static_cast<std::size_t>(ext_end - p.begin()) + 1;
  }
  if (pos < end) {
    // Trailer: vendor code and open-data size are mandatory once present.
    if (end - pos < 5) return false;
    HitTrailer& t = h.trailer ? *h.trailer : h.trailer.emplace();
    std::copy_n(p.data() + pos, 4, t.vendor.begin());
    const std::size_t open = p[pos + 4];
    pos += 5;
    if (end - pos < open) return false;
    t.open_data.assign(p.begin() + pos, p.begin() + pos + open);
    pos += open;
    t.private_data.assign(p.begin() + pos, p.begin() + end);
  } else {
    h.trailer.reset();
  }
  return true;
}

Result<QueryHit> decode_query_hit(ByteView p) {
  QueryHit h;
  if (!decode_query_hit_into(p, h)) return WireError::Malformed;
  return h;
}

void encode_query_hit(Bytes& out, const QueryHit& h) {
  out.push_back(static_cast<std::uint8_t>(h.results.size()));
  put_le16(out, h.port);
  put_be32(out, h.ip);
  put_le32(out, h.speed);
  for (const auto& r : h.results) {
    put_le32(out, r.index);
    put_le32(out, r.size);
    put_string(out, r.name);
    out.push_back(0);
    put_bytes(out, r.extensions);
    out.push_back(0);
  }
  if (h.trailer) {
    put_bytes(out, h.trailer->vendor);
    out.push_back(static_cast<std::uint8_t>(h.trailer->open_data.size()));
    put_bytes(out, h.trailer->open_data);
    put_bytes(out, h.trailer->private_data);
  }
  put_bytes(out, h.servent_id.bytes);
}

Result<Push> decode_push(ByteView p) {
  if (p.size() < kPushSize) return WireError::Malformed;
  Push push;
  std::copy_n(p.data(), 16, push.servent_id.bytes.begin());
  push.file_index = get_le32(p.data() + 16);
  push.ip = get_be32(p.data() + 20);
  push.port = get_le16(p.data() + 24);
  push.extensions.assign(p.begin() + 26, p.end());
  return push;
}

void encode_push(Bytes& out, const Push& p) {
  put_bytes(out, p.servent_id.bytes);
  put_le32(out, p.file_index);
  put_be32(out, p.ip);
  put_le16(out, p.port);
  put_bytes(out, p.extensions);
}

std::string ipv4_to_string(std::uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." +
         std::to_string((ip >> 8) & 255) + "." + std::to_string(ip & 255);
}

std::optional<std::uint32_t> ipv4_from_string(std::string_view s) {
  std::uint32_t ip = 0;
  int parts = 0;
  std::size_t i = 0;
  while (parts < 4) {
    if (i >= s.size() || s[i] < '0' || s[i] > '9') return std::nullopt;
    std::uint32_t v = 0;
    std::size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && digits < 4) {
      v = v * 10 + static_cast<std::uint32_t>(s[i] - '0');
      ++i;
      ++digits;
    }
    if (v > 255 || digits > 3) return std::nullopt;
    ip = ip << 8 | v;
    ++parts;
    if (parts < 4) {
      if (i >= s.size() || s[i] != '.') return std::nullopt;
      ++i;
    }
  }
  if (i != s.size()) return std::nullopt;
  return ip;
}

}  // namespace sv::wire::gnutella
