#include "integration/gnutella_peer.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>


namespace sv::test {

namespace gn = wire::gnutella;

std::optional<std::pair<gn::Header, wire::Bytes>> read_descriptor(SocketClient& c, std::uint8_t type,
                                                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Whole descriptors off the front of the buffer; the rest stays there.
    std::string& b = c.buffer();
    while (b.size() >= gn::kHeaderSize) {
      const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
      const std::size_t len = wire::get_le32(p + 19);
      if (b.size() < gn::kHeaderSize + len) break;
      auto h = gn::decode_header(wire::ByteView(p, gn::kHeaderSize));
      wire::Bytes payload(p + gn::kHeaderSize, p + gn::kHeaderSize + len);
      b.erase(0, gn::kHeaderSize + len);
      if (h && h->type == type) return std::make_pair(*h, std::move(payload));
    }
    if (!c.read_more(deadline)) return std::nullopt;
  }
}

std::string control_call(const std::filesystem::path& sock, const std::string& request) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  const std::string line = request + "\n";
  ::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (got.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 500) <= 0) continue;
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return got.substr(0, got.find('\n'));
}

}  // namespace sv::test
