#include "servent/upload/upload_core.hpp"

#include "wire/napster/napster.hpp"

#include <algorithm>
#include <charconv>

#include "http/range.hpp"
#include "http/text.hpp"

namespace sv {

namespace {
constexpr std::array<std::string_view, UploadCore::kStatCount> kStatNames = {
    "http_connections", "http_requests",          "http_200",         "http_206",
    "http_400",         "http_404",               "http_416",         "http_request_too_large",
    "http_501",         "http_503_busy",          "http_header_timeouts", "http_idle_timeouts",
    "http_traversal_rejected", "uploads_completed", "uploads_failed", "push_connects", "push_unknown_file",
    "push_bad_address", "push_duplicate", "push_connect_failed", "alt_locs_learned",
    "napster_gets", "napster_sends", "napster_refused",
};
}  // namespace

std::optional<GetTarget> parse_get_target(std::string_view target) {
  constexpr std::string_view kPrefix = "/get/";
  if (!target.starts_with(kPrefix)) return std::nullopt;
  target.remove_prefix(kPrefix.size());
  auto slash = target.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  GetTarget t;
  auto r = std::from_chars(target.data(), target.data() + slash, t.index);
  if (r.ec != std::errc{} || r.ptr != target.data() + slash) return std::nullopt;
  auto raw = target.substr(slash + 1);
  if (raw.find('?') != std::string_view::npos || raw.find('#') != std::string_view::npos) return std::nullopt;
  auto name = http::percent_decode(raw);
  if (!name || name->empty() || *name == "." || *name == ".." || name->find('/') != std::string::npos ||
      name->find('\\') != std::string::npos) {
    return std::nullopt;
  }
  t.name = std::move(*name);
  return t;
}

UploadCore::UploadCore(const share::Library& library, UploadConfig config)
    : library_(library), config_(std::move(config)) {}

void UploadCore::handle_push(std::uint32_t file_index, Endpoint to, const wire::gnutella::ServentId& ours,
                             Instant now) {
  const share::SharedFile* f = library_.by_index(file_index);
  if (!f) {
    ++stats_[kPushUnknownFile];
    return;
  }
  if (to.ip == 0 || to.port == 0 || (to.ip >> 24) == 0 || (to.ip >> 28) >= 0xE) {
    ++stats_[kPushBadAddress];  // 0.0.0.0/8, multicast and reserved
    return;
  }
  for (const auto& [id, p] : pushes_) {
    if (p.to == to && p.index == file_index) {
      ++stats_[kPushDuplicate];
      return;
    }
  }
  if (pushes_.size() >= config_.max_pending_pushes) {
    ++stats_[kPushDuplicate];
    return;
  }
  ConnId id = core_conn_id(ConnSpace::Upload, next_push_++);
  wire::gnutella::Giv giv;
  giv.file_index = file_index;
  giv.servent_id = ours;
  giv.name = f->name;
  pushes_.emplace(id, PendingPush{wire::gnutella::encode_giv(giv), to, file_index, now});
  ++stats_[kPushConnects];
  actions_.push_back(action::Connect{id, to});
}

void UploadCore::set_remote(ConnId id, Endpoint remote) {
  if (auto it = conns_.find(id); it != conns_.end()) it->second.remote = remote;
}

void UploadCore::learn_alts(const share::Sha1& sha, std::string_view header, std::optional<Endpoint> requester) {
  constexpr std::size_t kPerUrn = 10, kUrns = 1000;
  auto it = alt_locs_.find(sha);
  if (it == alt_locs_.end()) {
    if (alt_locs_.size() >= kUrns) alt_locs_.erase(alt_locs_.begin());
    it = alt_locs_.emplace(sha, std::vector<Endpoint>{}).first;
  }
  auto& list = it->second;
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = wire::trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    std::string hp(item);
    if (hp.find(':') == std::string::npos) hp += ":6346";
    auto e = Endpoint::parse(hp);
    if (!e || e->port == 0 || e->ip == 0 || (requester && *e == *requester)) continue;
    if (std::find(list.begin(), list.end(), *e) != list.end()) continue;
    list.insert(list.begin(), *e);
    if (list.size() > kPerUrn) list.pop_back();
    ++stats_[kAltLocsLearned];
  }
}

void UploadCore::handle_connected(ConnId id, Endpoint remote, Direction dir, Instant now) {
  handle_connected(id, now);
  if (dir == Direction::Inbound) set_remote(id, remote);
}

void UploadCore::handle_connected(ConnId id, Instant now) {
  if (auto np = napster_pushes_.find(id.value); np != napster_pushes_.end()) {
    // Our SEND connection: the downloader speaks first ("1").
    const share::SharedFile* f = library_.by_napster_name(np->second);
    napster_pushes_.erase(np);
    auto& c = conns_[id];
    c.parser = std::make_unique<http::RequestParser>(config_.max_header_bytes);
    arm(c, now + config_.header_timeout);
    c.fresh = false;
    c.nap = Conn::Nap::SendHello;
    c.nap_file = f;
    ++stats_[kConnections];
    if (!f) close(id, c, CloseReason::Normal);
    return;
  }
  if (auto p = pushes_.find(id); p != pushes_.end()) {
    // Our own connection in answer to a Push: GIV first, then it is an
    // ordinary upload connection.
    const std::string giv = std::move(p->second.giv);
    pushes_.erase(p);
    auto& c = conns_[id];
    c.parser = std::make_unique<http::RequestParser>(config_.max_header_bytes);
    arm(c, now + config_.header_timeout);
    ++stats_[kConnections];
    actions_.push_back(action::Send{id, std::make_shared<Buffer>(giv.begin(), giv.end())});
    return;
  }
  auto& c = conns_[id];
  c.parser = std::make_unique<http::RequestParser>(config_.max_header_bytes);
  arm(c, now + config_.header_timeout);
  ++stats_[kConnections];
}

void UploadCore::handle_bytes(ConnId id, wire::ByteView bytes, Instant now) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  auto& c = it->second;
  if (c.closing) return;
  if (c.sending) {
    // Pipelined request: keep it (bounded) until the response is written.
    if (c.pending.size() + bytes.size() > config_.max_header_bytes) {
      respond_error(id, c, 431, true, now);
      return;
    }
    c.pending.insert(c.pending.end(), bytes.begin(), bytes.end());
    return;
  }
  c.pending.insert(c.pending.end(), bytes.begin(), bytes.end());
  process(id, c, now);
}

void UploadCore::process(ConnId id, Conn& c, Instant now) {
  if (c.nap == Conn::Nap::SendHello || c.nap == Conn::Nap::SendOffset) {
    napster_send(id, c, now);
    return;
  }
  if (c.fresh && !c.pending.empty()) {
    // "GET " is HTTP; "GET" followed by a nick is a Napster GET.
    std::string_view p = wire::as_chars(c.pending);
    if (p.size() < 4 && std::string_view("GET ").starts_with(p)) return;  // cannot tell yet
    c.fresh = false;
    if (p.starts_with("GET") && p[3] != ' ') c.nap = Conn::Nap::Get;
  }
  if (c.nap == Conn::Nap::Get) {
    napster_get(id, c, now);
    return;
  }
  while (!c.sending && !c.closing && !c.pending.empty()) {
    if (c.idle) {
      // The first byte of a request starts the header clock.
      c.idle = false;
      arm(c, now + config_.header_timeout);
    }
    std::size_t used = 0;
    auto state = c.parser->feed(c.pending, used);
    c.pending.erase(c.pending.begin(), c.pending.begin() + static_cast<std::ptrdiff_t>(used));
    if (state == http::RequestParser::State::NeedMore) {
      if (used == 0) break;
      continue;
    }
    if (state == http::RequestParser::State::Error) {
      respond_error(id, c, c.parser->error_status(), true, now);
      return;
    }
    ++stats_[kRequests];
    respond(id, c, c.parser->request(), now);
  }
}

void UploadCore::respond_error(ConnId id, Conn& c, int status, bool close_after, Instant) {
  switch (status) {
    case 400: ++stats_[kStatus400]; break;
    case 404: ++stats_[kStatus404]; break;
    case 414:
    case 431: ++stats_[kStatus431]; break;
    case 501: ++stats_[kStatus501]; break;
    default: break;
  }
  wire::Headers h;
  h.add("Server", config_.server);
  h.add("Content-Length", "0");
  if (close_after) h.add("Connection", "close");
  auto head = http::build_response_head(status, h);
  actions_.push_back(action::Send{id, std::make_shared<Buffer>(head.begin(), head.end())});
  if (close_after) {
    close(id, c, status == 400 || status == 414 || status == 431 ? CloseReason::HttpBadRequest : CloseReason::Normal);
  }
}

void UploadCore::close(ConnId id, Conn& c, CloseReason reason) {
  c.closing = true;
  actions_.push_back(action::Close{id, reason, true});
}

void UploadCore::respond(ConnId id, Conn& c, const http::Request& req, Instant now) {
  const bool head_only = req.method == "HEAD";
  const bool keep_alive = req.keep_alive;
  if (req.method != "GET" && !head_only) {
    respond_error(id, c, 501, true, now);
    return;
  }
  const share::SharedFile* file = nullptr;
  bool resolved = false;
  if (req.target.starts_with("/uri-res/N2R?")) {
    // HUGE 0.94 §4: /uri-res/N2R?urn:sha1:<base32>
    auto urn = http::percent_decode(std::string_view(req.target).substr(13));
    auto sha = urn ? share::parse_sha1_urn(*urn) : std::nullopt;
    if (!sha) {
      respond_error(id, c, 400, !keep_alive, now);
      if (!c.closing) c.parser->next();
      return;
    }
    file = library_.by_sha1(*sha);
    resolved = true;
  }
  auto target = resolved ? std::optional<GetTarget>{} : parse_get_target(req.target);
  if (!resolved && !target) {
    // Anything that is not /get/<n>/<name> is either another resource we do
    // not serve (404) or a path trick (400, counted).
    bool tricky = req.target.find("..") != std::string::npos || req.target.find("%2") != std::string::npos ||
                  req.target.find("%5") != std::string::npos || !req.target.starts_with("/");
    if (tricky) ++stats_[kTraversalRejected];
    respond_error(id, c, tricky ? 400 : 404, !keep_alive || tricky, now);
    if (!c.closing) c.parser->next();
    return;
  }
  if (target) {
    file = library_.by_index(target->index);
    if (file && file->name != target->name) file = nullptr;
  }
  std::optional<std::uint64_t> size;
  if (file) size = library_.verify_servable(*file);
  if (!size) {
    respond_error(id, c, 404, !keep_alive, now);
    if (!c.closing) c.parser->next();
    return;
  }
  wire::Headers h;
  h.add("Server", config_.server);
  if (file->sha1) {
    h.add("X-Gnutella-Content-URN", share::sha1_urn(*file->sha1));
    // Other places with the same file, for multi-source downloaders.
    if (auto it = alt_locs_.find(*file->sha1); it != alt_locs_.end()) {
      std::string list;
      for (const auto& e : it->second) {
        if (c.remote && e.ip == c.remote->ip) continue;
        if (!list.empty()) list += ",";
        list += e.to_string();
      }
      if (!list.empty()) h.add("X-Alt", list);
    }
    // Learned after answering: the requester knows what it told us.
    if (auto alt = req.headers.get("X-Alt")) learn_alts(*file->sha1, *alt, c.remote);
  }
  if (active_ >= config_.slots && !head_only) {
    ++stats_[kStatus503];
    h.add("Retry-After", std::to_string(config_.retry_after_s));
    h.add("Content-Length", "0");
    h.add("Connection", "close");
    auto out = http::build_response_head(503, h);
    actions_.push_back(action::Send{id, std::make_shared<Buffer>(out.begin(), out.end())});
    close(id, c, CloseReason::Normal);
    return;
  }
  int status = 200;
  http::ByteRange range{0, *size == 0 ? 0 : *size - 1};
  std::uint64_t length = *size;
  if (auto r = req.headers.get("Range")) {
    auto rr = http::parse_range(*r, *size);
    if (rr.kind == http::RangeRequest::Kind::Unsatisfiable) {
      ++stats_[kStatus416];
      h.add("Content-Range", "bytes */" + std::to_string(*size));
      h.add("Content-Length", "0");
      if (!keep_alive) h.add("Connection", "close");
      auto out = http::build_response_head(416, h);
      actions_.push_back(action::Send{id, std::make_shared<Buffer>(out.begin(), out.end())});
      if (!keep_alive) {
        close(id, c, CloseReason::Normal);
      } else {
        c.parser->next();
      }
      return;
    }
    if (rr.kind == http::RangeRequest::Kind::Satisfiable) {
      status = 206;
      range = rr.range;
      length = range.length();
      h.add("Content-Range", http::format_content_range(range, *size));
    }
  }
  ++stats_[status == 200 ? kStatus200 : kStatus206];
  h.add("Content-Type", "application/binary");
  h.add("Content-Length", std::to_string(length));
  h.add("Accept-Ranges", "bytes");
  h.add("Connection", keep_alive ? "keep-alive" : "close");
  auto out = http::build_response_head(status, h);
  auto head = std::make_shared<Buffer>(out.begin(), out.end());
  c.keep_alive = keep_alive;
  if (head_only || length == 0) {
    actions_.push_back(action::Send{id, std::move(head)});
    if (!keep_alive) {
      close(id, c, CloseReason::Normal);
    } else {
      c.parser->next();
      c.idle = true;
      arm(c, now + config_.idle_timeout);
    }
    return;
  }
  c.sending = true;
  c.current = UploadInfo{c.remote, file->name, range.first, length, file->size, now, 0};
  ++active_;
  actions_.push_back(action::SendFile{id, file->path, range.first, length, file->dev, file->ino, std::move(head)});
}

std::vector<UploadCore::UploadInfo> UploadCore::uploads() const {
  std::vector<UploadInfo> out;
  for (const auto& [id, c] : conns_) {
    if (c.sending) out.push_back(c.current);
  }
  return out;
}

void UploadCore::handle_send_progress(ConnId id, std::uint64_t bytes, Instant) {
  auto it = conns_.find(id);
  if (it != conns_.end() && it->second.sending) it->second.current.sent = std::min(bytes, it->second.current.length);
}

void UploadCore::handle_send_done(ConnId id, bool ok, Instant now) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  auto& c = it->second;
  if (!c.sending) return;
  c.sending = false;
  --active_;
  ++stats_[ok ? kUploadsCompleted : kUploadsFailed];
  if (ok && c.remote && completed_.size() < 1024) completed_.push_back(c.remote->ip);
  if (!ok || !c.keep_alive) {
    close(id, c, ok ? CloseReason::Normal : CloseReason::IoError);
    return;
  }
  c.parser->next();
  c.idle = true;
  arm(c, now + config_.idle_timeout);
  process(id, c, now);
}

void UploadCore::handle_closed(ConnId id, Instant) {
  if (pushes_.erase(id) || napster_pushes_.erase(id.value)) ++stats_[kPushConnectFailed];
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (it->second.sending) {
    --active_;
    ++stats_[kUploadsFailed];
  }
  conns_.erase(it);
}

void UploadCore::handle_timeout(Instant now) {
  for (auto& [id, c] : conns_) {
    if (c.closing || c.sending || now < c.deadline) continue;
    if (c.idle) {
      ++stats_[kIdleTimeouts];
      close(id, c, CloseReason::HttpIdle);
    } else {
      ++stats_[kHeaderTimeouts];
      close(id, c, CloseReason::HttpHeaderTimeout);
    }
  }
  // The exact next deadline again (arm() only ever moves it earlier).
  wake_.reset();
  for (const auto& [id, c] : conns_) {
    if (c.closing || c.sending) continue;
    if (!wake_ || c.deadline < *wake_) wake_ = c.deadline;
  }
}

std::optional<Action> UploadCore::poll_action() { return take_front(actions_); }

std::optional<std::uint32_t> UploadCore::poll_completed() { return take_front(completed_); }

std::optional<Instant> UploadCore::poll_timeout() const { return wake_; }

void UploadCore::arm(Conn& c, Instant at) {
  c.deadline = at;
  if (!wake_ || at < *wake_) wake_ = at;
}

std::vector<Counter> UploadCore::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

// --- Napster (napster.txt "Client-Client") ------------------------------------

void UploadCore::napster_push(std::string_view file, Endpoint to, Instant) {
  if (to.ip == 0 || to.port == 0) {
    ++stats_[kPushBadAddress];
    return;
  }
  if (!library_.by_napster_name(file)) {
    ++stats_[kNapsterRefused];
    return;
  }
  if (napster_pushes_.size() >= config_.max_pending_pushes) {
    ++stats_[kPushDuplicate];
    return;
  }
  ConnId id = core_conn_id(ConnSpace::Upload, next_push_++);
  napster_pushes_.emplace(id.value, std::string(file));
  ++stats_[kPushConnects];
  actions_.push_back(action::Connect{id, to});
}

void UploadCore::napster_get(ConnId id, Conn& c, Instant now) {
  // "GET" <nick> "<file>" <offset>: whole once a digit follows the last quote
  // (downloaders send it in one piece and then wait).
  std::string_view s = wire::as_chars(c.pending);
  if (s.size() > config_.max_header_bytes) {
    ++stats_[kNapsterRefused];
    close(id, c, CloseReason::HttpBadRequest);
    return;
  }
  const std::size_t q2 = s.rfind('"');
  if (q2 == std::string_view::npos || q2 + 2 >= s.size() || s[q2 + 1] != ' ') return;
  auto parts = wire::napster::split_around_name(s.substr(3), 1, 1);
  auto offset = parts ? wire::napster::parse_u64((*parts)[2]) : std::nullopt;
  if (!offset) return;  // not whole yet (or never: the header timeout ends it)
  ++stats_[kRequests];
  ++stats_[kNapsterGets];
  const std::string name((*parts)[1]);
  c.pending.clear();
  const share::SharedFile* f = library_.by_napster_name(name);
  std::optional<std::uint64_t> size;
  if (f) size = library_.verify_servable(*f);
  auto refuse = [&] {
    ++stats_[kNapsterRefused];
    const std::string text = "INVALID REQUEST";  // what opennap-ng's clients answer
    actions_.push_back(action::Send{id, std::make_shared<Buffer>(text.begin(), text.end())});
    close(id, c, CloseReason::Normal);
  };
  if (!size || *offset > *size) return refuse();
  if (active_ >= config_.slots) {
    ++stats_[kStatus503];
    close(id, c, CloseReason::Normal);  // busy: the downloader retries later
    return;
  }
  // The FULL size, then the data from the offset (as opennap-ng's clients do).
  const std::string text = std::to_string(*size);
  actions_.push_back(action::Send{id, std::make_shared<Buffer>(text.begin(), text.end())});
  napster_serve(id, c, *f, *size, *offset, now);
}

void UploadCore::napster_send(ConnId id, Conn& c, Instant now) {
  if (c.nap == Conn::Nap::SendHello) {
    if (c.pending.empty()) return;
    if (c.pending[0] != '1' || !c.nap_file) {
      close(id, c, CloseReason::HandshakeMalformed);
      return;
    }
    c.pending.erase(c.pending.begin());
    auto size = library_.verify_servable(*c.nap_file);
    if (!size) {
      close(id, c, CloseReason::Normal);
      return;
    }
    const std::string line = config_.napster_nick + " " + wire::napster::quote(share::Library::napster_name(*c.nap_file)) +
                             " " + std::to_string(*size);
    actions_.push_back(action::Send{id, std::make_shared<Buffer>(Buffer{'S', 'E', 'N', 'D'})});
    actions_.push_back(action::Send{id, std::make_shared<Buffer>(line.begin(), line.end())});
    c.nap = Conn::Nap::SendOffset;
    arm(c, now + config_.header_timeout);
  }
  if (c.nap == Conn::Nap::SendOffset) {
    std::string_view s = wire::as_chars(c.pending);
    if (s.empty()) return;
    auto offset = wire::napster::parse_u64(s);
    auto size = library_.verify_servable(*c.nap_file);
    if (!offset || !size || *offset > *size) {
      ++stats_[kNapsterRefused];
      close(id, c, CloseReason::HandshakeMalformed);
      return;
    }
    ++stats_[kNapsterSends];
    c.pending.clear();
    if (active_ >= config_.slots) {
      ++stats_[kStatus503];
      close(id, c, CloseReason::Normal);
      return;
    }
    napster_serve(id, c, *c.nap_file, *size, *offset, now);
  }
}

void UploadCore::napster_serve(ConnId id, Conn& c, const share::SharedFile& f, std::uint64_t size, std::uint64_t offset,
                               Instant now) {
  c.keep_alive = false;
  c.nap = Conn::Nap::None;
  if (size == offset) {
    close(id, c, CloseReason::Normal);
    return;
  }
  c.sending = true;
  c.current = UploadInfo{c.remote, f.name, offset, size - offset, f.size, now, 0};
  ++active_;
  actions_.push_back(action::SendFile{id, f.path, offset, size - offset, f.dev, f.ino});
}

}  // namespace sv
