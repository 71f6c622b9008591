// servent dht: run a DHT node, or put / get / look up keys through one.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "servent/cli/args.hpp"
#include "servent/cli/common.hpp"
#include "servent/cli/node_client.hpp"
#include "servent/dht/overlays.hpp"
#include "servent/uv/driver.hpp"

namespace sv::cli {

namespace {

using dht::NodeRef;

constexpr const char* kDhtHelp = R"(usage: servent dht run [--overlay chord|kelips|pastry] [--listen HOST:PORT]
                       [--join HOST:PORT] [--id-bits N] [--successors R]
                       [--groups K] [--homes H] [--replicas R] [--virtual V]
       servent dht put KEY VALUE [--join HOST:PORT [--overlay O]] [--lifetime DURATION]
       servent dht put - [--join HOST:PORT]      (KEY VALUE lines from stdin)
       servent dht get KEY|- [--join HOST:PORT]
       servent dht lookup KEY [--join HOST:PORT]
       servent dht status [--node STATE_DIR]

run: a node of the overlay on a UDP socket (--listen, default 0.0.0.0:4000),
joining through --join (without it, the first node). Chord keeps its ring
healthy (stabilize, fix fingers, check predecessor) and stores the keys it
owns with copies on its successors; Kelips gossips its affinity group's
view and file tuples and stores the values of its group's keys on several
homes; Pastry keeps its leaf set, a routing table of entries chosen by
measured round trip and a neighbourhood set, and stores the keys it is
numerically closest to with copies on its nearest leaves. Its state and
counters are printed on SIGINT.

Without --join, put / get / lookup go through the DHT node of the running
`servent run --dht` (its control socket in the default state directory, or
--node STATE_DIR), and status prints that node's place in the overlay: its
summary, then every node it keeps with its role (successor, member, leaf...).

put / get / lookup with --join: a short-lived client that does not join: it walks the
route from the --join node to the key (SHA-1 of KEY): to its owner (Chord),
to a member of its affinity group (Kelips) or to the numerically closest
node (Pastry), then stores or fetches there. lookup prints the route, one node per hop. get prints one value per
line (KEY<TAB>VALUE with -), and exits 1 when a key has none. A client
speaks the overlay of the node it asks: give it the same --overlay (and
--groups for Kelips).

options:
  --overlay NAME        chord (default), kelips or pastry
  --listen HOST:PORT    the node's UDP address (port 0 picks a free one)
  --join HOST:PORT      any node of the overlay
  --id-bits N           ids of N bits (default 160; fewer for experiments)
  --successors R        Chord: successor list length (default 16: about
                        2 log2 N for rings up to 256 nodes)
  --groups K            Kelips: affinity groups, about sqrt(N), the same at
                        every node and client (default 8)
  --homes H             Kelips: members that keep each value (default 6,
                        at most 12)
  --replicas R          Pastry: nodes that keep each value, the closest and
                        its nearest leaves (default 4)
  --virtual V           run V nodes of the overlay in this process (virtual
                        nodes, Chord section 6), on consecutive UDP ports
  --lifetime DURATION   how long a put value is kept (default 1h)
  --timeout DURATION    give up a client operation after this (default 10s)
  --node STATE_DIR      the running node to ask (default: the default state
                        directory)
)";

std::string overlay_of(const Args& a) {
  const std::string name = a.last("--overlay").value_or("chord");
  for (auto n : dht::overlay_names()) {
    if (n == name) return name;
  }
  throw UsageError("--overlay: '" + name + "' is not available (chord, kelips and pastry are)");
}

dht::DhtOptions options_from(const Args& a) {
  dht::DhtOptions o;
  if (auto v = a.last("--id-bits")) o.bits = static_cast<int>(parse_int(*v, 8, 160, "--id-bits"));
  if (auto v = a.last("--successors")) o.successors = static_cast<std::size_t>(parse_int(*v, 1, 64, "--successors"));
  if (auto v = a.last("--groups")) o.groups = static_cast<std::uint32_t>(parse_int(*v, 1, 65536, "--groups"));
  if (auto v = a.last("--homes")) o.homes = static_cast<std::size_t>(parse_int(*v, 1, 12, "--homes"));
  if (auto v = a.last("--replicas")) o.replicas = static_cast<std::size_t>(parse_int(*v, 1, 16, "--replicas"));
  return o;
}

std::string node_text(const NodeRef& n) {
  return fmt::format("{} {}", dht::short_id(n.id), Endpoint{n.ip, n.port}.to_string());
}

int run_node(const Args& a) {
  const ListenAddress listen = parse_listen(a.last("--listen").value_or("0.0.0.0:4000"), "--listen");
  std::optional<Endpoint> join;
  if (auto v = a.last("--join")) join = parse_endpoint(*v, "--join");
  const std::string overlay = overlay_of(a);
  std::size_t virtual_nodes = 1;
  if (auto v = a.last("--virtual")) virtual_nodes = static_cast<std::size_t>(parse_int(*v, 1, 64, "--virtual"));
  DriverConfig dc;
  Driver driver(dc);
  // Virtual nodes (Chord §6): one process, several identities, each on its
  // own UDP port (the next ones after --listen's, or any free one with 0);
  // the first joins through --join, the others through the first.
  std::vector<std::unique_ptr<dht::DhtCore>> cores;
  for (std::size_t i = 0; i < virtual_nodes; ++i) {
    auto core = dht::make_overlay(overlay, options_from(a), random_seed());
    try {
      const auto port = listen.port == 0 ? std::uint16_t{0} : static_cast<std::uint16_t>(listen.port + i);
      const auto sock = driver.listen_udp(listen.host, port, *core);
      core->bind(sock.id, sock.bound);
    } catch (const std::exception& e) {
      fmt::print(stderr, "servent dht: {}\n", e.what());
      return 1;
    }
    std::optional<Endpoint> via = join;
    if (i > 0) via = Endpoint{cores.front()->self().ip == 0 ? 0x7f000001u : cores.front()->self().ip, cores.front()->self().port};
    core->join(via, driver.now());
    driver.pump();
    fmt::print(stderr, "servent dht: {} node {} listening {} (udp){}\n", overlay, dht::short_id(core->self().id),
               Endpoint{core->self().ip, core->self().port}.to_string(),
               via ? ", joining through " + via->to_string() : ", the first node");
    cores.push_back(std::move(core));
  }
  driver.run();
  for (const auto& core : cores) {
    fmt::print(stderr, "servent dht: {}\n", core->describe());
    print_counters("dht", core->counters());
  }
  return 0;
}

// put / get / lookup / status through the DHT node of a running
// `servent run --dht` (its control socket), one request per key.
int via_node(const std::string& what, const Args& a, const std::vector<std::pair<std::string, std::string>>& work, bool batch) {
  NodeClient node(a.last("--node").value_or(default_state_dir()));
  if (!node.ok()) {
    fmt::print(stderr, "servent dht: no --join HOST:PORT, and no running node answers at {}\n", node.path());
    return 1;
  }
  const Duration timeout = parse_duration(a.last("--timeout").value_or("10s"), "--timeout");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout) + 1s;
  if (what == "status") {
    auto r = node.call({{"cmd", "dht"}}, ms);
    if (!r || !r->value("ok", false)) {
      fmt::print(stderr, "servent dht: {}\n", r ? r->value("error", "failed") : "no answer");
      return 1;
    }
    fmt::print("{}\n", r->value("summary", ""));
    for (const auto& n : (*r)["nodes"]) {
      fmt::print("{:<14} {} {}\n", n.value("role", ""), n.value("id", ""), n.value("address", ""));
    }
    return 0;
  }
  std::size_t failed = 0;
  for (const auto& [key, value] : work) {
    nlohmann::json req{{"cmd", "dht-" + what}, {"key", key}};
    if (what == "put") req["value"] = value;
    auto r = node.call(req, ms);
    if (!r || !r->value("ok", false)) {
      ++failed;
      fmt::print(stderr, "servent dht: {} {}: {}\n", what, key, r ? r->value("error", "failed") : "no answer");
      continue;
    }
    const auto& owner = (*r)["owner"];
    if (what == "lookup") {
      std::size_t hop = 0;
      for (const auto& n : (*r)["route"]) fmt::print("hop {} {} {}\n", ++hop, n.value("id", ""), n.value("address", ""));
      fmt::print("owner {} {} ({} hops)\n", owner.value("id", ""), owner.value("address", ""), hop);
    } else if (what == "get") {
      if ((*r)["values"].empty()) {
        ++failed;
        fmt::print(stderr, "servent dht: get {}: no value\n", key);
      }
      for (const auto& v : (*r)["values"]) {
        if (batch) {
          fmt::print("{}\t{}\n", key, v.get<std::string>());
        } else {
          fmt::print("{}\n", v.get<std::string>());
        }
      }
    } else if (!batch) {
      fmt::print("stored at {} {}\n", owner.value("id", ""), owner.value("address", ""));
    }
  }
  if (batch && what == "put") fmt::print("{} stored, {} failed\n", work.size() - failed, failed);
  return failed ? 1 : 0;
}

// put / get / lookup as a client that does not join.
int run_client(const std::string& what, const Args& a) {
  const Duration timeout = parse_duration(a.last("--timeout").value_or("10s"), "--timeout");
  Duration lifetime = Duration::zero();
  if (auto v = a.last("--lifetime")) lifetime = parse_duration(*v, "--lifetime");
  // The work: (key, value) pairs.
  std::vector<std::pair<std::string, std::string>> work;
  const auto& pos = a.positional;
  if (pos.size() >= 2 && pos[1] == "-") {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      if (what == "put") {
        const auto sp = line.find_first_of(" \t");
        if (sp == std::string::npos) throw UsageError("stdin: '" + line + "' is not KEY VALUE");
        work.emplace_back(line.substr(0, sp), line.substr(sp + 1));
      } else {
        work.emplace_back(line, "");
      }
    }
  } else if (what == "put") {
    if (pos.size() != 3) throw UsageError("put needs KEY VALUE (or - for lines on stdin)");
    work.emplace_back(pos[1], pos[2]);
  } else {
    if (pos.size() != 2) throw UsageError(what + " needs KEY (or - for keys on stdin)");
    work.emplace_back(pos[1], "");
  }
  if (what == "lookup" && work.size() != 1) throw UsageError("lookup takes one KEY");
  const bool batch = pos.size() >= 2 && pos[1] == "-";
  if (!a.last("--join")) return via_node(what, a, work, batch);  // (a running node's DHT)
  const Endpoint via = parse_endpoint(*a.last("--join"), "--join");

  DriverConfig dc;
  Driver driver(dc);
  auto core = dht::make_overlay(overlay_of(a), options_from(a), random_seed());
  try {
    const auto sock = driver.listen_udp(via.ip == 0x7f000001 ? "127.0.0.1" : "0.0.0.0", 0, *core);
    core->bind(sock.id, sock.bound);
  } catch (const std::exception& e) {
    fmt::print(stderr, "servent dht: {}\n", e.what());
    return 1;
  }
  const dht::Ring ring = core->ring();
  // A few operations in flight at a time (the ring is not to be flooded).
  constexpr std::size_t kInFlight = 16;
  std::size_t next = 0, done = 0, failed = 0;
  std::unordered_map<std::uint64_t, std::size_t> op_of;
  auto start_more = [&] {
    while (next < work.size() && op_of.size() < kInFlight) {
      const auto& [key, value] = work[next];
      const dht::NodeId kid = dht::key_id(key, ring);
      std::uint64_t op = 0;
      if (what == "put") {
        op = core->put(kid, wire::Bytes(value.begin(), value.end()), driver.now(), lifetime, via);
      } else if (what == "get") {
        op = core->get(kid, driver.now(), via);
      } else {
        op = core->lookup(kid, driver.now(), via);
      }
      op_of[op] = next++;
    }
  };
  start_more();
  driver.forward([&] { return core->poll_result(); },
                 [&](const dht::OpResult& r) {
                   auto it = op_of.find(r.op);
                   if (it == op_of.end()) return;
                   const auto& [key, value] = work[it->second];
                   op_of.erase(it);
                   ++done;
                   if (!r.ok) {
                     ++failed;
                     fmt::print(stderr, "servent dht: {} {}: {}\n", what, key, r.error);
                   } else if (what == "lookup") {
                     for (std::size_t i = 0; i < r.route.size(); ++i) fmt::print("hop {} {}\n", i + 1, node_text(r.route[i]));
                     fmt::print("owner {} ({} hops)\n", node_text(r.owner), r.route.size());
                   } else if (what == "get") {
                     if (r.values.empty()) {
                       ++failed;
                       fmt::print(stderr, "servent dht: get {}: no value\n", key);
                     }
                     for (const auto& v : r.values) {
                       const std::string text(v.begin(), v.end());
                       if (batch) {
                         fmt::print("{}\t{}\n", key, text);
                       } else {
                         fmt::print("{}\n", text);
                       }
                     }
                   } else if (!batch) {
                     fmt::print("stored at {}\n", node_text(r.owner));
                   }
                   start_more();
                   if (done == work.size()) driver.stop();
                 });
  driver.after(timeout, [&] {
    fmt::print(stderr, "servent dht: {} of {} operations unfinished after {} ms\n", work.size() - done, work.size(),
               std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
    failed += work.size() - done;
    driver.stop();
  });
  driver.pump();
  driver.run();
  if (batch && what == "put") fmt::print("{} stored, {} failed\n", done - std::min(done, failed), failed);
  return failed ? 1 : 0;
}

}  // namespace

int cmd_dht(const std::vector<std::string>& argv) {
  OptionSpec spec{{"--overlay", "--listen", "--join", "--id-bits", "--successors", "--groups", "--homes", "--replicas", "--virtual", "--lifetime", "--node",
                   "--timeout"},
                  {"--help", "-h"}};
  try {
    const Args a = parse_args(argv, spec);
    if (a.has("--help") || a.has("-h") || a.positional.empty()) {
      fmt::print("{}", kDhtHelp);
      return a.positional.empty() && !a.has("--help") && !a.has("-h") ? 2 : 0;
    }
    const std::string& what = a.positional.front();
    if (what == "run") return run_node(a);
    if (what == "put" || what == "get" || what == "lookup") return run_client(what, a);
    if (what == "status") return via_node(what, a, {}, false);
    throw UsageError("unknown dht command '" + what + "' (run, put, get, lookup, status)");
  } catch (const UsageError& e) {
    usage_error("dht", e.what());
  }
}

}  // namespace sv::cli
