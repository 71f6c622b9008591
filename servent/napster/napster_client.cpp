#include "servent/napster/napster_client.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace sv {

namespace nap = wire::napster;

namespace {

constexpr std::array<std::string_view, NapsterClient::kStatCount> kStatNames = {
    "napster_client_connects",        "napster_client_logins",         "napster_client_logins_refused",
    "napster_client_disconnects",     "napster_client_shared",         "napster_client_searches",
    "napster_client_results",         "napster_client_browses",        "napster_client_download_requests",
    "napster_client_download_acks",   "napster_client_download_errors", "napster_client_alt_requests",
    "napster_client_upload_requests", "napster_client_uploads_accepted", "napster_client_uploads_refused",
    "napster_client_push_uploads",    "napster_client_server_errors",  "napster_client_bad_frames",
};

// A search phrase as the server can take it: words only (no quotes), so
// that FILENAME CONTAINS "<phrase>" is unambiguous.
std::string clean_phrase(std::string_view words) {
  std::string out;
  for (char c : words) {
    const bool keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      static_cast<unsigned char>(c) >= 0x80;
    if (keep) {
      out += c;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

NapsterClient::NapsterClient(const share::Library& library, NapsterClientConfig config)
    : library_(library), config_(std::move(config)), framer_(config_.max_payload) {}

std::vector<Counter> NapsterClient::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

void NapsterClient::start(Instant now) {
  if (state_ == State::Idle) connect(now);
}

void NapsterClient::connect(Instant now) {
  conn_ = core_conn_id(ConnSpace::NapsterClient, next_conn_++);
  framer_ = nap::Framer(config_.max_payload);
  state_ = State::Connecting;
  retry_at_ = now;
  ++stats_[kConnects];
  actions_.push_back(action::Connect{conn_, config_.server});
}

void NapsterClient::lost(const std::string& reason, Instant now) {
  if (state_ == State::LoggedIn) events_.push_back(napster_event::Disconnected{reason});
  ++stats_[kDisconnects];
  state_ = State::Waiting;
  backoff_ = backoff_.count() == 0 ? config_.retry_min : std::min(backoff_ * 2, config_.retry_max);
  retry_at_ = now + backoff_;
  // Searches in flight get no more results.
  for (const auto& s : searches_) events_.push_back(napster_event::SearchDone{s.id, s.results});
  searches_.clear();
  search_in_flight_ = false;
}

void NapsterClient::send(std::uint16_t type, std::string_view payload) {
  actions_.push_back(action::Send{conn_, std::make_shared<Buffer>(nap::encode_frame(type, payload))});
}

void NapsterClient::handle_connected(ConnId conn, Endpoint, Direction, Instant) {
  if (conn != conn_ || state_ != State::Connecting) return;
  state_ = State::LoggingIn;
  send(nap::kLogin, nap::encode_login({config_.nick, config_.password, config_.data_port, config_.client, config_.link, ""}));
}

void NapsterClient::handle_closed(ConnId conn, CloseReason reason, Instant now) {
  if (conn != conn_ || state_ == State::Waiting || state_ == State::Idle) return;
  lost(std::string(to_string(reason)), now);
}

void NapsterClient::handle_timeout(Instant now) {
  if (state_ == State::Waiting && retry_at_ <= now) connect(now);
}

std::optional<Instant> NapsterClient::poll_timeout() const {
  if (state_ == State::Waiting) return retry_at_;
  return std::nullopt;
}

void NapsterClient::handle_bytes(ConnId conn, wire::ByteView bytes, Instant now) {
  if (conn != conn_) return;
  framer_.feed(bytes);
  while (state_ == State::LoggingIn || state_ == State::LoggedIn) {
    auto f = framer_.next();
    if (!f) {
      if (f.error() == wire::WireError::TooLarge) {
        ++stats_[kBadFrames];
        actions_.push_back(action::Close{conn_, CloseReason::PayloadTooLarge, false});
        lost("frame over the payload cap", now);
      }
      return;
    }
    on_frame(*f, now);
  }
}

void NapsterClient::share_library() {
  // One write for the whole list (a server reads them as they come).
  Buffer out;
  std::size_t n = 0;
  for (const share::SharedFile* f : library_.all()) {
    nap::ShareEntry e;
    e.name = share::Library::napster_name(*f);
    if (e.name.size() > 1024) continue;  // no server takes it
    auto md5 = md5_.find(f->index);
    e.md5 = md5 != md5_.end() ? md5->second : std::string(32, '0');
    e.size = f->size;
    if (f->audio) {
      e.bitrate = f->audio->bitrate_kbps;
      e.freq = f->audio->sample_rate;
      e.length = static_cast<std::uint32_t>(f->audio->seconds);
    }
    nap::append_frame(out, nap::kShare, nap::encode_share(e));
    ++n;
  }
  stats_[kShared] += n;
  if (!out.empty()) actions_.push_back(action::Send{conn_, std::make_shared<Buffer>(std::move(out))});
}

void NapsterClient::reshare() {
  if (state_ != State::LoggedIn) return;
  send(nap::kRemoveAll, "");
  share_library();
}

std::uint64_t NapsterClient::search(std::string_view words, Instant) {
  const std::string phrase = clean_phrase(words);
  if (phrase.empty() || state_ != State::LoggedIn) return 0;
  nap::SearchQuery q;
  q.contains.push_back(phrase);
  q.max_results = config_.max_results;
  const std::uint64_t id = next_search_++;
  searches_.push_back({id, nap::encode_search(q), 0});
  ++stats_[kSearches];
  send_next_search();
  return id;
}

void NapsterClient::send_next_search() {
  if (search_in_flight_ || searches_.empty() || state_ != State::LoggedIn) return;
  search_in_flight_ = true;
  send(nap::kSearch, searches_.front().query);
}

bool NapsterClient::browse(std::string_view nick) {
  if (state_ != State::LoggedIn || nick.empty() || nick.find(' ') != std::string_view::npos) return false;
  ++stats_[kBrowses];
  send(nap::kBrowse, nick);
  return true;
}

bool NapsterClient::download(std::string_view nick, std::string_view file) {
  if (state_ != State::LoggedIn) return false;
  ++stats_[kDownloadRequests];
  send(nap::kDownloadRequest, nap::encode_nick_file({std::string(nick), std::string(file), {}}));
  return true;
}

void NapsterClient::transfer_started(bool upload) {
  if (state_ == State::LoggedIn) send(upload ? nap::kUploading : nap::kDownloading, "");
}

void NapsterClient::transfer_ended(bool upload) {
  if (state_ == State::LoggedIn) send(upload ? nap::kUploadDone : nap::kDownloadDone, "");
}

void NapsterClient::on_frame(const nap::Frame& f, Instant now) {
  if (state_ == State::LoggingIn) {
    if (f.type == nap::kLoginAck) {
      state_ = State::LoggedIn;
      backoff_ = Duration(0);
      ++stats_[kLogins];
      events_.push_back(napster_event::LoggedIn{config_.server.to_string(), std::string(f.payload)});
      share_library();
      send_next_search();
      return;
    }
    if (f.type == nap::kError) {
      ++stats_[kLoginsRefused];
      events_.push_back(napster_event::LoginFailed{std::string(f.payload)});
      actions_.push_back(action::Close{conn_, CloseReason::HandshakeRefused, true});
      lost("login refused: " + std::string(f.payload), now);
      return;
    }
    return;  // 621 and the like may come first on some servers
  }
  switch (f.type) {
    case nap::kSearchResult: {
      auto r = nap::decode_search_result(f.payload);
      if (!r) {
        ++stats_[kBadFrames];
        return;
      }
      if (searches_.empty() || !search_in_flight_) return;  // nobody asked
      ++stats_[kResults];
      if (searches_.front().results++ < config_.max_results) {
        events_.push_back(napster_event::Result{searches_.front().id, std::move(*r)});
      }
      return;
    }
    case nap::kSearchEnd: {
      if (searches_.empty() || !search_in_flight_) return;
      events_.push_back(napster_event::SearchDone{searches_.front().id, searches_.front().results});
      searches_.pop_front();
      search_in_flight_ = false;
      send_next_search();
      return;
    }
    case nap::kBrowseResult: {
      auto r = nap::decode_browse_result(f.payload);
      if (!r) {
        ++stats_[kBadFrames];
        return;
      }
      events_.push_back(napster_event::BrowseResult{r->nick, r->file});
      return;
    }
    case nap::kBrowseEnd: {
      auto a = nap::split_args(f.payload);
      events_.push_back(napster_event::BrowseDone{a && !a->empty() ? std::string((*a)[0]) : std::string()});
      return;
    }
    case nap::kDownloadAck: {
      auto t = nap::decode_transfer_ack(f.payload);
      if (!t) {
        ++stats_[kBadFrames];
        return;
      }
      if (t->port != 0) {
        ++stats_[kDownloadAcks];
        events_.push_back(napster_event::DownloadReady{t->nick, t->name, Endpoint{t->ip, t->port}});
      } else if (config_.data_port != 0) {
        // The sharer is firewalled: it will come to us (500 -> 607/608 -> 501 -> SEND).
        ++stats_[kAltRequests];
        send(nap::kAltDownloadRequest, nap::encode_nick_file({t->nick, t->name, {}}));
      } else {
        ++stats_[kDownloadErrors];
        events_.push_back(napster_event::DownloadError{t->nick, t->name, "both sides are firewalled"});
      }
      return;
    }
    case nap::kDownloadError: {
      auto n = nap::decode_nick_file(f.payload);
      if (!n) {
        ++stats_[kBadFrames];
        return;
      }
      ++stats_[kDownloadErrors];
      events_.push_back(napster_event::DownloadError{n->nick, n->name, "the server refused (206)"});
      return;
    }
    case nap::kUploadRequest: {
      auto n = nap::decode_nick_file(f.payload);
      if (!n) {
        ++stats_[kBadFrames];
        return;
      }
      ++stats_[kUploadRequests];
      if (library_.by_napster_name(n->name)) {
        ++stats_[kUploadsAccepted];
        send(nap::kUploadAccept, nap::encode_nick_file({n->nick, n->name, {}}));
      } else {
        ++stats_[kUploadsRefused];
      }
      return;
    }
    case nap::kAltDownloadAck: {
      auto t = nap::decode_transfer_ack(f.payload);
      if (!t || t->port == 0) {
        ++stats_[kBadFrames];
        return;
      }
      ++stats_[kPushUploads];
      events_.push_back(napster_event::PushUpload{t->nick, t->name, Endpoint{t->ip, t->port}});
      return;
    }
    case nap::kStats:
      if (auto s = nap::decode_stats(f.payload)) server_stats_ = *s;
      return;
    case nap::kPing: send(nap::kPong, f.payload); return;
    case nap::kServerError:
      ++stats_[kServerErrors];
      events_.push_back(napster_event::ServerMessage{std::string(f.payload)});
      return;
    default: return;  // MOTD, private messages, pongs...
  }
}

}  // namespace sv
