// Every capture in pcap-fixtures/ decodes exactly to its .expected, and every
// Gnutella descriptor in it re-encodes byte-identical from its decoded form.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "servent/pcap/capture.hpp"
#include "servent/pcap/pcap_tool.hpp"
#include "wire/gnutella/descriptors.hpp"

namespace fs = std::filesystem;
using namespace sv;
namespace gn = sv::wire::gnutella;

namespace {

std::vector<fs::path> fixtures() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(SERVENT_FIXTURES)) {
    if (e.path().extension() == ".pcap" || e.path().extension() == ".pcapng") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Decode, then encode again, with the codecs servent itself speaks with.
std::optional<wire::Bytes> reencode(const wire::Bytes& raw) {
  auto h = gn::decode_header(raw);
  if (!h) return std::nullopt;
  wire::ByteView payload = wire::ByteView(raw).subspan(gn::kHeaderSize);
  wire::Bytes p;
  switch (static_cast<gn::Type>(h->type)) {
    case gn::Type::Pong: {
      auto v = gn::decode_pong(payload);
      if (!v) return std::nullopt;
      gn::encode_pong(p, *v);
      break;
    }
    case gn::Type::Query: {
      auto v = gn::decode_query(payload);
      if (!v) return std::nullopt;
      gn::encode_query(p, *v);
      break;
    }
    case gn::Type::QueryHit: {
      auto v = gn::decode_query_hit(payload);
      if (!v) return std::nullopt;
      gn::encode_query_hit(p, *v);
      break;
    }
    case gn::Type::Push: {
      auto v = gn::decode_push(payload);
      if (!v) return std::nullopt;
      gn::encode_push(p, *v);
      break;
    }
    default:
      p.assign(payload.begin(), payload.end());  // opaque payloads travel as they are
  }
  wire::Bytes out;
  gn::encode_header(out, *h);
  out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_CASE("every_fixture_decodes_to_its_expected_text") {
  const auto files = fixtures();
  REQUIRE(files.size() >= 8);
  for (const auto& f : files) {
    CAPTURE(f.filename().string());
    std::string got;
    auto res = pcap::decode_file(f.string(), [&](pcap::Message&& m) { got += pcap::text_line(m) + "\n"; });
    REQUIRE(res.opened);
    CHECK(res.error.empty());
    std::ifstream in(f.string() + ".expected");
    REQUIRE(in);
    std::stringstream want;
    want << in.rdbuf();
    CHECK(got == want.str());
  }
}

TEST_CASE("every_captured_descriptor_reencodes_byte_identical") {
  std::size_t descriptors = 0;
  std::map<std::string, std::size_t> by_kind;
  for (const auto& f : fixtures()) {
    CAPTURE(f.filename().string());
    pcap::decode_file(f.string(), [&](pcap::Message&& m) {
      if (m.raw.empty()) return;
      ++descriptors;
      ++by_kind[m.kind];
      auto again = reencode(m.raw);
      CAPTURE(m.frame);
      CAPTURE(m.kind);
      REQUIRE(again);
      CHECK(*again == m.raw);
    });
  }
  CHECK(descriptors > 1000);
  for (const char* kind : {"Ping", "Pong", "Query", "QueryHit", "Push", "Bye", "QRP", "Vendor"}) {
    CAPTURE(kind);
    CHECK(by_kind[kind] > 0);
  }
}

TEST_CASE("gtk_gnutella_deflated_session_decodes") {
  std::vector<std::string> kinds;
  pcap::decode_file(std::string(SERVENT_FIXTURES) + "/02_leaf_defaultcfg_403_uncompressed_then_deflate_ok.pcap",
                    [&](pcap::Message&& m) {
                      if (m.deflated) kinds.push_back(m.kind);
                    });
  CHECK(kinds == std::vector<std::string>{"Ping", "Pong", "Query", "QueryHit"});
}
