#include "servent/control/control_core.hpp"

#include <algorithm>

namespace sv {

namespace {
constexpr std::array<std::string_view, ControlCore::kStatCount> kStatNames = {
    "control_connections", "control_requests", "control_bad_json", "control_unknown_command", "control_line_too_long"};
}

const std::vector<std::string>& ControlCore::commands() {
  static const std::vector<std::string> kCommands = {"search", "results", "stop-search", "download", "downloads",
                                                     "cancel", "pause",   "resume",      "uploads",  "peers",       "torrents",
                                                     "stats",  "rescan",  "connect",     "quit",     "browse",
                                                     "dht",    "dht-put", "dht-get",     "dht-lookup"};
  return kCommands;
}

void ControlCore::handle_connected(ConnId conn, Instant) {
  conns_[conn];
  ++stats_[kConnections];
}

void ControlCore::handle_closed(ConnId conn, Instant) { conns_.erase(conn); }

std::vector<ConnId> ControlCore::connections() const {
  std::vector<ConnId> out;
  out.reserve(conns_.size());
  for (const auto& [id, c] : conns_) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

void ControlCore::close(ConnId conn) {
  if (conns_.erase(conn)) actions_.push_back(action::Close{conn, CloseReason::Normal, true});
}

void ControlCore::send(ConnId conn, const nlohmann::json& j) {
  if (!conns_.count(conn)) return;
  // Bytes from the network (names, user agents) may not be UTF-8: replace.
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  actions_.push_back(action::Send{conn, std::make_shared<Buffer>(line.begin(), line.end())});
}

void ControlCore::reply(ConnId conn, const nlohmann::json& id, nlohmann::json body) {
  nlohmann::json out = nlohmann::json::object();
  out["id"] = id;
  out["ok"] = true;
  for (auto& [k, v] : body.items()) out[k] = std::move(v);
  send(conn, out);
}

void ControlCore::error(ConnId conn, const nlohmann::json& id, std::string_view message) {
  send(conn, nlohmann::json{{"id", id}, {"ok", false}, {"error", message}});
}

void ControlCore::event(ConnId conn, const nlohmann::json& ev) { send(conn, ev); }

void ControlCore::handle_bytes(ConnId conn, wire::ByteView bytes, Instant) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  std::string_view in = wire::as_chars(bytes);
  while (!in.empty()) {
    auto nl = in.find('\n');
    std::string_view piece = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    if (!c.discarding) c.buf.append(piece);
    if (c.buf.size() > max_line_) {
      if (!c.discarding) {
        ++stats_[kLineTooLong];
        error(conn, nullptr, "line longer than " + std::to_string(max_line_) + " bytes");
      }
      c.discarding = true;
      c.buf.clear();
    }
    if (nl == std::string_view::npos) break;  // the line goes on in the next bytes
    if (c.discarding) {
      c.discarding = false;
      continue;
    }
    std::string line = std::move(c.buf);
    c.buf.clear();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are fine
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++stats_[kBadJson];
      error(conn, nullptr, "not a JSON object");
      continue;
    }
    nlohmann::json id = j.contains("id") ? j["id"] : nlohmann::json(nullptr);
    if (!j.contains("cmd") || !j["cmd"].is_string()) {
      ++stats_[kBadJson];
      error(conn, id, "missing \"cmd\"");
      continue;
    }
    std::string cmd = j["cmd"];
    const auto& known = commands();
    if (std::find(known.begin(), known.end(), cmd) == known.end()) {
      ++stats_[kUnknownCommand];
      error(conn, id, "unknown command '" + cmd.substr(0, 40) + "'");
      continue;
    }
    ++stats_[kRequests];
    requests_.push_back(ControlRequest{conn, id, std::move(cmd), std::move(j)});
  }
}

std::vector<Counter> ControlCore::counters() const {
  std::vector<Counter> out;
  for (std::size_t i = 0; i < kStatCount; ++i) out.push_back({kStatNames[i], stats_[i]});
  return out;
}

}  // namespace sv
