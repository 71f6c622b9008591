#include "servent/napster/napster_server.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace sv {

namespace nap = wire::napster;

namespace {

constexpr std::array<std::string_view, NapsterServer::kStatCount> kStatNames = {
    "napster_connections",        "napster_logins",
    "napster_registrations",      "napster_login_bad_password",
    "napster_login_nick_online",  "napster_login_invalid",
    "napster_login_full",         "napster_login_timeouts",
    "napster_commands_before_login", "napster_frames_too_large",
    "napster_shares",             "napster_shares_over_cap",
    "napster_removes",            "napster_searches",
    "napster_search_results",     "napster_searches_rate_limited",
    "napster_searches_unusable",  "napster_download_requests",
    "napster_download_acks",      "napster_download_errors",
    "napster_upload_accepts_unknown", "napster_alt_requests",
    "napster_browses",            "napster_whois",
    "napster_pings",              "napster_unparsable",
    "napster_unknown_commands",
};

constexpr std::size_t kMaxPending = 100000;
constexpr std::string_view kZeroMd5 = "00000000000000000000000000000000";

// Nicks: 1..32 printable ASCII characters, no space or quote.
bool valid_nick(std::string_view n) {
  if (n.empty() || n.size() > 32) return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return c > ' ' && c < 127 && c != '"'; });
}

std::string pending_key(std::string_view sharer, std::string_view downloader, std::string_view file) {
  std::string k;
  k.reserve(sharer.size() + downloader.size() + file.size() + 2);
  k.append(sharer).push_back('\0');
  k.append(downloader).push_back('\0');
  k.append(file);
  return k;
}

}  // namespace

// One 201 frame, written straight into `out` (the hot path of a search):
// "<name>" <md5> then the share's stored tail " <size> <bitrate> <freq>
// <length> <nick> <ip> <link>", fixed while its owner is logged in.
void NapsterServer::append_result(Buffer& out, const napster::ShareRecord& r) {
  const std::string_view name = r.name(), tail = r.extra();
  const std::size_t len = std::min<std::size_t>(name.size() + 3 + kZeroMd5.size() + tail.size(), 0xffff);
  const std::size_t at = out.size();
  out.resize(at + nap::kHeaderSize + len);
  std::uint8_t* p = out.data() + at;
  p[0] = static_cast<std::uint8_t>(len);
  p[1] = static_cast<std::uint8_t>(len >> 8);
  p[2] = static_cast<std::uint8_t>(nap::kSearchResult & 0xff);
  p[3] = static_cast<std::uint8_t>(nap::kSearchResult >> 8);
  p += nap::kHeaderSize;
  *p++ = '"';
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  *p++ = '"';
  *p++ = ' ';
  std::memcpy(p, kZeroMd5.data(), kZeroMd5.size());
  p += kZeroMd5.size();
  std::memcpy(p, tail.data(), tail.size());
}

NapsterServer::NapsterServer(NapsterServerConfig config) : config_(std::move(config)), index_(config_.index_path_depth) {
  index_.on_compacted = [this] { rebuild_user_shares(); };
}

std::vector<Counter> NapsterServer::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  out.push_back({"napster_index_candidates", index_.candidates()});
  return out;
}

void NapsterServer::send(ConnId id, Buffer bytes) {
  actions_.push_back(action::Send{id, std::make_shared<Buffer>(std::move(bytes))});
}

void NapsterServer::send(ConnId id, std::uint16_t type, std::string_view payload) {
  send(id, nap::encode_frame(type, payload));
}

void NapsterServer::close(ConnId id, CloseReason reason, bool flush) {
  actions_.push_back(action::Close{id, reason, flush});
}

Buffer NapsterServer::stats_frame() const {
  return nap::encode_frame(nap::kStats, nap::encode_stats({online_, index_.live(), index_.total_bytes() >> 30}));
}

void NapsterServer::handle_connected(ConnId id, Endpoint remote, Direction, Instant now) {
  auto [it, fresh] = conns_.try_emplace(id, config_.max_payload);
  it->second.remote = remote;
  it->second.deadline = now + config_.login_timeout;
  it->second.tokens = config_.search_burst;
  it->second.refilled = now;
  login_deadlines_.emplace_back(it->second.deadline, id);
  ++stats_[kConnections];
  ++connections_seen_;
  if (!next_stats_) next_stats_ = now + config_.stats_interval;
}

void NapsterServer::handle_closed(ConnId id, CloseReason, Instant now) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (it->second.user != 0) logout(it->second.user - 1, now);
  conns_.erase(it);
}

void NapsterServer::logout(std::uint32_t slot, Instant now) {
  User& u = users_[slot];
  if (!u.used) return;
  for (std::uint32_t id : u.shares) index_.remove(id);
  u.shares.clear();
  u.shares.shrink_to_fit();
  if (auto a = accounts_.find(u.nick); a != accounts_.end()) a->second.last_seen = now;
  online_by_nick_.erase(u.nick);
  u = User{};
  free_users_.push_back(slot);
  --online_;
}

void NapsterServer::rebuild_user_shares() {
  for (auto& u : users_) u.shares.clear();
  index_.for_each([this](std::uint32_t id, const napster::ShareRecord& r) {
    if (r.owner < users_.size() && users_[r.owner].used) users_[r.owner].shares.push_back(id);
  });
}

NapsterServer::User* NapsterServer::find_online(std::string_view nick) {
  auto it = online_by_nick_.find(std::string(nick));
  return it == online_by_nick_.end() ? nullptr : &users_[it->second];
}

void NapsterServer::handle_bytes(ConnId id, wire::ByteView bytes, Instant now) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.closing) return;
  // conns_ only loses entries in handle_closed, so `c` stays valid here.
  Conn& c = it->second;
  c.framer.feed(bytes);
  while (!c.closing) {
    auto f = c.framer.next();
    if (!f) {
      if (f.error() == wire::WireError::TooLarge) {
        // opennap-ng drops the client without a word.
        ++stats_[kFramesTooLarge];
        c.closing = true;
        close(id, CloseReason::PayloadTooLarge, false);
      }
      break;
    }
    on_frame(id, c, *f, now);
  }
  index_.maybe_compact();
}

void NapsterServer::on_frame(ConnId id, Conn& c, const nap::Frame& f, Instant now) {
  if (c.user == 0) {
    on_login(id, c, f, now);
    return;
  }
  User& u = users_[c.user - 1];
  const std::string_view p = f.payload;
  auto unparsable = [&] {
    ++stats_[kUnparsable];
    send(id, nap::kServerError, "parameters are unparsable");
  };
  switch (f.type) {
    case nap::kShare: {
      auto e = nap::decode_share(p);
      if (!e) return unparsable();
      add_share(u, std::move(*e));
      return;
    }
    case nap::kShareDir: {
      auto v = nap::decode_share_dir(p);
      if (!v) return unparsable();
      for (auto& e : *v) add_share(u, std::move(e));
      return;
    }
    case nap::kRemove: {
      auto name = nap::decode_remove(p);
      if (!name) return unparsable();
      for (std::size_t i = 0; i < u.shares.size(); ++i) {
        const auto* r = index_.get(u.shares[i]);
        if (r && r->name() == *name) {
          ++stats_[kRemoves];
          const std::uint32_t sid = u.shares[i];
          u.shares.erase(u.shares.begin() + static_cast<std::ptrdiff_t>(i));
          index_.remove(sid);
          return;
        }
      }
      send(id, nap::kServerError, fmt::format("you are not sharing \"{}\"", *name));
      return;
    }
    case nap::kRemoveAll: {
      auto ids = std::move(u.shares);
      u.shares.clear();
      stats_[kRemoves] += ids.size();
      for (std::uint32_t sid : ids) index_.remove(sid);
      return;
    }
    case nap::kSearch: on_search(u, c, p, now); return;
    case nap::kDownloadRequest: on_download(u, p, false); return;
    case nap::kAltDownloadRequest: on_download(u, p, true); return;
    case nap::kUploadAccept: on_upload_accept(u, p); return;
    case nap::kBrowse: on_browse(u, p); return;
    case nap::kWhois: on_whois(u, p, now); return;
    case nap::kStats: send(id, stats_frame()); return;
    case nap::kVersionCheck: send(id, nap::kVersionCheck, ""); return;
    case nap::kDataPort: {
      auto port = nap::parse_u64(p);
      if (!port || *port > 0xffff) return unparsable();
      u.port = static_cast<std::uint16_t>(*port);
      return;
    }
    case nap::kDownloading: ++u.downloads; return;
    case nap::kDownloadDone: u.downloads -= u.downloads > 0; return;
    case nap::kUploading: ++u.uploads; return;
    case nap::kUploadDone: u.uploads -= u.uploads > 0; return;
    case nap::kPing:
    case nap::kPong: {
      auto a = nap::split_args(p);
      if (!a || a->size() != 1) return unparsable();
      ++stats_[kPings];
      User* to = find_online((*a)[0]);
      if (!to) {
        if (f.type == nap::kPing) send(id, nap::kServerError, fmt::format("ping failed, {} is not online", (*a)[0]));
        return;
      }
      send(to->conn, f.type, u.nick);
      return;
    }
    case nap::kLogin:
    case nap::kNewUserLogin:
    case nap::kNewUserQuery:
      send(id, nap::kServerError, "you are already logged in");
      return;
    default:
      ++stats_[kUnknownCommands];
      send(id, nap::kServerError, fmt::format("Unknown command code {}", f.type));
      return;
  }
}

void NapsterServer::on_login(ConnId id, Conn& c, const nap::Frame& f, Instant now) {
  auto refuse = [&](Stat why, std::string_view text) {
    ++stats_[why];
    send(id, nap::kError, text);
    close(id, CloseReason::HandshakeRefused);
    c.closing = true;
  };
  if (f.type == nap::kNewUserQuery) {
    const std::string_view nick = f.payload;
    if (!valid_nick(nick)) {
      send(id, nap::kNickInvalid, "");
    } else if (accounts_.count(std::string(nick)) != 0) {
      send(id, nap::kNickTaken, "");
    } else {
      send(id, nap::kNickOk, "");
    }
    return;
  }
  if (f.type != nap::kLogin && f.type != nap::kNewUserLogin) return refuse(kCommandsBeforeLogin, "invalid command");
  auto l = f.type == nap::kLogin ? nap::decode_login(f.payload) : nap::decode_new_user(f.payload);
  if (!l || !valid_nick(l->nick) || l->link > 10) return refuse(kLoginInvalid, "Invalid Nickname");
  auto acct = accounts_.find(l->nick);
  if (f.type == nap::kNewUserLogin && acct != accounts_.end()) return refuse(kLoginInvalid, "Nickname already registered");
  if (acct != accounts_.end() && acct->second.password != l->password) return refuse(kLoginBadPassword, "Invalid Password");
  if (online_by_nick_.count(l->nick) != 0) return refuse(kLoginNickOnline, "Connecting too fast");
  if (online_ >= config_.max_users) return refuse(kLoginFull, "This server is full");
  const std::string ip_text = Endpoint{c.remote.ip, 0}.to_string();
  if (acct == accounts_.end()) {
    // Registered on first login (as opennap-ng does); the account table is bounded.
    if (accounts_.size() < config_.max_accounts) {
      acct = accounts_
                 .emplace(l->nick, Account{l->password,
                                           l->email.empty() ? "anon@" + ip_text.substr(0, ip_text.rfind(':')) : l->email,
                                           now})
                 .first;
      ++stats_[kRegistrations];
    }
  }
  std::uint32_t slot;
  if (!free_users_.empty()) {
    slot = free_users_.back();
    free_users_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(users_.size());
    users_.emplace_back();
  }
  User& u = users_[slot];
  u.used = true;
  u.nick = l->nick;
  u.conn = id;
  u.ip = c.remote.ip;
  u.port = l->port;
  u.link = l->link;
  u.client = l->client;
  u.since = now;
  online_by_nick_[u.nick] = slot;
  ++online_;
  c.user = slot + 1;
  ++stats_[kLogins];
  // 3, the MOTD, 214: one write.
  Buffer out;
  const std::string email = acct != accounts_.end() ? acct->second.email : "anon@" + ip_text.substr(0, ip_text.rfind(':'));
  nap::append_frame(out, nap::kLoginAck, email);
  nap::append_frame(out, nap::kMotd, fmt::format("VERSION {}", config_.server_name));
  nap::append_frame(out, nap::kMotd, fmt::format("Welcome {}!", u.nick));
  nap::append_frame(out, nap::kMotd, fmt::format("You are user {} out of {}.", online_, config_.max_users));
  nap::append_frame(out, nap::kMotd, fmt::format("There have been {} connections to this server.", connections_seen_));
  nap::append_frame(out, nap::kMotd, fmt::format("This server has performed {} searches.", searches_done_));
  for (const auto& line : config_.motd) nap::append_frame(out, nap::kMotd, line);
  const Buffer stats = stats_frame();
  out.insert(out.end(), stats.begin(), stats.end());
  send(id, std::move(out));
}

void NapsterServer::add_share(User& u, nap::ShareEntry e) {
  if (u.shares.size() >= config_.max_shares_per_user) {
    // Counted; the client is told once per thousand so a flood gets few replies.
    if (stats_[kSharesOverCap]++ % 1000 == 0) {
      send(u.conn, nap::kServerError, fmt::format("you may share at most {} files", config_.max_shares_per_user));
    }
    return;
  }
  const std::string tail = fmt::format(" {} {} {} {} {} {} {}", e.size, e.bitrate, e.freq, e.length, u.nick,
                                       nap::to_napster_ip(u.ip), u.link);
  u.shares.push_back(index_.add(napster::ShareRecord(e.name, tail, e.size, slot_of(u), e.bitrate, e.freq, e.length)));
  ++stats_[kShares];
}

void NapsterServer::on_search(User& u, Conn& c, std::string_view payload, Instant now) {
  ++stats_[kSearches];
  ++searches_done_;
  if (config_.search_rate > 0) {
    const double dt = std::chrono::duration<double>(now - c.refilled).count();
    c.tokens = std::min(config_.search_burst, c.tokens + dt * config_.search_rate);
    c.refilled = now;
    if (c.tokens < 1) {
      ++stats_[kSearchesRateLimited];
      Buffer out;
      nap::append_frame(out, nap::kServerError, "search rate exceeded, try again later");
      nap::append_frame(out, nap::kSearchEnd, "");
      send(u.conn, std::move(out));
      return;
    }
    c.tokens -= 1;
  }
  auto q = nap::decode_search(payload);
  std::vector<std::string> words;
  if (q) {
    for (const auto& phrase : q->contains) {
      for (auto& w : napster::ShareIndex::words_of(phrase, 0)) {
        if (std::find(words.begin(), words.end(), w) == words.end()) words.push_back(std::move(w));
      }
    }
  }
  Buffer out;
  if (!q || words.empty()) {
    ++stats_[kSearchesUnusable];
    nap::append_frame(out, nap::kServerError, "invalid search request");
    nap::append_frame(out, nap::kSearchEnd, "");
    send(u.conn, std::move(out));
    return;
  }
  const std::uint32_t limit = std::min(q->max_results == 0 ? config_.max_results : q->max_results, config_.max_results);
  std::uint32_t n = 0;
  out.reserve(std::min<std::size_t>(limit, 128) * 192);
  index_.search(words, [&](std::uint32_t, const napster::ShareRecord& r) {
    if (q->bitrate && !q->bitrate->accepts(r.bitrate)) return true;
    if (q->freq && !q->freq->accepts(r.freq)) return true;
    if (q->linespeed && !q->linespeed->accepts(users_[r.owner].link)) return true;
    append_result(out, r);
    return ++n < limit;
  });
  stats_[kSearchResults] += n;
  nap::append_frame(out, nap::kSearchEnd, "");
  send(u.conn, std::move(out));
}

void NapsterServer::on_download(User& u, std::string_view payload, bool alt) {
  auto req = nap::decode_nick_file(payload);
  if (!req) {
    ++stats_[kUnparsable];
    send(u.conn, nap::kServerError, "parameters are unparsable");
    return;
  }
  ++stats_[alt ? kAltRequests : kDownloadRequests];
  User* sharer = find_online(req->nick);
  if (!sharer) {
    ++stats_[kDownloadErrors];
    send(u.conn, nap::kDownloadError, nap::encode_nick_file({req->nick, req->name, {}}));
    return;
  }
  if (alt && sharer->port != 0) {
    send(u.conn, nap::kServerError, fmt::format("{} is not firewalled", sharer->nick));
    return;
  }
  if (!alt && sharer->port == 0) {
    // The downloader learns at once that the sharer is firewalled (port 0)
    // and may ask again with 500.
    send(u.conn, nap::kDownloadAck,
         nap::encode_transfer_ack({sharer->nick, sharer->ip, 0, req->name, std::string(kZeroMd5), sharer->link}));
    return;
  }
  if (pending_.size() >= kMaxPending) pending_.clear();  // bounded; stale requests are dropped
  pending_[pending_key(sharer->nick, u.nick, req->name)] = Pending{slot_of(u), alt};
  send(sharer->conn, nap::kUploadRequest, nap::encode_nick_file({u.nick, req->name, {}}));
}

void NapsterServer::on_upload_accept(User& sharer, std::string_view payload) {
  auto acc = nap::decode_nick_file(payload);
  if (!acc) {
    ++stats_[kUnparsable];
    send(sharer.conn, nap::kServerError, "parameters are unparsable");
    return;
  }
  auto it = pending_.find(pending_key(sharer.nick, acc->nick, acc->name));
  User* downloader = find_online(acc->nick);
  if (it == pending_.end() || !downloader) {
    ++stats_[kUploadAcceptsUnknown];
    if (it != pending_.end()) pending_.erase(it);
    return;
  }
  const bool alt = it->second.alt;
  pending_.erase(it);
  // The share must exist (checked here, as opennap-ng does, not on the 203).
  const bool shared = std::any_of(sharer.shares.begin(), sharer.shares.end(), [&](std::uint32_t sid) {
    const auto* r = index_.get(sid);
    return r && r->name() == acc->name;
  });
  if (!shared) {
    ++stats_[kDownloadErrors];
    send(downloader->conn, nap::kDownloadError, nap::encode_nick_file({sharer.nick, acc->name, {}}));
    return;
  }
  ++stats_[kDownloadAcks];
  if (alt) {
    // To the firewalled sharer: connect to the downloader and SEND.
    const std::string md5 = downloader->port == 0 ? "firewallerror" : std::string(kZeroMd5);
    send(sharer.conn, nap::kAltDownloadAck,
         nap::encode_transfer_ack({downloader->nick, downloader->ip, downloader->port, acc->name, md5, downloader->link}));
  } else {
    send(downloader->conn, nap::kDownloadAck,
         nap::encode_transfer_ack({sharer.nick, sharer.ip, sharer.port, acc->name, std::string(kZeroMd5), sharer.link}));
  }
}

void NapsterServer::on_browse(User& u, std::string_view payload) {
  auto a = nap::split_args(payload);
  if (!a || a->size() != 1) {
    ++stats_[kUnparsable];
    send(u.conn, nap::kServerError, "parameters are unparsable");
    return;
  }
  ++stats_[kBrowses];
  User* who = find_online((*a)[0]);
  Buffer out;
  if (!who) {
    nap::append_frame(out, nap::kServerError, fmt::format("{} is not online", (*a)[0]));
    nap::append_frame(out, nap::kBrowseEnd, (*a)[0]);
  } else {
    std::string line;
    for (std::uint32_t sid : who->shares) {
      const auto* r = index_.get(sid);
      if (!r) continue;
      line.clear();
      fmt::format_to(std::back_inserter(line), "{} \"{}\" {} {} {} {} {}", who->nick, r->name(), kZeroMd5, r->size,
                     r->bitrate, r->freq, r->length);
      nap::append_frame(out, nap::kBrowseResult, line);
    }
    nap::append_frame(out, nap::kBrowseEnd, fmt::format("{} {}", who->nick, nap::to_napster_ip(who->ip)));
  }
  send(u.conn, std::move(out));
}

void NapsterServer::on_whois(User& u, std::string_view payload, Instant now) {
  auto a = nap::split_args(payload);
  if (!a || a->size() != 1) {
    ++stats_[kUnparsable];
    send(u.conn, nap::kServerError, "parameters are unparsable");
    return;
  }
  ++stats_[kWhois];
  const std::string nick((*a)[0]);
  if (const User* who = find_online(nick)) {
    const auto online_s = std::chrono::duration_cast<std::chrono::seconds>(now - who->since).count();
    send(u.conn, nap::kWhoisResponse,
         fmt::format("{} \"User\" {} \" \" \"Active\" {} {} {} {} {}", who->nick, online_s, who->shares.size(),
                     who->downloads, who->uploads, who->link, nap::quote(who->client)));
    return;
  }
  if (auto acct = accounts_.find(nick); acct != accounts_.end()) {
    const auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - acct->second.last_seen).count();
    send(u.conn, nap::kWhowas, fmt::format("{} \"User\" {}", nick, ago));
    return;
  }
  send(u.conn, nap::kServerError, fmt::format("user {} is not a known user", nick));
}

void NapsterServer::handle_timeout(Instant now) {
  while (!login_deadlines_.empty() && login_deadlines_.front().first <= now) {
    const ConnId id = login_deadlines_.front().second;
    login_deadlines_.pop_front();
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second.user != 0 || it->second.closing) continue;
    ++stats_[kLoginTimeouts];
    it->second.closing = true;
    close(id, CloseReason::HandshakeTimeout, false);
  }
  if (next_stats_ && *next_stats_ <= now) {
    next_stats_ = now + config_.stats_interval;
    if (online_ > 0) {
      action::Broadcast b;
      b.bytes = std::make_shared<Buffer>(stats_frame());
      for (const auto& u : users_) {
        if (u.used) b.conns.push_back(u.conn);
      }
      actions_.push_back(std::move(b));
    }
  }
}

std::optional<Instant> NapsterServer::poll_timeout() const {
  std::optional<Instant> next = next_stats_;
  // The front may be a connection that has logged in since: a spurious wake-up.
  if (!login_deadlines_.empty() && (!next || login_deadlines_.front().first < *next)) next = login_deadlines_.front().first;
  return next;
}

}  // namespace sv
