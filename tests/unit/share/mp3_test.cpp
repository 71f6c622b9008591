// MP3 files generated here, frame by frame (no downloads): CBR, Xing VBR,
// VBRI, MPEG-2, ID3v2.3/2.4 and ID3v1 tags, false frame syncs, garbage.
#include <doctest/doctest.h>

#include <string>

#include "share/mp3.hpp"

using namespace sv;
using namespace sv::share;

namespace {

// One MPEG audio frame: header, then zeros to the frame's length.
std::string frame(std::uint8_t b1, std::uint8_t b2, std::size_t length, std::uint8_t b3 = 0x00) {
  std::string f(length, '\0');
  f[0] = '\xff';
  f[1] = static_cast<char>(b1);
  f[2] = static_cast<char>(b2);
  f[3] = static_cast<char>(b3);
  return f;
}

// MPEG-1 layer III, 44.1 kHz: 128 kbps frames are 417 bytes, 192 kbps 626.
std::string mpeg1_128() { return frame(0xFB, 0x90, 417); }
std::string mpeg1_192() { return frame(0xFB, 0xB0, 626); }

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string id3v2(int major, const std::string& frames) {
  std::string h = "ID3";
  h += static_cast<char>(major);
  h += '\0';
  h += '\0';
  const auto n = static_cast<std::uint32_t>(frames.size());
  h += static_cast<char>((n >> 21) & 0x7f);
  h += static_cast<char>((n >> 14) & 0x7f);
  h += static_cast<char>((n >> 7) & 0x7f);
  h += static_cast<char>(n & 0x7f);
  return h + frames;
}

std::string text_frame(const std::string& id, const std::string& payload) {
  return id + be32(static_cast<std::uint32_t>(payload.size())) + std::string(2, '\0') + payload;
}

std::optional<AudioInfo> read(const std::string& file, std::size_t head = 64 * 1024) {
  const auto h = wire::as_bytes(std::string_view(file).substr(0, std::min(head, file.size())));
  const auto t = file.size() >= 128 ? wire::as_bytes(std::string_view(file).substr(file.size() - 128)) : wire::ByteView();
  return read_mp3(h, t, file.size());
}

}  // namespace

TEST_CASE("mp3_cbr_bitrate_rate_and_length_from_frame_headers") {
  std::string f;
  for (int i = 0; i < 1000; ++i) f += mpeg1_128();
  auto a = read(f);
  REQUIRE(a);
  CHECK(a->bitrate_kbps == 128);
  CHECK(a->sample_rate == 44100);
  CHECK(a->seconds == 26);  // 417,000 bytes at 128 kbps
  CHECK_FALSE(a->vbr);
  CHECK(audio_summary(*a) == "128 kbps 44.1 kHz 0:26");
}

TEST_CASE("mp3_vbr_length_and_average_from_the_xing_header") {
  // 2,000 frames alternating 128 and 192 kbps; the first carries the Xing header.
  std::string first = mpeg1_128();
  std::string body;
  for (int i = 0; i < 2000; ++i) body += i % 2 ? mpeg1_192() : mpeg1_128();
  const auto total = static_cast<std::uint32_t>(first.size() + body.size());
  first.replace(4 + 32, 16, "Xing" + be32(3) + be32(2001) + be32(total));
  auto a = read(first + body);
  REQUIRE(a);
  CHECK(a->vbr);
  CHECK(a->seconds == 52);  // 2001 * 1152 / 44100 = 52.27
  CHECK(a->bitrate_kbps >= 159);
  CHECK(a->bitrate_kbps <= 161);  // (1000*417 + 1000*626 + 417) * 8 / 52.27 s
}

TEST_CASE("mp3_vbr_from_a_vbri_header_and_mpeg2") {
  std::string first = mpeg1_128();
  first.replace(4 + 32, 18, "VBRI" + std::string(6, '\0') + be32(600000) + be32(3000));
  std::string f = first;
  for (int i = 0; i < 10; ++i) f += mpeg1_128();
  auto a = read(f);
  REQUIRE(a);
  CHECK(a->vbr);
  CHECK(a->seconds == 78);  // 3000 * 1152 / 44100 = 78.4
  // MPEG-2 layer III, 22.05 kHz, 64 kbps: 208-byte frames of 576 samples.
  std::string m2;
  for (int i = 0; i < 500; ++i) m2 += frame(0xF3, 0x80, 208);
  auto b = read(m2);
  REQUIRE(b);
  CHECK(b->sample_rate == 22050);
  CHECK(b->bitrate_kbps == 64);
  CHECK(b->seconds == 13);  // 104,000 bytes at 64 kbps
}

TEST_CASE("mp3_tags_from_id3v2_and_id3v1") {
  std::string frames = text_frame("TIT2", std::string("\x00", 1) + "Free Software Song") +
                       text_frame("TPE1", std::string("\x01\xff\xfe", 3) + std::string("R\0M\0S\0", 6)) +
                       text_frame("TALB", std::string("\x03", 1) + "Caf\xc3\xa9 Songs");
  std::string f = id3v2(3, frames);
  for (int i = 0; i < 100; ++i) f += mpeg1_128();
  auto a = read(f);
  REQUIRE(a);
  CHECK(a->title == "Free Software Song");
  CHECK(a->artist == "RMS");
  CHECK(a->album == "Caf\xc3\xa9 Songs");
  CHECK(a->bitrate_kbps == 128);
  // ID3v1 only: 128 bytes at the end, fields padded with spaces or NULs.
  std::string g;
  for (int i = 0; i < 100; ++i) g += mpeg1_128();
  std::string v1 = "TAG" + std::string("Song One") + std::string(22, ' ') + "Band" + std::string(26, '\0') +
                   std::string("Album\xe9", 6) + std::string(24, ' ') + std::string(35, '\0');
  REQUIRE(v1.size() == 128);
  auto b = read(g + v1);
  REQUIRE(b);
  CHECK(b->title == "Song One");
  CHECK(b->artist == "Band");
  CHECK(b->album == "Album\xc3\xa9");
  CHECK(b->seconds == 3);  // 41,700 bytes of audio at 128 kbps
}

TEST_CASE("mp3_false_syncs_and_garbage") {
  // A lone frame-sync-looking pair in junk before the audio is skipped.
  std::string f = std::string("junk\xff\xfb\x90\x00more junk", 17);
  for (int i = 0; i < 50; ++i) f += mpeg1_128();
  auto a = read(f);
  REQUIRE(a);
  CHECK(a->bitrate_kbps == 128);
  CHECK_FALSE(read(std::string(5000, 'x')));
  CHECK_FALSE(read(""));
  CHECK_FALSE(read(std::string("\xff\xfb\x90\x00", 4) + std::string(100, 'z')));  // one frame, unconfirmed
  // A truncated ID3v2 tag claiming more than there is.
  CHECK_FALSE(read(id3v2(4, std::string(10, 'T')).substr(0, 12)));
}
