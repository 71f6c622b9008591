// servent torrent create|seed|get: BitTorrent from the command line, on the
// same Driver and TorrentCore that `servent run` hosts.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "servent/cli/args.hpp"
#include "servent/cli/common.hpp"
#include "servent/cli/dht_glue.hpp"
#include "servent/cli/node_client.hpp"
#include "servent/cli/torrent_dir.hpp"
#include "servent/torrent/torrent_core.hpp"
#include "servent/torrent/tracker_core.hpp"
#include "servent/uv/driver.hpp"
#include "share/sha1.hpp"
#include "wire/bt/metainfo.hpp"
#include "wire/bt/tracker.hpp"

namespace sv::cli {

namespace bt = wire::bt;
namespace fs = std::filesystem;

namespace {

constexpr const char* kTorrentHelp = R"(usage: servent torrent create PATH [--piece-size N] [--tracker URL]... [--private] [-o FILE]
       servent torrent seed FILE.torrent --data PATH [--listen HOST:PORT] [--peer HOST:PORT]... [--tracker URL]...
       servent torrent get FILE.torrent|MAGNET [-o DIR] [--listen HOST:PORT] [--peer HOST:PORT]... [--tracker URL]...
                           [--dht HOST:PORT [--dht-overlay NAME]] [--json]
       servent torrent list [--node STATE_DIR] [--json]
       servent tracker [--listen HOST:PORT] [--interval SECONDS]

create  writes a v1 metainfo file for a file or a directory (files in name
        order): SHA-1 per piece (--piece-size, a power of two from 16 KiB;
        default: about 1,500 pieces), the trackers given (the first is
        `announce`, all of them `announce-list`), and prints its info-hash.
seed    serves the torrent from PATH (the file itself for a single-file
        torrent, the directory holding the torrent's directory otherwise);
        every piece is checked first. Runs until interrupted.
get     fetches the torrent into DIR (default: the current directory),
        resuming from what is there (pieces re-checked), and exits when it
        is complete: a progress line on stderr, or with --json one object a
        second on stdout ({"have":..,"pieces":..,"bytes":..,"peers":..}).
        A magnet link (magnet:?xt=urn:btih:HEX-or-BASE32[&dn=..][&tr=..][&x.pe=..])
        first fetches the metadata from peers (BEP 9), checked against the
        info-hash ("metadata":false in --json until then).

list    the running node's torrents (servent run --torrent-dir) and their
        peers: progress, rates, ratio, and per peer who chokes whom (flags:
        D we download from it, d we want to but it chokes us, U we upload
        to it, u it wants to but we choke it, S snubbed, I/O inbound/outbound).
        --json prints the node's reply: one object per torrent and line.

tracker  an HTTP (/announce, /scrape) and UDP (BEP 15) tracker on one port,
        for any info-hash; runs until interrupted.

Peers come from the torrent's trackers (http:// with an IPv4 address or
localhost), the --tracker URLs, the --peer addresses and, with --dht, our
DHT (nodes of `servent run --torrent-dir D --dht O` publish the torrents
they seed under urn:btih:HEX).

options:
  --listen HOST:PORT  where peers may connect (default 0.0.0.0:6881, for the
                      tracker 0.0.0.0:6969; port 0 picks one; the bound
                      address is printed)
  --peer HOST:PORT    a peer to dial (repeatable)
  --tracker URL       another tracker to announce to (repeatable)
  --dht HOST:PORT     get: look peers up in a DHT through this node
  --dht-overlay NAME  that DHT's overlay: chord (default), kelips, pastry
  --dht-groups K      Kelips: its number of affinity groups
)";

std::uint64_t file_size_of(const fs::path& p) { return fs::file_size(p); }

int create(const Args& a) {
  if (a.positional.size() != 2) usage_error("torrent", "create needs one PATH");
  const fs::path path = a.positional[1];
  std::error_code ec;
  if (!fs::exists(path, ec)) usage_error("torrent", "no such file or directory: " + path.string());
  bt::Metainfo m;
  m.name = path.filename().string();
  if (m.name.empty()) m.name = fs::absolute(path).parent_path().filename().string();
  if (!bt::safe_path_component(m.name)) usage_error("torrent", "cannot name a torrent '" + m.name + "'");
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    m.multi_file = true;
    for (const auto& e : fs::recursive_directory_iterator(path)) {
      if (e.is_regular_file() && !e.is_symlink()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) usage_error("torrent", path.string() + " holds no files");
    for (const auto& f : files) {
      bt::FileEntry fe;
      for (const auto& c : fs::relative(f, path)) fe.path.push_back(c.string());
      fe.length = file_size_of(f);
      fe.offset = m.total_length;
      m.total_length += fe.length;
      m.files.push_back(fe);
    }
  } else {
    files.push_back(path);
    m.total_length = file_size_of(path);
    m.files.push_back(bt::FileEntry{{m.name}, m.total_length, 0});
  }
  std::uint64_t piece = 16384;
  if (auto v = a.last("--piece-size")) {
    piece = static_cast<std::uint64_t>(parse_int(*v, 16384, 1 << 26, "--piece-size"));
    if ((piece & (piece - 1)) != 0) usage_error("torrent", "--piece-size must be a power of two");
  } else {
    while (piece < (1u << 24) && m.total_length / piece > 1500) piece *= 2;
  }
  m.piece_length = piece;
  const auto trackers = a.all("--tracker");
  if (!trackers.empty()) m.announce = trackers.front();
  if (trackers.size() > 1) {
    for (const auto& t : trackers) m.announce_list.push_back({t});
  }
  m.is_private = a.has("--private");
  m.created_by = "servent";
  m.creation_date = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Pieces run across file boundaries: hash the stream.
  share::Sha1Hasher h;
  std::uint64_t in_piece = 0;
  std::vector<char> buf(1 << 20);
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      std::size_t n = static_cast<std::size_t>(in.gcount()), at = 0;
      while (at < n) {
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n - at, piece - in_piece));
        h.update(buf.data() + at, take);
        at += take;
        in_piece += take;
        if (in_piece == piece) {
          m.pieces.push_back(h.finish());
          in_piece = 0;
        }
      }
    }
  }
  if (in_piece > 0 || m.total_length == 0) m.pieces.push_back(h.finish());
  const wire::Bytes bytes = bt::encode_metainfo(m);
  const std::string out = a.last("-o").value_or(m.name + ".torrent");
  std::ofstream(out, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  auto back = bt::decode_metainfo(bytes);
  const auto& dm = std::get<bt::Metainfo>(back);
  share::Sha1Hasher ih;
  ih.update(bytes.data() + dm.info_begin, dm.info_end - dm.info_begin);
  fmt::print("{} {} ({} in {} pieces of {})\n", out, bt::to_hex(ih.finish()), human_bytes(m.total_length),
             m.pieces.size(), human_bytes(piece));
  return 0;
}

LoadedTorrent load(const std::string& file) {
  std::string error;
  auto l = load_torrent_file(file, error);
  if (!l) usage_error("torrent", error);
  return *l;
}

int run_torrent(const Args& a, bool seed) {
  if (a.positional.size() != 2) usage_error("torrent", std::string(seed ? "seed" : "get") + " needs one FILE.torrent");
  std::optional<bt::Magnet> magnet;
  LoadedTorrent l;
  if (a.positional[1].starts_with("magnet:")) {
    if (seed) usage_error("torrent", "seed needs the metainfo file, not a magnet link");
    magnet = bt::decode_magnet(a.positional[1]);
    if (!magnet) usage_error("torrent", "not a magnet link with an info-hash (xt=urn:btih:...): " + a.positional[1]);
    l.info_hash = magnet->info_hash;
  } else {
    l = load(a.positional[1]);
  }
  std::string root;
  if (seed) {
    const auto data = a.last("--data");
    if (!data) usage_error("torrent", "seed needs --data PATH");
    // The torrent's file (single) or directory (multi-file), under its name.
    const fs::path d = fs::path(*data).lexically_normal();
    const fs::path named = d.filename().empty() ? d.parent_path() : d;
    if (named.filename() != l.meta.name) {
      usage_error("torrent", "--data must be the torrent's " + std::string(l.meta.multi_file ? "directory" : "file") +
                                 " '" + l.meta.name + "' (got " + named.string() + ")");
    }
    root = named.parent_path().string();
    if (root.empty()) root = ".";
  } else {
    root = a.last("-o").value_or(".");
  }
  const ListenAddress listen = parse_listen(a.last("--listen").value_or("0.0.0.0:6881"), "--listen");
  std::vector<Endpoint> peers;
  for (const auto& p : a.all("--peer")) peers.push_back(parse_endpoint(p, "--peer"));
  const bool json = a.has("--json");

  TorrentConfig cfg = torrent_config();
  TorrentCore core(cfg, random_seed());
  DriverConfig dc;
  Driver driver(dc);
  driver.add_core(core);
  driver.sniff(std::string(1, '\x13') + "BitTorrent protocol", core);
  Endpoint bound;
  try {
    bound = driver.listen_tcp(listen.host, listen.port);
  } catch (const std::exception& e) {
    fmt::print(stderr, "servent torrent: {}\n", e.what());
    return 1;
  }
  core.set_listen(bound);
  try {
    core.set_udp_socket(driver.listen_udp(listen.host, 0, core).id);  // for udp:// trackers
  } catch (const std::exception& e) {
    fmt::print(stderr, "servent torrent: no UDP socket for udp:// trackers: {}\n", e.what());
  }
  const std::size_t t =
      magnet ? core.add_magnet(*magnet, root, driver.now()) : core.add_torrent(l.meta, l.info_hash, root, l.info);
  for (const auto& url : a.all("--tracker")) core.add_tracker(t, url);
  fmt::print(stderr, "servent torrent: {} {} listening {}\n", seed ? "seeding" : "getting", bt::to_hex(l.info_hash),
             bound.to_string());
  for (const auto& p : peers) core.add_peer(t, p, driver.now());
  // Peers from the DHT: nodes that published this info-hash.
  std::optional<DhtSourceLookup> dht_peers;
  if (const auto dl = dht_lookup_options(a); dl.via && !seed) {
    try {
      dht_peers.emplace(driver, dl.overlay, dl.options, *dl.via);
    } catch (const std::exception& e) {
      fmt::print(stderr, "servent torrent: --dht: {}\n", e.what());
      return 1;
    }
    dht_peers->find("urn:btih:" + bt::to_hex(l.info_hash), "bt", [&](Endpoint ep) {
      if (!json) fmt::print(stderr, "servent torrent: peer from the DHT: {}\n", ep.to_string());
      core.add_peer(t, ep, driver.now());
    });
  }
  bool checked = false, had_metadata = !magnet;
  Instant give_up{};
  std::function<void()> leave = [&] {
    if (!core.announcing() || driver.now() >= give_up) {
      driver.stop();
      return;
    }
    driver.after(20ms, leave);
  };
  int rc = 0;
  bool finished = false;
  std::function<void()> tick;
  Instant last_at = driver.now();
  std::uint64_t last_have = 0;
  double rate = 0;
  auto show = [&](const TorrentCore::TorrentInfo& info) {
    if (json) {
      fmt::print("{{\"metadata\":true,\"have\":{},\"pieces\":{},\"bytes\":{},\"peers\":{},\"uploaded\":{}}}\n", info.have,
                 info.pieces, info.downloaded, info.peers, info.uploaded);
      std::fflush(stdout);
    } else if (!seed) {
      // As `servent get`: a bar, how much, the rate since the last line, time left.
      const Instant at = driver.now();
      const double secs = std::chrono::duration<double>(at - last_at).count();
      if (secs >= 0.5) {
        rate = static_cast<double>(info.have_bytes - std::min(info.have_bytes, last_have)) / secs;
        last_at = at;
        last_have = info.have_bytes;
      }
      const double frac = info.size ? static_cast<double>(info.have_bytes) / static_cast<double>(info.size) : 0;
      const double left = rate > 0 ? static_cast<double>(info.size - info.have_bytes) / rate : -1;
      fmt::print(stderr, "\r[{}] {:3.0f}% {} of {}  {}/s  ETA {}  {} peer{}   ", bar(frac, 30), frac * 100,
                 human_bytes(info.have_bytes), human_bytes(info.size), human_bytes(static_cast<std::uint64_t>(rate)),
                 eta(left), info.peers, info.peers == 1 ? "" : "s");
    }
  };
  // Complete: said at once (not at the next tick), then the trackers hear
  // that we leave (bounded: two seconds at most).
  if (!seed) {
    driver.add_pump_hook([&] {
      if (finished || !core.complete(t)) return false;
      finished = true;
      show(core.torrents()[t]);
      if (!json) fmt::print(stderr, "\nservent torrent: complete\n");
      core.announce_stopped(driver.now());
      give_up = driver.now() + 2s;
      leave();
      return true;
    });
  }
  tick = [&] {
    if (finished) return;
    const auto info = core.torrents()[t];
    if (info.metadata && !had_metadata) {
      had_metadata = true;
      if (!json) {
        fmt::print(stderr, "\rservent torrent: metadata for {} ({} pieces) from peers{:20}\n", info.name, info.pieces, "");
      }
    }
    if (!info.metadata) {
      if (json) {
        fmt::print("{{\"metadata\":false,\"peers\":{}}}\n", info.peers);
        std::fflush(stdout);
      } else {
        fmt::print(stderr, "\rfetching the metadata, {} peers   ", info.peers);
      }
      driver.after(1s, tick);
      return;
    }
    if (!info.checking && !checked) {
      checked = true;
      if (seed && info.have < info.pieces) {
        fmt::print(stderr, "servent torrent: only {} of {} pieces in {} match the torrent\n", info.have, info.pieces, root);
      }
    }
    show(info);
    driver.after(1s, tick);
  };
  driver.after(200ms, tick);
  driver.run();
  print_counters("torrent", core.counters());
  return rc;
}

}  // namespace

std::optional<LoadedTorrent> load_torrent_file(const std::string& file, std::string& error) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = "cannot read " + file;
    return std::nullopt;
  }
  const std::string text{std::istreambuf_iterator<char>(in), {}};
  auto r = bt::decode_metainfo(wire::as_bytes(text));
  if (auto* e = std::get_if<bt::MetainfoError>(&r)) {
    error = file + ": " + e->what;
    return std::nullopt;
  }
  LoadedTorrent l{std::get<bt::Metainfo>(r), {}, {}};
  share::Sha1Hasher h;
  h.update(text.data() + l.meta.info_begin, l.meta.info_end - l.meta.info_begin);
  l.info_hash = h.finish();
  l.info.assign(text.begin() + static_cast<std::ptrdiff_t>(l.meta.info_begin),
                text.begin() + static_cast<std::ptrdiff_t>(l.meta.info_end));
  return l;
}

TorrentConfig torrent_config() {
  TorrentConfig c;
  const std::string prefix = "-SV0100-";
  std::copy(prefix.begin(), prefix.end(), c.peer_id.begin());
  Rng rng(random_seed());
  static const char* kChars = "0123456789abcdefghijklmnopqrstuvwxyz";
  for (std::size_t i = prefix.size(); i < c.peer_id.size(); ++i) c.peer_id[i] = static_cast<std::uint8_t>(kChars[rng.below(36)]);
  return c;
}

std::vector<std::string> TorrentDir::scan() {
  std::vector<std::string> said;
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().extension() == ".torrent" && e.is_regular_file(ec)) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    if (!seen_.insert(f.string()).second) continue;
    std::string error;
    auto l = load_torrent_file(f.string(), error);
    if (!l) {
      said.push_back("torrent: skipped " + error);
      continue;
    }
    if (core_.has_info_hash(l->info_hash)) continue;  // the same torrent under another file name
    core_.add_torrent(l->meta, l->info_hash, dir_, l->info);
    said.push_back(fmt::format("torrent: {} {} ({}, {} pieces) from {}", bt::to_hex(l->info_hash), l->meta.name,
                               human_bytes(l->meta.total_length), l->meta.piece_count(), f.filename().string()));
  }
  return said;
}

namespace {

int list_torrents(const Args& a) {
  NodeClient node(a.last("--node").value_or(default_state_dir()));
  if (!node.ok()) {
    fmt::print(stderr, "servent torrent: no running node answers at {} (start 'servent run --torrent-dir DIR')\n",
               node.path());
    return 1;
  }
  auto r = node.call({{"cmd", "torrents"}}, std::chrono::seconds(5));
  if (!r || !r->value("ok", false)) {
    fmt::print(stderr, "servent torrent: the node refused: {}\n", r ? r->value("error", "?") : "no answer");
    return 1;
  }
  const auto list = r->value("torrents", nlohmann::json::array());
  if (a.has("--json")) {
    for (const auto& t : list) fmt::print("{}\n", t.dump());
    return 0;
  }
  if (list.empty()) fmt::print("no torrents (servent run --torrent-dir DIR seeds every *.torrent there)\n");
  for (const auto& t : list) {
    const auto size = t.value("size", std::uint64_t{0}), have = t.value("have_bytes", std::uint64_t{0});
    const auto down = t.value("downloaded", std::uint64_t{0}), up = t.value("uploaded", std::uint64_t{0});
    const double ratio = static_cast<double>(up) / static_cast<double>(std::max<std::uint64_t>(1, down ? down : size));
    fmt::print("{} {}  {}  {:.1f}% of {}  down {}/s up {}/s  ratio {:.2f}  {} peers\n", t.value("info_hash", ""),
               t.value("name", ""), t.value("state", ""), size ? 100.0 * static_cast<double>(have) / static_cast<double>(size) : 0.0,
               human_bytes(size), human_bytes(t.value("down_rate", std::uint64_t{0})),
               human_bytes(t.value("up_rate", std::uint64_t{0})), ratio, t.value("peers", nlohmann::json::array()).size());
    for (const auto& p : t.value("peers", nlohmann::json::array())) {
      std::string flags;
      const bool am_choking = p.value("am_choking", true), peer_choking = p.value("peer_choking", true);
      if (p.value("am_interested", false)) flags += peer_choking ? 'd' : 'D';
      if (p.value("peer_interested", false)) flags += am_choking ? 'u' : 'U';
      if (p.value("snubbed", false)) flags += 'S';
      flags += p.value("direction", "") == "in" ? 'I' : 'O';
      fmt::print("    {:<22} {:<5} {:>6} pieces  down {:>9}/s up {:>9}/s  {}\n", p.value("address", ""), flags,
                 p.value("pieces", 0u), human_bytes(p.value("down_rate", std::uint64_t{0})),
                 human_bytes(p.value("up_rate", std::uint64_t{0})), p.value("client", ""));
    }
  }
  return 0;
}

}  // namespace

int cmd_tracker(const std::vector<std::string>& argv) {
  OptionSpec spec{{"--listen", "--interval"}, {"--help", "-h"}};
  Args a;
  try {
    a = parse_args(argv, spec);
    if (a.has("--help") || a.has("-h")) {
      fmt::print("{}", kTorrentHelp);
      return 0;
    }
    const ListenAddress listen = parse_listen(a.last("--listen").value_or("0.0.0.0:6969"), "--listen");
    TrackerConfig cfg;
    if (auto v = a.last("--interval")) cfg.interval = static_cast<std::uint32_t>(parse_int(*v, 10, 86400, "--interval"));
    TrackerCore core(cfg, random_seed());
    DriverConfig dc;
    Driver driver(dc);
    Endpoint bound;
    try {
      bound = driver.listen_tcp(listen.host, listen.port, &core);
      core.set_udp_socket(driver.listen_udp(listen.host, bound.port, core).id);
    } catch (const std::exception& e) {
      fmt::print(stderr, "servent tracker: {}\n", e.what());
      return 1;
    }
    fmt::print(stderr, "servent tracker: listening {} (http and udp)\n", bound.to_string());
    driver.run();
    print_counters("tracker", core.counters());
    return 0;
  } catch (const UsageError& e) {
    usage_error("tracker", e.what());
  }
}

int cmd_torrent(const std::vector<std::string>& argv) {
  OptionSpec spec{{"--piece-size", "--tracker", "-o", "--data", "--listen", "--peer", "--node", "--dht", "--dht-overlay",
                   "--dht-groups"},
                  {"--private", "--json", "--help", "-h"}};

  Args a;
  try {
    a = parse_args(argv, spec);
    if (a.has("--help") || a.has("-h") || a.positional.empty()) {
      fmt::print("{}", kTorrentHelp);
      return a.positional.empty() && !a.has("--help") && !a.has("-h") ? 2 : 0;
    }
    const std::string& sub = a.positional.front();
    if (sub == "create") return create(a);
    if (sub == "seed") return run_torrent(a, true);
    if (sub == "get") return run_torrent(a, false);
    if (sub == "list") return list_torrents(a);
    usage_error("torrent", "unknown subcommand '" + sub + "'");
  } catch (const UsageError& e) {
    usage_error("torrent", e.what());
  }
}

}  // namespace sv::cli
