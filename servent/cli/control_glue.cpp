#include "servent/cli/control_glue.hpp"

#include <cstdio>

#include "http/text.hpp"
#include "wire/gnutella/huge.hpp"

namespace sv::cli {

using nlohmann::json;

nlohmann::ordered_json hit_json(const event::Hit& h) {
  nlohmann::ordered_json j;
  j["network"] = "gnutella";
  j["host"] = wire::gnutella::ipv4_to_string(h.source.ip);
  j["port"] = h.source.port;
  j["index"] = h.result.index;
  j["name"] = h.result.name;
  j["size"] = wire::gnutella::result_size(h.result.size, h.result.extensions);  // GGEP LF past 4 GiB
  j["servent_id"] = h.servent_id.hex();
  j["speed"] = h.speed;
  for (const auto& u : wire::gnutella::all_urns(wire::gnutella::decode_extensions(h.result.extensions))) {
    if (share::parse_sha1_urn(u)) j["urn"] = u;
  }
  if (h.push) j["push"] = true;
  // "128 kbps 44.1 kHz 3:45" items: bitrate, frequency and length.
  for (const auto& item : wire::gnutella::decode_extensions(h.result.extensions).other) {
    unsigned kbps = 0, mins = 0, secs = 0;
    double khz = 0;
    const std::string text(item.begin(), item.end());
    if (std::sscanf(text.c_str(), "%u kbps %lf kHz %u:%u", &kbps, &khz, &mins, &secs) == 4) {
      j["bitrate"] = kbps;
      j["freq"] = static_cast<unsigned>(khz * 1000 + 0.5);
      j["length"] = mins * 60 + secs;
    }
  }
  return j;
}

nlohmann::ordered_json napster_hit_json(const wire::napster::SearchResult& r) {
  nlohmann::ordered_json j;
  j["network"] = "napster";
  j["host"] = wire::gnutella::ipv4_to_string(r.ip);
  j["port"] = 0;  // the server says which, when asked (203 -> 204)
  j["nick"] = r.nick;
  const auto slash = r.file.name.find_last_of("\\/");
  j["name"] = slash == std::string::npos ? r.file.name : r.file.name.substr(slash + 1);
  j["path"] = r.file.name;
  j["size"] = r.file.size;
  if (r.file.bitrate) j["bitrate"] = r.file.bitrate;
  if (r.file.freq) j["freq"] = r.file.freq;
  if (r.file.length) j["length"] = r.file.length;
  j["link"] = r.link;
  return j;
}

void print_hit(const nlohmann::ordered_json& j, bool as_json) {
  if (as_json) {
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
  } else if (j.value("network", "") == "napster") {
    const std::string host = j.value("host", ""), nick = j.value("nick", ""), path = j.value("path", "");
    std::printf("%-22s  %12llu  %s  napster://%s/%s\n", (nick + "@" + host).c_str(),
                static_cast<unsigned long long>(j.value("size", std::uint64_t{0})), j.value("name", "").c_str(),
                http::percent_encode(nick).c_str(), http::percent_encode(path).c_str());
  } else {
    const std::string host = j.value("host", ""), name = j.value("name", "");
    const int port = j.value("port", 0);
    std::printf("%s:%d  %12llu  %s  http://%s:%d/get/%u/%s%s\n", host.c_str(), port,
                static_cast<unsigned long long>(j.value("size", std::uint64_t{0})), name.c_str(), host.c_str(), port,
                j.value("index", 0u), http::percent_encode(name).c_str(), j.value("push", false) ? "  (firewalled)" : "");
  }
  std::fflush(stdout);
}

ControlGlue::ControlGlue(ControlCore& control, GnutellaCore& gnutella, UploadCore& upload, DownloadCore& downloads,
                         share::Library& library, Driver& driver, std::string default_out)
    : control_(control),
      gnutella_(gnutella),
      upload_(upload),
      downloads_(downloads),
      library_(library),
      driver_(driver),
      default_out_(std::move(default_out)) {}

void ControlGlue::on_request(const ControlRequest& r) {
  const json& a = r.args;
  auto str = [&](const char* key) -> std::optional<std::string> {
    if (a.contains(key) && a[key].is_string()) return a[key].get<std::string>();
    return std::nullopt;
  };
  if (r.cmd == "search") return search(r);
  if (r.cmd == "browse") {
    // A Napster user's shared files (211 -> 212... 213), as "browse-result"
    // events, then "browse-end".
    auto nick = str("nick");
    if (!nick || nick->empty()) return control_.error(r.conn, r.id, "browse needs \"nick\": \"NICK\"");
    if (!napster_ || !napster_->browse(*nick)) {
      return control_.error(r.conn, r.id, "not logged in to a Napster server (servent run --napster)");
    }
    browses_[*nick].insert(r.conn);
    return control_.reply(r.conn, r.id, {{"browse", *nick}});
  }
  if (r.cmd == "results" || r.cmd == "stop-search") {
    auto id = str("search");
    auto it = id ? searches_.find(*id) : searches_.end();
    if (it == searches_.end()) return control_.error(r.conn, r.id, "no such search");
    if (r.cmd == "results") return control_.reply(r.conn, r.id, {{"search", *id}, {"results", it->second.results}});
    it->second.subscribers.erase(r.conn);
    prune_searches();
    return control_.reply(r.conn, r.id, json::object());
  }
  if (r.cmd == "download") return download(r);
  if (r.cmd == "downloads") {
    json list = json::array();
    for (const auto& d : downloads_.list()) {
      list.push_back({{"download", d.id}, {"name", d.name}, {"have", d.have}, {"size", d.size}, {"state", d.state},
                      {"sources", d.sources}, {"active_sources", d.busy}, {"path", d.path}});
    }
    return control_.reply(r.conn, r.id, {{"downloads", list}});
  }
  if (r.cmd == "cancel" || r.cmd == "pause" || r.cmd == "resume") {
    if (!a.contains("download") || !a["download"].is_number_unsigned()) {
      return control_.error(r.conn, r.id, r.cmd + " needs \"download\": <id>");
    }
    const auto id = a["download"].get<std::uint64_t>();
    if (r.cmd == "cancel") {
      downloads_.cancel(id, driver_.now());
    } else if (!(r.cmd == "pause" ? downloads_.pause(id, driver_.now()) : downloads_.resume(id, driver_.now()))) {
      return control_.error(r.conn, r.id, "no such download in progress");
    }
    return control_.reply(r.conn, r.id, json::object());
  }
  if (r.cmd == "uploads") {
    json list = json::array();
    for (const auto& u : upload_.uploads()) {
      list.push_back({{"peer", u.peer ? u.peer->to_string() : ""},
                      {"name", u.name},
                      {"first", u.first},
                      {"length", u.length},
                      {"sent", u.sent},
                      {"file_size", u.file_size},
                      {"seconds", std::chrono::duration_cast<std::chrono::seconds>(driver_.now() - u.started).count()}});
    }
    return control_.reply(r.conn, r.id,
                          {{"active", upload_.active_uploads()},
                           {"slots", upload_.slots()},
                           {"completed", upload_.stat(UploadCore::kUploadsCompleted)},
                           {"failed", upload_.stat(UploadCore::kUploadsFailed)},
                           {"list", list}});
  }
  if (r.cmd == "torrents") {
    // Every torrent with its peers: progress, rates (the last choke
    // interval), totals and the choke/interest state of both sides.
    json list = json::array();
    if (torrents_) {
      const auto all = torrents_->torrents();
      for (std::size_t i = 0; i < all.size(); ++i) {
        const auto& t = all[i];
        json peers = json::array();
        for (const auto& p : torrents_->peers(i)) {
          peers.push_back({{"address", p.remote.to_string()},
                           {"direction", p.dir == Direction::Inbound ? "in" : "out"},
                           {"client", p.client},
                           {"am_choking", p.am_choking},
                           {"am_interested", p.am_interested},
                           {"peer_choking", p.peer_choking},
                           {"peer_interested", p.peer_interested},
                           {"snubbed", p.snubbed},
                           {"pieces", p.pieces},
                           {"down_rate", p.down_rate},
                           {"up_rate", p.up_rate},
                           {"downloaded", p.downloaded},
                           {"uploaded", p.uploaded}});
        }
        const std::string state = !t.metadata ? "metadata" : t.checking ? "checking" : t.have == t.pieces ? "seeding" : "leeching";
        list.push_back({{"info_hash", wire::bt::to_hex(t.info_hash)},
                        {"name", t.name},
                        {"state", state},
                        {"pieces", t.pieces},
                        {"have", t.have},
                        {"size", t.size},
                        {"have_bytes", t.have_bytes},
                        {"downloaded", t.downloaded},
                        {"uploaded", t.uploaded},
                        {"down_rate", t.down_rate},
                        {"up_rate", t.up_rate},
                        {"peers", peers}});
      }
    }
    return control_.reply(r.conn, r.id, {{"torrents", list}});
  }
  if (r.cmd == "peers") {
    json list = json::array();
    for (const auto& p : gnutella_.peers()) {
      list.push_back({{"address", p.remote.to_string()},
                      {"direction", p.dir == Direction::Inbound ? "in" : "out"},
                      {"established", p.established},
                      {"protocol", p.version_minor == 4 ? "0.4" : "0.6"},
                      {"user_agent", p.user_agent},
                      {"messages_in", p.msgs_in},
                      {"messages_out", p.msgs_out},
                      {"dropped", p.dropped},
                      // Its role as we see it, and what we saw of it.
                      {"role", p.link == "leaf"                           ? "leaf"
                               : p.link == "flat"                         ? "legacy"
                                                                           : "ultrapeer"},
                      {"link", p.link},
                      {"reputation", p.reputation},
                      {"qrp_slots", p.qrp_slots},
                      {"qrp_present", p.qrp_present}});
      if (p.listen.port != 0) list.back()["listen"] = p.listen.to_string();
      if (!p.hsep.empty()) {
        // HSEP: [nodes, files, KiB] it reaches within 1, 2, ... hops.
        json hops = json::array();
        for (const auto& hop : p.hsep) hops.push_back({hop.nodes, hop.files, hop.kib});
        list.back()["hsep"] = hops;
      }
      if (p.since) {
        list.back()["uptime"] = std::chrono::duration_cast<std::chrono::seconds>(driver_.now() - *p.since).count();
      }
    }
    if (napster_) {
      list.push_back({{"address", napster_->config().server.to_string()},
                      {"direction", "out"},
                      {"established", napster_->logged_in()},
                      {"protocol", "napster"},
                      {"user_agent", "Napster server"},
                      {"network", "napster"}});
    }
    return control_.reply(r.conn, r.id, {{"peers", list}, {"role", to_string(gnutella_.role())}});
  }
  if (r.cmd == "stats") return control_.reply(r.conn, r.id, {{"stats", stats()}});
  if (r.cmd == "dht" || r.cmd == "dht-put" || r.cmd == "dht-get" || r.cmd == "dht-lookup") return dht_request(r);
  if (r.cmd == "rescan") {
    // The scan here; the hashing on the thread pool, so a large new file
    // stalls no connection. The reply comes at once; stats show the progress.
    auto rep = library_.rescan();
    auto jobs = library_.take_hash_jobs();
    const std::size_t to_hash = jobs.size();
    hash_in_pool(std::move(jobs));
    if (napster_) napster_->reshare();  // the Napster server's copy of our list
    return control_.reply(r.conn, r.id,
                          {{"files", rep.files}, {"bytes", rep.bytes}, {"to_hash", to_hash}, {"hashed", library_.hashed_count()}});
  }
  if (r.cmd == "connect") {
    auto addr = str("address");
    auto ep = addr ? Endpoint::parse(*addr) : std::nullopt;
    if (!ep) return control_.error(r.conn, r.id, "connect needs \"address\": \"HOST:PORT\"");
    gnutella_.add_peer(*ep, driver_.now());
    return control_.reply(r.conn, r.id, json::object());
  }
  if (r.cmd == "quit") {
    control_.reply(r.conn, r.id, json::object());
    driver_.after(Duration(50), [this] { driver_.stop(); });
    return;
  }
}

void ControlGlue::search(const ControlRequest& r) {
  const json& a = r.args;
  if (!a.contains("query") || !a["query"].is_string() || a["query"].get<std::string>().empty()) {
    return control_.error(r.conn, r.id, "search needs \"query\": \"words\"");
  }
  Search s;
  s.criteria = a["query"].get<std::string>();
  if (auto sha = share::parse_sha1_urn(s.criteria)) {
    s.criteria.clear();
    wire::put_string(s.extensions, share::sha1_urn(*sha));
  }
  if (a.contains("ttl") && a["ttl"].is_number_unsigned()) {
    s.ttl = static_cast<std::uint8_t>(std::clamp<std::uint64_t>(a["ttl"].get<std::uint64_t>(), 1, 7));
  }
  const Instant now = driver_.now();
  prune_searches();
  const SearchSent sent = gnutella_.search(s, now);
  const std::string id = sent.guid.hex();
  SearchState& st = searches_[id];
  st.subscribers.insert(r.conn);
  st.keep_until = std::max(st.keep_until, sent.full_requery_at);
  // The same words to the Napster server (not urns: Napster has none); a
  // repeat already has those results.
  if (napster_ && !s.criteria.empty() && !sent.repeat) {
    if (const auto nid = napster_->search(s.criteria, now)) napster_searches_[nid] = id;
  }
  json reply = {{"search", id}, {"links", sent.links}};
  if (sent.repeat) {
    // The identical query went out less than requery_threshold ago: the links
    // that carried it would drop it now. What it found comes at once, marked.
    reply["repeat"] = true;
    reply["held_back"] = sent.held_back;
    reply["earlier"] = st.results.size();
    reply["requery_in"] = std::chrono::duration_cast<std::chrono::seconds>(sent.full_requery_at - now).count();
  }
  control_.reply(r.conn, r.id, reply);
  if (!sent.repeat) return;
  for (json j : st.results) {
    j["event"] = "result";
    j["search"] = id;
    j["earlier"] = true;
    control_.event(r.conn, j);
  }
}

void ControlGlue::prune_searches() {
  const Instant now = driver_.now();
  // Control clients that went away without stop-search (a killed `servent search`).
  for (auto& [id, st] : searches_) std::erase_if(st.subscribers, [&](ConnId c) { return !control_.connected(c); });
  auto idle = [&](const SearchState& st) { return st.subscribers.empty() && !st.feeds_download; };
  std::erase_if(searches_, [&](const auto& kv) { return idle(kv.second) && kv.second.keep_until <= now; });
  std::size_t kept = 0;
  for (const auto& [id, st] : searches_) kept += idle(st);
  while (kept > kMaxKeptSearches) {
    auto oldest = searches_.end();
    for (auto it = searches_.begin(); it != searches_.end(); ++it) {
      if (idle(it->second) && (oldest == searches_.end() || it->second.keep_until < oldest->second.keep_until)) oldest = it;
    }
    searches_.erase(oldest);
    --kept;
  }
}

void ControlGlue::download(const ControlRequest& r) {
  const json& a = r.args;
  DownloadSpec spec;
  if (a.contains("url") && a["url"].is_string()) {
    auto src = DownloadSource::from_url(a["url"].get<std::string>());
    if (!src) return control_.error(r.conn, r.id, "not an http://HOST:PORT/... URL");
    spec.sources.push_back(*src);
    spec.name = name_from_target(src->target);
    if (src->napster) {
      if (!napster_) return control_.error(r.conn, r.id, "this node is not on a Napster server (servent run --napster)");
      spec.name = src->napster->file.substr(src->napster->file.find_last_of("\\/") + 1);
    }
    if (spec.name.empty()) spec.name = "download";
  } else if (a.contains("magnet") && a["magnet"].is_string()) {
    auto m = spec_from_magnet(a["magnet"].get<std::string>());
    if (!m) return control_.error(r.conn, r.id, "magnet link without urn:sha1 or source");
    spec = *m;
  } else if (a.contains("result") && a["result"].is_object() && a["result"].value("network", "") == "napster") {
    const json& h = a["result"];
    try {
      DownloadSource src;
      src.napster = DownloadSource::NapsterVia{h.at("nick").get<std::string>(), h.at("path").get<std::string>()};
      spec.name = h.at("name").get<std::string>();
      spec.size = h.at("size").get<std::uint64_t>();
      spec.sources.push_back(std::move(src));
    } catch (const std::exception&) {
      return control_.error(r.conn, r.id, "\"result\" must be a hit as 'servent search --json' prints it");
    }
    if (!napster_) return control_.error(r.conn, r.id, "this node is not on a Napster server (servent run --napster)");
  } else if (a.contains("result") && a["result"].is_object()) {
    const json& h = a["result"];
    try {
      auto ep = Endpoint::parse(h.at("host").get<std::string>() + ":" + std::to_string(h.at("port").get<int>()));
      if (!ep) throw std::invalid_argument("address");
      spec.name = h.at("name").get<std::string>();
      spec.size = h.at("size").get<std::uint64_t>();
      const auto index = h.at("index").get<std::uint32_t>();
      const std::string target = "/get/" + std::to_string(index) + "/" + http::percent_encode(spec.name);
      if (h.contains("urn")) spec.sha1 = share::parse_sha1_urn(h["urn"].get<std::string>());
      if (h.value("push", false)) {
        auto sid = wire::gnutella::ServentId::from_hex(h.at("servent_id").get<std::string>());
        if (!sid) throw std::invalid_argument("servent_id");
        spec.sources.push_back(DownloadSource{*ep, target, DownloadSource::PushVia{*sid, index}});
      } else {
        spec.sources.push_back(DownloadSource{*ep, target, {}});
      }
    } catch (const std::exception&) {
      return control_.error(r.conn, r.id, "\"result\" must be a hit as 'servent search --json' prints it");
    }
  } else {
    return control_.error(r.conn, r.id, "download needs \"url\", \"magnet\" or \"result\"");
  }
  spec.out_dir = a.contains("out") && a["out"].is_string() ? a["out"].get<std::string>() : default_out_;
  std::string error;
  const std::uint64_t id = downloads_.start(spec, driver_.now(), error);
  if (id == 0) return control_.error(r.conn, r.id, error);
  if (spec.sha1) {
    // More sources: ask the network for the same urn.
    Search s;
    wire::put_string(s.extensions, share::sha1_urn(*spec.sha1));
    const std::string sid = gnutella_.search(s, driver_.now()).guid.hex();
    searches_[sid].feeds_download = id;
    searches_[sid].sha1 = spec.sha1;
  }
  control_.reply(r.conn, r.id, {{"download", id}});
}

void ControlGlue::on_hit(const event::Hit& h) {
  auto it = searches_.find(h.query.hex());
  if (it == searches_.end()) return;
  SearchState& st = it->second;
  if (st.feeds_download && st.sha1) {
    for (const auto& u : wire::gnutella::all_urns(wire::gnutella::decode_extensions(h.result.extensions))) {
      auto sha = share::parse_sha1_urn(u);
      if (!sha || *sha != *st.sha1) continue;
      const std::string target = h.push ? "/get/" + std::to_string(h.result.index) + "/" + http::percent_encode(h.result.name)
                                        : "/uri-res/N2R?" + share::sha1_urn(*sha);
      std::optional<DownloadSource::PushVia> via;
      if (h.push) via = DownloadSource::PushVia{h.servent_id, h.result.index};
      downloads_.add_source(*st.feeds_download, DownloadSource{h.source, target, via}, driver_.now());
    }
  }
  json j = json::parse(hit_json(h).dump(-1, ' ', false, json::error_handler_t::replace));
  if (st.results.size() < kMaxResults) st.results.push_back(j);
  j["event"] = "result";
  j["search"] = it->first;
  for (ConnId c : st.subscribers) control_.event(c, j);
}

void ControlGlue::hash_in_pool(std::vector<share::HashJob> jobs, std::function<void(std::size_t)> done) {
  if (jobs.empty()) {
    if (done) done(0);
    return;
  }
  hashing_total_ += jobs.size();
  auto pending = std::make_shared<std::size_t>(jobs.size());
  const std::size_t total = jobs.size();
  for (auto& job : jobs) {
    auto result = std::make_shared<std::optional<share::Sha1>>();
    driver_.run_in_pool([job, result] { *result = share::sha1_of_file(job.path); },
                        [this, job, result, pending, total, done] {
                          if (*result) library_.apply_hash(job, **result);
                          ++hashing_done_;
                          if (--*pending == 0) {
                            library_.save_hash_cache();
                            if (done) done(total);
                          }
                        });
  }
}

void ControlGlue::on_napster_result(const napster_event::Result& r) {
  auto nid = napster_searches_.find(r.search);
  if (nid == napster_searches_.end()) return;
  auto it = searches_.find(nid->second);
  if (it == searches_.end()) return;
  SearchState& st = it->second;
  json j = json::parse(napster_hit_json(r.result).dump(-1, ' ', false, json::error_handler_t::replace));
  if (st.results.size() < kMaxResults) st.results.push_back(j);
  j["event"] = "result";
  j["search"] = it->first;
  for (ConnId c : st.subscribers) control_.event(c, j);
}

void ControlGlue::on_napster_browse(const NapsterEvent& e) {
  if (const auto* r = std::get_if<napster_event::BrowseResult>(&e)) {
    auto it = browses_.find(r->nick);
    if (it == browses_.end()) return;
    wire::napster::SearchResult sr{r->file, r->nick, 0, 0};
    json j = json::parse(napster_hit_json(sr).dump(-1, ' ', false, json::error_handler_t::replace));
    j.erase("host");
    j["event"] = "browse-result";
    for (ConnId c : it->second) control_.event(c, j);
  } else if (const auto* d = std::get_if<napster_event::BrowseDone>(&e)) {
    auto it = browses_.find(d->nick);
    if (it == browses_.end()) return;
    for (ConnId c : it->second) control_.event(c, {{"event", "browse-end"}, {"nick", d->nick}});
    browses_.erase(it);
  }
}

void ControlGlue::on_download_event(const DownloadEvent& e) {
  json j;
  if (const auto* d = std::get_if<event::DownloadDone>(&e)) {
    j = {{"event", "download-done"}, {"download", d->id}, {"path", d->path}, {"verified", d->verified}};
  } else if (const auto* f = std::get_if<event::DownloadFailed>(&e)) {
    j = {{"event", "download-failed"}, {"download", f->id}, {"reason", f->reason}};
  } else {
    return;
  }
  for (const auto& c : control_.connections()) control_.event(c, j);
}

json ControlGlue::stats() const {
  auto group = [](const std::vector<Counter>& cs) {
    json g = json::object();
    for (const auto& c : cs) g[std::string(c.name)] = c.value;
    return g;
  };
  return {{"gnutella", group(gnutella_.counters())},
          {"http", group(upload_.counters())},
          {"downloads", group(downloads_.counters())},
          {"control", group(control_.counters())},
          {"driver", group(driver_.counters())},
          {"library",
           {{"files", library_.file_count()},
            {"bytes", library_.total_bytes()},
            {"hashed", library_.hashed_count()},
            {"hashing_done", hashing_done_},
            {"hashing_total", hashing_total_}}},
          {"napster", napster_ ? group(napster_->counters()) : json::object()},
          {"napster_server", napster_server_ ? group(napster_server_->counters()) : json::object()},
          {"torrent", torrents_ ? group(torrents_->counters()) : json::object()},
          {"peers", gnutella_.established()},
          {"role", to_string(gnutella_.role())}};
}

void ControlGlue::dht_request(const ControlRequest& r) {
  if (!dht_) return control_.error(r.conn, r.id, "no DHT here (servent run --dht chord|kelips|pastry)");
  dht::DhtCore& node = dht_->node();
  auto node_json = [](const dht::NodeRef& n) {
    return json{{"id", dht::short_id(n.id)}, {"address", Endpoint{n.ip, n.port}.to_string()}};
  };
  if (r.cmd == "dht") {
    const auto v = node.view();
    json nodes = json::array();
    for (const auto& [role, n] : v.nodes) {
      json j = node_json(n);
      j["role"] = role;
      nodes.push_back(std::move(j));
    }
    return control_.reply(r.conn, r.id,
                          {{"overlay", std::string(node.overlay())},
                           {"node_id", dht::short_id(node.self().id)},  // ("id" is the request's)
                           {"address", Endpoint{node.self().ip, node.self().port}.to_string()},
                           {"joined", node.joined()},
                           {"summary", v.summary},
                           {"nodes", nodes}});
  }
  if (!r.args.contains("key") || !r.args["key"].is_string()) return control_.error(r.conn, r.id, "\"key\" (a string) is needed");
  const dht::NodeId key = dht::key_id(r.args["key"].get<std::string>(), node.ring());
  std::uint64_t op = 0;
  if (r.cmd == "dht-put") {
    if (!r.args.contains("value") || !r.args["value"].is_string()) return control_.error(r.conn, r.id, "\"value\" (a string) is needed");
    const std::string value = r.args["value"].get<std::string>();
    if (value.size() > wire::dht::kMaxValue) return control_.error(r.conn, r.id, "a value is at most 512 bytes");
    op = node.put(key, wire::Bytes(value.begin(), value.end()), driver_.now());
  } else if (r.cmd == "dht-get") {
    op = node.get(key, driver_.now());
  } else {
    op = node.lookup(key, driver_.now());
  }
  // The answer when the operation ends (the connection may be gone by then: reply() drops it).
  dht_->on(op, [this, conn = r.conn, id = r.id, node_json](const dht::OpResult& res) {
    json route = json::array();
    for (const auto& n : res.route) route.push_back(node_json(n));
    json values = json::array();
    for (const auto& v : res.values) values.push_back(std::string(v.begin(), v.end()));
    if (!res.ok) return control_.error(conn, id, res.error.empty() ? "failed" : res.error);
    control_.reply(conn, id, {{"owner", node_json(res.owner)}, {"route", route}, {"values", values}});
  });
}

}  // namespace sv::cli
