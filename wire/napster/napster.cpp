#include "wire/napster/napster.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace sv::wire::napster {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
    if (x != y) return false;
  }
  return true;
}

std::optional<std::uint32_t> parse_u32(std::string_view s) {
  auto v = parse_u64(s);
  if (!v || *v > 0xffffffffu) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

std::optional<std::uint16_t> parse_u16(std::string_view s) {
  auto v = parse_u64(s);
  if (!v || *v > 0xffffu) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

// The 5 fields after a name: <md5> <size> <bitrate> <frequency> <time>.
bool fill_entry(ShareEntry& e, const std::vector<std::string_view>& a, std::size_t at) {
  auto size = parse_u64(a[at + 1]);
  auto br = parse_u32(a[at + 2]);
  auto freq = parse_u32(a[at + 3]);
  auto len = parse_u32(a[at + 4]);
  if (a[at].empty() || !size || !br || !freq || !len) return false;
  e.md5 = std::string(a[at]);
  e.size = *size;
  e.bitrate = *br;
  e.freq = *freq;
  e.length = *len;
  return true;
}

std::string entry_tail(const ShareEntry& e) {
  return fmt::format("{} {} {} {} {}", e.md5.empty() ? std::string(32, '0') : e.md5, e.size, e.bitrate, e.freq,
                     e.length);
}

std::string dotted(std::uint32_t host_order) {
  return fmt::format("{}.{}.{}.{}", host_order >> 24, (host_order >> 16) & 0xff, (host_order >> 8) & 0xff,
                     host_order & 0xff);
}

}  // namespace

std::string type_name(std::uint16_t type) {
  switch (type) {
    case kError: return "error";
    case kLogin: return "login";
    case kLoginAck: return "login-ack";
    case kVersionCheck: return "version-check";
    case kNewUserQuery: return "new-user-query";
    case kNewUserLogin: return "new-user-login";
    case kNickOk: return "nick-ok";
    case kNickTaken: return "nick-taken";
    case kNickInvalid: return "nick-invalid";
    case kShare: return "share";
    case kRemove: return "remove";
    case kRemoveAll: return "remove-all";
    case kSearch: return "search";
    case kSearchResult: return "search-result";
    case kSearchEnd: return "search-end";
    case kDownloadRequest: return "download-request";
    case kDownloadAck: return "download-ack";
    case kPrivateMessage: return "private-message";
    case kDownloadError: return "download-error";
    case kBrowse: return "browse";
    case kBrowseResult: return "browse-result";
    case kBrowseEnd: return "browse-end";
    case kStats: return "stats";
    case kDownloading: return "downloading";
    case kDownloadDone: return "download-done";
    case kUploading: return "uploading";
    case kUploadDone: return "upload-done";
    case kServerError: return "server-error";
    case kAltDownloadRequest: return "alt-download-request";
    case kAltDownloadAck: return "alt-download-ack";
    case kWhois: return "whois";
    case kWhoisResponse: return "whois-response";
    case kWhowas: return "whowas";
    case kUploadRequest: return "upload-request";
    case kUploadAccept: return "upload-accept";
    case kMotd: return "motd";
    case kDataPort: return "data-port";
    case kPing: return "ping";
    case kPong: return "pong";
    case kShareDir: return "share-dir";
    default: return fmt::format("type-{}", type);
  }
}

void append_frame(Bytes& out, std::uint16_t type, std::string_view payload) {
  const auto n = static_cast<std::uint16_t>(std::min<std::size_t>(payload.size(), 0xffff));
  put_le16(out, n);
  put_le16(out, type);
  out.insert(out.end(), payload.begin(), payload.begin() + n);
}

Bytes encode_frame(std::uint16_t type, std::string_view payload) {
  Bytes out;
  out.reserve(kHeaderSize + payload.size());
  append_frame(out, type, payload);
  return out;
}

Result<Frame> decode_frame(ByteView in, std::size_t& consumed, std::size_t max_payload) {
  if (in.size() < kHeaderSize) return WireError::NeedMore;
  const std::size_t len = get_le16(in.data());
  if (len > max_payload) return WireError::TooLarge;
  if (in.size() < kHeaderSize + len) return WireError::NeedMore;
  consumed = kHeaderSize + len;
  return Frame{get_le16(in.data() + 2), as_chars(in.subspan(kHeaderSize, len))};
}

void Framer::feed(ByteView bytes) {
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ * 2 > buf_.size())) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

Result<Frame> Framer::next() {
  std::size_t used = 0;
  auto f = decode_frame(ByteView(buf_.data() + pos_, buf_.size() - pos_), used, max_payload_);
  if (f) pos_ += used;
  return f;
}

Bytes Framer::take_rest() {
  Bytes rest(buf_.begin() + static_cast<std::ptrdiff_t>(pos_), buf_.end());
  buf_.clear();
  pos_ = 0;
  return rest;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

Result<std::vector<std::string_view>> split_args(std::string_view p) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < p.size()) {
    if (p[i] == ' ') {
      ++i;
      continue;
    }
    if (p[i] == '"') {
      // Closes at a quote followed by a space or the end.
      std::size_t j = i + 1;
      for (;;) {
        j = p.find('"', j);
        if (j == std::string_view::npos) return WireError::Malformed;
        if (j + 1 == p.size() || p[j + 1] == ' ') break;
        ++j;
      }
      out.push_back(p.substr(i + 1, j - i - 1));
      i = j + 1;
      continue;
    }
    const std::size_t j = std::min(p.find(' ', i), p.size());
    out.push_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}

Result<std::vector<std::string_view>> split_around_name(std::string_view p, std::size_t lead, std::size_t tail) {
  if (p.find('\0') != std::string_view::npos) return WireError::Malformed;
  std::vector<std::string_view> out(lead + 1 + tail);
  std::size_t i = 0;
  auto skip = [&] {
    while (i < p.size() && p[i] == ' ') ++i;
  };
  for (std::size_t k = 0; k < lead; ++k) {
    skip();
    const std::size_t j = std::min(p.find(' ', i), p.size());
    if (j == i) return WireError::Malformed;
    out[k] = p.substr(i, j - i);
    i = j;
  }
  skip();
  if (i >= p.size() || p[i] != '"') return WireError::Malformed;
  std::size_t end = p.size();
  while (end > i && p[end - 1] == ' ') --end;
  for (std::size_t k = 0; k < tail; ++k) {
    const std::size_t sp = p.rfind(' ', end - 1);
    if (sp == std::string_view::npos || sp <= i) return WireError::Malformed;
    out[lead + 1 + tail - 1 - k] = p.substr(sp + 1, end - sp - 1);
    if (out[lead + 1 + tail - 1 - k].empty()) return WireError::Malformed;
    end = sp;
    while (end > i && p[end - 1] == ' ') --end;
  }
  // [i, end) is "<name>".
  if (end < i + 2 || p[end - 1] != '"') return WireError::Malformed;
  out[lead] = p.substr(i + 1, end - i - 2);
  return out;
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  out += s;
  out += '"';
  return out;
}

// --- login ---------------------------------------------------------------------

namespace {
Result<Login> login_fields(std::string_view payload, bool with_email) {
  auto a = split_args(payload);
  if (!a) return a.error();
  const std::size_t need = with_email ? 6 : 5;
  if (a->size() < need) return WireError::Malformed;
  Login l;
  l.nick = std::string((*a)[0]);
  l.password = std::string((*a)[1]);
  auto port = parse_u16((*a)[2]);
  auto link = parse_u32((*a)[4]);
  if (l.nick.empty() || !port || !link) return WireError::Malformed;
  l.port = *port;
  l.client = std::string((*a)[3]);
  l.link = *link;
  if (with_email) l.email = std::string((*a)[5]);
  return l;
}
}  // namespace

Result<Login> decode_login(std::string_view payload) { return login_fields(payload, false); }
Result<Login> decode_new_user(std::string_view payload) { return login_fields(payload, true); }

std::string encode_login(const Login& l) {
  return fmt::format("{} {} {} {} {}", l.nick, l.password, l.port, quote(l.client), l.link);
}
std::string encode_new_user(const Login& l) {
  return fmt::format("{} {} {} {} {} {}", l.nick, l.password, l.port, quote(l.client), l.link,
                     l.email.empty() ? "anon@localhost" : l.email);
}

// --- shares --------------------------------------------------------------------

Result<ShareEntry> decode_share(std::string_view payload) {
  auto a = split_around_name(payload, 0, 5);
  if (!a) return a.error();
  ShareEntry e;
  e.name = std::string((*a)[0]);
  if (e.name.empty() || !fill_entry(e, *a, 1)) return WireError::Malformed;
  return e;
}

std::string encode_share(const ShareEntry& e) { return quote(e.name) + " " + entry_tail(e); }

Result<std::vector<ShareEntry>> decode_share_dir(std::string_view payload) {
  auto a = split_args(payload);
  if (!a || a->size() < 7 || (a->size() - 1) % 6 != 0) return WireError::Malformed;
  std::vector<ShareEntry> out;
  const std::string folder((*a)[0]);
  for (std::size_t i = 1; i + 6 <= a->size(); i += 6) {
    ShareEntry e;
    if ((*a)[i].empty()) return WireError::Malformed;
    e.name = folder + std::string((*a)[i]);
    if (!fill_entry(e, *a, i + 1)) return WireError::Malformed;
    out.push_back(std::move(e));
  }
  return out;
}

std::string encode_share_dir(std::string_view folder, const std::vector<ShareEntry>& files) {
  std::string out = quote(folder);
  for (const auto& f : files) out += " " + quote(f.name) + " " + entry_tail(f);
  return out;
}

Result<std::string> decode_remove(std::string_view payload) {
  while (!payload.empty() && payload.back() == ' ') payload.remove_suffix(1);
  if (payload.size() >= 2 && payload.front() == '"' && payload.back() == '"') {
    payload = payload.substr(1, payload.size() - 2);
  }
  if (payload.empty() || payload.find('\0') != std::string_view::npos) return WireError::Malformed;
  return std::string(payload);
}

// --- search --------------------------------------------------------------------

std::string_view to_string(Compare c) {
  switch (c) {
    case Compare::AtLeast: return "AT LEAST";
    case Compare::AtBest: return "AT BEST";
    case Compare::EqualTo: return "EQUAL TO";
  }
  return "?";
}

Result<SearchQuery> decode_search(std::string_view payload) {
  auto a = split_args(payload);
  if (!a) return a.error();
  const auto& t = *a;
  SearchQuery q;
  bool have_max = false;
  std::size_t i = 0;
  auto limit = [&](std::optional<Limit>& into) -> bool {
    if (i + 2 >= t.size()) return false;
    Limit l;
    if (iequals(t[i + 1], "AT LEAST")) {
      l.cmp = Compare::AtLeast;
    } else if (iequals(t[i + 1], "AT BEST")) {
      l.cmp = Compare::AtBest;
    } else if (iequals(t[i + 1], "EQUAL TO")) {
      l.cmp = Compare::EqualTo;
    } else {
      return false;
    }
    auto v = parse_u32(t[i + 2]);
    if (!v) return false;
    l.value = *v;
    into = l;
    i += 3;
    return true;
  };
  while (i < t.size()) {
    if (iequals(t[i], "FILENAME")) {
      if (i + 2 >= t.size() || !iequals(t[i + 1], "CONTAINS")) return WireError::Malformed;
      q.contains.emplace_back(t[i + 2]);
      i += 3;
    } else if (iequals(t[i], "MAX_RESULTS")) {
      auto v = i + 1 < t.size() ? parse_u32(t[i + 1]) : std::nullopt;
      if (!v) return WireError::Malformed;
      q.max_results = *v;
      have_max = true;
      i += 2;
    } else if (iequals(t[i], "LINESPEED")) {
      if (!limit(q.linespeed)) return WireError::Malformed;
    } else if (iequals(t[i], "BITRATE")) {
      if (!limit(q.bitrate)) return WireError::Malformed;
    } else if (iequals(t[i], "FREQ")) {
      if (!limit(q.freq)) return WireError::Malformed;
    } else if (iequals(t[i], "LOCAL_ONLY")) {
      ++i;  // no links here: every search is local
    } else {
      return WireError::Malformed;
    }
  }
  (void)have_max;  // napster.txt makes it required; clients omit it, opennap defaults it
  return q;
}

std::string encode_search(const SearchQuery& q) {
  std::string out;
  for (const auto& c : q.contains) out += "FILENAME CONTAINS " + quote(c) + " ";
  out += fmt::format("MAX_RESULTS {}", q.max_results);
  if (q.linespeed) out += fmt::format(" LINESPEED \"{}\" {}", to_string(q.linespeed->cmp), q.linespeed->value);
  if (q.bitrate) out += fmt::format(" BITRATE \"{}\" \"{}\"", to_string(q.bitrate->cmp), q.bitrate->value);
  if (q.freq) out += fmt::format(" FREQ \"{}\" \"{}\"", to_string(q.freq->cmp), q.freq->value);
  return out;
}

Result<SearchResult> decode_search_result(std::string_view payload) {
  // 8 words after the name; some servers add a 9th (weight).
  auto a = split_around_name(payload, 0, 8);
  if (!a) a = split_around_name(payload, 0, 9);
  if (!a) return a.error();
  SearchResult r;
  r.file.name = std::string((*a)[0]);
  auto ip = parse_u32((*a)[7]);
  auto link = parse_u32((*a)[8]);
  if (r.file.name.empty() || !fill_entry(r.file, *a, 1) || (*a)[6].empty() || !ip || !link) {
    return WireError::Malformed;
  }
  r.nick = std::string((*a)[6]);
  r.ip = from_napster_ip(*ip);
  r.link = *link;
  return r;
}

std::string encode_search_result(const SearchResult& r) {
  return fmt::format("{} {} {} {} {}", quote(r.file.name), entry_tail(r.file), r.nick, to_napster_ip(r.ip), r.link);
}

Result<SearchResult> decode_browse_result(std::string_view payload) {
  auto a = split_around_name(payload, 1, 5);
  if (!a) return a.error();
  SearchResult r;
  r.nick = std::string((*a)[0]);
  r.file.name = std::string((*a)[1]);
  if (r.file.name.empty() || !fill_entry(r.file, *a, 2)) return WireError::Malformed;
  return r;
}

std::string encode_browse_result(std::string_view nick, const ShareEntry& e) {
  return fmt::format("{} {} {}", nick, quote(e.name), entry_tail(e));
}

// --- transfers -------------------------------------------------------------------

Result<NickFile> decode_nick_file(std::string_view payload) {
  NickFile n;
  auto a = split_around_name(payload, 1, 0);
  if (!a) {
    a = split_around_name(payload, 1, 1);
    if (!a) return a.error();
    auto speed = parse_u32((*a)[2]);
    if (!speed) return WireError::Malformed;
    n.speed = *speed;
  }
  n.nick = std::string((*a)[0]);
  n.name = std::string((*a)[1]);
  if (n.name.empty()) return WireError::Malformed;
  return n;
}

std::string encode_nick_file(const NickFile& n) {
  std::string out = n.nick + " " + quote(n.name);
  if (n.speed) out += fmt::format(" {}", *n.speed);
  return out;
}

Result<TransferAck> decode_transfer_ack(std::string_view payload) {
  auto a = split_around_name(payload, 3, 2);
  if (!a) return a.error();
  TransferAck t;
  auto ip = parse_u32((*a)[1]);
  auto port = parse_u16((*a)[2]);
  auto link = parse_u32((*a)[5]);
  if (!ip || !port || !link || (*a)[3].empty()) return WireError::Malformed;
  t.nick = std::string((*a)[0]);
  t.ip = from_napster_ip(*ip);
  t.port = *port;
  t.name = std::string((*a)[3]);
  t.md5 = std::string((*a)[4]);
  t.link = *link;
  return t;
}

std::string encode_transfer_ack(const TransferAck& t) {
  return fmt::format("{} {} {} {} {} {}", t.nick, to_napster_ip(t.ip), t.port, quote(t.name),
                     t.md5.empty() ? std::string(32, '0') : t.md5, t.link);
}

Result<Stats> decode_stats(std::string_view payload) {
  auto a = split_args(payload);
  if (!a || a->size() != 3) return WireError::Malformed;
  auto u = parse_u64((*a)[0]), f = parse_u64((*a)[1]), g = parse_u64((*a)[2]);
  if (!u || !f || !g) return WireError::Malformed;
  return Stats{*u, *f, *g};
}

std::string encode_stats(const Stats& s) { return fmt::format("{} {} {}", s.users, s.files, s.gigabytes); }

// --- describe ----------------------------------------------------------------------

std::string describe(const Frame& f) {
  const std::string name = type_name(f.type);
  auto raw = [&] { return f.payload.empty() ? name : name + " " + std::string(f.payload); };
  switch (f.type) {
    case kLogin:
    case kNewUserLogin: {
      auto l = f.type == kLogin ? decode_login(f.payload) : decode_new_user(f.payload);
      if (!l) break;
      return fmt::format("{} nick={} port={} client={} link={}{}", name, l->nick, l->port, quote(l->client), l->link,
                         l->email.empty() ? "" : " email=" + l->email);
    }
    case kShare: {
      auto e = decode_share(f.payload);
      if (!e) break;
      return fmt::format("{} {} size={} bitrate={} freq={} length={}", name, quote(e->name), e->size, e->bitrate,
                         e->freq, e->length);
    }
    case kShareDir: {
      auto v = decode_share_dir(f.payload);
      if (!v) break;
      std::string out = name;
      for (const auto& e : *v) out += fmt::format(" {} size={}", quote(e.name), e.size);
      return out;
    }
    case kSearch: {
      auto q = decode_search(f.payload);
      if (!q) break;
      return name + " " + encode_search(*q);
    }
    case kSearchResult: {
      auto r = decode_search_result(f.payload);
      if (!r) break;
      return fmt::format("{} {} size={} bitrate={} freq={} length={} nick={} ip={} link={}", name, quote(r->file.name),
                         r->file.size, r->file.bitrate, r->file.freq, r->file.length, r->nick, dotted(r->ip), r->link);
    }
    case kBrowseResult: {
      auto r = decode_browse_result(f.payload);
      if (!r) break;
      return fmt::format("{} nick={} {} size={}", name, r->nick, quote(r->file.name), r->file.size);
    }
    case kDownloadRequest:
    case kDownloadError:
    case kAltDownloadRequest:
    case kUploadRequest:
    case kUploadAccept: {
      auto n = decode_nick_file(f.payload);
      if (!n) break;
      return fmt::format("{} nick={} {}{}", name, n->nick, quote(n->name),
                         n->speed ? fmt::format(" speed={}", *n->speed) : "");
    }
    case kDownloadAck:
    case kAltDownloadAck: {
      auto t = decode_transfer_ack(f.payload);
      if (!t) break;
      return fmt::format("{} nick={} ip={} port={} {} link={}", name, t->nick, dotted(t->ip), t->port, quote(t->name),
                         t->link);
    }
    case kStats: {
      auto s = decode_stats(f.payload);
      if (!s) break;
      return fmt::format("{} users={} files={} gb={}", name, s->users, s->files, s->gigabytes);
    }
    default: break;
  }
  return raw();
}

}  // namespace sv::wire::napster
