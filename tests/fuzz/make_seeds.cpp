// Writes seed inputs for the fuzz targets from the pcap fixtures (what real
// servents sent): descriptor streams, handshake blocks, HTTP request heads,
// GIV lines and GGEP blocks, plus a few made by hand for ranges and urns.
// Usage: make_seeds OUT_DIR FIXTURE...
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "servent/pcap/capture.hpp"
#include "wire/gnutella/descriptors.hpp"

namespace fs = std::filesystem;

namespace {
int counter = 0;
void write(const fs::path& dir, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / ("seed-" + std::to_string(counter++)), std::ios::binary) << bytes;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const fs::path out = argv[1];
  std::map<std::string, std::string> streams;  // "stream/src" -> descriptors in order
  std::map<std::string, std::string> napster;  // "stream/src" -> Napster frames in order
  for (int i = 2; i < argc; ++i) {
    sv::pcap::decode_file(argv[i], [&](sv::pcap::Message&& m) {
      if (!m.raw.empty()) {
        std::string& s = streams[std::to_string(i) + "/" + std::to_string(m.stream) + "/" + m.src];
        if (s.size() < 16 * 1024) s.append(m.raw.begin(), m.raw.end());
        auto h = sv::wire::gnutella::decode_header(m.raw);
        // GGEP blocks: Pong payloads after 14 bytes; Ping payloads whole.
        if (h && h->type == 0x01 && m.raw.size() > 23 + 14) write(out / "ggep", std::string(m.raw.begin() + 37, m.raw.end()));
        if (h && h->type == 0x00 && m.raw.size() > 23) write(out / "ggep", std::string(m.raw.begin() + 23, m.raw.end()));
      }
      if (!m.block.empty()) {
        const std::string b(m.block.begin(), m.block.end());
        if (m.proto == "napster") {
          std::string& s = napster[std::to_string(i) + "/" + std::to_string(m.stream) + "/" + m.src];
          if (s.size() < 16 * 1024) s += b;
        } else if (m.proto == "gnutella") {
          write(out / "handshake", b);
        } else {
          write(out / "http", std::string(1, '\x07') + b);
          write(out / "cores", std::string(1, '\x01') + b);
        }
      }
    });
  }
  for (const auto& [key, s] : streams) {
    write(out / "descriptors", std::string(1, '\x17') + s);
    write(out / "cores", std::string(1, '\x00') + "GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: False\r\n\r\nGNUTELLA/0.6 200 OK\r\n\r\n" + s);
  }
  for (const auto& [key, s] : napster) {
    write(out / "napster", s);
    write(out / "napster_server", s);
  }
  write(out / "handshake", "GIV 4:0123456789ABCDEF0123456789ABCDEF/song one.mp3\n\n");
  write(out / "http", std::string("\x05") + "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\n\r\n0123456789");
  const std::string size8 = std::string("\0\0\0\0\0\x01\x00\x00", 8);
  for (const char* r : {"bytes=0-99", "bytes=-500", "bytes=100-", "bytes=5-1", "bytes 0-9/100", "bytes */100",
                        "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB", "urn:sha1:plsthipqgsszts5fjupakuzwugyqypfb"}) {
    write(out / "range_urn", size8 + r);
  }
  return 0;
}
