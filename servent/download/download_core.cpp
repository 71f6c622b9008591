#include "servent/download/download_core.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "http/range.hpp"
#include "http/text.hpp"
#include "wire/gnutella/giv.hpp"
#include "wire/napster/napster.hpp"

namespace sv {

namespace {

constexpr std::array<std::string_view, DownloadCore::kStatCount> kStatNames = {
    "downloads_started",  "downloads_completed",  "downloads_failed",      "verify_failures",
    "download_requests",  "download_bytes",       "download_bytes_discarded", "source_busy_503",
    "source_failures",    "sources_dropped",      "sources_lying",         "sources_bad_data",
    "sources_wrong_urn",  "sources_added",        "download_stalls",       "work_stolen",
    "pushes_asked",       "giv_matched",          "giv_unknown",           "giv_malformed",
};

}  // namespace

std::string DownloadSource::url() const {
  if (napster) return "napster://" + http::percent_encode(napster->nick) + "/" + http::percent_encode(napster->file);
  if (push) return "push://" + push->servent.hex() + target;
  return "http://" + endpoint.to_string() + target;
}

std::optional<DownloadSource> DownloadSource::from_url(std::string_view url) {
  constexpr std::string_view kNapster = "napster://";
  if (url.starts_with(kNapster)) {
    url.remove_prefix(kNapster.size());
    const auto slash = url.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto nick = http::percent_decode(url.substr(0, slash));
    auto file = http::percent_decode(url.substr(slash + 1));
    if (!nick || !file || nick->empty() || file->empty() || nick->find_first_of(" \"\r\n") != std::string::npos ||
        file->find_first_of("\r\n") != std::string::npos) {
      return std::nullopt;
    }
    DownloadSource s;
    s.napster = NapsterVia{*nick, *file};
    return s;
  }
  constexpr std::string_view kPush = "push://";
  if (url.starts_with(kPush) && url.size() > kPush.size() + 32) {
    // push://<ServentID hex>/get/<index>/<name>
    auto id = wire::gnutella::ServentId::from_hex(url.substr(kPush.size(), 32));
    std::string target(url.substr(kPush.size() + 32));
    if (!id || !target.starts_with("/get/")) return std::nullopt;
    std::uint32_t index = 0;
    auto r = std::from_chars(target.data() + 5, target.data() + target.size(), index);
    if (r.ec != std::errc{}) return std::nullopt;
    return DownloadSource{Endpoint{}, target, PushVia{*id, index}};
  }
  constexpr std::string_view kScheme = "http://";
  if (url.size() <= kScheme.size() || !wire::iequals(url.substr(0, kScheme.size()), kScheme)) return std::nullopt;
  url.remove_prefix(kScheme.size());
  auto slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  std::string target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  std::string hp(hostport);
  if (hp.find(':') == std::string::npos) hp += ":80";
  auto ep = Endpoint::parse(hp);
  if (!ep || ep->port == 0) return std::nullopt;
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;  // no CR/LF/space injection
  }
  return DownloadSource{*ep, target, {}};
}

struct DownloadCore::Source {
  DownloadSource src;
  enum class State { Idle, Busy, Suspect, Dropped } state = State::Idle;
  int failures = 0;
  Duration backoff{0};
  Instant retry_at;
  bool waiting = false;  // retry_at is a pending retry time
  std::uint64_t bytes = 0;
  std::optional<ConnId> idle_conn;  // a keep-alive connection waiting for a request
};

namespace {
DownloadCore::Source make_source(const DownloadSource& src, Instant now);
}

struct DownloadCore::Conn {
  ConnId id;
  std::uint64_t download = 0;
  std::size_t source = 0;
  // AwaitGiv: a placeholder for a push source (no socket yet); Giv: an
  // inbound connection whose GIV (or Napster SEND) line is being read.
  // AwaitNapster: a placeholder until the Napster server says where the
  // sharer is; NapHello/NapSize/NapCheck: the Napster transfer before its data.
  enum class Phase {
    Connecting,
    AwaitGiv,
    Giv,
    AwaitNapster,
    NapHello,
    NapSize,
    NapCheck,
    AwaitHead,
    Body,
    Idle,
    Closing
  } phase = Phase::Connecting;
  wire::Bytes giv_buf;
  bool napster = false;              // a Napster transfer (no HTTP, no keep-alive)
  std::uint64_t nap_offset = 0;      // the offset we sent (may be before asked.first: the overlap)
  std::string nap_digits;            // the size (or an error line) as it arrives
  wire::Bytes overlap, head;         // what [nap_offset, asked.first) and [0, that many) hold on disk
  std::size_t checked = 0;           // overlap bytes compared so far
  bool same_as_overlap = true, same_as_head = true;
  http::ResponseParser parser;
  share::Interval asked;        // what the request asked for (end exclusive; end 0 = open)
  std::uint64_t pos = 0;        // file offset of the next body byte
  std::uint64_t assigned_end = 0;  // stop writing here (may shrink when work is stolen)
  std::optional<std::uint64_t> remaining;  // body bytes still to come (nullopt: until close)
  std::uint64_t skip = 0;       // leading body bytes to discard (a 200 to a Range)
  Instant last_activity;
  bool keep_alive = false;
};

struct DownloadCore::Download {
  std::uint64_t id = 0;
  std::unique_ptr<share::PartialFile> file;
  std::string out_dir;
  bool await_sources = false;
  std::vector<Source> sources;
  std::map<std::uint64_t, ConnId> assigned;  // first offset of an in-flight range -> conn
  // Who supplied which bytes; -1 for bytes from before a restart.
  std::vector<std::pair<share::Interval, int>> supplied;
  std::optional<std::size_t> testing_suspect;
  std::set<int> tested;  // contributors whose bytes were replaced without fixing the file
  bool finished = false;
  bool paused = false;  // no connections until resumed; what arrived is kept
  std::string state = "active";
  std::string final_path;
  Instant next_save;
  std::uint64_t last_progress = UINT64_MAX;
};

namespace {
DownloadCore::Source make_source(const DownloadSource& src, Instant now) {
  DownloadCore::Source s;
  s.src = src;
  s.retry_at = now;
  return s;
}
}  // namespace

DownloadCore::DownloadCore(DownloadConfig config) : config_(std::move(config)) {}
DownloadCore::~DownloadCore() = default;

std::string DownloadCore::key_for(const DownloadSpec& spec) {
  if (spec.sha1) return share::base32_encode(spec.sha1->data(), spec.sha1->size());
  std::string basis = spec.sources.empty() ? spec.name : spec.sources.front().url();
  auto h = share::sha1_of(basis);
  return "url-" + wire::to_hex(wire::ByteView(h.data(), 10));
}

std::uint64_t DownloadCore::start(const DownloadSpec& spec, Instant now, std::string& error) {
  share::DownloadMeta initial;
  initial.name = spec.name;
  initial.sha1 = spec.sha1;
  if (spec.size) {
    initial.size = *spec.size;
    initial.size_known = true;
  }
  for (const auto& s : spec.sources) initial.sources.push_back(s.url());
  const std::string key = key_for(spec);
  for (const auto& [id, d] : downloads_) {
    if (!d->finished && d->file && d->file->key() == key) {
      for (const auto& s : spec.sources) add_source(id, s, now);
      return id;
    }
  }
  auto dir = (std::filesystem::path(config_.state_dir) / "downloads").string();
  auto file = share::PartialFile::open(dir, key, std::move(initial), error);
  if (!file) return 0;
  auto d = std::make_unique<Download>();
  d->id = next_id_++;
  d->out_dir = spec.out_dir;
  d->await_sources = spec.await_sources;
  d->next_save = now + config_.save_interval;
  // Sources: those remembered in the metadata (resume) and the given ones.
  for (const auto& url : file->meta().sources) {
    if (auto s = DownloadSource::from_url(url)) d->sources.push_back(make_source(*s, now));
  }
  for (const auto& iv : file->meta().have.intervals()) d->supplied.push_back({iv, -1});
  d->file = std::move(file);
  const std::uint64_t id = d->id;
  auto& ref = *d;
  downloads_.emplace(id, std::move(d));
  ++stats_[kStarted];
  progress(ref);
  check_complete(ref, now);
  if (!ref.finished) schedule(ref, now);
  return id;
}

void DownloadCore::add_source(std::uint64_t id, const DownloadSource& src, Instant now) {
  auto it = downloads_.find(id);
  if (it == downloads_.end() || it->second->finished) return;
  Download& d = *it->second;
  if (!src.push && (src.endpoint.ip == 0 || src.endpoint.port == 0)) return;  // unreachable as given
  for (const auto& s : d.sources) {
    if (s.src.url() == src.url()) return;
  }
  d.sources.push_back(make_source(src, now));
  d.file->add_source(src.url());
  ++stats_[kSourcesAdded];
  schedule(d, now);
}

void DownloadCore::cancel(std::uint64_t id, Instant) {
  auto it = downloads_.find(id);
  if (it == downloads_.end()) return;
  Download& d = *it->second;
  for (auto& [cid, c] : conns_) {
    if (c->download == id) close_conn(*c, CloseReason::Normal);
  }
  d.finished = true;
  d.state = "cancelled";
  d.file->save();
}

bool DownloadCore::pause(std::uint64_t id, Instant) {
  auto it = downloads_.find(id);
  if (it == downloads_.end() || it->second->finished) return false;
  Download& d = *it->second;
  if (d.paused) return true;
  for (auto& [cid, c] : conns_) {
    if (c->download != id || c->phase == Conn::Phase::Closing || c->phase == Conn::Phase::Giv) continue;
    // Its range goes back to the missing ones and its source waits, unblamed.
    release(d, *c);
    Source& s = d.sources[c->source];
    if (s.state == Source::State::Busy) s.state = Source::State::Idle;
    s.idle_conn.reset();
    close_conn(*c, CloseReason::Normal);
  }
  d.paused = true;
  d.state = "paused";
  d.file->save();
  return true;
}

bool DownloadCore::resume(std::uint64_t id, Instant now) {
  auto it = downloads_.find(id);
  if (it == downloads_.end() || it->second->finished) return false;
  Download& d = *it->second;
  if (!d.paused) return true;
  d.paused = false;
  d.state = "active";
  for (auto& s : d.sources) {
    if (s.state != Source::State::Idle) continue;
    s.retry_at = now;
    s.waiting = false;
  }
  schedule(d, now);
  return true;
}

std::vector<DownloadCore::Info> DownloadCore::list() const {
  std::vector<Info> out;
  for (const auto& [id, d] : downloads_) {
    Info i{id, d->file ? d->file->meta().name : "", 0, 0, d->state, d->sources.size(), 0, d->final_path};
    if (d->file) {
      i.have = d->file->meta().have.total();
      i.size = d->file->meta().size_known ? d->file->meta().size : 0;
    }
    for (const auto& s : d->sources) i.busy += s.state == Source::State::Busy;
    out.push_back(std::move(i));
  }
  return out;
}

std::size_t DownloadCore::active() const {
  std::size_t n = 0;
  for (const auto& [id, d] : downloads_) n += !d->finished;
  return n;
}

void DownloadCore::progress(Download& d) {
  const auto have = d.file->meta().have.total();
  if (have == d.last_progress) return;
  d.last_progress = have;
  std::size_t busy = 0;
  for (const auto& s : d.sources) busy += s.state == Source::State::Busy;
  events_.push_back(event::DownloadProgress{d.id, have, d.file->meta().size_known ? d.file->meta().size : 0, busy});
}

void DownloadCore::schedule(Download& d, Instant now) {
  if (d.finished || d.paused) return;
  std::size_t busy = 0;
  for (const auto& s : d.sources) busy += s.state == Source::State::Busy;
  for (auto& s : d.sources) {
    if (busy >= config_.max_connections_per_download) break;
    if (s.state != Source::State::Idle || s.retry_at > now) continue;
    s.waiting = false;
    if (!assign(d, s, now)) break;
    ++busy;
  }
  bool usable = false;
  for (const auto& s : d.sources) {
    usable = usable || s.state == Source::State::Idle || s.state == Source::State::Busy;
  }
  if (!usable && !(d.sources.empty() && d.await_sources)) {
    fail(d, d.sources.empty() ? "no sources" : "every source failed or was dropped");
  }
}

bool DownloadCore::assign(Download& d, Source& s, Instant now) {
  const auto& meta = d.file->meta();
  share::Interval range{0, 0};
  if (!meta.size_known) {
    // Size unknown: one open request from the first missing byte.
    if (!d.assigned.empty()) return false;
    range = {meta.have.prefix(), 0};
  } else {
    // The first gap not already being fetched.
    share::RangeSet taken = meta.have;
    for (const auto& [first, cid] : d.assigned) {
      const Conn& c = *conns_.at(cid);
      taken.add(first, c.assigned_end);
    }
    auto gap = taken.first_gap(meta.size);
    if (!gap) {
      // Nothing left to hand out: take over the back half of the slowest
      // transfer that still has a lot to go (the endgame).
      Conn* slowest = nullptr;
      std::uint64_t most = 0;
      for (const auto& [first, cid] : d.assigned) {
        Conn& c = *conns_.at(cid);
        const std::uint64_t left = c.assigned_end - std::max(c.pos, first);
        if (left > most) {
          most = left;
          slowest = &c;
        }
      }
      // Only a source with a clean record takes work from another.
      if (!slowest || most < 2 * config_.chunk_min || s.failures > 0) return false;
      const std::uint64_t mid = slowest->assigned_end - most / 2;
      range = {mid, slowest->assigned_end};
      slowest->assigned_end = mid;
      ++stats_[kWorkStolen];
    } else {
      std::size_t usable = 0;
      for (const auto& x : d.sources) usable += x.state == Source::State::Idle || x.state == Source::State::Busy;
      const std::uint64_t missing = meta.size - meta.have.total();
      std::uint64_t chunk = std::clamp<std::uint64_t>(missing / std::max<std::size_t>(usable, 1), config_.chunk_min,
                                                      config_.chunk_max);
      // A Napster transfer runs to the end of the file: give it a whole gap.
      if (s.src.napster) chunk = gap->end - gap->first;
      range = {gap->first, std::min(gap->end, gap->first + chunk)};
    }
  }
  const std::size_t src_index = static_cast<std::size_t>(&s - d.sources.data());
  s.state = Source::State::Busy;
  Conn* c = nullptr;
  if (s.idle_conn) {
    auto it = conns_.find(*s.idle_conn);
    s.idle_conn.reset();
    if (it != conns_.end() && it->second->phase == Conn::Phase::Idle) c = it->second.get();
  }
  if (!c) {
    auto conn = std::make_unique<Conn>();
    conn->id = ConnId{new_conn_id()};
    conn->download = d.id;
    conn->source = src_index;
    conn->last_activity = now;
    c = conn.get();
    conns_.emplace(conn->id, std::move(conn));
    if (s.src.napster) {
      // The server has to tell us where the sharer is (or bring it to us).
      c->phase = Conn::Phase::AwaitNapster;
      c->napster = true;
      events_.push_back(event::NapsterNeeded{d.id, s.src.napster->nick, s.src.napster->file});
    } else if (s.src.push) {
      // Firewalled: it has to come to us. The GIV finds this placeholder.
      c->phase = Conn::Phase::AwaitGiv;
      ++stats_[kPushesAsked];
      events_.push_back(event::PushNeeded{d.id, s.src.push->servent, s.src.push->index});
    } else {
      actions_.push_back(action::Connect{c->id, s.src.endpoint});
    }
  }
  c->asked = range;
  c->pos = range.first;
  c->assigned_end = range.end == 0 ? UINT64_MAX : range.end;
  d.assigned[range.first] = c->id;
  if (c->phase == Conn::Phase::Idle) request(d, *c, now);
  return true;
}

void DownloadCore::request(Download& d, Conn& c, Instant now) {
  const Source& s = d.sources[c.source];
  std::string req = "GET " + s.src.target + " HTTP/1.1\r\n";
  wire::Headers h;
  h.add("Host", s.src.endpoint.to_string());
  h.add("User-Agent", config_.user_agent);
  h.add("Range", "bytes=" + std::to_string(c.asked.first) + "-" +
                     (c.asked.end == 0 ? std::string() : std::to_string(c.asked.end - 1)));
  h.add("Connection", "Keep-Alive");
  if (d.file->meta().sha1) {
    h.add("X-Gnutella-Content-URN", share::sha1_urn(*d.file->meta().sha1));
    // The other sources we know for this urn (HUGE §5): the uploader can
    // hand them to its next downloaders.
    std::string alts;
    std::size_t n = 0;
    for (const auto& other : d.sources) {
      if (&other == &s || other.src.push || other.state == Source::State::Dropped ||
          other.state == Source::State::Suspect || n >= 10) {
        continue;
      }
      if (!alts.empty()) alts += ",";
      alts += other.src.endpoint.to_string();
      ++n;
    }
    if (!alts.empty()) h.add("X-Alt", alts);
  }
  h.write_to(req);
  c.phase = Conn::Phase::AwaitHead;
  c.parser.next();
  c.last_activity = now;
  c.skip = 0;
  c.remaining.reset();
  ++stats_[kRequests];
  actions_.push_back(action::Send{c.id, std::make_shared<Buffer>(req.begin(), req.end())});
}

void DownloadCore::handle_connected(ConnId id, Instant now) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  auto dit = downloads_.find(c.download);
  if (dit == downloads_.end() || dit->second->finished) {
    close_conn(c, CloseReason::Normal);
    return;
  }
  if (c.napster) {
    c.phase = Conn::Phase::NapHello;  // the sharer speaks first: "1"
    c.last_activity = now;
    return;
  }
  request(*dit->second, c, now);
}

void DownloadCore::handle_inbound_giv(ConnId id, Instant now) {
  auto conn = std::make_unique<Conn>();
  conn->id = id;
  conn->phase = Conn::Phase::Giv;
  conn->last_activity = now;
  conns_.emplace(id, std::move(conn));
}

void DownloadCore::handle_bytes(ConnId id, wire::ByteView bytes, Instant now) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (it->second->phase == Conn::Phase::Giv) {
    Conn& g = *it->second;
    g.giv_buf.insert(g.giv_buf.end(), bytes.begin(), bytes.end());
    if (wire::as_chars(g.giv_buf).starts_with("SEND")) {
      napster_send_line(id, g, now);
      return;
    }
    auto giv = wire::gnutella::decode_giv(g.giv_buf);
    if (giv.need_more()) return;
    if (!giv) {
      ++stats_[kGivMalformed];
      close_conn(g, CloseReason::HandshakeMalformed);
      return;
    }
    // Which waiting push source is this? Same ServentID (and file index).
    Conn* waiting = nullptr;
    for (auto& [cid, c] : conns_) {
      if (c->phase != Conn::Phase::AwaitGiv) continue;
      auto dit = downloads_.find(c->download);
      if (dit == downloads_.end()) continue;
      const auto& src = dit->second->sources[c->source].src;
      if (src.push && src.push->servent == giv->servent_id && src.push->index == giv->file_index) {
        waiting = c.get();
        break;
      }
    }
    if (!waiting) {
      ++stats_[kGivUnknown];
      close_conn(g, CloseReason::HandshakeRefused);
      return;
    }
    ++stats_[kGivMatched];
    // The inbound connection takes the placeholder's place.
    wire::Bytes rest(g.giv_buf.begin() + static_cast<std::ptrdiff_t>(giv->consumed), g.giv_buf.end());
    auto placeholder = conns_.find(waiting->id);
    std::unique_ptr<Conn> moved = std::move(placeholder->second);
    conns_.erase(placeholder);
    Download& d = *downloads_.at(moved->download);
    if (auto a = d.assigned.find(moved->asked.first); a != d.assigned.end() && a->second == moved->id) a->second = id;
    moved->id = id;
    conns_[id] = std::move(moved);  // replaces the Giv-phase record
    Conn& c = *conns_[id];
    c.phase = Conn::Phase::Connecting;
    request(d, c, now);
    if (!rest.empty()) handle_bytes(id, rest, now);
    return;
  }
  Conn& c = *it->second;
  auto dit = downloads_.find(c.download);
  if (dit == downloads_.end() || c.phase == Conn::Phase::Closing) return;
  Download& d = *dit->second;
  c.last_activity = now;
  if (c.phase == Conn::Phase::Idle) {
    // Bytes nobody asked for on an idle keep-alive connection.
    source_failed(d, d.sources[c.source], kSourcesLying, "unsolicited bytes", true, now);
    close_conn(c, CloseReason::PayloadMalformed);
    return;
  }
  if (c.napster && c.phase != Conn::Phase::Body) {
    napster_bytes(d, c, bytes, now);
    return;
  }
  if (c.phase == Conn::Phase::AwaitHead) {
    std::size_t used = 0;
    auto st = c.parser.feed(bytes, used);
    if (st == http::ResponseParser::State::NeedMore) return;
    if (st == http::ResponseParser::State::Error) {
      source_failed(d, d.sources[c.source], kSourcesLying, "bad response: " + c.parser.error(), true, now);
      close_conn(c, CloseReason::HttpBadRequest);
      schedule(d, now);
      return;
    }
    bytes = bytes.subspan(used);
    on_head(d, c, now);
    if (c.phase != Conn::Phase::Body) return;
  }
  if (c.phase == Conn::Phase::Body && !bytes.empty()) on_body(d, c, bytes, now);
}

void DownloadCore::on_head(Download& d, Conn& c, Instant now) {
  const http::Response& r = c.parser.response();
  Source& s = d.sources[c.source];
  auto& meta = d.file->meta();
  if (r.status == 503) {
    // Busy (upload slots full): not a failure, come back later.
    ++stats_[kSourceBusy];
    std::uint64_t after = 30;
    if (auto ra = r.headers.get("Retry-After")) {
      auto t = wire::trim(*ra);
      std::from_chars(t.data(), t.data() + t.size(), after);
    }
    after = std::clamp<std::uint64_t>(after, 1, 3600);
    release(d, c);
    s.state = Source::State::Idle;
    s.retry_at = now + Duration(static_cast<std::int64_t>(after * 1000));
    s.waiting = true;
    close_conn(c, CloseReason::Normal);
    schedule(d, now);
    return;
  }
  if (r.status == 404 || r.status == 410 || r.status == 400 || r.status == 403) {
    release(d, c);
    drop_source(d, s, kSourcesDropped, "HTTP " + std::to_string(r.status));
    close_conn(c, CloseReason::Normal);
    schedule(d, now);
    return;
  }
  if (r.status == 416) {
    release(d, c);
    source_failed(d, s, kSourceFailures, "HTTP 416", false, now);
    close_conn(c, CloseReason::Normal);
    schedule(d, now);
    return;
  }
  if (r.status != 200 && r.status != 206) {
    release(d, c);
    source_failed(d, s, kSourceFailures, "HTTP " + std::to_string(r.status), false, now);
    close_conn(c, CloseReason::Normal);
    schedule(d, now);
    return;
  }
  auto lying = [&](const std::string& why) {
    release(d, c);
    drop_source(d, s, kSourcesLying, why);
    close_conn(c, CloseReason::PayloadMalformed);
    schedule(d, now);
  };
  // The file must be the one we want.
  if (auto urn = r.headers.get("X-Gnutella-Content-URN")) {
    auto sha = share::parse_sha1_urn(*urn);
    if (meta.sha1 && sha && *sha != *meta.sha1) {
      release(d, c);
      drop_source(d, s, kSourcesWrongUrn, "serves another file (" + *urn + ")");
      close_conn(c, CloseReason::Normal);
      schedule(d, now);
      return;
    }
    if (!meta.sha1 && sha) d.file->set_sha1(*sha);
  }
  std::uint64_t total = 0;
  std::uint64_t first = 0;
  std::uint64_t length = 0;
  if (r.status == 206) {
    auto cr = r.headers.get("Content-Range");
    auto parsed = cr ? http::parse_content_range(*cr) : std::nullopt;
    if (!parsed) return lying("206 without a valid Content-Range");
    if (parsed->range.first != c.asked.first || (c.asked.end != 0 && parsed->range.last >= c.asked.end)) {
      return lying("Content-Range " + *cr + " is not the range asked for");
    }
    if (r.content_length && *r.content_length != parsed->range.length()) {
      return lying("Content-Length disagrees with Content-Range");
    }
    total = parsed->total;
    first = parsed->range.first;
    length = parsed->range.length();
  } else {
    // 200: the whole file from byte 0; we asked for a range.
    if (!r.content_length) return lying("200 without Content-Length");
    total = *r.content_length;
    first = 0;
    length = total;
    if (c.asked.first > config_.max_skip) return lying("ignores Range");
    c.skip = c.asked.first;
  }
  if (meta.size_known && total != meta.size) return lying("size " + std::to_string(total) + " is not the file's size");
  if (!meta.size_known) d.file->set_size(total);
  if (c.assigned_end == UINT64_MAX || c.assigned_end > meta.size) c.assigned_end = meta.size;
  c.pos = first + c.skip;
  c.remaining = length;
  c.keep_alive = r.keep_alive;
  s.failures = 0;
  s.backoff = Duration(0);
  // Alternate locations (HUGE §5 X-Alt: "ip:port" list) for the same urn.
  if (meta.sha1) {
    if (auto alt = r.headers.get("X-Alt")) {
      std::string_view rest = *alt;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        auto item = wire::trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        std::string hp(item);
        if (hp.find(':') == std::string::npos) hp += ":6346";
        if (auto ep = Endpoint::parse(hp); ep && ep->port != 0) {
          add_source(d.id, DownloadSource{*ep, "/uri-res/N2R?" + share::sha1_urn(*meta.sha1), {}}, now);
        }
      }
    }
  }
  c.phase = Conn::Phase::Body;
  if (length == 0) response_done(d, c, now);
}

void DownloadCore::on_body(Download& d, Conn& c, wire::ByteView bytes, Instant now) {
  if (c.remaining && bytes.size() > *c.remaining) {
    // More than the response announced.
    source_failed(d, d.sources[c.source], kSourcesLying, "body longer than Content-Length", true, now);
    close_conn(c, CloseReason::PayloadMalformed);
    release(d, c);
    schedule(d, now);
    return;
  }
  if (c.remaining) *c.remaining -= bytes.size();
  stats_[kBytesReceived] += bytes.size();
  if (c.skip > 0) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(c.skip, bytes.size()));
    c.skip -= n;
    stats_[kBytesDiscarded] += n;
    bytes = bytes.subspan(n);
  }
  if (!bytes.empty() && c.pos < c.assigned_end) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), c.assigned_end - c.pos));
    if (!d.file->write(c.pos, bytes.first(n))) {
      fail(d, "cannot write the partial file");
      return;
    }
    Source& s = d.sources[c.source];
    s.bytes += n;
    const int who = static_cast<int>(c.source);
    if (!d.supplied.empty() && d.supplied.back().second == who && d.supplied.back().first.end == c.pos) {
      d.supplied.back().first.end += n;
    } else {
      d.supplied.push_back({{c.pos, c.pos + n}, who});
    }
    c.pos += n;
    if (n < bytes.size()) stats_[kBytesDiscarded] += bytes.size() - n;
  } else {
    stats_[kBytesDiscarded] += bytes.size();
  }
  if (now >= d.next_save) {
    d.file->save();
    d.next_save = now + config_.save_interval;
  }
  progress(d);
  if (c.pos >= c.assigned_end && (c.remaining ? *c.remaining > 0 : c.napster)) {
    // Our part is done but the response goes on (its tail went to another
    // source): this connection cannot be reused.
    release(d, c);
    d.sources[c.source].state = Source::State::Idle;
    close_conn(c, CloseReason::Normal);
    check_complete(d, now);
    schedule(d, now);
    return;
  }
  if (c.remaining && *c.remaining == 0) response_done(d, c, now);
}

void DownloadCore::response_done(Download& d, Conn& c, Instant now) {
  release(d, c);
  Source& s = d.sources[c.source];
  if (s.state == Source::State::Busy) s.state = Source::State::Idle;
  if (c.keep_alive && s.state == Source::State::Idle) {
    c.phase = Conn::Phase::Idle;
    s.idle_conn = c.id;
  } else {
    close_conn(c, CloseReason::Normal);
  }
  check_complete(d, now);
  schedule(d, now);
  // An idle keep-alive connection nobody wanted: close it.
  if (c.phase == Conn::Phase::Idle && s.idle_conn == c.id && (d.finished || s.state != Source::State::Idle)) {
    s.idle_conn.reset();
    close_conn(c, CloseReason::Normal);
  }
}

void DownloadCore::release(Download& d, Conn& c) {
  auto it = d.assigned.find(c.asked.first);
  if (it != d.assigned.end() && it->second == c.id) d.assigned.erase(it);
}

void DownloadCore::close_conn(Conn& c, CloseReason reason) {
  if (c.phase == Conn::Phase::Closing) return;
  if (c.phase == Conn::Phase::AwaitGiv || c.phase == Conn::Phase::AwaitNapster) {
    // A placeholder: no socket to close; forget it at the next timeout.
    c.phase = Conn::Phase::Closing;
    stale_.push_back(c.id);
    return;
  }
  c.phase = Conn::Phase::Closing;
  actions_.push_back(action::Close{c.id, reason, false});
}

void DownloadCore::source_failed(Download& d, Source& s, Stat why, const std::string& reason, bool fatal,
                                 Instant now) {
  if (s.state == Source::State::Dropped || s.state == Source::State::Suspect) return;
  if (fatal) {
    drop_source(d, s, why, reason);
    return;
  }
  ++stats_[kSourceFailures];
  s.state = Source::State::Idle;
  s.idle_conn.reset();
  if (++s.failures >= config_.max_failures) {
    drop_source(d, s, kSourcesDropped, reason + " (" + std::to_string(s.failures) + " failures)");
    return;
  }
  s.backoff = s.backoff.count() == 0 ? config_.retry_min : std::min(s.backoff * 2, config_.retry_max);
  s.retry_at = now + s.backoff;
  s.waiting = true;
}

void DownloadCore::drop_source(Download& d, Source& s, Stat why, const std::string& reason) {
  if (s.state == Source::State::Dropped) return;
  s.state = Source::State::Dropped;
  s.idle_conn.reset();
  ++stats_[why];
  if (why != kSourcesDropped) ++stats_[kSourcesDropped];
  events_.push_back(event::SourceDropped{d.id, s.src.url(), reason});
}

void DownloadCore::check_complete(Download& d, Instant now) {
  if (d.finished || !d.file->complete()) return;
  d.file->save();
  const auto& meta = d.file->meta();
  bool verified = false;
  if (meta.sha1) {
    auto h = d.file->hash();
    if (!h) {
      fail(d, "cannot read the partial file back");
      return;
    }
    if (*h != *meta.sha1) {
      ++stats_[kVerifyFailures];
      // Find who to blame: the largest contributor not yet set aside. Its
      // bytes are fetched again from the others; if the file then verifies,
      // it was the one.
      std::map<int, std::uint64_t> by_source;
      for (const auto& [iv, who] : d.supplied) by_source[who] += iv.size();
      if (d.testing_suspect) {
        // Replacing the last suspect's bytes did not help: it was probably
        // not the one. Let it serve again and test the next contributor.
        Source& innocent = d.sources[*d.testing_suspect];
        if (innocent.state == Source::State::Suspect) innocent.state = Source::State::Idle;
        d.tested.insert(static_cast<int>(*d.testing_suspect));
        d.testing_suspect.reset();
      }
      int worst = -2;
      std::uint64_t most = 0;
      for (const auto& [who, n] : by_source) {
        if (n > most && !d.tested.count(who)) {
          most = n;
          worst = who;
        }
      }
      if (worst == -2) {
        fail(d, "the data does not match its urn:sha1, whichever source it comes from");
        return;
      }
      for (const auto& [iv, who] : d.supplied) {
        if (who == worst) d.file->forget(iv.first, iv.end);
      }
      std::erase_if(d.supplied, [&](const auto& e) { return e.second == worst; });
      if (worst < 0) d.tested.insert(worst);  // bytes from before a restart: fetched again once
      if (worst >= 0) {
        Source& s = d.sources[static_cast<std::size_t>(worst)];
        if (by_source.size() == 1) {
          drop_source(d, s, kSourcesBadData, "sent bytes that fail the urn:sha1 check");
        } else {
          s.state = Source::State::Suspect;
          s.idle_conn.reset();
          d.testing_suspect = static_cast<std::size_t>(worst);
        }
      }
      progress(d);
      schedule(d, now);
      return;
    }
    verified = true;
    if (d.testing_suspect) {
      Source& s = d.sources[*d.testing_suspect];
      s.state = Source::State::Idle;  // so drop_source records it
      drop_source(d, s, kSourcesBadData, "sent bytes that fail the urn:sha1 check");
    }
  }
  std::string error;
  auto path = d.file->finish(d.out_dir, error);
  d.finished = true;
  for (auto& [cid, c] : conns_) {
    if (c->download == d.id) close_conn(*c, CloseReason::Normal);
  }
  if (!path) {
    ++stats_[kFailed];
    d.state = "failed";
    events_.push_back(event::DownloadFailed{d.id, error});
    return;
  }
  ++stats_[kCompleted];
  d.state = "done";
  d.final_path = *path;
  std::vector<std::uint32_t> served_by;
  for (const auto& src : d.sources) {
    if (src.bytes > 0 && src.src.endpoint.ip != 0) served_by.push_back(src.src.endpoint.ip);
  }
  events_.push_back(event::DownloadDone{d.id, *path, verified, std::move(served_by)});
}

void DownloadCore::fail(Download& d, const std::string& reason) {
  if (d.finished) return;
  d.finished = true;
  d.state = "failed";
  d.file->save();
  for (auto& [cid, c] : conns_) {
    if (c->download == d.id) close_conn(*c, CloseReason::Normal);
  }
  ++stats_[kFailed];
  events_.push_back(event::DownloadFailed{d.id, reason});
}

void DownloadCore::handle_closed(ConnId id, CloseReason reason, Instant now) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  if (c->phase == Conn::Phase::Giv) return;  // an unmatched GIV connection
  auto dit = downloads_.find(c->download);
  if (dit == downloads_.end()) return;
  Download& d = *dit->second;
  Source& s = d.sources[c->source];
  if (s.idle_conn == id) s.idle_conn.reset();
  if (c->phase == Conn::Phase::Closing || d.finished) return;
  release(d, *c);
  if (c->phase == Conn::Phase::Idle) return;  // an idle keep-alive connection went away
  if (c->phase == Conn::Phase::Body && !c->remaining) {
    // Body framed by the connection's end (no Content-Length).
    response_done(d, *c, now);
    return;
  }
  // Cut mid-transfer, refused, or never connected: keep what arrived, retry later.
  const std::string why = c->phase == Conn::Phase::Connecting ? "cannot connect"
                          : c->phase == Conn::Phase::AwaitGiv ? "no GIV in answer to our Push"
                          : c->phase == Conn::Phase::NapHello || c->phase == Conn::Phase::NapSize
                              ? "the Napster peer closed before sending data"
                              : std::string(to_string(reason));
  source_failed(d, s, kSourceFailures, why, false, now);
  d.file->save();
  schedule(d, now);
}

void DownloadCore::handle_timeout(Instant now) {
  for (auto& [id, c] : conns_) {
    if (c->phase == Conn::Phase::Closing || c->phase == Conn::Phase::Idle) continue;
    if (now - c->last_activity < config_.stall_timeout) continue;
    ++stats_[kStalls];
    if (c->phase == Conn::Phase::Giv) {
      close_conn(*c, CloseReason::HandshakeTimeout);
      continue;
    }
    auto dit = downloads_.find(c->download);
    if (c->phase == Conn::Phase::AwaitGiv || c->phase == Conn::Phase::AwaitNapster) {
      c->phase = Conn::Phase::Closing;
      stale_.push_back(c->id);  // no socket: forget it after this loop
    } else {
      close_conn(*c, CloseReason::HttpIdle);
    }
    if (dit == downloads_.end()) continue;
    Download& d = *dit->second;
    release(d, *c);
    source_failed(d, d.sources[c->source], kSourceFailures, "stalled", false, now);
  }
  for (ConnId id : std::exchange(stale_, {})) {
    auto sit = conns_.find(id);
    if (sit != conns_.end() && sit->second->phase == Conn::Phase::Closing) conns_.erase(sit);
  }
  for (auto& [id, d] : downloads_) {
    if (d->finished) continue;
    if (now >= d->next_save) {
      d->file->save();
      d->next_save = now + config_.save_interval;
    }
    schedule(*d, now);
  }
}

std::optional<Action> DownloadCore::poll_action() { return take_front(actions_); }
std::optional<DownloadEvent> DownloadCore::poll_event() { return take_front(events_); }

std::optional<Instant> DownloadCore::poll_timeout() const {
  std::optional<Instant> t;
  auto consider = [&](Instant i) {
    if (!t || i < *t) t = i;
  };
  for (const auto& [id, c] : conns_) {
    if (c->phase != Conn::Phase::Closing && c->phase != Conn::Phase::Idle) {
      consider(c->last_activity + config_.stall_timeout);
    }
  }
  for (const auto& [id, d] : downloads_) {
    if (d->finished) continue;
    if (d->file->unsaved_bytes() > 0) consider(d->next_save);
    for (const auto& s : d->sources) {
      if (s.state == Source::State::Idle && s.waiting) consider(s.retry_at);
    }
  }
  return t;
}

std::vector<Counter> DownloadCore::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

}  // namespace sv

namespace sv {

std::string name_from_target(std::string_view target) {
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  auto slash = path.rfind('/');
  auto last = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto decoded = http::percent_decode(last);
  if (!decoded || *decoded == "." || *decoded == ".." || decoded->find('/') != std::string::npos) return "";
  return *decoded;
}

std::optional<DownloadSpec> spec_from_magnet(std::string_view magnet) {
  constexpr std::string_view kPrefix = "magnet:?";
  if (magnet.size() < kPrefix.size() || !wire::iequals(magnet.substr(0, kPrefix.size()), kPrefix)) return std::nullopt;
  magnet.remove_prefix(kPrefix.size());
  DownloadSpec spec;
  while (!magnet.empty()) {
    auto amp = magnet.find('&');
    auto item = magnet.substr(0, amp);
    magnet = amp == std::string_view::npos ? std::string_view() : magnet.substr(amp + 1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    auto key = item.substr(0, eq);
    // Magnet values use '+' for spaces in dn, and percent-encoding.
    std::string raw(item.substr(eq + 1));
    if (key == "dn") std::replace(raw.begin(), raw.end(), '+', ' ');
    auto value = http::percent_decode(raw);
    if (!value) continue;
    if (key == "xt" || key.starts_with("xt.")) {
      if (auto sha = share::parse_sha1_urn(*value)) spec.sha1 = sha;
    } else if (key == "dn") {
      spec.name = *value;
    } else if (key == "xl") {
      std::uint64_t size = 0;
      auto r = std::from_chars(value->data(), value->data() + value->size(), size);
      if (r.ec == std::errc{} && r.ptr == value->data() + value->size()) spec.size = size;
    } else if (key == "xs" || key == "as" || key.starts_with("xs.") || key.starts_with("as.")) {
      if (auto src = DownloadSource::from_url(*value)) spec.sources.push_back(*src);
    }
  }
  if (!spec.sha1 && spec.sources.empty()) return std::nullopt;
  if (spec.name.empty() && spec.sha1) spec.name = share::base32_encode(spec.sha1->data(), spec.sha1->size());
  return spec;
}

}  // namespace sv

// --- Napster transfers (napster.txt, "Client-Client"; what opennap-ng's
// clients do in ../shared/captures/napster) ------------------------------------
//
// GET (we connect): the sharer sends "1"; we send "GET", then
// `<our nick> "<file>" <offset>`; it answers the file's FULL size in ASCII,
// then the data from the offset to the end. SEND (a firewalled sharer
// connects to our data port, where the driver has sent "1"): it sends "SEND",
// then `<its nick> "<file>" <size>`; we answer the offset in ASCII; the data
// follows. Some clients (TekNap) ignore the offset and send from byte 0, so a
// resume asks for `napster_overlap` bytes we already have and compares them:
// the same bytes say the offset was honoured; the file's first bytes say it
// was ignored (the stream is then skipped up to where we need it); anything
// else is a source sending another file.
namespace sv {

DownloadCore::Conn* DownloadCore::napster_placeholder(std::string_view nick, std::string_view file) {
  for (auto& [cid, c] : conns_) {
    if (c->phase != Conn::Phase::AwaitNapster) continue;
    auto dit = downloads_.find(c->download);
    if (dit == downloads_.end()) continue;
    const auto& src = dit->second->sources[c->source].src;
    if (src.napster && src.napster->nick == nick && src.napster->file == file) return c.get();
  }
  return nullptr;
}

void DownloadCore::napster_ready(std::string_view nick, std::string_view file, Endpoint at, Instant now) {
  Conn* c = napster_placeholder(nick, file);
  if (!c || at.ip == 0 || at.port == 0) return;
  c->phase = Conn::Phase::Connecting;
  c->last_activity = now;
  actions_.push_back(action::Connect{c->id, at});
}

void DownloadCore::napster_failed(std::string_view nick, std::string_view file, const std::string& reason, Instant now) {
  while (Conn* c = napster_placeholder(nick, file)) {
    Download& d = *downloads_.at(c->download);
    release(d, *c);
    c->phase = Conn::Phase::Closing;
    stale_.push_back(c->id);
    drop_source(d, d.sources[c->source], kSourcesDropped, reason);
    schedule(d, now);
  }
}

void DownloadCore::napster_send_line(ConnId id, Conn& g, Instant now) {
  // "SEND" then <nick> "<file>" <size>: complete once the size is followed by
  // nothing (the sharer waits for our offset) and matches the size we expect.
  std::string_view s = wire::as_chars(g.giv_buf);
  if (s.size() > 4096) {
    ++stats_[kGivMalformed];
    close_conn(g, CloseReason::HandshakeMalformed);
    return;
  }
  const std::size_t q2 = s.rfind('"');
  if (q2 == std::string_view::npos || q2 + 2 >= s.size() || s[q2 + 1] != ' ') return;  // more to come
  const std::string_view digits = s.substr(q2 + 2);
  if (digits.find_first_not_of("0123456789") != std::string_view::npos) {
    ++stats_[kGivMalformed];
    close_conn(g, CloseReason::HandshakeMalformed);
    return;
  }
  auto parts = wire::napster::split_around_name(s.substr(4), 1, 1);
  if (!parts) return;
  Conn* waiting = napster_placeholder((*parts)[0], (*parts)[1]);
  if (!waiting) {
    ++stats_[kGivUnknown];
    close_conn(g, CloseReason::HandshakeRefused);
    return;
  }
  Download& d = *downloads_.at(waiting->download);
  const auto& meta = d.file->meta();
  auto size = wire::napster::parse_u64(digits);
  if (meta.size_known && (!size || *size != meta.size)) {
    if (std::to_string(meta.size).starts_with(digits)) return;  // the size is still arriving
    ++stats_[kGivMalformed];
    close_conn(g, CloseReason::HandshakeMalformed);
    return;
  }
  if (!size || *size == 0) return;
  ++stats_[kGivMatched];
  // The inbound connection takes the placeholder's place (as for a GIV).
  auto placeholder = conns_.find(waiting->id);
  std::unique_ptr<Conn> moved = std::move(placeholder->second);
  conns_.erase(placeholder);
  if (auto a = d.assigned.find(moved->asked.first); a != d.assigned.end() && a->second == moved->id) a->second = id;
  moved->id = id;
  conns_[id] = std::move(moved);
  Conn& c = *conns_[id];
  c.last_activity = now;
  const std::uint64_t overlap = std::min(config_.napster_overlap, c.asked.first);
  const std::uint64_t offset = c.asked.first - overlap;
  const std::string text = std::to_string(offset);
  actions_.push_back(action::Send{id, std::make_shared<Buffer>(text.begin(), text.end())});
  napster_start_body(d, c, *size, offset, now);
}

void DownloadCore::napster_bytes(Download& d, Conn& c, wire::ByteView bytes, Instant now) {
  Source& s = d.sources[c.source];
  auto lying = [&](const std::string& why) {
    release(d, c);
    drop_source(d, s, kSourcesLying, why);
    close_conn(c, CloseReason::PayloadMalformed);
    schedule(d, now);
  };
  if (c.phase == Conn::Phase::NapHello) {
    if (bytes.empty()) return;
    if (bytes[0] != '1') return lying("no \"1\" at the start of the transfer");
    bytes = bytes.subspan(1);
    // GET, then the request line (two writes, as real clients send them).
    const std::uint64_t overlap = std::min(config_.napster_overlap, c.asked.first);
    c.nap_offset = c.asked.first - overlap;
    const std::string line = config_.napster_nick + " " + wire::napster::quote(s.src.napster->file) + " " +
                             std::to_string(c.nap_offset);
    actions_.push_back(action::Send{c.id, std::make_shared<Buffer>(Buffer{'G', 'E', 'T'})});
    actions_.push_back(action::Send{c.id, std::make_shared<Buffer>(line.begin(), line.end())});
    ++stats_[kRequests];
    c.phase = Conn::Phase::NapSize;
    c.nap_digits.clear();
  }
  if (c.phase == Conn::Phase::NapSize) {
    // The size in ASCII, then the data: the size ends where a non-digit
    // starts, or where the file's known size (the server told us) ends.
    const auto& meta = d.file->meta();
    const std::string expect = meta.size_known ? std::to_string(meta.size) : std::string();
    std::size_t used = 0;
    while (used < bytes.size() && bytes[used] >= '0' && bytes[used] <= '9' &&
           (expect.empty() || c.nap_digits.size() < expect.size()) && c.nap_digits.size() < 20) {
      c.nap_digits.push_back(static_cast<char>(bytes[used++]));
    }
    if (c.nap_digits.empty()) {
      if (used == bytes.size()) return;
      // A text answer: "INVALID REQUEST", "FILE NOT SHARED", ...
      std::string why(wire::as_chars(bytes.subspan(0, std::min<std::size_t>(bytes.size(), 60))));
      release(d, c);
      drop_source(d, s, kSourcesDropped, "the Napster peer answered: " + why);
      close_conn(c, CloseReason::Normal);
      schedule(d, now);
      return;
    }
    const bool complete = used < bytes.size() || (!expect.empty() && c.nap_digits.size() == expect.size()) ||
                          c.nap_digits.size() == 20;
    if (!complete) return;
    auto total = wire::napster::parse_u64(c.nap_digits);
    if (!total || *total == 0) return lying("a size of " + c.nap_digits);
    if (meta.size_known && *total != meta.size) return lying("size " + c.nap_digits + " is not the file's size");
    napster_start_body(d, c, *total, c.nap_offset, now);
    if (c.phase == Conn::Phase::Closing) return;
    bytes = bytes.subspan(used);
  }
  if (c.phase == Conn::Phase::NapCheck) {
    // Compare the overlap with what we have there, and with the file's start.
    const std::size_t n = std::min(bytes.size(), c.overlap.size() - c.checked);
    for (std::size_t i = 0; i < n; ++i) {
      c.same_as_overlap = c.same_as_overlap && bytes[i] == c.overlap[c.checked + i];
      c.same_as_head = c.same_as_head && bytes[i] == c.head[c.checked + i];
    }
    c.checked += n;
    stats_[kBytesReceived] += n;
    bytes = bytes.subspan(n);
    if (c.checked < c.overlap.size()) return;
    const std::uint64_t total = d.file->meta().size;
    if (c.same_as_overlap) {
      c.skip = 0;  // the offset was honoured: what follows is asked.first onwards
      c.remaining = total - c.asked.first;
    } else if (c.same_as_head) {
      c.skip = c.asked.first - c.overlap.size();  // from byte 0: skip to where we need it
      c.remaining = total - c.overlap.size();
    } else {
      return lying("the bytes before the resume point differ from ours (another file?)");
    }
    c.phase = Conn::Phase::Body;
  }
  if (c.phase == Conn::Phase::Body && !bytes.empty()) on_body(d, c, bytes, now);
}

void DownloadCore::napster_start_body(Download& d, Conn& c, std::uint64_t total, std::uint64_t offset_sent, Instant) {
  auto& meta = d.file->meta();
  if (!meta.size_known) d.file->set_size(total);
  if (c.assigned_end == UINT64_MAX || c.assigned_end > total) c.assigned_end = total;
  Source& s = d.sources[c.source];
  s.failures = 0;
  s.backoff = Duration(0);
  c.keep_alive = false;
  // The data runs to the end of the file: a connection that ends before is cut.
  c.remaining = total - offset_sent;
  c.pos = c.asked.first;
  c.skip = 0;
  const std::size_t overlap = static_cast<std::size_t>(c.asked.first - offset_sent);
  if (overlap == 0 && c.asked.first > 0) {
    // Nothing to compare (never for our own requests, which always overlap).
    c.phase = Conn::Phase::Body;
    return;
  }
  if (offset_sent == 0) {
    // Asked from byte 0: honoured or not, the stream starts there.
    c.skip = c.asked.first;
    c.phase = Conn::Phase::Body;
    return;
  }
  auto have = d.file->read(offset_sent, overlap);
  auto head = d.file->read(0, overlap);
  if (!have || !head) {
    // Cannot read our own bytes back: ask from the start instead next time.
    c.skip = 0;
    c.phase = Conn::Phase::Body;
    return;
  }
  c.overlap = std::move(*have);
  c.head = std::move(*head);
  c.checked = 0;
  c.same_as_overlap = c.same_as_head = true;
  c.phase = Conn::Phase::NapCheck;
}

}  // namespace sv
