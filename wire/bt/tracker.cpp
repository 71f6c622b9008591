#include "wire/bt/tracker.hpp"

#include "wire/common/base32.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include <fmt/format.h>

namespace sv::wire::bt {

namespace {

std::uint64_t get_be64(const std::uint8_t* p) {
  return static_cast<std::uint64_t>(get_be32(p)) << 32 | get_be32(p + 4);
}
void put_be64(Bytes& out, std::uint64_t v) {
  put_be32(out, static_cast<std::uint32_t>(v >> 32));
  put_be32(out, static_cast<std::uint32_t>(v));
}
void put_be16(Bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

template <typename T>
bool parse_uint(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<Sha1> to_sha1(std::string_view s) {
  if (s.size() != 20) return std::nullopt;
  Sha1 h;
  std::copy(s.begin(), s.end(), h.begin());
  return h;
}

// Splits "a=1&b=2" and calls fn(name, decoded value) for each pair.
template <typename Fn>
bool each_param(std::string_view q, Fn fn) {
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return false;
    fn(pair.substr(0, eq), *value);
  }
  return true;
}

}  // namespace

std::string_view to_string(AnnounceEvent e) {
  switch (e) {
    case AnnounceEvent::Completed: return "completed";
    case AnnounceEvent::Started: return "started";
    case AnnounceEvent::Stopped: return "stopped";
    case AnnounceEvent::None: break;
  }
  return "";
}

std::string percent_encode(ByteView b) {
  std::string s;
  for (std::uint8_t c : b) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      s += static_cast<char>(c);
    } else {
      s += fmt::format("%{:02X}", c);
    }
  }
  return s;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi << 4 | lo);
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string to_hex(const Sha1& h) {
  std::string s;
  for (auto b : h) s += fmt::format("{:02x}", b);
  return s;
}

std::optional<Sha1> sha1_from_hex(std::string_view hex) {
  if (hex.size() != 40) return std::nullopt;
  Sha1 h;
  for (std::size_t i = 0; i < 20; ++i) {
    const int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    h[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return h;
}

std::string announce_url(std::string_view announce, const Announce& a) {
  std::string u(announce);
  u += announce.find('?') == std::string_view::npos ? '?' : '&';
  u += "info_hash=" + percent_encode(a.info_hash) + "&peer_id=" + percent_encode(a.peer_id);
  u += fmt::format("&port={}&uploaded={}&downloaded={}&left={}&compact=1&numwant={}&key={:08x}", a.port, a.uploaded,
                   a.downloaded, a.left, a.numwant, a.key);
  if (a.event != AnnounceEvent::None) u += fmt::format("&event={}", to_string(a.event));
  return u;
}

std::optional<Announce> decode_announce_query(std::string_view query) {
  Announce a;
  bool hash = false, id = false, port = false;
  bool ok = each_param(query, [&](std::string_view name, const std::string& v) {
    if (name == "info_hash") {
      if (auto h = to_sha1(v)) {
        a.info_hash = *h;
        hash = true;
      }
    } else if (name == "peer_id") {
      if (auto h = to_sha1(v)) {
        std::copy(h->begin(), h->end(), a.peer_id.begin());
        id = true;
      }
    } else if (name == "port") {
      port = parse_uint(v, a.port) && a.port != 0;
    } else if (name == "uploaded") {
      parse_uint(v, a.uploaded);
    } else if (name == "downloaded") {
      parse_uint(v, a.downloaded);
    } else if (name == "left") {
      parse_uint(v, a.left);
    } else if (name == "numwant") {
      parse_uint(v, a.numwant);
    } else if (name == "event") {
      if (v == "started") a.event = AnnounceEvent::Started;
      if (v == "completed") a.event = AnnounceEvent::Completed;
      if (v == "stopped") a.event = AnnounceEvent::Stopped;
    }
  });
  if (!ok || !hash || !id || !port) return std::nullopt;
  return a;
}

std::vector<PeerAddr> decode_compact_peers(ByteView b) {
  std::vector<PeerAddr> out;
  for (std::size_t i = 0; i + 6 <= b.size(); i += 6) {
    out.push_back({get_be32(b.data() + i), static_cast<std::uint16_t>(b[i + 4] << 8 | b[i + 5])});
  }
  return out;
}

void encode_compact_peers(Bytes& out, const std::vector<PeerAddr>& peers) {
  for (const auto& p : peers) {
    put_be32(out, p.ip);
    put_be16(out, p.port);
  }
}

std::optional<AnnounceReply> decode_announce_reply(ByteView body) {
  BencodeLimits limits;
  limits.max_depth = 8;
  auto r = decode_bencode(body, limits);
  const auto* d = std::get_if<Decoded>(&r);
  if (!d || !d->value.dict()) return std::nullopt;
  const Value& v = d->value;
  AnnounceReply a;
  if (const Value* f = v.find("failure reason")) {
    a.failure = f->string() ? *f->string() : "failure";
    if (a.failure.empty()) a.failure = "failure";
    return a;
  }
  auto u32 = [&](const char* key, std::uint32_t& out) {
    if (const Value* x = v.find(key); x && x->integer() && *x->integer() >= 0) {
      out = static_cast<std::uint32_t>(std::min<std::int64_t>(*x->integer(), UINT32_MAX));
    }
  };
  u32("interval", a.interval);
  u32("min interval", a.min_interval);
  u32("complete", a.complete);
  u32("incomplete", a.incomplete);
  const Value* peers = v.find("peers");
  if (!peers) return std::nullopt;
  if (const auto* s = peers->string()) {
    a.peers = decode_compact_peers(as_bytes(*s));
  } else if (const auto* l = peers->list()) {
    for (const Value& p : *l) {
      const Value* ip = p.find("ip");
      const Value* port = p.find("port");
      if (!ip || !ip->string() || !port || !port->integer() || *port->integer() <= 0 || *port->integer() > 65535) continue;
      // Dotted IPv4 only (names and IPv6 are skipped).
      unsigned b[4];
      char tail = 0;
      if (std::sscanf(ip->string()->c_str(), "%u.%u.%u.%u%c", &b[0], &b[1], &b[2], &b[3], &tail) != 4) continue;
      if (b[0] > 255 || b[1] > 255 || b[2] > 255 || b[3] > 255) continue;
      a.peers.push_back({b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3], static_cast<std::uint16_t>(*port->integer())});
    }
  } else {
    return std::nullopt;
  }
  return a;
}

Bytes encode_announce_reply(const AnnounceReply& r, bool compact) {
  if (!r.failure.empty()) return encode_bencode(Value(make_dict({{"failure reason", r.failure}})));
  std::vector<std::pair<std::string, Value>> d{{"interval", std::int64_t{r.interval}},
                                               {"complete", std::int64_t{r.complete}},
                                               {"incomplete", std::int64_t{r.incomplete}}};
  if (r.min_interval) d.emplace_back("min interval", std::int64_t{r.min_interval});
  if (compact) {
    Bytes peers;
    encode_compact_peers(peers, r.peers);
    d.emplace_back("peers", std::string(as_chars(peers)));
  } else {
    List peers;
    for (const auto& p : r.peers) {
      peers.emplace_back(make_dict({{"ip", fmt::format("{}.{}.{}.{}", p.ip >> 24, (p.ip >> 16) & 255, (p.ip >> 8) & 255, p.ip & 255)},
                                    {"port", std::int64_t{p.port}}}));
    }
    d.emplace_back("peers", std::move(peers));
  }
  return encode_bencode(Value(make_dict(std::move(d))));
}

std::optional<std::string> scrape_url(std::string_view announce) {
  const auto q = announce.find('?');
  const std::string_view path = announce.substr(0, q);
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos || path.substr(slash + 1).substr(0, 8) != "announce") return std::nullopt;
  std::string s(announce.substr(0, slash + 1));
  s += "scrape";
  s += path.substr(slash + 1 + 8);
  if (q != std::string_view::npos) s += announce.substr(q);
  return s;
}

Bytes encode_scrape_reply(const std::vector<ScrapeEntry>& files) {
  std::vector<std::pair<std::string, Value>> d;
  for (const auto& f : files) {
    d.emplace_back(std::string(f.info_hash.begin(), f.info_hash.end()),
                   make_dict({{"complete", std::int64_t{f.complete}},
                              {"downloaded", std::int64_t{f.downloaded}},
                              {"incomplete", std::int64_t{f.incomplete}}}));
  }
  return encode_bencode(Value(make_dict({{"files", make_dict(std::move(d))}})));
}

std::optional<std::vector<ScrapeEntry>> decode_scrape_reply(ByteView body) {
  auto r = decode_bencode(body);
  const auto* d = std::get_if<Decoded>(&r);
  if (!d) return std::nullopt;
  const Value* files = d->value.find("files");
  if (!files || !files->dict()) return std::nullopt;
  std::vector<ScrapeEntry> out;
  for (const auto& kv : *files->dict()) {
    const Value& v = kv.second;
    auto h = to_sha1(kv.first);
    if (!h || !v.dict()) continue;
    ScrapeEntry e{*h, 0, 0, 0};
    auto u32 = [&](const char* key, std::uint32_t& o) {
      if (const Value* x = v.find(key); x && x->integer() && *x->integer() >= 0) {
        o = static_cast<std::uint32_t>(std::min<std::int64_t>(*x->integer(), UINT32_MAX));
      }
    };
    u32("complete", e.complete);
    u32("downloaded", e.downloaded);
    u32("incomplete", e.incomplete);
    out.push_back(e);
  }
  return out;
}

Result<UdpPacket> decode_udp_request(ByteView in) {
  if (in.size() < 16) return WireError::Malformed;
  UdpPacket p;
  p.connection_id = get_be64(in.data());
  const std::uint32_t action = get_be32(in.data() + 8);
  p.transaction = get_be32(in.data() + 12);
  switch (action) {
    case 0:
      if (p.connection_id != kUdpProtocolId) return WireError::Malformed;
      p.action = UdpAction::Connect;
      return p;
    case 1: {
      if (in.size() < 98) return WireError::Malformed;
      p.action = UdpAction::Announce;
      Announce& a = p.announce;
      std::copy_n(in.begin() + 16, 20, a.info_hash.begin());
      std::copy_n(in.begin() + 36, 20, a.peer_id.begin());
      a.downloaded = get_be64(in.data() + 56);
      a.left = get_be64(in.data() + 64);
      a.uploaded = get_be64(in.data() + 72);
      const std::uint32_t ev = get_be32(in.data() + 80);
      if (ev > 3) return WireError::Malformed;
      a.event = static_cast<AnnounceEvent>(ev);
      a.ip = get_be32(in.data() + 84);
      a.key = get_be32(in.data() + 88);
      a.numwant = get_be32(in.data() + 92);  // 0xFFFFFFFF (-1): the tracker's default
      a.port = static_cast<std::uint16_t>(in[96] << 8 | in[97]);
      return p;
    }
    case 2: {
      const std::size_t n = (in.size() - 16) / 20;
      if (n == 0 || n > 74 || (in.size() - 16) % 20 != 0) return WireError::Malformed;
      p.action = UdpAction::Scrape;
      for (std::size_t i = 0; i < n; ++i) {
        Sha1 h;
        std::copy_n(in.begin() + 16 + static_cast<std::ptrdiff_t>(i * 20), 20, h.begin());
        p.scrape.push_back(h);
      }
      return p;
    }
    default:
      return WireError::Unsupported;
  }
}

Bytes encode_udp_request(const UdpPacket& p) {
  Bytes out;
  put_be64(out, p.action == UdpAction::Connect ? kUdpProtocolId : p.connection_id);
  put_be32(out, static_cast<std::uint32_t>(p.action));
  put_be32(out, p.transaction);
  if (p.action == UdpAction::Announce) {
    const Announce& a = p.announce;
    out.insert(out.end(), a.info_hash.begin(), a.info_hash.end());
    out.insert(out.end(), a.peer_id.begin(), a.peer_id.end());
    put_be64(out, a.downloaded);
    put_be64(out, a.left);
    put_be64(out, a.uploaded);
    put_be32(out, static_cast<std::uint32_t>(a.event));
    put_be32(out, a.ip);
    put_be32(out, a.key);
    put_be32(out, a.numwant);
    put_be16(out, a.port);
  } else if (p.action == UdpAction::Scrape) {
    for (const auto& h : p.scrape) out.insert(out.end(), h.begin(), h.end());
  }
  return out;
}

Result<UdpPacket> decode_udp_response(ByteView in) {
  if (in.size() < 8) return WireError::Malformed;
  UdpPacket p;
  const std::uint32_t action = get_be32(in.data());
  p.transaction = get_be32(in.data() + 4);
  switch (action) {
    case 0:
      if (in.size() < 16) return WireError::Malformed;
      p.action = UdpAction::Connect;
      p.connection_id = get_be64(in.data() + 8);
      return p;
    case 1:
      if (in.size() < 20) return WireError::Malformed;
      p.action = UdpAction::Announce;
      p.reply.interval = get_be32(in.data() + 8);
      p.reply.incomplete = get_be32(in.data() + 12);
      p.reply.complete = get_be32(in.data() + 16);
      p.reply.peers = decode_compact_peers(in.subspan(20));
      return p;
    case 2:
      p.action = UdpAction::Scrape;
      for (std::size_t at = 8; at + 12 <= in.size(); at += 12) {
        p.scraped.push_back({{}, get_be32(in.data() + at), get_be32(in.data() + at + 4), get_be32(in.data() + at + 8)});
      }
      return p;
    case 3:
      p.action = UdpAction::Error;
      p.message.assign(reinterpret_cast<const char*>(in.data() + 8), in.size() - 8);
      return p;
    default:
      return WireError::Unsupported;
  }
}

Bytes encode_udp_response(const UdpPacket& p) {
  Bytes out;
  put_be32(out, static_cast<std::uint32_t>(p.action));
  put_be32(out, p.transaction);
  switch (p.action) {
    case UdpAction::Connect: put_be64(out, p.connection_id); break;
    case UdpAction::Announce:
      put_be32(out, p.reply.interval);
      put_be32(out, p.reply.incomplete);
      put_be32(out, p.reply.complete);
      encode_compact_peers(out, p.reply.peers);
      break;
    case UdpAction::Scrape:
      for (const auto& s : p.scraped) {
        put_be32(out, s.complete);
        put_be32(out, s.downloaded);
        put_be32(out, s.incomplete);
      }
      break;
    case UdpAction::Error: put_string(out, p.message); break;
  }
  return out;
}

std::optional<Magnet> decode_magnet(std::string_view uri) {
  constexpr std::string_view kPrefix = "magnet:?";
  if (uri.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  Magnet m;
  bool have = false;
  bool ok = each_param(uri.substr(kPrefix.size()), [&](std::string_view name, const std::string& v) {
    if (name == "xt" && v.starts_with("urn:btih:")) {
      const std::string_view h = std::string_view(v).substr(9);
      auto sha = h.size() == 40 ? sha1_from_hex(h) : base32_decode_sha1(h);
      if (sha) {
        m.info_hash = *sha;
        have = true;
      }
    } else if (name == "dn") {
      m.name = v;
    } else if (name == "tr") {
      m.trackers.push_back(v);
    } else if (name == "x.pe") {
      m.peers.push_back(v);
    }
  });
  if (!ok || !have) return std::nullopt;
  return m;
}

std::string encode_magnet(const Magnet& m) {
  std::string s = "magnet:?xt=urn:btih:" + to_hex(m.info_hash);
  if (!m.name.empty()) s += "&dn=" + percent_encode(as_bytes(m.name));
  for (const auto& t : m.trackers) s += "&tr=" + percent_encode(as_bytes(t));
  for (const auto& p : m.peers) s += "&x.pe=" + percent_encode(as_bytes(p));
  return s;
}

}  // namespace sv::wire::bt
