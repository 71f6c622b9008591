// Metainfo (BEP 3): Transmission's own .torrent files decode with the
// info-hashes transmission-show prints, re-encode byte for byte, and every
// field that is wrong is refused with its name.
#include <doctest/doctest.h>

#include <string>

#include "share/sha1.hpp"
#include "unit/wire/vectors_bt.hpp"
#include "wire/bt/metainfo.hpp"

using namespace sv;
using namespace sv::wire;
using namespace sv::wire::bt;

namespace {

std::string hex(const share::Sha1& h) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto b : h) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

std::string info_hash(ByteView file, const Metainfo& m) {
  share::Sha1Hasher h;
  h.update(file.data() + m.info_begin, m.info_end - m.info_begin);
  return hex(h.finish());
}

Metainfo ok(ByteView in) {
  auto r = decode_metainfo(in);
  if (auto* e = std::get_if<MetainfoError>(&r)) FAIL(e->what);
  return std::get<Metainfo>(r);
}

std::string refused(std::string_view in) {
  auto r = decode_metainfo(as_bytes(in));
  REQUIRE(std::holds_alternative<MetainfoError>(r));
  return std::get<MetainfoError>(r).what;
}

// A minimal valid single-file torrent with the info dictionary `info`.
std::string with_info(std::string_view info) { return "d4:info" + std::string(info) + "e"; }

}  // namespace

TEST_CASE("metainfo_decodes_transmissions_multi_file_torrent_with_its_info_hash") {
  const ByteView file(test::kMultiTorrent, sizeof test::kMultiTorrent);
  const Metainfo m = ok(file);
  CHECK(info_hash(file, m) == "5033ec09d01aad49d706ee07d2ffa0b593258df3");
  CHECK(m.announce == "http://127.0.0.1:6969/announce");
  CHECK(m.comment == "servent fixture");
  CHECK(m.created_by.starts_with("Transmission/3.00"));
  CHECK(m.name == "album");
  CHECK(m.is_private);
  CHECK(m.multi_file);
  CHECK(m.piece_length == 16384);
  CHECK(m.piece_count() == 3);
  CHECK(m.total_length == 40011);
  CHECK(m.piece_size(0) == 16384);
  CHECK(m.piece_size(2) == 40011 - 2 * 16384);
  CHECK(m.piece_size(3) == 0);
  REQUIRE(m.files.size() == 2);
  CHECK(m.files[0].path == std::vector<std::string>{"a.txt"});
  CHECK(m.files[0].length == 11);
  CHECK(m.files[1].path == std::vector<std::string>{"disc1", "b.bin"});
  CHECK(m.files[1].offset == 11);
  // Our encoder writes the same bytes (the same keys, canonical form).
  CHECK(encode_metainfo(m) == Bytes(file.begin(), file.end()));
}

TEST_CASE("metainfo_decodes_a_single_file_torrent_and_its_info_hash") {
  const ByteView file(test::kSingleTorrent, sizeof test::kSingleTorrent);
  const Metainfo m = ok(file);
  CHECK(info_hash(file, m) == "2d060efb354915e0558e3407139f706e504bc117");
  CHECK_FALSE(m.multi_file);
  CHECK_FALSE(m.is_private);
  CHECK(m.name == "one.txt");
  CHECK(m.total_length == 7);
  REQUIRE(m.files.size() == 1);
  CHECK(m.files[0].path == std::vector<std::string>{"one.txt"});
  CHECK(encode_metainfo(m) == Bytes(file.begin(), file.end()));
}

TEST_CASE("metainfo_refuses_every_bad_field_by_name") {
  const std::string h20(20, 'h');
  const std::string good = "d6:lengthi5e4:name1:x12:piece lengthi16e6:pieces20:" + h20 + "e";
  REQUIRE(std::holds_alternative<Metainfo>(decode_metainfo(as_bytes(with_info(good)))));
  struct Case {
    std::string in;
    std::string_view names;
  };
  const Case cases[] = {
      {"i1e", "not a dictionary"},
      {"de", "info: missing"},
      {"d4:infoi1ee", "info: not a dictionary"},
      {"d8:announcei1e4:info" + good + "e", "announce"},
      {"d13:announce-listli1ee4:info" + good + "e", "announce-list"},
      {with_info("d6:lengthi5e12:piece lengthi16e6:pieces20:" + h20 + "e"), "info.name"},
      {with_info("d6:lengthi5e4:name2:..12:piece lengthi16e6:pieces20:" + h20 + "e"), "info.name"},
      {with_info("d6:lengthi5e4:name3:a/b12:piece lengthi16e6:pieces20:" + h20 + "e"), "info.name"},
      {with_info("d6:lengthi5e4:name1:x12:piece lengthi0e6:pieces20:" + h20 + "e"), "info.piece length"},
      {with_info("d6:lengthi5e4:name1:x12:piece lengthi-1e6:pieces20:" + h20 + "e"), "info.piece length"},
      {with_info("d6:lengthi5e4:name1:x12:piece lengthi16e6:pieces19:" + h20.substr(1) + "e"), "info.pieces"},
      {with_info("d6:lengthi50e4:name1:x12:piece lengthi16e6:pieces20:" + h20 + "e"), "info.pieces"},
      {with_info("d4:name1:x12:piece lengthi16e6:pieces20:" + h20 + "e"), "exactly one of length and files"},
      {with_info("d5:filesle6:lengthi5e4:name1:x12:piece lengthi16e6:pieces20:" + h20 + "e"), "exactly one"},
      {with_info("d6:lengthi-5e4:name1:x12:piece lengthi16e6:pieces20:" + h20 + "e"), "info.length"},
      {with_info("d5:filesle4:name1:x12:piece lengthi16e6:pieces0:e"), "info.files: empty"},
      {with_info("d5:filesld6:lengthi5eee4:name1:x12:piece lengthi16e6:pieces20:" + h20 + "e"), "info.files[0].path"},
      {with_info("d5:filesld6:lengthi5e4:pathl2:..1:yeee4:name1:x12:piece lengthi16e6:pieces20:" + h20 + "e"),
       "info.files[0].path"},
      {with_info("d5:filesld6:lengthi5e4:pathl0:eee4:name1:x12:piece lengthi16e6:pieces20:" + h20 + "e"),
       "info.files[0].path"},
      {with_info("d5:filesld4:pathl1:yeee4:name1:x12:piece lengthi16e6:pieces20:" + h20 + "e"), "info.files[0].length"},
      {with_info("d4:name1:x6:lengthi5e12:piece lengthi16e6:pieces20:" + h20 + "e"), "bencode"},  // keys out of order
      {with_info(good) + "x", "bencode"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    const std::string what = refused(c.in);
    CAPTURE(what);
    CHECK(what.find(c.names) != std::string::npos);
  }
}

TEST_CASE("metainfo_limits_piece_length_files_and_total") {
  MetainfoLimits l;
  l.max_piece_length = 1024;
  const std::string h20(20, 'h');
  auto r = decode_metainfo(as_bytes(with_info("d6:lengthi5e4:name1:x12:piece lengthi2048e6:pieces20:" + h20 + "e")), l);
  REQUIRE(std::holds_alternative<MetainfoError>(r));
  CHECK(std::get<MetainfoError>(r).kind == WireError::TooLarge);
  l = {};
  l.max_files = 1;
  r = decode_metainfo(
      as_bytes(with_info("d5:filesld6:lengthi1e4:pathl1:aeed6:lengthi1e4:pathl1:beee4:name1:x12:piece lengthi16e6:pieces20:" +
                         h20 + "e")),
      l);
  REQUIRE(std::holds_alternative<MetainfoError>(r));
  CHECK(std::get<MetainfoError>(r).kind == WireError::TooLarge);
}

TEST_CASE("metainfo_built_in_code_round_trips") {
  Metainfo m;
  m.announce = "http://127.0.0.1:1/announce";
  m.announce_list = {{"http://127.0.0.1:1/announce"}, {"udp://127.0.0.1:2"}};
  m.name = "dir";
  m.piece_length = 32768;
  m.multi_file = true;
  m.files = {FileEntry{{"a"}, 40000, 0}, FileEntry{{"sub", "b"}, 30000, 40000}};
  m.total_length = 70000;
  m.pieces.resize(3);
  m.pieces[1][0] = 0xab;
  const Bytes b = encode_metainfo(m);
  const Metainfo back = ok(b);
  CHECK(back.announce_list == m.announce_list);
  CHECK(back.files[1].path == m.files[1].path);
  CHECK(back.files[1].offset == 40000);
  CHECK(back.pieces == m.pieces);
  CHECK(encode_metainfo(back) == b);
  // The info dictionary's bytes are what info_value encodes.
  CHECK(Bytes(b.begin() + static_cast<std::ptrdiff_t>(back.info_begin), b.begin() + static_cast<std::ptrdiff_t>(back.info_end)) ==
        encode_bencode(info_value(m)));
}
