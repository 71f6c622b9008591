#include "servent/cli/node_client.hpp"

#include <algorithm>
#include <filesystem>

namespace sv::cli {

NodeClient::NodeClient(const std::string& state_dir)
    : path_((std::filesystem::path(state_dir) / "control.sock").string()) {
  ok_ = stream_.connect_unix(path_, 5s);
}

bool NodeClient::send(const nlohmann::json& request) {
  if (!ok_) return false;
  const std::string line = request.dump() + "\n";
  return stream_.send({reinterpret_cast<const std::uint8_t*>(line.data()), line.size()});
}

std::optional<nlohmann::json> NodeClient::take_line() {
  auto& in = stream_.received();
  for (;;) {
    auto nl = std::find(in.begin(), in.end(), std::uint8_t{'\n'});
    if (nl == in.end()) return std::nullopt;
    std::string line(in.begin(), nl);
    in.erase(in.begin(), nl + 1);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) return j;
  }
}

std::optional<nlohmann::json> NodeClient::next(std::chrono::milliseconds timeout) {
  if (!ok_) return std::nullopt;
  std::optional<nlohmann::json> line = take_line();
  if (line || stream_.closed()) return line;
  stream_.read_until(
      [&](wire::Bytes&) {
        line = take_line();
        return line.has_value();
      },
      timeout);
  return line;
}

std::optional<nlohmann::json> NodeClient::call(nlohmann::json request, std::chrono::milliseconds timeout,
                                               const std::function<void(const nlohmann::json&)>& on_event) {
  const std::uint64_t id = next_id_++;
  request["id"] = id;
  if (!send(request)) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto j = next(std::max(left, std::chrono::milliseconds(0)));
    if (!j) return std::nullopt;
    if (j->contains("id") && (*j)["id"] == id) return j;
    if (on_event) on_event(*j);
  }
}

}  // namespace sv::cli
