#include "servent/core/types.hpp"

#include <charconv>

namespace sv {

std::string Endpoint::to_string() const {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." + std::to_string((ip >> 8) & 255) +
         "." + std::to_string(ip & 255) + ":" + std::to_string(port);
}

std::optional<Endpoint> Endpoint::parse(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  Endpoint e;
  std::uint32_t ip = 0;
  std::string_view host = s.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  int parts = 0;
  std::size_t i = 0;
  while (parts < 4) {
    unsigned v = 0;
    auto r = std::from_chars(host.data() + i, host.data() + host.size(), v);
    if (r.ec != std::errc{} || v > 255 || r.ptr == host.data() + i) return std::nullopt;
    i = static_cast<std::size_t>(r.ptr - host.data());
    ip = ip << 8 | v;
    if (++parts < 4) {
      if (i >= host.size() || host[i] != '.') return std::nullopt;
      ++i;
    }
  }
  if (i != host.size()) return std::nullopt;
  unsigned port = 0;
  auto ps = s.substr(colon + 1);
  auto r = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (r.ec != std::errc{} || r.ptr != ps.data() + ps.size() || port > 65535) return std::nullopt;
  e.ip = ip;
  e.port = static_cast<std::uint16_t>(port);
  return e;
}

std::string_view to_string(CloseReason r) {
  switch (r) {
    case CloseReason::Normal: return "normal";
    case CloseReason::PeerClosed: return "peer-closed";
    case CloseReason::Shutdown: return "shutdown";
    case CloseReason::ConnectFailed: return "connect-failed";
    case CloseReason::NotOurProtocol: return "not-our-protocol";
    case CloseReason::HandshakeMalformed: return "handshake-malformed";
    case CloseReason::HandshakeRefused: return "handshake-refused";
    case CloseReason::HandshakeTimeout: return "handshake-timeout";
    case CloseReason::Full: return "full";
    case CloseReason::PayloadTooLarge: return "payload-too-large";
    case CloseReason::PayloadMalformed: return "payload-malformed";
    case CloseReason::Bye: return "bye";
    case CloseReason::HttpBadRequest: return "http-bad-request";
    case CloseReason::HttpHeaderTimeout: return "http-header-timeout";
    case CloseReason::HttpIdle: return "http-idle";
    case CloseReason::WriteQueueFull: return "write-queue-full";
    case CloseReason::IoError: return "io-error";
  }
  return "?";
}

static std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Rng::Rng(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t Rng::next() {
  auto rotl = [](std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void Rng::fill(std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t v = next();
    for (std::size_t j = 0; j < 8 && i + j < n; ++j) p[i + j] = static_cast<std::uint8_t>(v >> (8 * j));
  }
}

}  // namespace sv
