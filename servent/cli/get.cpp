// servent get: download a URL, a magnet link or a hit printed by
// `servent search --json`, resuming from the state directory.
#include <fmt/core.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <deque>
#include <filesystem>
#include <thread>

#include "http/text.hpp"
#include "servent/cli/args.hpp"
#include "servent/cli/common.hpp"
#include "servent/cli/dht_glue.hpp"
#include "servent/cli/node_client.hpp"
#include "servent/control/control_core.hpp"
#include "servent/download/download_core.hpp"
#include "servent/gnutella/gnutella_core.hpp"
#include "servent/upload/upload_core.hpp"
#include "servent/uv/driver.hpp"
#include "wire/gnutella/huge.hpp"

namespace fs = std::filesystem;

namespace sv::cli {

namespace {

constexpr const char* kGetHelp = R"(usage: servent get URL|MAGNET|RESULT [-o DIR] [--state-dir DIR] [--connect HOST:PORT]...
                   [--dht HOST:PORT [--dht-overlay NAME]] [--node STATE_DIR]
                   [--timeout SECONDS] [--json]

Downloads a file and puts it in DIR (default: the current folder) once it is
complete and, when its urn:sha1 is known, verified. Partial data lives in the
state directory: run the same command again to resume. When a node runs (its
control socket in the default state directory, or --node STATE_DIR), the
download is handed to it and followed from here; with --connect or
--state-dir, `get` runs on its own as a short-lived node.

  URL      http://HOST:PORT/get/INDEX/NAME or http://HOST:PORT/uri-res/N2R?urn:sha1:...
  MAGNET   magnet:?xt=urn:sha1:...&dn=NAME&xl=SIZE&xs=URL (xs/as sources used;
           with --connect, also searched for on the network by its urn;
           with --dht, looked up in the DHT by its urn)
  RESULT   a line printed by 'servent search --json'

options:
  -o, --output DIR      where the finished file goes (default .)
  --state-dir DIR       partial downloads (default $XDG_STATE_HOME/servent)
  --connect HOST:PORT   join the network through this peer to find more sources
                        and to reach firewalled ones (Push/GIV)
  --listen HOST:PORT    where firewalled sources connect back (with --connect;
                        default 0.0.0.0:0, a free port)
  --node STATE_DIR      hand the download to the node running there
  --dht HOST:PORT       look sources of the urn:sha1 up in a DHT through this
                        node (nodes of `servent run --dht` publish theirs)
  --dht-overlay NAME    that DHT's overlay: chord (default), kelips, pastry
  --dht-groups K        Kelips: its number of affinity groups
  --timeout SECONDS     give up after this long (default: never)
  --json                one JSON object per line: progress, source-dropped, done, failed
)";

// The value of "key" in a flat JSON object line (strings unescaped for \" and \\).
std::optional<std::string> json_value(std::string_view line, std::string_view key) {
  std::string pat = "\"" + std::string(key) + "\":";
  auto k = line.find(pat);
  if (k == std::string_view::npos) return std::nullopt;
  auto v = k + pat.size();
  while (v < line.size() && line[v] == ' ') ++v;
  if (v >= line.size()) return std::nullopt;
  if (line[v] != '"') {
    auto e = line.find_first_of(",}", v);
    return std::string(wire::trim(line.substr(v, e - v)));
  }
  std::string out;
  for (std::size_t i = v + 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) {
      out.push_back(line[++i]);
    } else if (line[i] == '"') {
      return out;
    } else {
      out.push_back(line[i]);
    }
  }
  return std::nullopt;
}

std::optional<DownloadSpec> spec_from_result(std::string_view line) {
  if (json_value(line, "network") == "napster") {
    // Through a running node that is on that Napster server.
    auto nick = json_value(line, "nick"), path = json_value(line, "path"), name = json_value(line, "name");
    if (!nick || !path || !name) return std::nullopt;
    DownloadSpec spec;
    spec.name = *name;
    DownloadSource src;
    src.napster = DownloadSource::NapsterVia{*nick, *path};
    spec.sources.push_back(std::move(src));
    if (auto size = json_value(line, "size")) spec.size = std::strtoull(size->c_str(), nullptr, 10);
    return spec;
  }
  auto host = json_value(line, "host"), port = json_value(line, "port"), index = json_value(line, "index"),
       name = json_value(line, "name");
  if (!host || !port || !index || !name) return std::nullopt;
  auto ep = Endpoint::parse(*host + ":" + *port);
  if (!ep) return std::nullopt;
  DownloadSpec spec;
  spec.name = *name;
  const std::string target = "/get/" + *index + "/" + http::percent_encode(*name);
  if (json_value(line, "push") == "true") {
    // A firewalled source: only a Push through the network reaches it.
    auto sid = json_value(line, "servent_id");
    auto id = sid ? wire::gnutella::ServentId::from_hex(*sid) : std::nullopt;
    std::uint32_t idx = 0;
    auto r = std::from_chars(index->data(), index->data() + index->size(), idx);
    if (!id || r.ec != std::errc{}) return std::nullopt;
    spec.sources.push_back(DownloadSource{*ep, target, DownloadSource::PushVia{*id, idx}});
    if (auto size = json_value(line, "size")) spec.size = std::strtoull(size->c_str(), nullptr, 10);
    if (auto urn = json_value(line, "urn")) spec.sha1 = share::parse_sha1_urn(*urn);
    return spec;
  }
  spec.sources.push_back(DownloadSource{*ep, target, {}});
  if (auto size = json_value(line, "size")) {
    try {
      spec.size = std::stoull(*size);
    } catch (...) {
    }
  }
  if (auto urn = json_value(line, "urn")) {
    spec.sha1 = share::parse_sha1_urn(*urn);
    if (spec.sha1) spec.sources.push_back(DownloadSource{*ep, "/uri-res/N2R?" + share::sha1_urn(*spec.sha1), {}});
  }
  return spec;
}

int get_via_node(NodeClient& node, const std::string& what, const std::string& out_dir, bool json, bool tty,
                 std::optional<Duration> timeout) {
  nlohmann::json req{{"cmd", "download"}, {"out", fs::absolute(out_dir).lexically_normal().string()}};
  if (what.starts_with("magnet:")) {
    req["magnet"] = what;
  } else if (what.starts_with("{")) {
    auto hit = nlohmann::json::parse(what, nullptr, false);
    if (hit.is_discarded()) usage_error("get", "not a result line from 'servent search --json'");
    req["result"] = hit;
  } else {
    req["url"] = what;
  }
  auto r = node.call(req, 5s);
  if (!r || !r->value("ok", false)) {
    fmt::print(stderr, "servent get: the node refused: {}\n", r ? r->value("error", "?") : "no answer");
    return 1;
  }
  const auto id = (*r)["download"].get<std::uint64_t>();
  if (!json) fmt::print(stderr, "servent get: download {} runs in the node at {}\n", id, node.path());
  const auto start = std::chrono::steady_clock::now();
  bool printed_bar = false;
  for (;;) {
    auto list = node.call({{"cmd", "downloads"}}, 5s);
    if (!list) {
      fmt::print(stderr, "servent get: the node went away\n");
      return 1;
    }
    for (const auto& d : (*list)["downloads"]) {
      if (d.value("download", std::uint64_t{0}) != id) continue;
      const std::string state = d.value("state", "");
      const auto have = d.value("have", std::uint64_t{0}), size = d.value("size", std::uint64_t{0});
      if (json) {
        fmt::print("{{\"event\":\"progress\",\"have\":{},\"size\":{},\"sources\":{}}}\n", have, size,
                   d.value("active_sources", 0));
      } else if (tty) {
        const double frac = size ? static_cast<double>(have) / static_cast<double>(size) : 0;
        fmt::print("\r[{}] {:3.0f}% {} of {}  {} source{}   ", bar(frac, 30), frac * 100, human_bytes(have),
                   size ? human_bytes(size) : "?", d.value("active_sources", 0), d.value("active_sources", 0) == 1 ? "" : "s");
        printed_bar = true;
      }
      if (state == "done") {
        if (printed_bar) fmt::print("\n");
        if (json) {
          fmt::print("{{\"event\":\"done\",\"path\":{}}}\n", json_string(d.value("path", "")));
        } else {
          fmt::print("saved {}\n", d.value("path", ""));
        }
        return 0;
      }
      if (state == "failed" || state == "cancelled") {
        if (printed_bar) fmt::print("\n");
        fmt::print(stderr, "servent get: download {} {} in the node (partial data kept there)\n", id, state);
        return 1;
      }
    }
    std::fflush(stdout);
    if (timeout && std::chrono::steady_clock::now() - start > *timeout) {
      fmt::print(stderr, "servent get: timed out; the node keeps downloading\n");
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(json ? 1000 : 250));  // poll interval of the progress display
  }
}

}  // namespace

int cmd_get(const std::vector<std::string>& argv) {
  OptionSpec spec_opts{{"-o", "--output", "--state-dir", "--connect", "--timeout", "--listen", "--node", "--dht", "--dht-overlay",
                        "--dht-groups"},
                       {"--json", "--help", "-h"}};
  Args a;
  DownloadSpec spec;
  std::vector<Endpoint> peers;
  std::optional<Duration> timeout;
  DhtLookupOptions dht_lookup;
  try {
    a = parse_args(argv, spec_opts);
    if (a.has("--help") || a.has("-h")) {
      fmt::print("{}", kGetHelp);
      return 0;
    }
    if (a.positional.size() != 1) throw UsageError(a.positional.empty() ? "missing URL, MAGNET or RESULT" : "one download at a time");
    const std::string& what = a.positional.front();
    if (what.starts_with("magnet:")) {
      auto s = spec_from_magnet(what);
      if (!s) throw UsageError("magnet link without urn:sha1 or source: '" + what + "'");
      spec = *s;
    } else if (what.starts_with("{")) {
      auto s = spec_from_result(what);
      if (!s) throw UsageError("not a result line from 'servent search --json'");
      spec = *s;
    } else {
      auto src = DownloadSource::from_url(what);
      if (!src) throw UsageError("not an http://HOST:PORT/... URL with an IPv4 host: '" + what + "'");
      spec.sources.push_back(*src);
      spec.name = name_from_target(src->target);
      if (src->napster) spec.name = src->napster->file.substr(src->napster->file.find_last_of("\\/") + 1);
      if (auto q = src->target.find("urn:sha1:"); q != std::string::npos) {
        spec.sha1 = share::parse_sha1_urn(src->target.substr(q));
      }
      if (spec.name.empty() || spec.name.starts_with("N2R")) {
        spec.name = spec.sha1 ? share::base32_encode(spec.sha1->data(), spec.sha1->size()) : "download";
      }
    }
    for (const auto& c : a.all("--connect")) peers.push_back(parse_endpoint(c, "--connect"));
    dht_lookup = dht_lookup_options(a);
    if (dht_lookup.via && !spec.sha1) throw UsageError("--dht looks sources up by urn:sha1: this download has none");
    if (auto t = a.last("--timeout")) timeout = parse_duration(*t, "--timeout");
  } catch (const UsageError& e) {
    usage_error("get", e.what());
  }
  spec.out_dir = a.last("--output").value_or(a.last("-o").value_or("."));
  spec.await_sources = (!peers.empty() || dht_lookup.via) && spec.sha1;  // (a search or the DHT may name some)
  const bool json = a.has("--json");
  const bool tty = !json && isatty(STDOUT_FILENO);
  if (a.has("--node") || (peers.empty() && !a.has("--state-dir") && !dht_lookup.via)) {
    NodeClient node(a.last("--node").value_or(default_state_dir()));
    if (node.ok()) return get_via_node(node, a.positional.front(), spec.out_dir, json, tty, timeout);
    if (a.has("--node")) {
      fmt::print(stderr, "servent get: no running node answers at {}\n", node.path());
      return 1;
    }
  }
  if (!spec.sources.empty() && spec.sources.front().napster) {
    fmt::print(stderr, "servent get: a Napster file comes through a running node on that server "
                       "(servent run --napster HOST:PORT); none answers\n");
    return 1;
  }

  DownloadConfig dcfg;
  dcfg.state_dir = a.last("--state-dir").value_or(default_state_dir());
  DownloadCore downloads(dcfg);
  share::Library empty;
  GnutellaConfig gcfg;
  gcfg.max_connections = peers.size() + 1;
  // A short-lived leaf: the given peers are its ultrapeers.
  gcfg.mode = NodeMode::Leaf;
  gcfg.leaf_ultrapeers = std::max<std::size_t>(gcfg.leaf_ultrapeers, peers.size());
  GnutellaCore gnutella(empty, gcfg, random_seed());
  Driver driver;
  driver.add_core(gnutella);
  driver.sniff("GIV ", downloads);
  std::string error;
  const std::uint64_t id = downloads.start(spec, driver.now(), error);
  if (id == 0) {
    fmt::print(stderr, "servent get: {}\n", error);
    return 1;
  }
  for (const auto& p : peers) gnutella.add_peer(p, driver.now());
  // Sources from the DHT: nodes that published this urn:sha1.
  std::optional<DhtSourceLookup> dht_sources;
  if (dht_lookup.via) {
    try {
      dht_sources.emplace(driver, dht_lookup.overlay, dht_lookup.options, *dht_lookup.via);
    } catch (const std::exception& e) {
      fmt::print(stderr, "servent get: --dht: {}\n", e.what());
      return 1;
    }
    const std::string urn = share::sha1_urn(*spec.sha1);
    dht_sources->find(urn, "gnutella", [&, urn](Endpoint ep) {
      if (!json) fmt::print(stderr, "source from the DHT: {}\n", ep.to_string());
      downloads.add_source(id, DownloadSource{ep, "/uri-res/N2R?" + urn, {}}, driver.now());
    });
  }
  // Firewalled sources connect back to us with GIV: listen while on the network.
  Endpoint listening{};
  if (!peers.empty()) {
    std::string host = "0.0.0.0";
    std::uint16_t port = 0;
    if (auto l = a.last("--listen")) {
      auto ep = Endpoint::parse(*l);
      if (!ep) usage_error("get", "--listen: expected HOST:PORT, got '" + *l + "'");
      host = l->substr(0, l->rfind(':'));
      port = ep->port;
    }
    try {
      listening = driver.listen_tcp(host, port);
    } catch (const std::exception& e) {
      fmt::print(stderr, "servent get: {}\n", e.what());
      return 1;
    }
    gnutella.set_advertised(listening);
  }
  std::vector<event::PushNeeded> pushes;  // waiting for a peer to send them through
  auto send_pushes = [&] {
    std::erase_if(pushes, [&](const event::PushNeeded& p) {
      Endpoint me = gnutella.config().advertised;
      if (me.ip == 0 || me.port == 0) return false;
      return gnutella.send_push(p.servent, p.index, me, driver.now());
    });
  };

  int rc = 1;
  bool searched = false;
  // Rate over the last few seconds, for the progress line.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> samples;
  auto last_print = std::chrono::steady_clock::time_point{};
  bool printed_bar = false;
  driver.forward([&] { return gnutella.poll_event(); }, [&](const Event& ev) {
    if (std::holds_alternative<event::PeerUp>(ev)) send_pushes();
    if (std::holds_alternative<event::PeerUp>(ev) && !searched && spec.sha1) {
      searched = true;
      Search s;
      s.criteria = "";
      wire::put_string(s.extensions, share::sha1_urn(*spec.sha1));
      gnutella.search(s, driver.now());
    } else if (const auto* h = std::get_if<event::Hit>(&ev)) {
      for (const auto& u : wire::gnutella::all_urns(wire::gnutella::decode_extensions(h->result.extensions))) {
        auto sha = share::parse_sha1_urn(u);
        if (!sha || !spec.sha1 || *sha != *spec.sha1) continue;
        if (h->push) {
          // Firewalled: reachable only by Push, by index and name.
          downloads.add_source(id,
                               DownloadSource{h->source,
                                              "/get/" + std::to_string(h->result.index) + "/" +
                                                  http::percent_encode(h->result.name),
                                              DownloadSource::PushVia{h->servent_id, h->result.index}},
                               driver.now());
        } else {
          downloads.add_source(id, DownloadSource{h->source, "/uri-res/N2R?" + share::sha1_urn(*sha), {}}, driver.now());
        }
      }
    }
  });
  driver.forward([&] { return downloads.poll_event(); }, [&](const DownloadEvent& ev) {
    const auto now = std::chrono::steady_clock::now();
    if (const auto* p = std::get_if<event::DownloadProgress>(&ev)) {
      samples.emplace_back(now, p->have);
      while (samples.size() > 2 && now - samples.front().first > std::chrono::seconds(5)) samples.pop_front();
      const auto interval = tty ? std::chrono::milliseconds(200) : std::chrono::milliseconds(1000);
      const bool final = p->size != 0 && p->have == p->size;
      if (now - last_print < interval && !final) return;
      last_print = now;
      double rate = 0;
      if (samples.size() >= 2) {
        const double secs = std::chrono::duration<double>(samples.back().first - samples.front().first).count();
        if (secs > 0) rate = static_cast<double>(samples.back().second - samples.front().second) / secs;
      }
      const double frac = p->size ? static_cast<double>(p->have) / static_cast<double>(p->size) : 0;
      const double left = rate > 0 && p->size ? static_cast<double>(p->size - p->have) / rate : -1;
      if (json) {
        fmt::print("{{\"event\":\"progress\",\"have\":{},\"size\":{},\"rate\":{:.0f},\"sources\":{}}}\n", p->have,
                   p->size, rate, p->active_sources);
      } else if (tty) {
        fmt::print("\r[{}] {:3.0f}% {} of {}  {}/s  ETA {}  {} source{}   ", bar(frac, 30), frac * 100,
                   human_bytes(p->have), p->size ? human_bytes(p->size) : "?", human_bytes(static_cast<std::uint64_t>(rate)),
                   eta(left), p->active_sources, p->active_sources == 1 ? "" : "s");
        printed_bar = true;
      } else {
        fmt::print("{} of {} ({:.0f}%), {}/s\n", human_bytes(p->have), p->size ? human_bytes(p->size) : "?", frac * 100,
                   human_bytes(static_cast<std::uint64_t>(rate)));
      }
    } else if (const auto* d = std::get_if<event::DownloadDone>(&ev)) {
      if (printed_bar) fmt::print("\n");
      if (json) {
        fmt::print("{{\"event\":\"done\",\"path\":{},\"verified\":{}}}\n", json_string(d->path), d->verified);
      } else {
        fmt::print("saved {}{}\n", d->path, d->verified ? " (urn:sha1 verified)" : " (not verified: no urn:sha1 known)");
      }
      rc = 0;
      driver.stop();
    } else if (const auto* f = std::get_if<event::DownloadFailed>(&ev)) {
      if (printed_bar) fmt::print("\n");
      if (json) {
        fmt::print("{{\"event\":\"failed\",\"reason\":{}}}\n", json_string(f->reason));
      } else {
        fmt::print(stderr, "servent get: failed: {} (partial data kept; run again to resume)\n", f->reason);
      }
      rc = 1;
      driver.stop();
    } else if (const auto* pn = std::get_if<event::PushNeeded>(&ev)) {
      pushes.push_back(*pn);
      send_pushes();
      if (!json && !pushes.empty() && peers.empty()) {
        fmt::print(stderr, "servent get: the source is firewalled: add --connect HOST:PORT to reach it by push\n");
      }
    } else if (const auto* s = std::get_if<event::SourceDropped>(&ev)) {
      if (json) {
        fmt::print("{{\"event\":\"source-dropped\",\"url\":{},\"reason\":{}}}\n", json_string(s->url),
                   json_string(s->reason));
      } else {
        if (printed_bar) fmt::print("\n");
        printed_bar = false;
        fmt::print(stderr, "dropped source {}: {}\n", s->url, s->reason);
      }
    }
    std::fflush(stdout);
  });
  if (timeout) {
    driver.after(*timeout, [&] {
      if (printed_bar) fmt::print("\n");
      fmt::print(stderr, "servent get: timed out (partial data kept; run again to resume)\n");
      driver.stop();
    });
  }
  driver.run();
  if (std::getenv("SERVENT_DEBUG")) {
    print_counters("gnutella", gnutella.counters());
    print_counters("download", downloads.counters());
    print_counters("driver", driver.counters());
  }
  return rc;
}

}  // namespace sv::cli
