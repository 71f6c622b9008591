// servent: the command-line front end. See README.md for the commands.
#include <sys/resource.h>
#include <fmt/core.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <random>

#include "http/text.hpp"
#include "servent/cli/args.hpp"
#include "servent/cli/common.hpp"
#include "servent/cli/control_glue.hpp"
#include "servent/cli/node_client.hpp"
#include "servent/pcap/pcap_tool.hpp"
#include "servent/control/control_core.hpp"
#include "servent/download/download_core.hpp"
#include "servent/gnutella/gnutella_core.hpp"
#include "servent/napster/napster_client.hpp"
#include "servent/napster/napster_server.hpp"
#include "servent/upload/upload_core.hpp"
#include "servent/cli/torrent_dir.hpp"
#include "servent/cli/dht_glue.hpp"
#include "share/sha1.hpp"
#include "wire/bt/tracker.hpp"
#include "servent/dht/overlays.hpp"
#include "servent/uv/driver.hpp"
#include "wire/gnutella/huge.hpp"

namespace fs = std::filesystem;
using namespace sv;
using namespace sv::cli;

namespace {

constexpr const char* kVersion = "0.1.0";

constexpr const char* kMainHelp = R"(usage: servent COMMAND [OPTIONS]

A Gnutella 0.4/0.6 servent (a leaf or an ultrapeer, by default the role
it elects itself to); also a Napster (OpenNap protocol) server and client,
a BitTorrent client and seeder, and a DHT node (Chord, Kelips or Pastry).

commands:
  run      share folders and take part in the network (the main job)
  search   send a query through a peer and print the hits as they arrive
  get      download a file: a URL, a magnet link or a hit printed by search
  tui      search, download and watch the node from a terminal UI
  pcap     decode a capture, or check it for spec violations
  napster-server
           run a Napster (OpenNap protocol) directory server alone
  browse   list a Napster user's files (through the running node)
  peers    the running node's connections: role, reputation, QRP table
  torrent  create a .torrent, seed one, or get one
  tracker  a BitTorrent tracker (HTTP and UDP)
  dht      run a DHT node (Chord, Kelips, Pastry), or put / get / look up keys

Run 'servent COMMAND --help' for the options of a command.
)";

constexpr const char* kRunHelp = R"(usage: servent run [--share DIR]... [--listen HOST:PORT] [--connect HOST:PORT]...
                   [--state-dir DIR] [--mode leaf|ultrapeer|auto] [--max-leaves N]
                   [--max-ultrapeers N] [--max-ttl N] [--max-connections N]
                   [--upload-slots N] [--advertise HOST:PORT] [--user-agent TEXT] [--firewalled]
                   [--min-peers N] [--max-per-ip N] [--query-rate N] [--route-table N] [--no-deflate]
                   [--napster-server HOST:PORT] [--napster HOST:PORT] [--napster-nick NICK]
                   [--napster-password PW] [--napster-data-port N] [--torrent-dir DIR]
                   [--dht chord|kelips|pastry] [--dht-join HOST:PORT] [--dht-groups K]

Shares the given folders (default ~/Shared, created if missing) over Gnutella,
accepts connections on --listen (default 0.0.0.0:6346), keeps connections to
every --connect peer (reconnecting with backoff), and serves files over HTTP on
the same port. Runs until SIGINT or SIGTERM.

options:
  --share DIR           a folder to share (repeatable)
  --listen HOST:PORT    where to accept connections (port 0 picks a free port)
  --connect HOST:PORT   a peer to stay connected to (repeatable)
  --state-dir DIR       state (file indices, ...); default $XDG_STATE_HOME/servent
                        or ~/.local/state/servent
  --mode MODE           leaf: keep 3 ultrapeers, relay nothing, send them our
                        QRP table; ultrapeer: hold leaves (routing queries to
                        them by their QRP tables) and ultrapeer neighbours;
                        auto (default): start as a leaf, become an ultrapeer
                        when leaves need one and we are reachable
  --max-leaves N        leaves an ultrapeer holds (default 30)
  --max-ultrapeers N    ultrapeer links an ultrapeer holds (default 32)
  --max-ttl N           TTL+Hops cap for relayed descriptors (default 7)
  --max-connections N   Gnutella connections of every kind (default 64)
  --upload-slots N      concurrent uploads (default 4)
  --advertise HOST:PORT the address put in Pongs and QueryHits (default: the
                        listening address, or the local address peers reach)
  --user-agent TEXT     the User-Agent sent in handshakes
  --min-peers N         keep at least N connections, dialling hosts from the host
                        cache (learned from Pongs, Listen-IP and X-Try; saved in
                        the state directory); default 4, 0 to dial only --connect
  --max-per-ip N        inbound connections accepted from one address (default
                        16; Gnutella and HTTP together)
  --query-rate N        queries accepted per second from one connection, with
                        bursts of 4N (default 50); the rest are dropped, counted
  --route-table N       entries in each routing table (duplicate detection and
                        reply routes; default 200000, 10 minutes each)
  --no-deflate          neither offer nor accept deflate link compression (plain
                        links, e.g. for Wireshark, whose dissector cannot inflate)
  --firewalled          accept no connections (no listener): hits carry the push
                        flag and uploads go out over connections we open in
                        answer to Pushes (GIV)
  --napster-server HOST:PORT
                        also run a Napster (OpenNap protocol) directory server
                        on this address, on the same loop
  --napster HOST:PORT   also log in to this Napster server and share the same
                        folders there; searches go to both networks
  --napster-nick NICK   the nick there (default: made up once, kept with the
                        password in STATE/napster-login)
  --napster-password PW
  --napster-data-port N where Napster peers fetch our files (default 6699; 0,
                        or --firewalled, for none: uploads then go out by SEND)
  --torrent-dir DIR     also run BitTorrent on the same port: every *.torrent
                        in DIR (looked for again every 10 s) is seeded from,
                        or fetched into, DIR (the data next to its metainfo
                        file, under the torrent's name); udp:// trackers are
                        announced to from a UDP socket on the listening host
  --dht OVERLAY         also run a DHT node, chord, kelips or pastry (as
                        `servent dht run --overlay`) on UDP, on the same
                        port number as --listen
  --dht-join HOST:PORT  the DHT node to join through (without it, the first
                        node of an overlay that others may join)
  --dht-groups K        Kelips: affinity groups, the same at every node
                        (default 8)
)";

constexpr const char* kSearchHelp = R"(usage: servent search QUERY [--connect HOST:PORT | --node STATE_DIR] [--ttl N] [--timeout SECONDS]
                      [--json] [--no-deflate]

Sends the query and prints each hit as it arrives, until the timeout (default
10s): through the running node (its control socket in STATE_DIR, by default
$XDG_STATE_HOME/servent), or with --connect as a short-lived node joining the
network through the given peer(s). QUERY may be a urn:sha1:... .

Through a node, the same search again within 28 minutes is not sent again to
the peers that carried it (gtk-gnutella ultrapeers drop a leaf's identical
query for that long): the node prints the results the first one found,
marked "earlier": true in --json, and says when a full re-query is possible.

options:
  --connect HOST:PORT   a peer to join through (repeatable)
  --node STATE_DIR      the running node to ask (default: the default state dir)
  --ttl N               query TTL, 1..7 (default 7)
  --timeout SECONDS     how long to wait for hits: 10, 10s, 500ms (default 10s)
  --json                one JSON object per hit and line, with the keys host,
                        port, index, name, size, servent_id, speed (and urn,
                        push, earlier when known)
  --no-deflate          a plain link (no deflate compression)
)";

int cmd_run(const std::vector<std::string>& argv) {
  raise_fd_limit();  // a node with many peers needs many descriptors
  OptionSpec spec{{"--share", "--listen", "--connect", "--state-dir", "--mode", "--max-leaves", "--max-ultrapeers",
                   "--max-ttl", "--max-connections",
                   "--upload-slots", "--advertise", "--user-agent", "--min-peers", "--max-per-ip", "--query-rate", "--route-table",
                   "--napster-server", "--napster", "--napster-nick", "--napster-password", "--napster-data-port",
                   "--torrent-dir", "--dht", "--dht-join", "--dht-groups"},
                  {"--help", "-h", "--firewalled", "--no-deflate"}};
  Args a;
  try {
    a = parse_args(argv, spec);
    if (a.has("--help") || a.has("-h")) {
      fmt::print("{}", kRunHelp);
      return 0;
    }
    if (!a.positional.empty()) throw UsageError("unexpected argument '" + a.positional.front() + "'");
  } catch (const UsageError& e) {
    usage_error("run", e.what());
  }

  GnutellaConfig gcfg;
  UploadConfig ucfg;
  DriverConfig drcfg;
  std::string listen_host = "0.0.0.0";
  std::uint16_t listen_port = 6346;
  std::vector<Endpoint> peers;
  std::optional<Endpoint> dht_join;  // --dht-join
  dht::DhtOptions dht_options;
  std::optional<Endpoint> advertise;
  std::optional<ListenAddress> napster_server_at;
  std::optional<Endpoint> napster_at;
  std::uint16_t napster_data_port = 6699;
  try {
    if (auto v = a.last("--napster-server")) napster_server_at = parse_listen(*v, "--napster-server");
    if (auto v = a.last("--napster")) napster_at = parse_endpoint(*v, "--napster");
    if (auto v = a.last("--napster-data-port")) {
      napster_data_port = static_cast<std::uint16_t>(parse_int(*v, 0, 65535, "--napster-data-port"));
    }
    if (auto v = a.last("--napster-nick")) {
      if (v->empty() || v->size() > 32 || v->find_first_of(" \"") != std::string::npos) {
        throw UsageError("--napster-nick: 1 to 32 characters, no space or quote");
      }
    }
    if (auto l = a.last("--listen")) {
      const auto la = parse_listen(*l, "--listen");
      listen_host = la.host;
      listen_port = la.port;
    }
    for (const auto& c : a.all("--connect")) peers.push_back(parse_endpoint(c, "--connect"));
    if (auto v = a.last("--mode")) {
      if (*v == "leaf") {
        gcfg.mode = NodeMode::Leaf;
      } else if (*v == "ultrapeer") {
        gcfg.mode = NodeMode::Ultrapeer;
      } else if (*v == "auto") {
        gcfg.mode = NodeMode::Auto;
      } else {
        throw UsageError("--mode: leaf, ultrapeer or auto");
      }
    }
    if (auto v = a.last("--max-leaves")) gcfg.max_leaves = static_cast<std::size_t>(parse_int(*v, 0, 10000, "--max-leaves"));
    if (auto v = a.last("--max-ultrapeers")) {
      gcfg.max_ultrapeers = static_cast<std::size_t>(parse_int(*v, 0, 10000, "--max-ultrapeers"));
    }
    if (auto v = a.last("--max-ttl")) gcfg.max_ttl = static_cast<std::uint8_t>(parse_int(*v, 1, 255, "--max-ttl"));
    if (auto v = a.last("--max-connections")) {
      gcfg.max_connections = static_cast<std::size_t>(parse_int(*v, 1, 100000, "--max-connections"));
    }
    if (auto v = a.last("--upload-slots")) {
      ucfg.slots = static_cast<std::size_t>(parse_int(*v, 0, 10000, "--upload-slots"));
    }
    if (auto v = a.last("--route-table")) {
      gcfg.route_capacity = static_cast<std::size_t>(parse_int(*v, 1000, 100'000'000, "--route-table"));
    }
    if (auto v = a.last("--max-per-ip")) drcfg.max_per_ip = static_cast<std::size_t>(parse_int(*v, 1, 100000, "--max-per-ip"));
    if (auto v = a.last("--query-rate")) {
      gcfg.query_rate = static_cast<double>(parse_int(*v, 1, 1000000, "--query-rate"));
      gcfg.query_burst = 4 * gcfg.query_rate;
    }
    if (auto v = a.last("--advertise")) advertise = parse_endpoint(*v, "--advertise");
    if (auto v = a.last("--dht")) {
      const auto names = dht::overlay_names();
      if (std::find(names.begin(), names.end(), *v) == names.end()) {
        throw UsageError("--dht: '" + *v + "' is not available (chord, kelips and pastry are)");
      }
    }
    if (auto v = a.last("--dht-groups")) dht_options.groups = static_cast<std::uint32_t>(parse_int(*v, 1, 65536, "--dht-groups"));
    if (auto v = a.last("--dht-join")) dht_join = parse_endpoint(*v, "--dht-join");
    if (auto v = a.last("--user-agent")) gcfg.user_agent = *v;
    gcfg.min_peers = 4;
    if (auto v = a.last("--min-peers")) gcfg.min_peers = static_cast<std::size_t>(parse_int(*v, 0, 1000, "--min-peers"));
    // Sockets: every Gnutella connection, the uploads, downloads and some room.
    drcfg.max_connections = std::max<std::size_t>(1024, gcfg.max_connections + ucfg.slots + 256);
  } catch (const UsageError& e) {
    usage_error("run", e.what());
  }
  gcfg.default_ttl = gcfg.max_ttl;
  const bool firewalled = a.has("--firewalled");
  gcfg.compress = !a.has("--no-deflate");
  gcfg.firewalled = firewalled;
  ucfg.server = gcfg.user_agent;

  std::vector<std::string> shares = a.all("--share");
  if (shares.empty()) {
    std::string def = home_dir() + "/Shared";
    std::error_code ec;
    fs::create_directories(def, ec);
    if (ec) {
      fmt::print(stderr, "servent run: cannot create {}: {}\n", def, ec.message());
      return 1;
    }
    shares.push_back(def);
  }
  for (const auto& s : shares) {
    std::error_code ec;
    if (!fs::is_directory(s, ec)) {
      fmt::print(stderr, "servent run: --share {}: not a folder\n", s);
      return 1;
    }
  }
  std::string state_dir = a.last("--state-dir").value_or(default_state_dir());
  {
    std::error_code ec;
    auto abs = fs::absolute(state_dir, ec);
    if (!ec) state_dir = abs.lexically_normal().string();
  }
  {
    std::error_code ec;
    fs::create_directories(state_dir, ec);
    if (ec) {
      fmt::print(stderr, "servent run: cannot create state folder {}: {}\n", state_dir, ec.message());
      return 1;
    }
  }

  share::Library library(shares, state_dir);
  auto report = library.rescan();
  // Who we are on Napster servers: given, or made up once and kept in the
  // state directory (a nick is registered on its first login).
  std::string napster_nick, napster_password;
  if (napster_at) {
    const auto login_file = fs::path(state_dir) / "napster-login";
    std::ifstream in(login_file);
    in >> napster_nick >> napster_password;
    if (napster_nick.empty() || napster_password.empty()) {
      const std::uint64_t r = random_seed();
      napster_nick = fmt::format("servent{:05}", r % 100000);
      napster_password = fmt::format("{:016x}", r * 0x9e3779b97f4a7c15ull);
      std::ofstream out(login_file, std::ios::trunc);
      out << napster_nick << " " << napster_password << "\n";
    }
    if (auto v = a.last("--napster-nick")) napster_nick = *v;
    if (auto v = a.last("--napster-password")) napster_password = *v;
    ucfg.napster_nick = napster_nick;
  }
  GnutellaCore core(library, gcfg, random_seed());
  UploadCore upload(library, ucfg);
  // Downloads asked through the control socket.
  DownloadConfig dcfg;
  dcfg.state_dir = state_dir;
  dcfg.user_agent = gcfg.user_agent;
  if (napster_at) dcfg.napster_nick = napster_nick;
  DownloadCore downloads(dcfg);
  ControlCore control;
  // BitTorrent, when asked for: a core of its own on the same port.
  std::optional<TorrentCore> torrents;
  std::optional<TorrentDir> torrent_dir;
  if (auto v = a.last("--torrent-dir")) {
    std::error_code ec;
    fs::create_directories(*v, ec);
    if (!fs::is_directory(*v)) {
      fmt::print(stderr, "servent run: --torrent-dir: {} is not a directory\n", *v);
      return 1;
    }
    torrents.emplace(torrent_config(), random_seed());
    torrent_dir.emplace(*v, *torrents);
  }
  // A DHT node, when asked for: its own core on a UDP socket.
  std::unique_ptr<dht::DhtCore> dht_node;
  if (a.has("--dht")) dht_node = dht::make_overlay(*a.last("--dht"), dht_options, random_seed());
  // The networks on this loop: each core, and the first bytes that name it.
  Driver driver(drcfg);
  driver.sniff("GNUTELLA CONNECT", core);
  driver.sniff("GET ", upload);
  driver.sniff("HEAD ", upload);
  driver.sniff("GIV ", downloads);
  if (torrents) {
    driver.add_core(*torrents);
    driver.sniff(std::string(1, '\x13') + "BitTorrent protocol", *torrents);
  }
  const std::string control_path = (fs::path(state_dir) / "control.sock").string();
  try {
    driver.listen_unix(control_path, control);
  } catch (const std::exception& e) {
    fmt::print(stderr, "servent run: {}\n", e.what());
    return 1;
  }
  // A Napster directory server next to the servent, on its own port.
  std::optional<NapsterServer> napster_server;
  Endpoint napster_bound;
  if (napster_server_at) {
    napster_server.emplace();
    try {
      napster_bound = driver.listen_tcp(napster_server_at->host, napster_server_at->port, &*napster_server);
    } catch (const std::exception& e) {
      fmt::print(stderr, "servent run: --napster-server: {}\n", e.what());
      return 1;
    }
  }
  // A Napster client: logged in to a server, sharing the same folders, its
  // transfers on our data port (a listener of its own that says "1" first).
  std::optional<NapsterClient> napster;
  Endpoint napster_data_bound;
  if (napster_at) {
    NapsterClientConfig ncfg;
    ncfg.server = *napster_at;
    ncfg.nick = napster_nick;
    ncfg.password = napster_password;
    ncfg.client = fmt::format("servent {}", kVersion);
    if (!firewalled && napster_data_port != 0) {
      constexpr int kNapsterData = 1;  // the data port's sniffing table
      driver.sniff("GET", upload, kNapsterData);
      driver.sniff("SEND", downloads, kNapsterData);
      try {
        napster_data_bound = driver.listen_tcp(listen_host, napster_data_port, nullptr, ListenOptions{kNapsterData, "1"});
      } catch (const std::exception& e) {
        fmt::print(stderr, "servent run: --napster-data-port: {}\n", e.what());
        return 1;
      }
      ncfg.data_port = napster_data_bound.port;
    }
    napster.emplace(library, ncfg);
    driver.add_core(*napster);
  }
  ControlGlue glue(control, core, upload, downloads, library, driver, home_dir() + "/Downloads");
  glue.set_napster(napster ? &*napster : nullptr, napster_server ? &*napster_server : nullptr);
  glue.set_torrents(torrents ? &*torrents : nullptr);
  driver.forward([&] { return control.poll_request(); }, [&](const ControlRequest& r) { glue.on_request(r); });
  // Downloads from Napster peers, told to the server as they start and end (218/219).
  std::set<std::uint64_t> napster_downloads, napster_transferring;
  driver.forward([&] { return downloads.poll_event(); }, [&](const DownloadEvent& e) {
    if (const auto* p = std::get_if<event::PushNeeded>(&e)) {
      core.send_push(p->servent, p->index, core.config().advertised, driver.now());
    }
    std::optional<std::uint64_t> ended;
    if (const auto* d = std::get_if<event::DownloadDone>(&e)) {
      ended = d->id;
      for (std::uint32_t ip : d->served_by) core.reputation().served_us(ip, driver.now());
    }
    if (const auto* f = std::get_if<event::DownloadFailed>(&e)) ended = f->id;
    if (ended && napster && napster_transferring.erase(*ended)) napster->transfer_ended(false);
    if (const auto* pr = std::get_if<event::DownloadProgress>(&e)) {
      if (napster && pr->have > 0 && napster_downloads.count(pr->id) && napster_transferring.insert(pr->id).second) {
        napster->transfer_started(false);
      }
    }
    if (const auto* n = std::get_if<event::NapsterNeeded>(&e)) {
      napster_downloads.insert(n->id);
      if (!napster || !napster->download(n->nick, n->file)) {
        downloads.napster_failed(n->nick, n->file, napster ? "not logged in to the Napster server" : "not on Napster",
                                 driver.now());
      }
    }
    glue.on_download_event(e);
  });
  if (napster) {
    driver.forward([&] { return napster->poll_event(); }, [&](const NapsterEvent& ev) {
      std::visit(
          [&](const auto& e) {
            using T = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, napster_event::LoggedIn>) {
              fmt::print("napster: logged in to {} as {}\n", e.server, napster->config().nick);
            } else if constexpr (std::is_same_v<T, napster_event::LoginFailed>) {
              fmt::print("napster: login refused: {}\n", e.reason);
            } else if constexpr (std::is_same_v<T, napster_event::Disconnected>) {
              fmt::print("napster: disconnected ({})\n", e.reason);
            } else if constexpr (std::is_same_v<T, napster_event::Result>) {
              glue.on_napster_result(e);
            } else if constexpr (std::is_same_v<T, napster_event::BrowseResult> ||
                                 std::is_same_v<T, napster_event::BrowseDone>) {
              glue.on_napster_browse(ev);
            } else if constexpr (std::is_same_v<T, napster_event::DownloadReady>) {
              downloads.napster_ready(e.nick, e.file, e.at, driver.now());
            } else if constexpr (std::is_same_v<T, napster_event::DownloadError>) {
              downloads.napster_failed(e.nick, e.file, e.reason, driver.now());
            } else if constexpr (std::is_same_v<T, napster_event::PushUpload>) {
              upload.napster_push(e.file, e.to, driver.now());
            } else if constexpr (std::is_same_v<T, napster_event::ServerMessage>) {
              fmt::print("napster: server says: {}\n", json_string(e.text));
            }
          },
          ev);
      std::fflush(stdout);
    });
  }
  Endpoint bound;
  if (!firewalled) {
    try {
      bound = driver.listen_tcp(listen_host, listen_port);
    } catch (const std::exception& e) {
      fmt::print(stderr, "servent run: {}\n", e.what());
      return 1;
    }
  }
  if (advertise) {
    core.set_advertised(*advertise);
  } else {
    core.set_advertised(Endpoint{bound.ip, bound.port});
  }
  for (const auto& p : peers) core.add_peer(p, driver.now());
  // BitTorrent peers reach us on the same port (sniffed); trackers hear it.
  std::function<void()> scan_torrents;
  if (torrents) {
    if (!firewalled) torrents->set_listen(advertise ? *advertise : Endpoint{bound.ip, bound.port});
    try {
      torrents->set_udp_socket(driver.listen_udp(listen_host, 0, *torrents).id);  // for udp:// trackers
    } catch (const std::exception& e) {
      fmt::print(stderr, "servent run: no UDP socket for udp:// trackers: {}\n", e.what());
    }
    scan_torrents = [&] {
      for (const auto& line : torrent_dir->scan()) fmt::print("{}\n", line);
      std::fflush(stdout);
      driver.after(10s, scan_torrents);
    };
    scan_torrents();
  }
  if (dht_node) {
    try {
      const auto sock = driver.listen_udp(listen_host, bound.port, *dht_node);
      dht_node->bind(sock.id, sock.bound);
      dht_node->join(dht_join, driver.now());
      fmt::print("dht {} node {} on udp {}{}\n", dht_node->overlay(), dht::short_id(dht_node->self().id), sock.bound.to_string(),
                 dht_join ? ", joining through " + dht_join->to_string() : "");
      std::fflush(stdout);
    } catch (const std::exception& e) {
      fmt::print(stderr, "servent run: --dht: {}\n", e.what());
      return 1;
    }
  }
  // Where our files can be had, published in the DHT by their identity.
  std::optional<DhtOps> dht_ops;
  std::optional<DhtPublisher> publisher;
  if (dht_node) {
    dht_ops.emplace(driver, *dht_node);
    glue.set_dht(&*dht_ops);
    const Endpoint at = core.config().advertised;
    if (at.ip == 0 || firewalled) {
      fmt::print("dht: not publishing sources ({}: give --advertise HOST:PORT)\n",
                 firewalled ? "firewalled" : "listening on every address, none to name");
    } else {
      publisher.emplace(driver, *dht_ops, [&library, &torrents, at] {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto* f : library.all()) {
          if (f->sha1) out.emplace_back(share::sha1_urn(*f->sha1), dht_source_value("gnutella", at));
        }
        if (torrents) {
          for (const auto& t : torrents->torrents()) {
            if (t.metadata) out.emplace_back("urn:btih:" + wire::bt::to_hex(t.info_hash), dht_source_value("bt", at));
          }
        }
        return out;
      });
    }
  }
  const auto hosts_file = fs::path(state_dir) / "hosts";
  {
    std::ifstream in(hosts_file);
    std::stringstream ss;
    ss << in.rdbuf();
    core.host_cache().load(ss.str());
  }
  // Reputation: what this node saw of its peers, across restarts.
  const auto reputation_file = fs::path(state_dir) / "reputation";
  {
    std::ifstream in(reputation_file);
    std::stringstream ss;
    ss << in.rdbuf();
    core.reputation().load(ss.str());
  }

  // urn:sha1 for files not in the cache: hashed on the thread pool, one job
  // per file, so the servent answers (by name) while it hashes.
  glue.hash_in_pool(library.take_hash_jobs(), [](std::size_t total) {
    if (total == 0) return;
    fmt::print("hashed {} file{}\n", total, total == 1 ? "" : "s");
    std::fflush(stdout);
  });

  driver.forward([&] { return upload.poll_completed(); },
                 [&](std::uint32_t ip) { core.reputation().we_served(ip, driver.now()); });
  driver.forward([&] { return core.poll_event(); }, [&](const Event& ev) {
    std::visit(
        [&](const auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, event::PeerUp>) {
            std::string agent;
            if (!e.user_agent.empty()) agent = fmt::format(" {}", json_string(e.user_agent));
            fmt::print("peer up {} {} 0.{}{}\n", e.remote.to_string(), e.dir == Direction::Inbound ? "in" : "out",
                       e.version_minor, agent);
          } else if constexpr (std::is_same_v<T, event::PeerDown>) {
            fmt::print("peer down {} ({})\n", e.remote.to_string(), to_string(e.reason));
          } else if constexpr (std::is_same_v<T, event::Hit>) {
            glue.on_hit(e);
          } else if constexpr (std::is_same_v<T, event::RoleChanged>) {
            fmt::print("role {}\n", to_string(e.role));
          } else if constexpr (std::is_same_v<T, event::PushRequest>) {
            // Someone wants a file from us and cannot connect: we connect.
            upload.handle_push(e.push.file_index, Endpoint{e.push.ip, e.push.port}, core.servent_id(), driver.now());
            fmt::print("push for file {} from {}\n", e.push.file_index, Endpoint{e.push.ip, e.push.port}.to_string());
          }
        },
        ev);
    std::fflush(stdout);
  });

  std::string roots;
  for (const auto& r : library.roots()) roots += (roots.empty() ? "" : ", ") + r;
  const std::string where =
      firewalled ? std::string("firewalled (not listening; uploads by push)") : fmt::format("listening on {}:{}", listen_host, bound.port);
  std::string also;
  if (napster_server) also += fmt::format("; Napster server on {}:{}", napster_server_at->host, napster_bound.port);
  if (napster) {
    also += fmt::format("; Napster client of {} as {} ({})", napster_at->to_string(), napster_nick,
                        napster_data_bound.port ? fmt::format("data port {}", napster_data_bound.port)
                                                : std::string("firewalled"));
  }
  fmt::print("servent {}: Gnutella {}, sharing {} file{} ({}) from {}{}; state in {}; control socket {}\n", kVersion, where,
             report.files, report.files == 1 ? "" : "s", human_bytes(report.bytes), roots, also, state_dir, control_path);
  std::fflush(stdout);
  if (napster) napster->start(driver.now());
  int rc = driver.run();
  library.save_hash_cache();
  {
    std::ofstream out(hosts_file.string() + ".tmp", std::ios::trunc);
    out << core.host_cache().to_text();
    out.close();
    std::error_code ec;
    fs::rename(hosts_file.string() + ".tmp", hosts_file, ec);
  }
  {
    std::ofstream out(reputation_file.string() + ".tmp", std::ios::trunc);
    out << core.reputation().save();
    out.close();
    std::error_code ec;
    fs::rename(reputation_file.string() + ".tmp", reputation_file, ec);
  }
  print_counters("gnutella", core.counters());
  print_counters("http", upload.counters());
  print_counters("driver", driver.counters());
  print_counters("downloads", downloads.counters());
  print_counters("control", control.counters());
  if (napster_server) print_counters("napster-server", napster_server->counters());
  if (napster) print_counters("napster", napster->counters());
  if (dht_node) {
    print_counters("dht", dht_node->counters());
    if (publisher) fmt::print("dht: {} sources published, {} failed\n", publisher->published(), publisher->failed());
  }
  fmt::print("servent: stopped{}\n", rc == 0 ? "" : " (loop not fully closed)");
  return rc == 0 ? 0 : 1;
}

int cmd_search(const std::vector<std::string>& argv) {
  OptionSpec spec{{"--connect", "--ttl", "--timeout", "--node"}, {"--json", "--help", "-h", "--no-deflate"}};
  Args a;
  std::vector<Endpoint> peers;
  Search s;
  Duration timeout = 10s;
  try {
    a = parse_args(argv, spec);
    if (a.has("--help") || a.has("-h")) {
      fmt::print("{}", kSearchHelp);
      return 0;
    }
    if (a.positional.empty()) throw UsageError("missing QUERY");
    for (const auto& p : a.positional) s.criteria += (s.criteria.empty() ? "" : " ") + p;
    for (const auto& c : a.all("--connect")) peers.push_back(parse_endpoint(c, "--connect"));
    if (auto v = a.last("--ttl")) s.ttl = static_cast<std::uint8_t>(parse_int(*v, 1, 7, "--ttl"));
    if (auto v = a.last("--timeout")) timeout = parse_duration(*v, "--timeout");
    if (!peers.empty() && a.has("--node")) throw UsageError("--connect and --node exclude each other");
  } catch (const UsageError& e) {
    usage_error("search", e.what());
  }
  const bool json = a.has("--json");
  if (peers.empty()) {
    // Through the running node's control socket.
    NodeClient node(a.last("--node").value_or(default_state_dir()));
    if (!node.ok()) {
      fmt::print(stderr, "servent search: no running node answers at {} (start 'servent run', or give --connect HOST:PORT)\n",
                 node.path());
      return 1;
    }
    std::size_t hits = 0;
    auto on_event = [&](const nlohmann::json& ev) {
      if (ev.value("event", "") != "result") return;
      nlohmann::ordered_json hit;
      for (const char* k : {"network", "host", "port", "nick", "index", "name", "path", "size", "servent_id", "speed",
                            "urn", "push", "bitrate", "freq", "length", "link", "earlier"}) {
        if (ev.contains(k)) hit[k] = ev[k];
      }
      print_hit(hit, json);
      ++hits;
    };
    auto r = node.call({{"cmd", "search"}, {"query", s.criteria}, {"ttl", s.ttl}}, 5s, on_event);
    if (!r || !r->value("ok", false)) {
      fmt::print(stderr, "servent search: the node refused: {}\n", r ? r->value("error", "?") : "no answer");
      return 1;
    }
    const std::string id = r->value("search", "");
    if (r->value("repeat", false)) {
      // Ultrapeers drop an identical query from us for a while; the node
      // shows what the first one found instead (marked "earlier").
      const auto mins = (r->value("requery_in", std::int64_t{0}) + 59) / 60;
      fmt::print(stderr,
                 "servent search: the same search went out less than {} min ago: {} earlier result{} below; "
                 "sent again on {} link{} that had not carried it; a full re-query is possible in {} min\n",
                 std::chrono::duration_cast<std::chrono::minutes>(GnutellaConfig{}.requery_threshold).count(),
                 r->value("earlier", 0), r->value("earlier", 0) == 1 ? "" : "s",
                 r->value("links", 0), r->value("links", 0) == 1 ? "" : "s", mins);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto ev = node.next(left);
      if (!ev) break;
      if (ev->value("search", "") == id) on_event(*ev);
    }
    node.call({{"cmd", "stop-search"}, {"search", id}}, 2s);
    if (!json) fmt::print(stderr, "servent search: {} hit{}\n", hits, hits == 1 ? "" : "s");
    return 0;
  }

  share::Library empty;
  GnutellaConfig gcfg;
  gcfg.max_connections = peers.size() + 1;
  // A short-lived leaf: the given peers are its ultrapeers.
  gcfg.mode = NodeMode::Leaf;
  gcfg.leaf_ultrapeers = std::max<std::size_t>(gcfg.leaf_ultrapeers, peers.size());
  gcfg.compress = !a.has("--no-deflate");
  GnutellaCore core(empty, gcfg, random_seed());
  Driver driver;
  driver.add_core(core);
  for (const auto& p : peers) core.add_peer(p, driver.now());
  bool searched = false;
  std::size_t hits = 0;
  driver.forward([&] { return core.poll_event(); }, [&](const Event& ev) {
    if (const auto* up = std::get_if<event::PeerUp>(&ev)) {
      (void)up;
      if (!searched) {
        searched = true;
        core.search(s, driver.now());
      }
      return;
    }
    if (const auto* h = std::get_if<event::Hit>(&ev)) {
      ++hits;
      print_hit(hit_json(*h), json);
    }
  });
  driver.after(timeout, [&] { driver.stop(); });
  driver.run();
  if (!searched) {
    fmt::print(stderr, "servent search: could not connect to any peer\n");
    return 1;
  }
  if (!json) fmt::print(stderr, "servent search: {} hit{}\n", hits, hits == 1 ? "" : "s");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    fmt::print(stderr, "{}", kMainHelp);
    return 2;
  }
  const std::string cmd = args.front();
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    fmt::print("{}", kMainHelp);
    return 0;
  }
  if (cmd == "--version") {
    fmt::print("servent {}\n", kVersion);
    return 0;
  }
  if (cmd == "run") return cmd_run(rest);
  if (cmd == "search") return cmd_search(rest);
  if (cmd == "get") return cmd_get(rest);
  if (cmd == "tui") return cmd_tui(rest);
  if (cmd == "pcap") return sv::pcap::cmd_pcap(rest);
  if (cmd == "napster-server") return cmd_napster_server(rest);
  if (cmd == "browse") return cmd_browse(rest);
  if (cmd == "peers") return cmd_peers(rest);
  if (cmd == "torrent") return cmd_torrent(rest);
  if (cmd == "tracker") return cmd_tracker(rest);
  if (cmd == "dht") return cmd_dht(rest);
  usage_error("", "unknown command '" + cmd + "'");
}
