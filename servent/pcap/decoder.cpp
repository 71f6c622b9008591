#include "servent/pcap/decoder.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <cstdio>
#include <iterator>
#include <deque>
#include <set>

#include "http/request_parser.hpp"
#include "http/response_parser.hpp"
#include "servent/pcap/reassembly.hpp"
#include "wire/common/zlib_stream.hpp"
#include "wire/gnutella/framer.hpp"
#include "wire/gnutella/ggep.hpp"
#include "wire/gnutella/giv.hpp"
#include "wire/gnutella/handshake.hpp"
#include "wire/gnutella/huge.hpp"
#include "wire/gnutella/vendor.hpp"
#include "wire/napster/napster.hpp"

namespace sv::pcap {

namespace gn = wire::gnutella;
namespace nap = wire::napster;

std::string json_quote(std::string_view s) { return wire::json_quote(s); }

std::string printable(std::string_view s, std::size_t max) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

namespace {

// The text line of a descriptor is written straight into the message's
// reused string through a raw pointer: it runs for every descriptor of a
// capture, and std::string's own appends cost more than the decoding.
class LineWriter {
 public:
  explicit LineWriter(std::string& s) : s_(s) {
    const std::size_t used = s_.size();
    s_.resize(std::max<std::size_t>(s_.capacity(), used + 256));
    p_ = s_.data() + used;
    end_ = s_.data() + s_.size();
  }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;
  ~LineWriter() { finish(); }
  // Cuts the string to what was written; nothing may be written after.
  void finish() {
    if (p_) s_.resize(static_cast<std::size_t>(p_ - s_.data()));
    p_ = end_ = nullptr;
  }

  void chr(char c) {
    need(1);
    *p_++ = c;
  }
  void str(std::string_view v) {
    need(v.size());
    std::memcpy(p_, v.data(), v.size());
    p_ += v.size();
  }
  void uint(std::uint64_t v) {
    need(20);
    p_ = std::to_chars(p_, end_, v).ptr;
  }
  void hex_byte(unsigned char c) {
    static constexpr char kDigits[] = "0123456789abcdef";
    need(2);
    *p_++ = kDigits[c >> 4];
    *p_++ = kDigits[c & 15];
  }
  void hex(wire::ByteView bytes) {
    need(2 * bytes.size());
    static constexpr char kDigits[] = "0123456789abcdef";
    for (std::uint8_t c : bytes) {
      *p_++ = kDigits[c >> 4];
      *p_++ = kDigits[c & 15];
    }
  }
  void ipv4_port(std::uint32_t ip, std::uint16_t port) {
    uint(ip >> 24);
    chr('.');
    uint((ip >> 16) & 255);
    chr('.');
    uint((ip >> 8) & 255);
    chr('.');
    uint(ip & 255);
    chr(':');
    uint(port);
  }

  // printable(s, max): control characters as \xNN, "..." after `max`.
  void printable(std::string_view s, std::size_t max) {
    const std::size_t n = std::min(s.size(), max);
    std::size_t run = 0;  // start of the bytes not yet copied
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == 0x7f) {
        str(s.substr(run, i - run));
        str("\\x");
        hex_byte(c);
        run = i + 1;
      }
    }
    str(s.substr(run, n - run));
    if (s.size() > max) str("...");
  }

  // json_quote(printable(s, max)).
  void quoted(std::string_view s, std::size_t max) {
    chr('"');
    const std::size_t n = std::min(s.size(), max);
    std::size_t run = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') continue;
      str(s.substr(run, i - run));
      run = i + 1;
      if (c == '"' || c == '\\') {
        chr('\\');
        chr(static_cast<char>(c));
      } else if (c < 0x20 || c == 0x7f) {
        str("\\\\x");  // printable() turns these into \xNN, which json_quote then escapes
        hex_byte(c);
      } else {
        str("\\u00");
        hex_byte(c);
      }
    }
    str(s.substr(run, n - run));
    if (s.size() > max) str("...");
    chr('"');
  }

 private:
  void need(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) [[unlikely]] grow(n);
  }
  [[gnu::noinline]] void grow(std::size_t n) {
    const auto used = static_cast<std::size_t>(p_ - s_.data());
    s_.resize(std::max(s_.size() * 2, used + n + 256));
    p_ = s_.data() + used;
    end_ = s_.data() + s_.size();
  }

  std::string& s_;
  char* p_ = nullptr;
  char* end_ = nullptr;
};

std::string num(std::uint64_t v) { return std::to_string(v); }

// Names of the vendor messages whose meaning is documented (the 0.6 draft's
// generic ones, BearShare's that gtk-gnutella and LimeWire speak).
std::string headers_json(const wire::Headers& h) {
  std::string out = "[";
  for (const auto& [k, v] : h.all()) {
    if (out.size() > 1) out += ",";
    out += '[';
    out += json_quote(k);
    out += ',';
    out += json_quote(v);
    out += ']';
  }
  out += ']';
  return out;
}

std::string ggep_ids(wire::ByteView block, std::vector<std::pair<std::string, std::string>>* violations,
                     std::string_view where = "", bool trailing_ok = false) {
  if (block.empty()) return {};
  auto g = gn::decode_ggep(block, 1 << 20);
  if (!g || (g->consumed != block.size() && !trailing_ok)) {
    if (violations) {
      violations->push_back({"bad-ggep", "GGEP block" + std::string(where) + " does not decode (" +
                                             (g ? "trailing bytes" : std::string(wire::to_string(g.error()))) + "): " +
                                             wire::to_hex(block.first(std::min<std::size_t>(block.size(), 24)))});
    }
    return "!";
  }
  std::string ids;
  for (const auto& e : g->extensions) ids += (ids.empty() ? "" : ",") + e.id;
  return ids;
}

}  // namespace

struct Decoder::Dir {
  Decoder* dec = nullptr;
  Conn* conn = nullptr;
  std::string src, dst;
  enum class Mode { Unknown, Handshake, Gnutella, HttpRequests, HttpResponses, Giv, Napster, NapsterData, Dead };
  Mode mode = Mode::Unknown;
  bool is_connect_side = false;  // sent the CONNECT
  bool expect_final = false;     // 0.6 initiator: the final 200 block is still to come
  bool deflate_after = false;
  wire::Bytes buf;               // plain bytes not yet decoded
  std::unique_ptr<wire::Inflater> inflater;
  gn::Framer framer{gn::kDefaultMaxPayload};
  std::unique_ptr<http::RequestParser> req;    // made when the direction turns out to be HTTP
  std::unique_ptr<http::ResponseParser> resp;
  std::uint64_t body_left = 0, body_total = 0, body_seen = 0;
  bool in_body = false, body_until_close = false;
  std::uint64_t frame = 0;       // frame of the bytes being decoded
  bool fin = false;
  bool started_data = false;  // a byte after the handshake was seen
  bool g2 = false;            // the handshake said Content-Type: application/x-gnutella2
  std::uint64_t g2_bytes = 0;
  std::unique_ptr<StreamReassembler> reasm;
  // Napster peer transfer (napster.txt §"Client-Client"): the requesting side
  // sends GET or SEND and a `nick "file" number` line; the other side starts
  // with "1" and sends a number (the size for GET, the offset for SEND).
  enum class DataStep { Hello, Request, Number, Data } data_step = DataStep::Hello;
  bool data_requester = false;  // sent GET/SEND
  bool data_send = false;       // the conversation is a SEND (data flows from the requester)
  std::uint64_t data_bytes = 0;

  Message& base(std::string_view proto, std::string_view kind) const;
  void emit(Message& m);
  void bytes(wire::ByteView data, std::uint64_t fr);
  void plain(wire::ByteView data);
  void frames(wire::ByteView data);
  void decode();
  void descriptor(const gn::Header& h, wire::ByteView payload);
  void gap(std::uint64_t missing, std::uint64_t fr);
  void end(std::uint64_t fr);
  void body_done(bool complete);
  bool napster_frame();
  bool napster_data();
  Dir& other() const;
};

struct Decoder::Conn {
  std::int64_t stream = 0;
  Dir a, b;  // a: the first sender seen (the SYN's sender when there is one)
  std::deque<std::string> methods;  // requests awaiting a response (HEAD has no body)
};

namespace {

// The first frame of a Napster client-server conversation: a login (2), a
// new-user query or login (6, 7) from the client, or the server's answer
// (0, 3, 8, 9, 10), at most 2048 bytes of printable text.
bool napster_first_type(std::uint16_t t) { return t == 0 || t == 2 || t == 3 || (t >= 6 && t <= 10); }
bool printable_text(wire::ByteView b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t c) { return c >= 0x20 && c < 0x7f; });
}
bool looks_like_napster(const wire::Bytes& buf) {
  if (buf.size() < nap::kHeaderSize) return false;
  const std::size_t len = wire::get_le16(buf.data());
  const std::uint16_t type = wire::get_le16(buf.data() + 2);
  if (!napster_first_type(type) || len > nap::kDefaultMaxPayload || buf.size() < nap::kHeaderSize + len) return false;
  return printable_text(wire::ByteView(buf.data() + nap::kHeaderSize, len));
}
bool looks_like_napster_prefix(const wire::Bytes& buf) {
  const std::size_t len = wire::get_le16(buf.data());
  const std::uint16_t type = wire::get_le16(buf.data() + 2);
  return napster_first_type(type) && len <= nap::kDefaultMaxPayload && buf.size() < nap::kHeaderSize + len &&
         printable_text(wire::ByteView(buf.data() + nap::kHeaderSize, buf.size() - nap::kHeaderSize));
}

}  // namespace

Decoder::Dir& Decoder::Dir::other() const { return this == &conn->a ? conn->b : conn->a; }

// One Napster client-server frame from buf; false when more bytes are needed
// (or the stream is given up).
bool Decoder::Dir::napster_frame() {
  std::size_t used = 0;
  auto f = nap::decode_frame(buf, used, 0xffff);
  if (f.need_more()) return false;
  Message& m = base("napster", nap::type_name(f->type));
  if (dec->options_.text) {
    std::string d = nap::describe(*f);
    const std::string name = nap::type_name(f->type);
    m.info = printable(d.size() > name.size() ? std::string_view(d).substr(name.size() + 1) : std::string_view(), 200);
  }
  if (dec->options_.fields) {
    m.fields.push_back({"type", num(f->type)});
    m.fields.push_back({"payload", json_quote(f->payload)});
  }
  if (dec->options_.raw) m.block.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
  if (f->payload.size() > nap::kDefaultMaxPayload) {
    m.violations.push_back({"napster-too-large", "payload over 2048 bytes (opennap-ng drops the client)"});
  }
  emit(m);
  buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
  return true;
}

// One step of a Napster peer transfer; false when more bytes are needed.
bool Decoder::Dir::napster_data() {
  std::string_view s = wire::as_chars(buf);
  switch (data_step) {
    case DataStep::Hello: {
      if (s.empty()) return false;
      Message& m = base("napster-data", "hello");
      m.info = s[0] == '1' ? "1" : "unexpected " + printable(s.substr(0, 1));
      if (s[0] != '1') m.violations.push_back({"napster-bad-hello", "a transfer must start with the byte '1'"});
      emit(m);
      buf.erase(buf.begin());
      data_step = DataStep::Number;
      return true;
    }
    case DataStep::Request: {
      const std::size_t verb = data_send ? 4 : 3;
      // <nick> "<file>" <number>, the number running to the end of what came.
      const std::size_t q2 = s.rfind('"');
      if (q2 == std::string_view::npos || q2 + 2 > s.size() || s.size() == q2 + 2) return false;
      std::size_t end = q2 + 2;
      while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
      if (end == q2 + 2) return false;
      if (end == s.size() && !fin && !data_send) return false;  // the number may go on
      auto parts = nap::split_around_name(s.substr(verb, end - verb), 1, 1);
      Message& m = base("napster-data", data_send ? "SEND" : "GET");
      if (!parts) {
        m.info = "malformed request: " + printable(s.substr(0, end), 80);
        m.violations.push_back({"napster-bad-request", "not <nick> \"<file>\" <number>"});
      } else {
        m.info = fmt::format("nick={} \"{}\" {}={}", printable((*parts)[0]), printable((*parts)[1]),
                             data_send ? "size" : "offset", (*parts)[2]);
      }
      emit(m);
      buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(end));
      data_step = data_send ? DataStep::Data : DataStep::Number;
      if (!data_send) mode = Mode::Dead;  // a GET says nothing more
      return true;
    }
    case DataStep::Number: {
      std::size_t end = 0;
      while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
      if (end == 0) {
        if (s.empty()) return false;
        Message& m = base("napster-data", "error");
        m.info = printable(s, 80);
        emit(m);
        buf.clear();
        mode = Mode::Dead;
        return true;
      }
      if (end == s.size() && !fin) return false;
      Message& m = base("napster-data", data_send ? "offset" : "size");
      m.info = std::string(s.substr(0, end));
      emit(m);
      buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(end));
      data_step = DataStep::Data;
      if (data_send) mode = Mode::Dead;
      return true;
    }
    case DataStep::Data:
      data_bytes += buf.size();
      buf.clear();
      return false;
  }
  return false;
}

// One Message is reused for every message: its strings and vectors keep
// their storage, so decoding allocates nothing per message (a consumer that
// keeps a message moves it out, and the next one starts empty).
Message& Decoder::Dir::base(std::string_view proto, std::string_view kind) const {
  Message& m = dec->scratch_;
  m.frame = frame;
  m.time = dec->now_;
  m.stream = conn->stream;
  if (m.src != src) m.src.assign(src);  // mostly the same connection again
  if (m.dst != dst) m.dst.assign(dst);
  if (m.proto != proto) m.proto.assign(proto);
  if (m.kind != kind) m.kind.assign(kind);
  m.info.clear();
  m.fields.clear();
  m.raw.clear();
  m.block.clear();
  m.guid.reset();
  m.deflated = inflater != nullptr;
  m.violations.clear();
  return m;
}

void Decoder::Dir::emit(Message& m) {
  ++dec->stats_.messages;
  dec->out_(std::move(m));
}

void Decoder::Dir::bytes(wire::ByteView data, std::uint64_t fr) {
  frame = fr;
  if (mode == Mode::Dead) return;
  if (mode == Mode::Gnutella && !started_data && data.size() >= 3 && data[0] == 0x16 && data[1] == 0x03) {
    // A TLS record right after the handshake: gtk-gnutella's TLS upgrade
    // (X-Features: tls). What follows is encrypted.
    Message& m = base("gnutella", "tls");
    m.info = "TLS handshake record: the rest of this direction is encrypted";
    emit(m);
    mode = Mode::Dead;
    return;
  }
  if (mode == Mode::Gnutella && g2) {
    g2_bytes += data.size();
    return;
  }
  if (mode == Mode::Gnutella) started_data = true;
  if (mode == Mode::Gnutella && inflater) {
    auto r = inflater->read(data, [&](wire::ByteView piece) {
      plain(piece);
      return mode != Mode::Dead;
    });
    if (!r && mode != Mode::Dead) {
      Message& m = base("gnutella", "error");
      m.info = "deflate stream corrupt; rest of stream not decoded";
      m.violations.push_back({"bad-deflate", "the deflated link does not inflate"});
      emit(m);
      mode = Mode::Dead;
    }
    return;
  }
  plain(data);
}

void Decoder::Dir::plain(wire::ByteView data) {
  if (mode == Mode::Gnutella) {
    frames(data);
    return;
  }
  buf.insert(buf.end(), data.begin(), data.end());
  decode();
}

// Descriptors are decoded where they lie in the segment; only one cut by a
// segment boundary is copied into the framer, and just until it is whole.
void Decoder::Dir::frames(wire::ByteView data) {
  while (mode == Mode::Gnutella && !data.empty()) {
    if (framer.buffered() > 0) {
      const std::size_t n = std::min(framer.missing(), data.size());
      framer.feed(data.first(n));
      data = data.subspan(n);
      decode();  // the completed descriptor, or an error
      continue;
    }
    if (data.size() < gn::kHeaderSize) break;
    auto h = gn::decode_header(data);
    if (h->payload_length > gn::kDefaultMaxPayload || data.size() < gn::kHeaderSize + h->payload_length) break;
    descriptor(*h, data.subspan(gn::kHeaderSize, h->payload_length));
    data = data.subspan(gn::kHeaderSize + h->payload_length);
  }
  if (mode != Mode::Gnutella || data.empty()) return;
  framer.feed(data);  // a partial descriptor (or one too large: decode() says so)
  decode();
}

void Decoder::Dir::decode() {
  for (;;) {
    switch (mode) {
      case Mode::Dead: return;
      case Mode::Unknown: {
        std::string_view s = wire::as_chars(buf);
        auto starts = [&](std::string_view p) { return s.substr(0, p.size()) == p.substr(0, std::min(p.size(), s.size())); };
        if (s.size() < 5 && (starts("GNUTELLA") || starts("GET ") || starts("HEAD ") || starts("HTTP/") || starts("GIV "))) {
          return;  // too little to tell
        }
        if (s.starts_with("GNUTELLA")) {
          mode = Mode::Handshake;
        } else if ((s.size() > 3 && s.starts_with("GET") && s[3] != ' ') || (s.size() > 4 && s.starts_with("SEND"))) {
          // A Napster peer transfer request (no space after the verb).
          mode = Mode::NapsterData;
          data_requester = true;
          data_step = DataStep::Request;
          data_send = s.starts_with("SEND");
          Dir& o = other();
          if (o.mode == Mode::Unknown) {
            o.mode = Mode::NapsterData;
            o.data_send = data_send;
            o.decode();
          }
        } else if (s.starts_with("GET ") || s.starts_with("HEAD ") || s.starts_with("POST ")) {
          mode = Mode::HttpRequests;
        } else if (s.starts_with("HTTP/")) {
          mode = Mode::HttpResponses;
        } else if (s.starts_with("GIV ")) {
          mode = Mode::Giv;
        } else if (looks_like_napster(buf)) {
          mode = Mode::Napster;
        } else if (buf.size() >= 4 && looks_like_napster_prefix(buf)) {
          return;  // could still be a Napster frame
        } else if (buf.size() >= gn::kHeaderSize && gn::decode_header(buf)->payload_length <= gn::kDefaultMaxPayload) {
          // Mid-connection capture: descriptors without a handshake.
          mode = Mode::Gnutella;
          wire::Bytes rest = std::move(buf);
          buf.clear();
          framer.feed(rest);
        } else if (buf.size() >= gn::kHeaderSize) {
          mode = Mode::Dead;  // not something we decode
          return;
        } else {
          return;
        }
        continue;
      }
      case Mode::Napster:
        if (!napster_frame()) return;
        continue;
      case Mode::NapsterData:
        if (!napster_data()) return;
        continue;
      case Mode::Handshake: {
        auto r = gn::decode_handshake(buf, 64 * 1024);
        if (r.need_more()) return;
        if (!r) {
          Message& m = base("gnutella", "handshake");
          m.info = "malformed handshake: " + printable(wire::as_chars(buf), 60);
          m.violations.push_back({"bad-handshake", "not a Gnutella handshake block"});
          emit(m);
          mode = Mode::Dead;
          return;
        }
        const gn::Handshake& hs = *r;
        std::string first = printable(wire::as_chars(wire::ByteView(buf).first(std::min<std::size_t>(hs.consumed, wire::as_chars(buf).find_first_of("\r\n")))));
        Message& m = base("gnutella", "handshake");
        m.info = first + (hs.headers.all().empty() ? "" : " (" + num(hs.headers.all().size()) + " headers)");
        if (dec->options_.fields) m.fields.push_back({"first_line", json_quote(first)});
        if (hs.kind == gn::Handshake::Kind::Response) if (dec->options_.fields) m.fields.push_back({"status", num(static_cast<std::uint64_t>(hs.status))});
        if (dec->options_.fields) m.fields.push_back({"version", json_quote(num(static_cast<std::uint64_t>(hs.major)) + "." + num(static_cast<std::uint64_t>(hs.minor)))});
        if (dec->options_.fields) m.fields.push_back({"headers", headers_json(hs.headers)});
        if (hs.bare_lf && !hs.is_04()) m.violations.push_back({"bare-lf", "0.6 handshake line ended by LF without CR"});
        if (hs.kind == gn::Handshake::Kind::Connect && !hs.is_04() && !hs.headers.has("X-Ultrapeer")) {
          m.violations.push_back({"no-x-ultrapeer", "0.6 CONNECT without X-Ultrapeer (refused by today's servents)"});
        }
        m.block.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(hs.consumed));
        emit(m);
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(hs.consumed));
        const bool deflate = wire::to_lower(hs.headers.get("Content-Encoding").value_or("")).find("deflate") != std::string::npos;
        bool to_data = false;
        if (hs.kind == gn::Handshake::Kind::Connect) {
          is_connect_side = true;
          if (hs.is_04()) {
            to_data = true;
          } else {
            expect_final = true;
          }
        } else if (is_connect_side && expect_final) {
          expect_final = false;
          to_data = hs.status == 200;
        } else {
          to_data = hs.status == 200;
        }
        if (!to_data) {
          if (!expect_final) mode = Mode::Dead;
          continue;
        }
        mode = Mode::Gnutella;
        // Gnutella2 shares the handshake but not the framing: count, do not decode.
        g2 = wire::to_lower(hs.headers.get("Content-Type").value_or("")).find("x-gnutella2") != std::string::npos;
        if (deflate) inflater = std::make_unique<wire::Inflater>();
        wire::Bytes rest = std::move(buf);
        buf.clear();
        if (!rest.empty()) bytes(rest, frame);
        return;
      }
      case Mode::Gnutella: {
        auto f = framer.next();
        if (f.need_more()) return;
        if (!f) {
          Message& m = base("gnutella", "error");
          m.info = "descriptor announces a payload above 64 KiB; rest of stream not decoded";
          m.violations.push_back({"bad-length", "payload length above 64 KiB"});
          emit(m);
          mode = Mode::Dead;
          return;
        }
        descriptor(f->header, f->payload);
        continue;
      }
      case Mode::Giv: {
        auto g = gn::decode_giv(buf);
        if (g.need_more()) return;
        Message& m = base("giv", "GIV");
        if (!g) {
          m.info = "malformed GIV: " + printable(wire::as_chars(buf), 60);
          m.violations.push_back({"bad-giv", "not a GIV line"});
          emit(m);
          mode = Mode::Dead;
          return;
        }
        m.info = num(g->file_index) + ":" + g->servent_id.hex() + "/" + printable(g->name);
        if (dec->options_.fields) m.fields.push_back({"index", num(g->file_index)});
        if (dec->options_.fields) m.fields.push_back({"servent_id", json_quote(g->servent_id.hex())});
        if (dec->options_.fields) m.fields.push_back({"name", json_quote(g->name)});
        emit(m);
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(g->consumed));
        mode = Mode::HttpResponses;  // the pushing side then answers GETs
        continue;
      }
      case Mode::HttpRequests: {
        if (buf.empty()) return;
        if (!req) req = std::make_unique<http::RequestParser>(16 * 1024);
        std::size_t used = 0;
        auto st = req->feed(buf, used);
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
        if (st == http::RequestParser::State::NeedMore) return;
        if (st == http::RequestParser::State::Error) {
          Message& m = base("http", "error");
          m.info = "malformed request (" + req->error_reason() + ")";
          m.violations.push_back({"bad-http", "malformed HTTP request"});
          emit(m);
          mode = Mode::Dead;
          return;
        }
        const auto& r = req->request();
        Message& m = base("http", "request");
        m.info = r.method + " " + printable(r.target) + " HTTP/" + num(static_cast<std::uint64_t>(r.version_major)) + "." +
                 num(static_cast<std::uint64_t>(r.version_minor));
        if (auto range = r.headers.get("Range")) m.info += " Range: " + printable(*range, 60);
        if (dec->options_.fields) m.fields.push_back({"method", json_quote(r.method)});
        if (dec->options_.fields) m.fields.push_back({"target", json_quote(r.target)});
        if (dec->options_.fields) m.fields.push_back({"headers", headers_json(r.headers)});
        conn->methods.push_back(r.method);
        {
          // The head again, as text to replay (header order and case kept).
          std::string head = r.method + " " + r.target + " HTTP/" + num(static_cast<std::uint64_t>(r.version_major)) +
                             "." + num(static_cast<std::uint64_t>(r.version_minor)) + "\r\n";
          r.headers.write_to(head);
          m.block.assign(head.begin(), head.end());
        }
        emit(m);
        req->next();
        continue;
      }
      case Mode::HttpResponses: {
        if (in_body) {
          if (body_until_close) {
            body_seen += buf.size();
            buf.clear();
            return;
          }
          const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(body_left, buf.size()));
          body_left -= n;
          body_seen += n;
          buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
          if (body_left > 0) return;
          body_done(true);
          continue;
        }
        if (buf.empty()) return;
        if (!resp) resp = std::make_unique<http::ResponseParser>(16 * 1024);
        std::size_t used = 0;
        auto st = resp->feed(buf, used);
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(used));
        if (st == http::ResponseParser::State::NeedMore) return;
        if (st == http::ResponseParser::State::Error) {
          Message& m = base("http", "error");
          m.info = "malformed response (" + resp->error() + ")";
          m.violations.push_back({"bad-http", "malformed HTTP response"});
          emit(m);
          mode = Mode::Dead;
          return;
        }
        const http::Response r = resp->response();  // a copy: next() below resets the parser
        Message& m = base("http", "response");
        m.info = "HTTP/" + num(static_cast<std::uint64_t>(r.version_major)) + "." +
                 num(static_cast<std::uint64_t>(r.version_minor)) + " " + num(static_cast<std::uint64_t>(r.status)) + " " +
                 printable(r.reason, 60);
        if (auto cr = r.headers.get("Content-Range")) m.info += " Content-Range: " + printable(*cr, 60);
        if (r.content_length) m.info += " Content-Length: " + num(*r.content_length);
        if (dec->options_.fields) m.fields.push_back({"status", num(static_cast<std::uint64_t>(r.status))});
        if (dec->options_.fields) m.fields.push_back({"reason", json_quote(r.reason)});
        if (dec->options_.fields) m.fields.push_back({"headers", headers_json(r.headers)});
        std::string method;
        if (!conn->methods.empty()) {
          method = conn->methods.front();
          conn->methods.pop_front();
        }
        emit(m);
        resp->next();
        const bool no_body = method == "HEAD" || r.status == 204 || r.status == 304 || r.status / 100 == 1;
        if (no_body) continue;
        if (r.content_length) {
          if (*r.content_length == 0) continue;
          in_body = true;
          body_left = body_total = *r.content_length;
          body_seen = 0;
        } else if (!r.keep_alive) {
          in_body = true;
          body_until_close = true;
          body_seen = 0;
        }
        continue;
      }
    }
  }
}

void Decoder::Dir::body_done(bool complete) {
  Message& m = base("http", "body");
  if (body_until_close) {
    m.info = num(body_seen) + " bytes (to the end of the connection)";
  } else if (complete) {
    m.info = num(body_seen) + " bytes";
  } else {
    m.info = num(body_seen) + " of " + num(body_total) + " bytes (the capture ends first)";
  }
  if (dec->options_.fields) m.fields.push_back({"bytes", num(body_seen)});
  if (dec->options_.fields) m.fields.push_back({"complete", complete ? "true" : "false"});
  in_body = false;
  body_until_close = false;
  emit(m);
}

void Decoder::Dir::descriptor(const gn::Header& h, wire::ByteView payload) {
  Message& m = base("gnutella", gn::type_name(h.type));
  if (dec->options_.raw) {
    gn::encode_header(m.raw, h);  // as captured: the framer checked the length
    m.raw.insert(m.raw.end(), payload.begin(), payload.end());
  }
  m.guid = h.id;
  const bool full = dec->options_.fields;
  const bool text = dec->options_.text;
  LineWriter t(m.info);  // the text line, built in place
  if (text) {
    t.str("ttl=");
    t.uint(h.ttl);
    t.str(" hops=");
    t.uint(h.hops);
    t.str(" len=");
    t.uint(h.payload_length);
  }
  if (full) {
    m.fields.push_back({"guid", json_quote(h.id.hex())});
    m.fields.push_back({"type", num(h.type)});
    m.fields.push_back({"ttl", num(h.ttl)});
    m.fields.push_back({"hops", num(h.hops)});
    m.fields.push_back({"length", num(h.payload_length)});
  }
  if (h.ttl + h.hops > 7 && h.type != 0x02) {
    m.violations.push_back({"ttl-hops", "TTL+Hops = " + num(h.ttl + h.hops) + " above 7"});
  }
  auto short_payload = [&](std::size_t need) {
    m.violations.push_back({"short-payload", "payload of " + num(payload.size()) + " bytes, at least " + num(need) + " needed"});
    t.str(" (short payload)");
  };
  auto put_ggep = [&](const std::string& ids) {
    if (ids.empty()) return;
    t.str(" ggep=");
    t.str(ids);
  };
  switch (static_cast<gn::Type>(h.type)) {
    case gn::Type::Ping: {
      dec->requests_.insert(h.id);
      put_ggep(ggep_ids(payload, &m.violations));
      break;
    }
    case gn::Type::Pong: {
      if (!dec->requests_.contains(h.id)) {
        m.violations.push_back({"unmatched-reply", "no Ping with this DescriptorID earlier in the capture"});
      }
      auto p = gn::decode_pong(payload);
      if (!p) {
        short_payload(14);
        break;
      }
      if (text) {
        t.chr(' ');
        t.ipv4_port(p->ip, p->port);
        t.str(" files=");
        t.uint(p->files_shared);
        t.str(" kb=");
        t.uint(p->kb_shared);
      }
      auto ids = ggep_ids(p->extensions, &m.violations);
      put_ggep(ids);
      if (full) {
        m.fields.push_back({"address", json_quote(gn::ipv4_to_string(p->ip) + ":" + num(p->port))});
        m.fields.push_back({"files", num(p->files_shared)});
        m.fields.push_back({"kbytes", num(p->kb_shared)});
        if (!ids.empty()) m.fields.push_back({"ggep", json_quote(ids)});
      }
      break;
    }
    case gn::Type::Query: {
      dec->requests_.insert(h.id);
      gn::Query* q = &dec->query_;
      if (!gn::decode_query_into(payload, *q)) {
        short_payload(3);
        break;
      }
      if (text) {
        t.str(" min_speed=0x");
        t.hex_byte(static_cast<unsigned char>(q->min_speed >> 8));
        t.hex_byte(static_cast<unsigned char>(q->min_speed & 255));
        t.chr(' ');
        t.quoted(q->criteria, 80);
      }
      if (!q->extensions.empty()) {
        auto ext = gn::decode_extensions(q->extensions);
        for (const auto& u : ext.urns) {
          t.chr(' ');
          t.printable(u, 120);
        }
        if (ext.ggep) {
          t.str(" ggep=");
          t.str(ggep_ids(*ext.ggep, &m.violations));
        }
        if (full) {
          std::string urns = "[";
          // Text urns and the digests in GGEP "H" (HUGE 0.94 §3; GGEP "H" types 1 and 2).
          for (const auto& u : gn::all_urns(ext)) urns += (urns.size() > 1 ? "," : "") + json_quote(u);
          m.fields.push_back({"urns", urns + "]"});
        }
      }
      if (full) {
        m.fields.push_back({"min_speed", num(q->min_speed)});
        m.fields.push_back({"criteria", json_quote(q->criteria)});
      }
      break;
    }
    case gn::Type::QueryHit: {
      if (!dec->requests_.contains(h.id)) {
        m.violations.push_back({"unmatched-reply", "no Query with this DescriptorID earlier in the capture"});
      }
      gn::QueryHit* hit = &dec->hit_;
      if (!gn::decode_query_hit_into(payload, *hit)) {
        m.violations.push_back({"bad-queryhit", "results or trailer overrun the payload"});
        t.str(" (malformed)");
        break;
      }
      if (text) {
        t.str(" hits=");
        t.uint(hit->results.size());
        t.chr(' ');
        t.ipv4_port(hit->ip, hit->port);
        t.str(" speed=");
        t.uint(hit->speed);
      }
      if (hit->trailer) {
        if (text) {
          t.str(" vendor=");
          t.printable(wire::as_chars(hit->trailer->vendor), 8);
        }
        if (!hit->trailer->private_data.empty() && hit->trailer->private_data[0] == gn::kGgepBlockMagic) {
          // The private area is the vendor's: data may follow the GGEP block.
          t.str(" ggep=");
          t.str(ggep_ids(hit->trailer->private_data, &m.violations, " of the trailer", true));
        }
      }
      if (text) {
        t.str(" servent=");
        t.hex(hit->servent_id.bytes);
      }
      std::string results = full ? "[" : "";
      for (const auto& r : hit->results) {
        if (text) {
          t.str(" [");
          t.uint(r.index);
          t.chr(' ');
          t.quoted(r.name, 80);
          t.chr(' ');
          t.uint(gn::result_size(r.size, r.extensions));
          t.chr(']');
        }
        std::string urn;
        if (!r.extensions.empty()) {
          auto ext = gn::decode_extensions(r.extensions);
          if (!ext.urns.empty()) urn = ext.urns.front();
          if (ext.ggep) ggep_ids(*ext.ggep, &m.violations, " of result " + num(r.index));
        }
        if (!full) continue;
        if (results.size() > 1) results += ",";
        results += "{\"index\":" + num(r.index) + ",\"size\":" + num(gn::result_size(r.size, r.extensions)) + ",\"name\":" + json_quote(r.name) +
                   (urn.empty() ? "" : ",\"urn\":" + json_quote(urn)) + "}";
      }
      if (full) {
        m.fields.push_back({"address", json_quote(gn::ipv4_to_string(hit->ip) + ":" + num(hit->port))});
        m.fields.push_back({"speed", num(hit->speed)});
        m.fields.push_back({"results", results + "]"});
        if (hit->trailer) {
          m.fields.push_back({"vendor", json_quote(std::string(hit->trailer->vendor.begin(), hit->trailer->vendor.end()))});
          m.fields.push_back({"open_data", json_quote(wire::to_hex(hit->trailer->open_data))});
        }
        m.fields.push_back({"servent_id", json_quote(hit->servent_id.hex())});
      }
      break;
    }
    case gn::Type::Push: {
      auto p = gn::decode_push(payload);
      if (!p) {
        short_payload(gn::kPushSize);
        break;
      }
      const std::string to = gn::ipv4_to_string(p->ip) + ":" + num(p->port);
      t.str(fmt::format(" servent={} index={} to {}", p->servent_id.hex(), p->file_index, to));
      if (full) {
        m.fields.push_back({"servent_id", json_quote(p->servent_id.hex())});
        m.fields.push_back({"index", num(p->file_index)});
        m.fields.push_back({"to", json_quote(to)});
      }
      break;
    }
    case gn::Type::Bye: {
      if (payload.size() >= 2) {
        auto msg = wire::as_chars(payload.subspan(2));
        msg = msg.substr(0, msg.find('\0'));
        t.str(" code=");
        t.uint(wire::get_le16(payload.data()));
        t.chr(' ');
        t.quoted(msg, 80);
        if (full) {
          m.fields.push_back({"code", num(wire::get_le16(payload.data()))});
          m.fields.push_back({"message", json_quote(msg)});
        }
      } else {
        short_payload(2);
      }
      break;
    }
    case gn::Type::Qrp: {
      if (payload.empty()) {
        short_payload(1);
      } else if (payload[0] == 0 && payload.size() >= 6) {
        t.str(fmt::format(" RESET table_length={} infinity={}", wire::get_le32(payload.data() + 1), payload[5]));
      } else if (payload[0] == 1 && payload.size() >= 5) {
        t.str(fmt::format(" PATCH seq={}/{} compressor={} entry_bits={} data={}", payload[1], payload[2], payload[3],
                          payload[4], payload.size() - 5));
      }
      break;
    }
    case gn::Type::Vendor:
    case gn::Type::StdVendor: {
      // Vendor messages (0.6 draft, "Vendor Messages"): Vendor[4] ID[2] LE
      // Version[2] LE, then the body.
      if (payload.size() < 8) {
        short_payload(8);
        break;
      }
      const auto vm = *gn::decode_vendor(payload);
      const auto code = [](const std::array<std::uint8_t, 4>& c) {
        return std::string_view(reinterpret_cast<const char*>(c.data()), c.size());
      };
      const std::string_view name = gn::vendor_message_name(vm.vendor, vm.id);
      t.chr(' ');
      if (!name.empty()) t.str(std::string(name) + " ");
      t.printable(code(vm.vendor), 16);
      t.str(fmt::format("/{}v{}", vm.id, vm.version));
      if (vm.vendor != gn::kVendorGeneric || (vm.id != gn::kVmMessagesSupported && vm.id != gn::kVmFeaturesSupported) ||
          vm.body.size() < 2) {
        break;
      }
      t.str(fmt::format(" count={}", wire::get_le16(vm.body.data())));
      if (vm.id == gn::kVmMessagesSupported) {
        auto list = gn::decode_messages_supported(vm.body);
        if (!list) {
          t.str(" (length does not match the count)");
          break;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
          t.chr(i == 0 ? ' ' : ',');
          t.printable(code((*list)[i].vendor), 16);
          t.str(fmt::format("/{}v{}", (*list)[i].id, (*list)[i].version));
        }
      } else {
        auto list = gn::decode_features_supported(vm.body);
        if (!list) {
          t.str(" (length does not match the count)");
          break;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
          t.chr(i == 0 ? ' ' : ',');
          t.printable(code((*list)[i].name), 16);
          t.str(fmt::format("v{}", (*list)[i].version));
        }
      }
      break;
    }
    default:
      // Not 0.4/0.6 core messages, but common on the wire.
      t.finish();
      if (h.type == gn::kTypeHsep) {
        // HSEP 0.2: per hop, Nodes[8] Files[8] KiB[8], little-endian.
        std::string hops;
        if (auto hsep = gn::decode_hsep(payload, 8)) {
          for (std::size_t i = 0; i < hsep->size(); ++i) {
            hops += fmt::format(" hop{}={}/{}/{}", i + 1, (*hsep)[i].nodes, (*hsep)[i].files, (*hsep)[i].kib);
          }
          hops += " (nodes/files/KiB)";
        }
        m.info.insert(0, "HSEP ");
        m.info += hops;
      } else if (h.type == 0x44) {
        m.info.insert(0, "Mojito-DHT ");
      } else {
        m.info.insert(0, fmt::format("type=0x{:04x} ", h.type));
      }
      break;
  }
  t.finish();
  emit(m);
}

void Decoder::Dir::gap(std::uint64_t missing, std::uint64_t fr) {
  frame = fr;
  ++dec->stats_.gaps;
  dec->stats_.gap_bytes += missing;
  // A hole inside an HTTP body costs only those bytes.
  if (mode == Mode::HttpResponses && in_body && (body_until_close || missing <= body_left)) {
    if (!body_until_close) body_left -= missing;
    Message& m = base("tcp", "gap");
    m.info = num(missing) + " bytes missing inside an HTTP body";
    if (dec->options_.fields) m.fields.push_back({"missing", num(missing)});
    emit(m);
    if (!body_until_close && body_left == 0) body_done(false);
    return;
  }
  Message& m = base("tcp", "gap");
  m.info = num(missing) + " bytes missing";
  if (mode != Mode::Dead && mode != Mode::Unknown) m.info += "; rest of stream not decoded";
  if (dec->options_.fields) m.fields.push_back({"missing", num(missing)});
  emit(m);
  if (mode != Mode::Unknown) mode = Mode::Dead;
}

void Decoder::Dir::end(std::uint64_t fr) {
  if (reasm) reasm->finish(fr);
  frame = fr;
  if (g2) {
    Message& m = base("gnutella2", "stream");
    m.info = std::to_string(g2_bytes) + " bytes of Gnutella2 packets (not decoded)";
    if (dec->options_.fields) m.fields.push_back({"bytes", std::to_string(g2_bytes)});
    emit(m);
  }
  if (mode == Mode::HttpResponses && in_body) body_done(body_until_close);
  if (mode == Mode::NapsterData) {
    // Numbers that ran to the end of the stream, then the data count.
    fin = true;
    decode();
    if (mode == Mode::NapsterData && data_step == DataStep::Data) {
      Message& m = base("napster-data", "data");
      m.info = num(data_bytes) + " bytes";
      if (dec->options_.fields) m.fields.push_back({"bytes", num(data_bytes)});
      emit(m);
    }
  }
}

Decoder::Decoder(std::function<void(Message&&)> out, DecodeOptions options)
    : out_(std::move(out)), options_(options) {}
Decoder::~Decoder() = default;

void Decoder::not_decoded(ParseError e) {
  ++stats_.packets;
  if (e == ParseError::Truncated) ++stats_.truncated;
  else ++stats_.other;
}

void Decoder::packet(const Packet& p, std::uint64_t frame, double time) {
  ++stats_.packets;
  if (first_time_ < 0) first_time_ = time;
  now_ = time;
  if (p.fragment) {
    ++stats_.fragments;
    return;
  }
  // "ip:port" text is made only where it is kept: a UDP message, a new connection.
  auto src = [&] { return p.src.to_string() + ":" + std::to_string(p.sport); };
  auto dst = [&] { return p.dst.to_string() + ":" + std::to_string(p.dport); };
  if (p.proto == 17) {
    ++stats_.udp;
    // Gnutella over UDP: exactly one descriptor per datagram.
    if (p.payload.size() >= gn::kHeaderSize && wire::get_le32(p.payload.data() + 19) == p.payload.size() - gn::kHeaderSize) {
      Conn udp;
      udp.stream = -1;
      Dir& d = udp.a;
      d.dec = this;
      d.conn = &udp;
      d.src = src();
      d.dst = dst();
      d.frame = frame;
      auto h = gn::decode_header(p.payload);
      d.descriptor(*h, p.payload.subspan(gn::kHeaderSize));
    }
    return;
  }
  if (p.proto != 6) {
    ++stats_.other;
    return;
  }
  ++stats_.tcp;
  auto key = std::make_tuple(p.src, p.sport, p.dst, p.dport);
  auto rkey = std::make_tuple(p.dst, p.dport, p.src, p.sport);
  Conn* c = nullptr;
  Dir* d = nullptr;
  if (auto it = conns_.find(key); it != conns_.end()) {
    c = it->second.get();
    d = &c->a;
  } else if (auto rit = conns_.find(rkey); rit != conns_.end()) {
    c = rit->second.get();
    d = &c->b;
  } else {
    // Only a SYN or data starts a connection: a lone ACK, FIN or RST is the
    // end of something already gone (or never seen).
    if (!p.syn && p.payload.empty()) return;
    auto conn = std::make_unique<Conn>();
    conn->stream = next_stream_++;
    ++stats_.streams;
    for (Dir* x : {&conn->a, &conn->b}) {
      x->dec = this;
      x->conn = conn.get();
    }
    conn->a.src = conn->b.dst = src();
    conn->a.dst = conn->b.src = dst();
    for (Dir* x : {&conn->a, &conn->b}) {
      x->reasm = std::make_unique<StreamReassembler>(
          [x](wire::ByteView b, std::uint64_t fr) { x->bytes(b, fr); },
          [x](std::uint64_t missing, std::uint64_t fr) { x->gap(missing, fr); });
    }
    for (std::uint16_t port : options_.napster_ports) {
      if (p.sport == port || p.dport == port) conn->a.mode = conn->b.mode = Dir::Mode::Napster;
    }
    c = conn.get();
    d = &c->a;
    conns_.emplace(key, std::move(conn));
  }
  d->reasm->segment(p.seq, p.syn, p.payload, frame);
  if (p.fin) d->fin = true;
  // A connection both sides closed (or one reset) is done: decode its rest
  // and let it go, so a capture of many connections stays small in memory.
  if (p.rst || (c->a.fin && c->b.fin)) {
    auto it = conns_.find(key);
    if (it == conns_.end()) it = conns_.find(rkey);
    close(it, frame);
  }
}

void Decoder::close(
    std::map<std::tuple<Address, std::uint16_t, Address, std::uint16_t>, std::unique_ptr<Conn>>::iterator it,
    std::uint64_t frame) {
  Conn& c = *it->second;
  c.a.end(frame);
  c.b.end(frame);
  stats_.retransmitted += c.a.reasm->retransmitted() + c.b.reasm->retransmitted();
  conns_.erase(it);
}

void Decoder::finish(std::uint64_t last_frame) {
  while (!conns_.empty()) close(conns_.begin(), last_frame);
  requests_.clear();
}

}  // namespace sv::pcap
