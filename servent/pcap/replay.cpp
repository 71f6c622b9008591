// servent pcap replay: plays the client side of a captured Gnutella or HTTP
// conversation against a live servent and compares the answers structurally.
// The replaying side is a client on the Driver (StreamClient), like every
// other connection the servent makes.
#include <fmt/core.h>

#include <chrono>
#include <map>
#include <random>

#include "http/response_parser.hpp"
#include "servent/pcap/capture.hpp"
#include "servent/pcap/replay.hpp"
#include "servent/uv/stream_client.hpp"
#include "wire/common/zlib_stream.hpp"
#include "wire/gnutella/framer.hpp"
#include "wire/gnutella/handshake.hpp"

namespace sv::pcap {

namespace gn = wire::gnutella;

namespace {

struct Report {
  int differences = 0;
  void line(const std::string& what, const std::string& captured, const std::string& live) {
    const bool same = captured == live;
    differences += !same;
    fmt::print("  {:<28} captured: {:<26} live: {:<26} {}\n", what, captured, live, same ? "same" : "DIFFERS");
  }
};

std::string replies(const std::vector<std::string>& kinds) {
  if (kinds.empty()) return "no reply";
  std::map<std::string, int> count;
  for (const auto& k : kinds) ++count[k];
  std::string s;
  for (const auto& [k, n] : count) s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + k;
  return s;
}

int replay_gnutella(const std::vector<Message>& client, const std::vector<Message>& server, Endpoint to,
                    std::chrono::milliseconds wait) {
  Report rep;
  StreamClient s;
  if (!s.connect(to, 10s)) {
    fmt::print(stderr, "servent pcap replay: {}\n", s.error());
    return 1;
  }
  std::vector<const Message*> blocks, server_blocks;
  for (const auto& m : client) {
    if (m.kind == "handshake") blocks.push_back(&m);
  }
  for (const auto& m : server) {
    if (m.kind == "handshake") server_blocks.push_back(&m);
  }
  if (blocks.empty()) {
    fmt::print(stderr, "servent pcap replay: the stream has no handshake to replay\n");
    return 1;
  }
  wire::Bytes& in = s.received();
  s.send(blocks[0]->block);
  const std::string first(blocks[0]->block.begin(), blocks[0]->block.end());
  const bool v04 = first.starts_with("GNUTELLA CONNECT/0.4");
  std::optional<gn::Handshake> answer;
  s.read_until([&](const wire::Bytes& b) {
    auto r = gn::decode_handshake(b);
    if (r) answer = *r;
    return !r.need_more();
  }, 10s);
  const std::string captured_status =
      server_blocks.empty() ? "no answer" : server_blocks[0]->info.substr(0, server_blocks[0]->info.find(" ("));
  std::string live_status = "no answer";
  if (answer) {
    live_status = answer->is_04() && answer->kind == gn::Handshake::Kind::Response
                      ? "GNUTELLA OK"
                      : "GNUTELLA/" + std::to_string(answer->major) + "." + std::to_string(answer->minor) + " " +
                            std::to_string(answer->status) + " " + answer->reason;
  }
  rep.line("handshake", captured_status, live_status);
  if (!answer || answer->status != 200) {
    fmt::print("replay: {} difference{}\n", rep.differences, rep.differences == 1 ? "" : "s");
    return rep.differences == 0 ? 0 : 1;
  }
  in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(answer->consumed));
  bool deflate_out = false;
  if (!v04 && blocks.size() > 1) {
    s.send(blocks[1]->block);
    const std::string fin(blocks[1]->block.begin(), blocks[1]->block.end());
    deflate_out = wire::to_lower(fin).find("content-encoding: deflate") != std::string::npos;
  }
  const bool inflate_in = wire::to_lower(answer->headers.get("Content-Encoding").value_or("")).find("deflate") !=
                          std::string::npos;
  // Client descriptors, with fresh GUIDs for the requests.
  std::mt19937_64 rng(std::random_device{}());
  std::map<gn::Guid, gn::Guid> fresh;  // captured -> sent
  wire::Deflater deflater;
  std::vector<const Message*> requests;
  for (const auto& m : client) {
    if (m.raw.empty()) continue;
    wire::Bytes d = m.raw;
    if (m.kind == "Ping" || m.kind == "Query") {
      gn::Guid g;
      for (auto& byte : g.bytes) byte = static_cast<std::uint8_t>(rng());
      g.bytes[8] = 0xff;
      g.bytes[15] = 0;
      fresh[*m.guid] = g;
      std::copy(g.bytes.begin(), g.bytes.end(), d.begin());
      requests.push_back(&m);
    }
    if (deflate_out) {
      wire::Bytes z;
      deflater.write(d, z);
      d = std::move(z);
    }
    s.send(d);
  }
  // What comes back within the wait.
  std::vector<std::pair<gn::Guid, std::string>> live;
  wire::Inflater inflater;
  gn::Framer framer;
  auto drain = [&](wire::ByteView bytes) {
    framer.feed(bytes);
    while (auto f = framer.next()) live.emplace_back(f->header.id, std::string(gn::type_name(f->header.type)));
    return true;
  };
  auto consume = [&] {
    if (inflate_in) {
      (void)inflater.read(in, drain);
    } else {
      drain(in);
    }
    in.clear();
  };
  consume();
  s.read_until([&](const wire::Bytes& b) {
    if (!b.empty()) consume();
    return false;
  }, wait);
  consume();
  for (const Message* req : requests) {
    std::vector<std::string> captured_kinds, live_kinds;
    for (const auto& m : server) {
      if (m.guid && *m.guid == *req->guid && !m.raw.empty()) captured_kinds.push_back(m.kind);
    }
    const gn::Guid sent = fresh.at(*req->guid);
    for (const auto& [g, kind] : live) {
      if (g == sent) live_kinds.push_back(kind);
    }
    std::string what = req->kind;
    if (req->kind == "Query") {
      auto q = req->info.find('"');
      what += " " + req->info.substr(q, req->info.find('"', q + 1) - q + 1);
    }
    rep.line(what.substr(0, 28), replies(captured_kinds), replies(live_kinds));
  }
  fmt::print("replay: {} difference{}\n", rep.differences, rep.differences == 1 ? "" : "s");
  return rep.differences == 0 ? 0 : 1;
}

int replay_http(const std::vector<Message>& client, const std::vector<Message>& server, Endpoint to) {
  Report rep;
  std::vector<const Message*> responses;
  for (const auto& m : server) {
    if (m.kind == "response") responses.push_back(&m);
  }
  std::size_t i = 0;
  for (const auto& req : client) {
    if (req.kind != "request") continue;
    StreamClient s;  // one connection per request: simplest to compare
    if (!s.connect(to, 10s)) {
      fmt::print(stderr, "servent pcap replay: {}\n", s.error());
      return 1;
    }
    s.send(req.block);
    std::optional<http::Response> resp;
    s.read_until([&](const wire::Bytes& b) {
      std::size_t used = 0;
      http::ResponseParser p;
      auto st = p.feed(b, used);
      if (st == http::ResponseParser::State::Complete) resp = p.response();
      return st != http::ResponseParser::State::NeedMore;
    }, 10s);
    auto summary = [](int status, std::optional<std::uint64_t> len) {
      return std::to_string(status) + (len ? ", " + std::to_string(*len) + " bytes" : "");
    };
    std::string captured = "no response";
    if (i < responses.size()) {
      const auto& info = responses[i]->info;
      std::optional<std::uint64_t> len;
      if (auto at = info.find("Content-Length: "); at != std::string::npos) len = std::stoull(info.substr(at + 16));
      captured = summary(std::stoi(info.substr(9, 3)), len);
    }
    ++i;
    rep.line(req.info.substr(0, 28), captured, resp ? summary(resp->status, resp->content_length) : "no response");
  }
  fmt::print("replay: {} difference{}\n", rep.differences, rep.differences == 1 ? "" : "s");
  return rep.differences == 0 ? 0 : 1;
}

}  // namespace

int replay(const std::string& file, Endpoint to, std::optional<std::int64_t> stream, std::chrono::milliseconds wait) {
  std::map<std::int64_t, std::vector<Message>> streams;
  DecodeOptions options;
  options.fields = false;
  auto res = decode_file(file, [&](Message&& m) {
    if (m.stream >= 0 && (!stream || m.stream == *stream)) streams[m.stream].push_back(std::move(m));
  }, options);
  if (!res.opened) {
    fmt::print(stderr, "servent pcap: {}: not a readable capture ({})\n", file, res.error);
    return 1;
  }
  for (auto& [id, msgs] : streams) {
    if (msgs.empty()) continue;
    const Message& first = msgs.front();
    const bool gnutella = first.proto == "gnutella" && first.kind == "handshake" && first.info.starts_with("GNUTELLA CONNECT");
    const bool http = first.proto == "http" && first.kind == "request";
    if (!gnutella && !http) continue;
    const std::string client_addr = first.src, server_addr = first.dst;
    std::vector<Message> client, server;
    for (auto& m : msgs) (m.src == client_addr ? client : server).push_back(std::move(m));
    fmt::print("replay: stream #{} ({}) from {} to {}, against {}\n", id, gnutella ? "gnutella" : "http", client_addr,
               server_addr, to.to_string());
    return gnutella ? replay_gnutella(client, server, to, wait) : replay_http(client, server, to);
  }
  fmt::print(stderr, "servent pcap replay: {}: no Gnutella or HTTP conversation{} with its client side to replay\n",
             file, stream ? " in stream #" + std::to_string(*stream) : "");
  return 1;
}

}  // namespace sv::pcap
