// bench/pcap: decodes a large generated capture (many Gnutella conversations
// on tcp/6346: 0.6 handshakes, then Pings, Pongs, Queries and QueryHits in
// MSS-sized segments) with servent's decoder and with tshark -Y gnutella, and
// prints MB/s, messages/s and the ratio (goal: at least 10x tshark).
// Usage: pcap [MEGABYTES]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "servent/core/types.hpp"
#include "servent/pcap/capture.hpp"
#include "servent/pcap/writer.hpp"
#include "wire/gnutella/descriptors.hpp"

namespace gn = sv::wire::gnutella;
using Clock = std::chrono::steady_clock;

namespace {

// Streams PcapWriter output to a file so a large capture never sits in memory.
struct Writer {
  std::ofstream out;
  sv::pcap::PcapWriter w{1};  // Ethernet
  std::uint32_t t = 0;
  explicit Writer(const std::string& path) : out(path, std::ios::binary) { flush(); }
  void flush() {
    out << w.bytes();
    w.take();
  }
  void packet(std::uint32_t src, std::uint16_t sport, std::uint32_t dst, std::uint16_t dport, std::uint32_t seq,
              std::uint8_t flags, std::string_view payload) {
    w.packet(t * 1000, sv::pcap::ipv4_tcp_packet(src, sport, dst, dport, seq, flags, payload));
    ++t;
    if (w.bytes().size() > (1 << 20)) flush();
  }
  ~Writer() { flush(); }
};

}  // namespace

int main(int argc, char** argv) {
  const double want_mb = argc > 1 ? std::atof(argv[1]) : 50;
  const std::string path = (std::filesystem::temp_directory_path() / "servent-bench.pcap").string();
  sv::Rng rng(1);
  {
    Writer w(path);
    std::uint64_t written = 0;
    for (std::uint32_t conn = 0; written < want_mb * 1e6; ++conn) {
      const std::uint32_t c = 0x0a000000 + conn, s = 0x0a800000 + (conn % 97);
      const auto cport = static_cast<std::uint16_t>(20000 + conn % 40000);
      std::uint32_t cseq = 1000, sseq = 5000;
      w.packet(c, cport, s, 6346, cseq++, 0x02, "");
      w.packet(s, 6346, c, cport, sseq++, 0x12, "");
      auto send = [&](bool from_client, const std::string& data) {
        for (std::size_t i = 0; i < data.size(); i += 1448) {
          auto piece = std::string_view(data).substr(i, 1448);
          if (from_client) {
            w.packet(c, cport, s, 6346, cseq, 0x18, piece);
            cseq += static_cast<std::uint32_t>(piece.size());
          } else {
            w.packet(s, 6346, c, cport, sseq, 0x18, piece);
            sseq += static_cast<std::uint32_t>(piece.size());
          }
          written += piece.size() + 54;
        }
      };
      send(true, "GNUTELLA CONNECT/0.6\r\nUser-Agent: bench/1\r\nX-Ultrapeer: False\r\n\r\n");
      send(false, "GNUTELLA/0.6 200 OK\r\nUser-Agent: bench/1\r\nX-Ultrapeer: True\r\n\r\n");
      send(true, "GNUTELLA/0.6 200 OK\r\n\r\n");
      std::string client, server;
      for (int i = 0; i < 200; ++i) {
        gn::Header h;
        rng.fill(h.id.bytes.data(), 16);
        h.ttl = 3;
        sv::wire::Bytes p, d;
        if (i % 2 == 0) {
          h.type = 0x80;
          gn::encode_query(p, gn::Query{0x8000, "some words " + std::to_string(i), {}});
          d = gn::encode_descriptor(h, p);
          client.append(d.begin(), d.end());
          gn::QueryHit hit;
          hit.port = 6346;
          hit.ip = s;
          for (int r = 0; r < 3; ++r) hit.results.push_back({static_cast<std::uint32_t>(r), 123456, "some words song.mp3", {}});
          p.clear();
          gn::encode_query_hit(p, hit);
          h.type = 0x81;
          d = gn::encode_descriptor(h, p);
          server.append(d.begin(), d.end());
        } else {
          h.type = 0x00;
          d = gn::encode_descriptor(h, {});
          client.append(d.begin(), d.end());
          p.clear();
          gn::encode_pong(p, gn::Pong{6346, s, 10, 1000, {}});
          h.type = 0x01;
          d = gn::encode_descriptor(h, p);
          server.append(d.begin(), d.end());
        }
      }
      send(true, client);
      send(false, server);
      w.packet(c, cport, s, 6346, cseq, 0x11, "");
      w.packet(s, 6346, c, cport, sseq, 0x11, "");
    }
  }
  const double mb = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
  // Each is timed three times and the best run kept (the machine is shared).
  auto best_of_3 = [](auto&& run) {
    double best = 1e9;
    for (int i = 0; i < 3; ++i) {
      auto t0 = Clock::now();
      run();
      best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return best;
  };
  std::uint64_t messages = 0, frames = 0;
  // What `servent pcap decode` does: every message with its text line.
  sv::pcap::DecodeOptions text_only;
  text_only.fields = false;
  text_only.raw = false;
  const double ours = best_of_3([&] {
    messages = 0;
    frames = sv::pcap::decode_file(path, [&](sv::pcap::Message&&) { ++messages; }, text_only).frames;
  });
  std::printf("pcap: %.1f MB, %llu frames, %llu messages\n", mb, static_cast<unsigned long long>(frames),
              static_cast<unsigned long long>(messages));
  std::printf("pcap: servent decode (text lines, as `servent pcap decode`): %.3f s, %.0f MB/s, %.0f messages/s\n",
              ours, mb / ours, static_cast<double>(messages) / ours);
  // The same without rendering text: every field decoded into structures, as
  // `servent pcap check` and `replay` use them.
  sv::pcap::DecodeOptions structured = text_only;
  structured.text = false;
  const double ours2 = best_of_3([&] { sv::pcap::decode_file(path, [&](sv::pcap::Message&&) {}, structured); });
  std::printf("pcap: servent decode (structured, as `servent pcap check`): %.3f s, %.0f MB/s, %.0f messages/s\n", ours2,
              mb / ours2, static_cast<double>(messages) / ours2);
  if (std::system("command -v tshark >/dev/null 2>&1") == 0) {
    int rc = 0;
    const std::string cmd = "tshark -n -r " + path + " -Y gnutella > /dev/null 2>&1";
    const double theirs = best_of_3([&] { rc = std::system(cmd.c_str()); });
    // tshark's start-up (loading every dissector) is part of its time; shown
    // apart so the ratio without it can be read too.
    const std::string empty_cmd = "tshark -n -r " + path + " -c 1 -Y gnutella > /dev/null 2>&1";
    const double startup = best_of_3([&] { (void)std::system(empty_cmd.c_str()); });
    std::printf("pcap: tshark -Y gnutella: %.3f s, %.0f MB/s (exit %d; start-up and first frame alone %.3f s)\n", theirs,
                mb / theirs, rc, startup);
    std::printf("pcap: ratio servent/tshark %.1fx with text lines, %.1fx structured (goal 10x)\n", theirs / ours,
                theirs / ours2);
    std::printf("pcap: ratio without tshark's start-up %.1fx with text lines, %.1fx structured\n",
                (theirs - startup) / ours, (theirs - startup) / ours2);
    // tshark -Y prints one summary line per frame; -V prints every field of
    // every message, as servent's lines do. Once: it is slow.
    const std::string verbose_cmd = "tshark -n -r " + path + " -Y gnutella -V > /dev/null 2>&1";
    auto t0 = Clock::now();
    (void)std::system(verbose_cmd.c_str());
    const double verbose = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("pcap: tshark -Y gnutella -V (every field): %.3f s, %.0f MB/s; ratio with text lines %.1fx\n", verbose,
                mb / verbose, verbose / ours);
  } else {
    std::printf("pcap: tshark not installed, no ratio\n");
  }
  if (!std::getenv("KEEP")) std::filesystem::remove(path);  // KEEP=1: keep it for profiling
  return 0;
}
