// `servent napster-server`: a Napster (OpenNap protocol) directory server on
// its own loop, no Gnutella.
#include <fmt/core.h>

#include "servent/cli/args.hpp"
#include "servent/cli/common.hpp"
#include "servent/cli/control_glue.hpp"
#include "servent/cli/node_client.hpp"
#include "servent/napster/napster_server.hpp"
#include "servent/uv/driver.hpp"

namespace sv::cli {

namespace {

constexpr const char* kNapsterServerHelp = R"(usage: servent napster-server [--listen HOST:PORT] [--max-users N] [--max-shares-per-user N]
                              [--max-results N] [--search-rate N] [--max-payload N] [--max-per-ip N]
                              [--motd TEXT]...

A Napster directory server (the OpenNap protocol of napster.txt): Napster
clients (TekNap, nap, lopster, `servent run --napster`) log in, share their
file lists, search and browse them, and are put in touch with each other for
transfers, which run peer to peer. Nicks are registered on first login (kept
while the server runs). Runs until SIGINT or SIGTERM, then prints its counters.

options:
  --listen HOST:PORT        where clients connect (default 0.0.0.0:8888)
  --max-users N             users logged in at once (default 100000)
  --max-shares-per-user N   files one user may share (default 10000; more are
                            refused and counted)
  --max-results N           results per search, whatever the client asks
                            (default 100)
  --search-rate N           searches per second one client may send, with bursts
                            of 5N (default 10; 0 for no limit)
  --max-payload N           largest message payload accepted (default 2048, as
                            opennap-ng; a bigger message drops the client)
  --max-per-ip N            connections accepted from one address (default 64)
  --motd TEXT               a line of the message of the day (repeatable)
)";

constexpr const char* kBrowseHelp = R"(usage: servent browse NICK [--node STATE_DIR] [--timeout SECONDS] [--json]

Lists the files a Napster user shares (211 -> 212... 213), through the running
node that is logged in to that user's server (servent run --napster), one per
line, or one JSON object per file with --json (the same fields as a Napster
search result, so a line can be given to 'servent get').
)";

}  // namespace

int cmd_browse(const std::vector<std::string>& argv) {
  OptionSpec spec{{"--node", "--timeout"}, {"--json", "--help", "-h"}};
  Args a;
  Duration timeout = 10s;
  try {
    a = parse_args(argv, spec);
    if (a.has("--help") || a.has("-h")) {
      fmt::print("{}", kBrowseHelp);
      return 0;
    }
    if (a.positional.size() != 1) throw UsageError("one NICK");
    if (auto t = a.last("--timeout")) timeout = parse_duration(*t, "--timeout");
  } catch (const UsageError& e) {
    usage_error("browse", e.what());
  }
  const std::string nick = a.positional.front();
  const bool json = a.has("--json");
  NodeClient node(a.last("--node").value_or(default_state_dir()));
  if (!node.ok()) {
    fmt::print(stderr, "servent browse: no running node answers at {} (start 'servent run --napster HOST:PORT')\n",
               node.path());
    return 1;
  }
  std::size_t files = 0;
  bool done = false;
  auto on_event = [&](const nlohmann::json& ev) {
    if (ev.value("nick", "") != nick) return;
    if (ev.value("event", "") == "browse-end") {
      done = true;
      return;
    }
    if (ev.value("event", "") != "browse-result") return;
    nlohmann::ordered_json hit;
    for (const char* k : {"network", "nick", "name", "path", "size", "bitrate", "freq", "length"}) {
      if (ev.contains(k)) hit[k] = ev[k];
    }
    hit["host"] = "";
    print_hit(hit, json);
    ++files;
  };
  auto r = node.call({{"cmd", "browse"}, {"nick", nick}}, 5s, on_event);
  if (!r || !r->value("ok", false)) {
    fmt::print(stderr, "servent browse: the node refused: {}\n", r ? r->value("error", "?") : "no answer");
    return 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto ev = node.next(left);
    if (!ev) break;
    on_event(*ev);
  }
  if (!json) fmt::print(stderr, "servent browse: {} file{}{}\n", files, files == 1 ? "" : "s", done ? "" : " (timed out)");
  return done ? 0 : 1;
}

int cmd_napster_server(const std::vector<std::string>& argv) {
  OptionSpec spec{{"--listen", "--max-users", "--max-shares-per-user", "--max-results", "--search-rate", "--max-payload",
                   "--max-per-ip", "--motd"},
                  {"--help", "-h"}};
  Args a;
  NapsterServerConfig cfg;
  DriverConfig drcfg;
  drcfg.max_per_ip = 64;
  ListenAddress listen{"0.0.0.0", 8888};
  try {
    a = parse_args(argv, spec);
    if (a.has("--help") || a.has("-h")) {
      fmt::print("{}", kNapsterServerHelp);
      return 0;
    }
    if (!a.positional.empty()) throw UsageError("unexpected argument '" + a.positional.front() + "'");
    if (auto v = a.last("--listen")) listen = parse_listen(*v, "--listen");
    if (auto v = a.last("--max-users")) cfg.max_users = static_cast<std::size_t>(parse_int(*v, 1, 10'000'000, "--max-users"));
    if (auto v = a.last("--max-shares-per-user")) {
      cfg.max_shares_per_user = static_cast<std::size_t>(parse_int(*v, 0, 10'000'000, "--max-shares-per-user"));
    }
    if (auto v = a.last("--max-results")) cfg.max_results = static_cast<std::uint32_t>(parse_int(*v, 1, 100000, "--max-results"));
    if (auto v = a.last("--search-rate")) {
      cfg.search_rate = static_cast<double>(parse_int(*v, 0, 10'000'000, "--search-rate"));
      cfg.search_burst = 5 * cfg.search_rate;
    }
    if (auto v = a.last("--max-payload")) cfg.max_payload = static_cast<std::size_t>(parse_int(*v, 64, 65535, "--max-payload"));
    if (auto v = a.last("--max-per-ip")) drcfg.max_per_ip = static_cast<std::size_t>(parse_int(*v, 1, 10'000'000, "--max-per-ip"));
    if (a.has("--motd")) cfg.motd = a.all("--motd");
  } catch (const UsageError& e) {
    usage_error("napster-server", e.what());
  }
  raise_fd_limit();
  drcfg.max_connections = cfg.max_users + 256;

  NapsterServer server(cfg);
  Driver driver(drcfg);
  Endpoint bound;
  try {
    bound = driver.listen_tcp(listen.host, listen.port, &server);
  } catch (const std::exception& e) {
    fmt::print(stderr, "servent napster-server: {}\n", e.what());
    return 1;
  }
  fmt::print("servent napster-server: listening on {}:{} (OpenNap protocol), up to {} users\n", listen.host, bound.port,
             cfg.max_users);
  std::fflush(stdout);
  const int rc = driver.run();
  print_counters("napster", server.counters());
  print_counters("driver", driver.counters());
  fmt::print("servent napster-server: stopped{}\n", rc == 0 ? "" : " (loop not fully closed)");
  return rc == 0 ? 0 : 1;
}

}  // namespace sv::cli
