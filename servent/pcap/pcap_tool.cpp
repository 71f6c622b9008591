#include "servent/pcap/pcap_tool.hpp"

#include <charconv>

#include <fmt/compile.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "servent/pcap/capture.hpp"
#include "servent/pcap/replay.hpp"

namespace sv::pcap {

namespace {

constexpr const char* kPcapHelp = R"(usage: servent pcap decode FILE [--json] [--stream N] [--napster-port N]...
       servent pcap check FILE [--stream N]
       servent pcap replay FILE --to HOST:PORT [--stream N] [--wait SECONDS]

Reads a pcap or pcapng capture (Ethernet, Linux cooked SLL/SLL2, loopback/NULL
or raw IP; IPv4 and IPv6), reassembles each TCP connection (out-of-order
segments, retransmissions and overlaps handled, gaps reported), and decodes
Gnutella handshakes and descriptors (also on deflated links), HTTP file
transfers, GIV lines, Gnutella UDP datagrams, and Napster (OpenNap protocol)
client-server frames and peer transfers: a conversation is Napster when it
starts with a login or a server's answer to one, or when it uses a port given
with --napster-port (for captures that start mid-conversation).

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

std::string_view proto_name(const std::string& p) {
  if (p == "gnutella") return "Gnutella";
  if (p == "http") return "HTTP";
  if (p == "giv") return "GIV";
  if (p == "tcp") return "TCP";
  if (p == "napster") return "Napster";
  if (p == "napster-data") return "Napster-data";
  return p;
}

}  // namespace

static void append_text_line(fmt::memory_buffer& out, const Message& m) {
  auto o = fmt::appender(out);
  fmt::format_to(o, FMT_COMPILE("{:>6} "), m.frame);
  // The time as whole microseconds: the same text as {:>11.6f}, without
  // floating-point formatting (this runs once per message).
  const auto micros = static_cast<std::int64_t>(std::llround(m.time * 1e6));
  if (micros >= 0) {
    fmt::format_to(o, FMT_COMPILE("{:>4}.{:06} "), micros / 1000000, micros % 1000000);
  } else {
    fmt::format_to(o, FMT_COMPILE("{:>11.6f} "), m.time);
  }
  if (m.stream >= 0) {
    char stream[24];
    auto* end = fmt::format_to(stream, FMT_COMPILE("#{}"), m.stream);
    fmt::format_to(o, FMT_COMPILE("{:>5} "), std::string_view(stream, static_cast<std::size_t>(end - stream)));
  } else {
    fmt::format_to(o, FMT_COMPILE("  udp "));
  }
  fmt::format_to(o, FMT_COMPILE("{} -> {} {}{} {} {}"), m.src, m.dst, proto_name(m.proto),
                 m.deflated ? "(deflated)" : "", m.kind, m.info);
}

std::string text_line(const Message& m) {
  fmt::memory_buffer out;
  append_text_line(out, m);
  return fmt::to_string(out);
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
  std::vector<std::uint16_t> napster_ports;
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
    } else if (a == "--napster-port") {
      if (i + 1 >= argv.size()) return usage("--napster-port needs a port");
      const std::string& v = argv[++i];
      unsigned port = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
      if (ec != std::errc() || p != v.data() + v.size() || port == 0 || port > 65535) {
        return usage("--napster-port: not a port: '" + v + "'");
      }
      napster_ports.push_back(static_cast<std::uint16_t>(port));
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
  options.napster_ports = napster_ports;
  // Lines are gathered in one buffer and written in large pieces.
  fmt::memory_buffer lines;
  auto flush = [&] {
    std::fwrite(lines.data(), 1, lines.size(), stdout);
    lines.clear();
  };
  auto res = decode_file(file, [&](Message&& m) {
    if (only_stream && m.stream != *only_stream) return;
    if (sub == "decode") {
      if (json) {
        const std::string line = json_line(m);
        lines.append(line.data(), line.data() + line.size());
      } else {
        append_text_line(lines, m);
      }
      lines.push_back('\n');
      if (lines.size() > (1 << 16)) flush();
      return;
    }
    ++checked;
    for (const auto& [code, text] : m.violations) {
      ++violations;
      fmt::print("frame {} stream {} {} -> {} {} {}: {}: {}\n", m.frame, m.stream, m.src, m.dst, proto_name(m.proto),
                 m.kind, code, text);
    }
  }, options);
  flush();
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
