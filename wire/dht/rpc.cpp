#include "wire/dht/rpc.hpp"

#include <algorithm>

namespace sv::wire::dht {

namespace {

// Room for n more bytes at the end of out (the encoder reserved the whole
// datagram: no reallocation), written through the pointer returned.
std::uint8_t* grow(Bytes& out, std::size_t n) {
  const std::size_t at = out.size();
  out.resize(at + n);
  return out.data() + at;
}

void write_be(std::uint8_t* p, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

void put_be16(Bytes& out, std::uint16_t v) { write_be(grow(out, 2), v, 2); }

void put_be32(Bytes& out, std::uint32_t v) { write_be(grow(out, 4), v, 4); }

void put_be64(Bytes& out, std::uint64_t v) { write_be(grow(out, 8), v, 8); }

void put_id(Bytes& out, const NodeId& id) { std::copy(id.begin(), id.end(), grow(out, id.size())); }

// Node: id (20), IPv4 (4), port (2), in one write.
void put_node(Bytes& out, const NodeRef& n) {
  std::uint8_t* p = grow(out, 26);
  std::copy(n.id.begin(), n.id.end(), p);
  write_be(p + 20, n.ip, 4);
  write_be(p + 24, n.port, 2);
}

void put_nodes(Bytes& out, const std::vector<NodeRef>& nodes) {
  const std::size_t n = std::min(nodes.size(), kMaxNodes);
  out.push_back(static_cast<std::uint8_t>(n));
  for (std::size_t i = 0; i < n; ++i) put_node(out, nodes[i]);
}

void put_value(Bytes& out, const Bytes& v) {
  const std::size_t n = std::min(v.size(), kMaxValue);
  put_be16(out, static_cast<std::uint16_t>(n));
  out.insert(out.end(), v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
}

// Bounds-checked reading of one datagram: any read past the end marks it
// failed (Malformed), and later reads return zeros.
class Reader {
 public:
  explicit Reader(ByteView b) : b_(b) {}
  bool failed() const { return failed_; }
  bool at_end() const { return at_ == b_.size(); }
  std::uint8_t u8() { return take(1) ? b_[at_ - 1] : 0; }
  std::uint16_t be16() {
    if (!take(2)) return 0;
    return static_cast<std::uint16_t>(b_[at_ - 2] << 8 | b_[at_ - 1]);
  }
  std::uint32_t be32() { return take(4) ? get_be32(&b_[at_ - 4]) : 0; }
  std::uint64_t be64() {
    const std::uint64_t hi = be32();
    return hi << 32 | be32();
  }
  NodeId id() {
    NodeId out{};
    if (take(out.size())) std::copy(b_.begin() + static_cast<std::ptrdiff_t>(at_ - out.size()), b_.begin() + static_cast<std::ptrdiff_t>(at_), out.begin());
    return out;
  }
  NodeRef node() {
    NodeRef n;
    n.id = id();
    n.ip = be32();
    n.port = be16();
    return n;
  }
  std::vector<NodeRef> nodes() {
    const std::size_t n = u8();
    if (n > kMaxNodes) failed_ = true;
    std::vector<NodeRef> out;
    if (!failed_) out.reserve(n);
    for (std::size_t i = 0; i < n && !failed_; ++i) out.push_back(node());
    return out;
  }
  // false: too large (the caller says TooLarge)
  bool value(Bytes& out) {
    const std::size_t n = be16();
    if (n > kMaxValue) return false;
    if (take(n)) out.assign(b_.begin() + static_cast<std::ptrdiff_t>(at_ - n), b_.begin() + static_cast<std::ptrdiff_t>(at_));
    return true;
  }
  bool flag() {  // a byte that must be 0 or 1
    const std::uint8_t v = u8();
    if (v > 1) failed_ = true;
    return v == 1;
  }

 private:
  bool take(std::size_t n) {
    if (failed_ || b_.size() - at_ < n) {
      failed_ = true;
      return false;
    }
    at_ += n;
    return true;
  }
  ByteView b_;
  std::size_t at_ = 0;
  bool failed_ = false;
};

bool known_type(std::uint8_t t) { return (t >= 0x01 && t <= 0x08) || t == 0x7F; }

void encode_body(Bytes& out, const Message& m) {
  switch (m.type) {
    case Type::Ping:
    case Type::Notify:
      break;
    case Type::FindNode:
      if (!m.response) {
        put_id(out, m.key);
      } else {
        out.push_back(m.owner ? 1 : 0);
        put_nodes(out, m.nodes);
      }
      break;
    case Type::Neighbours:
      if (m.response) {
        out.push_back(m.predecessor ? 1 : 0);
        if (m.predecessor) put_node(out, *m.predecessor);
        put_nodes(out, m.nodes);
      }
      break;
    case Type::Store:
      if (!m.response) {
        put_id(out, m.key);
        put_be32(out, m.lifetime);
        put_value(out, m.values.empty() ? Bytes{} : m.values.front());
      } else {
        out.push_back(static_cast<std::uint8_t>(m.status));
      }
      break;
    case Type::Get:
      if (!m.response) {
        put_id(out, m.key);
      } else {
        const std::size_t n = std::min<std::size_t>(m.values.size(), 255);
        out.push_back(static_cast<std::uint8_t>(n));
        for (std::size_t i = 0; i < n; ++i) put_value(out, m.values[i]);
        put_nodes(out, m.nodes);
      }
      break;
    case Type::Gossip: {
      const std::size_t e = std::min<std::size_t>(m.entries.size(), 255);
      out.push_back(static_cast<std::uint8_t>(e));
      for (std::size_t i = 0; i < e; ++i) {
        put_node(out, m.entries[i].node);
        put_be32(out, m.entries[i].heartbeat);
        put_be16(out, m.entries[i].rtt_ms);
      }
      const std::size_t t = std::min<std::size_t>(m.tuples.size(), 255);
      out.push_back(static_cast<std::uint8_t>(t));
      for (std::size_t i = 0; i < t; ++i) {
        put_id(out, m.tuples[i].key);
        put_node(out, m.tuples[i].home);
      }
      break;
    }
    case Type::Leave:
      if (!m.response) put_nodes(out, m.nodes);
      break;
    case Type::Error:
      out.push_back(static_cast<std::uint8_t>(m.error));
      break;
  }
}

Bytes encode_once(const Message& m) {
  Bytes out;
  out.reserve(kMaxDatagram);
  out.push_back('S');
  out.push_back('D');
  out.push_back(kVersion);
  const bool response = m.response || m.type == Type::Error;
  out.push_back(static_cast<std::uint8_t>(static_cast<std::uint8_t>(m.type) | (response ? kResponse : 0)));
  out.push_back(static_cast<std::uint8_t>(m.overlay));
  out.push_back(m.flags & kFlagsKnown);
  put_be64(out, m.request);
  put_node(out, m.sender);
  encode_body(out, m);
  return out;
}

}  // namespace

std::string_view to_string(Type t) {
  switch (t) {
    case Type::Ping: return "ping";
    case Type::FindNode: return "find_node";
    case Type::Neighbours: return "neighbours";
    case Type::Notify: return "notify";
    case Type::Store: return "store";
    case Type::Get: return "get";
    case Type::Gossip: return "gossip";
    case Type::Leave: return "leave";
    case Type::Error: return "error";
  }
  return "?";
}

std::string_view to_string(Overlay o) {
  switch (o) {
    case Overlay::Chord: return "chord";
    case Overlay::Kelips: return "kelips";
    case Overlay::Pastry: return "pastry";
  }
  return "?";
}

Bytes encode_message(const Message& m) {
  Bytes out = encode_once(m);
  if (out.size() <= kMaxDatagram) return out;
  // Too big for one datagram: drop list elements from the back until it fits.
  Message cut = m;
  while (out.size() > kMaxDatagram) {
    if (!cut.nodes.empty()) {
      cut.nodes.pop_back();
    } else if (!cut.tuples.empty()) {
      cut.tuples.pop_back();
    } else if (!cut.entries.empty()) {
      cut.entries.pop_back();
    } else if (cut.values.size() > 1 || (cut.type == Type::Get && !cut.values.empty())) {
      cut.values.pop_back();
    } else {
      break;  // (cannot happen: the largest fixed body is far below the cap)
    }
    out = encode_once(cut);
  }
  return out;
}

Result<Message> decode_message(ByteView d) {
  if (d.size() > kMaxDatagram) return WireError::TooLarge;
  if (d.size() < kHeaderSize) return WireError::Malformed;
  Reader r(d);
  if (r.u8() != 'S' || r.u8() != 'D') return WireError::Malformed;
  if (r.u8() != kVersion) return WireError::Unsupported;
  Message m;
  const std::uint8_t type = r.u8();
  m.response = (type & kResponse) != 0;
  const std::uint8_t base = type & static_cast<std::uint8_t>(~kResponse);
  if (!known_type(base)) return WireError::Malformed;
  m.type = static_cast<Type>(base);
  if (m.type == Type::Error && !m.response) return WireError::Malformed;
  const std::uint8_t overlay = r.u8();
  if (overlay < 1 || overlay > 3) return WireError::Unsupported;
  m.overlay = static_cast<Overlay>(overlay);
  m.flags = r.u8();
  if ((m.flags & ~kFlagsKnown) != 0) return WireError::Malformed;
  m.request = r.be64();
  m.sender = r.node();
  switch (m.type) {
    case Type::Ping:
    case Type::Notify:
      break;
    case Type::FindNode:
      if (!m.response) {
        m.key = r.id();
      } else {
        m.owner = r.flag();
        m.nodes = r.nodes();
      }
      break;
    case Type::Neighbours:
      if (m.response) {
        if (r.flag()) m.predecessor = r.node();
        m.nodes = r.nodes();
      }
      break;
    case Type::Store:
      if (!m.response) {
        m.key = r.id();
        m.lifetime = r.be32();
        m.values.emplace_back();
        if (!r.value(m.values.back())) return WireError::TooLarge;
      } else {
        const std::uint8_t s = r.u8();
        if (s > static_cast<std::uint8_t>(StoreStatus::TooLarge)) return WireError::Malformed;
        m.status = static_cast<StoreStatus>(s);
      }
      break;
    case Type::Get:
      if (!m.response) {
        m.key = r.id();
      } else {
        const std::size_t n = r.u8();
        for (std::size_t i = 0; i < n && !r.failed(); ++i) {
          m.values.emplace_back();
          if (!r.value(m.values.back())) return WireError::TooLarge;
        }
        m.nodes = r.nodes();
      }
      break;
    case Type::Gossip: {
      const std::size_t e = r.u8();
      m.entries.reserve(e);
      for (std::size_t i = 0; i < e && !r.failed(); ++i) {
        GossipEntry g;
        g.node = r.node();
        g.heartbeat = r.be32();
        g.rtt_ms = r.be16();
        m.entries.push_back(g);
      }
      const std::size_t t = r.u8();
      m.tuples.reserve(t);
      for (std::size_t i = 0; i < t && !r.failed(); ++i) {
        Tuple tu;
        tu.key = r.id();
        tu.home = r.node();
        m.tuples.push_back(tu);
      }
      break;
    }
    case Type::Leave:
      if (!m.response) m.nodes = r.nodes();
      break;
    case Type::Error: {
      const std::uint8_t c = r.u8();
      if (c < 1 || c > static_cast<std::uint8_t>(ErrorCode::NotJoined)) return WireError::Malformed;
      m.error = static_cast<ErrorCode>(c);
      break;
    }
  }
  if (r.failed() || !r.at_end()) return WireError::Malformed;
  return m;
}

Message response_to(const Message& request, const NodeRef& self) {
  Message m;
  m.type = request.type;
  m.response = true;
  m.overlay = request.overlay;
  m.request = request.request;
  m.sender = self;
  return m;
}

}  // namespace sv::wire::dht
