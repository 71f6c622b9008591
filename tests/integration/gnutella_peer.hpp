// Helpers for tests that talk Gnutella or the control socket by hand.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include "integration/socket_client.hpp"
#include "wire/gnutella/descriptors.hpp"

namespace sv::test {

// The next descriptor of `type` on `c` (others before it are skipped), or
// nullopt at the deadline; bytes after it stay in c's buffer.
std::optional<std::pair<wire::gnutella::Header, wire::Bytes>> read_descriptor(
    SocketClient& c, std::uint8_t type, std::chrono::milliseconds timeout = std::chrono::seconds(5));

// One request on a node's control socket; the reply line (bounded wait).
std::string control_call(const std::filesystem::path& sock, const std::string& request);

}  // namespace sv::test
