#include "servent/pcap/pcap_tool.hpp"

#include <fmt/core.h>

#include <cstdio>

#include "servent/pcap/capture.hpp"
#include "servent/pcap/replay.hpp"

namespace sv::pcap {

namespace {

constexpr const char* kPcapHelp = R"(usage: servent pcap decode FILE [--json] [--stream N]
       servent pcap check FILE [--stream N]
       servent pcap replay FILE --to HOST:PORT [--stream N] [--wait SECONDS]

Reads a pcap or pcapng capture (Ethernet, Linux cooked SLL/SLL2, loopback/NULL
or raw IP; IPv4 and IPv6), reassembles each TCP connection (out-of-order
segments, retransmissions and overlaps handled, gaps reported), and decodes
Gnutella handshakes and descriptors (also on deflated links), HTTP file
transfers, GIV lines and Gnutella UDP datagrams.

  decode   one line per message (frame, time, #stream, source -> destination,
           protocol, message); --json: one object per message with every field
  check    spec violations per message, with a code, the stream and the frame;
           exit status 0 when clean, 1 when there are violations
  replay   play the client side of a captured Gnutella or HTTP conversation
           (the first one, or --stream N) against a live servent, with fresh
           GUIDs, and compare its answers with the captured ones (handshake
           status, replies per request, HTTP status and length); --wait is how
           long to collect replies (default 3s); exit 0 when all are the same
)";

std::string proto_name(const std::string& p) {
  if (p == "gnutella") return "Gnutella";
  if (p == "http") return "HTTP";
  if (p == "giv") return "GIV";
  if (p == "tcp") return "TCP";
  return p;
}

}  // namespace

std::string text_line(const Message& m) {
  std::string stream = m.stream >= 0 ? "#" + std::to_string(m.stream) : "udp";
  return fmt::format("{:>6} {:>11.6f} {:>5} {} -> {} {}{} {} {}", m.frame, m.time, stream, m.src, m.dst,
                     proto_name(m.proto), m.deflated ? "(deflated)" : "", m.kind, m.info);
}

std::string json_line(const Message& m) {
  std::string out = fmt::format(R"({{"frame":{},"time":{:.6f},"stream":{},"src":{},"dst":{},"proto":{},"kind":{})",
                                m.frame, m.time, m.stream, json_quote(m.src), json_quote(m.dst), json_quote(m.proto),
                                json_quote(m.kind));
  if (m.deflated) out += R"(,"deflated":true)";
  for (const auto& [k, v] : m.fields) out += "," + json_quote(k) + ":" + v;
  if (!m.violations.empty()) {
    out += R"(,"violations":[)";
    for (std::size_t i = 0; i < m.violations.size(); ++i) {
      if (i) out += ",";
      out += R"({"code":)" + json_quote(m.violations[i].first) + R"(,"text":)" + json_quote(m.violations[i].second) + "}";
    }
    out += "]";
  }
  return out + "}";
}

int cmd_pcap(const std::vector<std::string>& argv) {
  auto usage = [](const std::string& msg) {
    fmt::print(stderr, "servent pcap: {} (see 'servent pcap --help')\n", msg);
    return 2;
  };
  if (argv.empty()) return usage("missing decode or check");
  if (argv[0] == "--help" || argv[0] == "-h") {
    fmt::print("{}", kPcapHelp);
    return 0;
  }
  const std::string sub = argv[0];
  if (sub != "decode" && sub != "check" && sub != "replay") return usage("unknown subcommand '" + sub + "'");
  std::string file;
  bool json = false;
  std::optional<std::int64_t> only_stream;
  std::optional<Endpoint> to;
  std::chrono::milliseconds wait{3000};
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--help" || a == "-h") {
      fmt::print("{}", kPcapHelp);
      return 0;
    }
    if (a == "--json" && sub == "decode") {
      json = true;
    } else if (a == "--to" && sub == "replay") {
      if (i + 1 >= argv.size()) return usage("--to needs HOST:PORT");
      to = Endpoint::parse(argv[++i]);
      if (!to) return usage("--to: expected HOST:PORT with an IPv4 host, got '" + argv[i] + "'");
    } else if (a == "--wait" && sub == "replay") {
      if (i + 1 >= argv.size()) return usage("--wait needs seconds");
      try {
        wait = std::chrono::milliseconds(static_cast<std::int64_t>(std::stod(argv[++i]) * 1000));
      } catch (...) {
        return usage("--wait: not a number: '" + argv[i] + "'");
      }
    } else if (a == "--stream") {
      if (i + 1 >= argv.size()) return usage("--stream needs a number");
      try {
        only_stream = std::stoll(argv[++i]);
      } catch (...) {
        return usage("--stream: not a number: '" + argv[i] + "'");
      }
    } else if (a.starts_with("-")) {
      return usage("unknown option " + a);
    } else if (file.empty()) {
      file = a;
    } else {
      return usage("one FILE at a time");
    }
  }
  if (file.empty()) return usage("missing FILE");
  if (sub == "replay") {
    if (!to) return usage("replay needs --to HOST:PORT");
    return replay(file, *to, only_stream, wait);
  }
  std::uint64_t violations = 0, checked = 0;
  DecodeOptions options;
  options.fields = json;  // the text line needs none of them
  options.raw = false;
  options.text = sub == "decode" && !json;
  auto res = decode_file(file, [&](Message&& m) {
    if (only_stream && m.stream != *only_stream) return;
    if (sub == "decode") {
      std::string line = json ? json_line(m) : text_line(m);
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
      return;
    }
    ++checked;
    for (const auto& [code, text] : m.violations) {
      ++violations;
      fmt::print("frame {} stream {} {} -> {} {} {}: {}: {}\n", m.frame, m.stream, m.src, m.dst, proto_name(m.proto),
                 m.kind, code, text);
    }
  }, options);
  if (!res.opened) {
    fmt::print(stderr, "servent pcap: {}: not a readable capture ({})\n", file, res.error);
    return 1;
  }
  if (!res.error.empty()) {
    fmt::print(stderr, "servent pcap: {}: reading stopped after frame {}: {}\n", file, res.frames, res.error);
  }
  const auto& s = res.stats;
  if (s.truncated || s.gaps || s.fragments) {
    fmt::print(stderr, "servent pcap: {} frames, {} TCP streams, {} truncated frames, {} IP fragments, {} gaps ({} bytes)\n",
               res.frames, s.streams, s.truncated, s.fragments, s.gaps, s.gap_bytes);
  }
  if (sub == "check") {
    fmt::print("{} violation{} in {} message{}\n", violations, violations == 1 ? "" : "s", checked, checked == 1 ? "" : "s");
    return violations == 0 ? 0 : 1;
  }
  return 0;
}

}  // namespace sv::pcap
