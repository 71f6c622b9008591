// servent peers: the running node's connections, through its control socket.
#include <array>

#include <fmt/format.h>

#include "servent/cli/args.hpp"
#include "servent/cli/common.hpp"
#include "servent/cli/node_client.hpp"

namespace sv::cli {

namespace {
constexpr const char* kPeersHelp = R"(usage: servent peers [--node STATE_DIR] [--json]

Lists the running node's connections: address, direction, the peer's role
(leaf, ultrapeer, or legacy for a 0.4 or role-less peer), the reputation we
give it (0..1000, from what this node saw: link uptime, transfers, whether it
accepted our connect, protocol errors), how much of its QRP table is set, and
the messages exchanged. The first line says the node's own role.

options:
  --node STATE_DIR   the running node (default: the default state dir)
  --json             one JSON object per peer and line, after a line
                     {"role": ...} for the node itself
)";
// A peer's User-Agent on the terminal: control characters become '?'.
std::string printable(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return s;
}
}  // namespace

int cmd_peers(const std::vector<std::string>& argv) {
  OptionSpec spec{{"--node"}, {"--json", "--help", "-h"}};
  Args a;
  try {
    a = parse_args(argv, spec);
    if (a.has("--help") || a.has("-h")) {
      fmt::print("{}", kPeersHelp);
      return 0;
    }
    if (!a.positional.empty()) throw UsageError("unexpected argument '" + a.positional.front() + "'");
  } catch (const UsageError& e) {
    usage_error("peers", e.what());
  }
  NodeClient node(a.last("--node").value_or(default_state_dir()));
  if (!node.ok()) {
    fmt::print(stderr, "servent peers: no running node answers at {} (start 'servent run')\n", node.path());
    return 1;
  }
  auto r = node.call({{"cmd", "peers"}}, std::chrono::seconds(5));
  if (!r || !r->value("ok", false)) {
    fmt::print(stderr, "servent peers: the node refused: {}\n", r ? r->value("error", "?") : "no answer");
    return 1;
  }
  const auto peers = r->value("peers", nlohmann::json::array());
  if (a.has("--json")) {
    fmt::print("{}\n", nlohmann::json{{"role", r->value("role", "")}}.dump());
    for (const auto& p : peers) fmt::print("{}\n", p.dump());
    return 0;
  }
  fmt::print("this node: {}, {} connection{}\n", r->value("role", "?"), peers.size(), peers.size() == 1 ? "" : "s");
  fmt::print("{:<22} {:<3} {:<9} {:>5} {:>11} {:>9} {:>9}  {}\n", "ADDRESS", "DIR", "ROLE", "REP", "QRP", "IN", "OUT",
             "AGENT");
  for (const auto& p : peers) {
    const auto slots = p.value("qrp_slots", std::size_t{0});
    const std::string qrp = slots ? fmt::format("{}/{}", p.value("qrp_present", std::size_t{0}), slots) : "-";
    fmt::print("{:<22} {:<3} {:<9} {:>5} {:>11} {:>9} {:>9}  {}{}\n", p.value("address", ""), p.value("direction", ""),
               p.value("role", ""), p.contains("reputation") ? std::to_string(p.value("reputation", 0)) : "-", qrp,
               p.value("messages_in", std::uint64_t{0}), p.value("messages_out", std::uint64_t{0}),
               printable(p.value("user_agent", "")), p.value("established", false) ? "" : " (handshaking)");
  }
  // The horizon the peers that speak HSEP tell of, summed over them (a peer's
  // last hop counts again for the hops it did not list).
  std::vector<std::array<std::uint64_t, 3>> horizon;
  for (const auto& p : peers) {
    const auto hops = p.value("hsep", nlohmann::json::array());
    if (hops.size() > horizon.size()) horizon.resize(hops.size());
  }
  for (const auto& p : peers) {
    const auto hops = p.value("hsep", nlohmann::json::array());
    for (std::size_t k = 0; k < horizon.size() && !hops.empty(); ++k) {
      const auto& hop = hops[std::min(k, hops.size() - 1)];
      for (std::size_t i = 0; i < 3 && hop.is_array() && i < hop.size(); ++i) {
        if (hop[i].is_number_unsigned()) horizon[k][i] += hop[i].get<std::uint64_t>();
      }
    }
  }
  for (std::size_t k = 0; k < horizon.size(); ++k) {
    fmt::print("{}within {} hop{}: {} nodes, {} files, {} KiB (HSEP)\n", k == 0 ? "horizon " : "        ", k + 1,
               k == 0 ? " " : "s", horizon[k][0], horizon[k][1], horizon[k][2]);
  }
  return 0;
}

}  // namespace sv::cli
