#include "share/mp3.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <vector>

namespace sv::share {

namespace {

struct FrameHeader {
  int version = 0;  // 1 = MPEG-1, 2 = MPEG-2, 25 = MPEG-2.5
  int layer = 0;    // 1, 2, 3
  std::uint32_t bitrate = 0;  // kbps
  std::uint32_t sample_rate = 0;
  bool padding = false;
  bool mono = false;
  std::uint32_t length = 0;           // bytes
  std::uint32_t samples_per_frame = 0;
};

// ISO/IEC 11172-3 Table 2.4.2.3 and 13818-3 Table 2.4.2.3.
constexpr std::array<std::array<std::uint16_t, 16>, 5> kBitrates = {{
    {0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0},  // MPEG-1 layer I
    {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0},     // MPEG-1 layer II
    {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0},      // MPEG-1 layer III
    {0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0},     // MPEG-2/2.5 layer I
    {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},          // MPEG-2/2.5 layers II, III
}};

std::optional<FrameHeader> parse_frame(const std::uint8_t* p) {
  if (p[0] != 0xFF || (p[1] & 0xE0) != 0xE0) return std::nullopt;
  FrameHeader h;
  const int v = (p[1] >> 3) & 3, l = (p[1] >> 1) & 3, br = p[2] >> 4, sr = (p[2] >> 2) & 3;
  if (v == 1 || l == 0 || br == 0 || br == 15 || sr == 3) return std::nullopt;  // reserved, free format
  h.version = v == 3 ? 1 : v == 2 ? 2 : 25;
  h.layer = 4 - l;
  const int table = h.version == 1 ? h.layer - 1 : (h.layer == 1 ? 3 : 4);
  h.bitrate = kBitrates[static_cast<std::size_t>(table)][static_cast<std::size_t>(br)];
  static constexpr std::array<std::uint32_t, 3> kRates = {44100, 48000, 32000};
  h.sample_rate = kRates[static_cast<std::size_t>(sr)] / (h.version == 1 ? 1 : h.version == 2 ? 2 : 4);
  h.padding = (p[2] >> 1) & 1;
  h.mono = (p[3] >> 6) == 3;
  if (h.layer == 1) {
    h.samples_per_frame = 384;
    h.length = (12 * h.bitrate * 1000 / h.sample_rate + (h.padding ? 1 : 0)) * 4;
  } else {
    h.samples_per_frame = h.layer == 3 && h.version != 1 ? 576 : 1152;
    h.length = h.samples_per_frame / 8 * h.bitrate * 1000 / h.sample_rate + (h.padding ? 1 : 0);
  }
  if (h.length < 24) return std::nullopt;
  return h;
}

std::uint32_t syncsafe(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} & 0x7F) << 21 | (std::uint32_t{p[1]} & 0x7F) << 14 | (std::uint32_t{p[2]} & 0x7F) << 7 |
         (p[3] & 0x7F);
}

// ID3v2 text frame payload → UTF-8 (encodings: 0 Latin-1, 1 UTF-16 with BOM, 2 UTF-16BE, 3 UTF-8).
std::string id3_text(wire::ByteView d) {
  if (d.empty()) return {};
  const int enc = d[0];
  d = d.subspan(1);
  std::string out;
  auto put = [&](std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | cp >> 6));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | cp >> 12));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | cp >> 18));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  };
  if (enc == 0) {
    for (auto c : d) {
      if (c == 0) break;
      put(c);
    }
  } else if (enc == 3) {
    for (auto c : d) {
      if (c == 0) break;
      out.push_back(static_cast<char>(c));
    }
  } else {
    bool big = enc == 2;
    std::size_t i = 0;
    if (enc == 1 && d.size() >= 2) {
      big = d[0] == 0xFE && d[1] == 0xFF;
      i = 2;
    }
    for (; i + 1 < d.size(); i += 2) {
      std::uint32_t u = big ? (d[i] << 8 | d[i + 1]) : (d[i + 1] << 8 | d[i]);
      if (u == 0) break;
      if (u >= 0xD800 && u < 0xDC00 && i + 3 < d.size()) {
        const std::uint32_t lo = big ? (d[i + 2] << 8 | d[i + 3]) : (d[i + 3] << 8 | d[i + 2]);
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        i += 2;
      }
      put(u);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string latin1_field(wire::ByteView f) {
  std::string out;
  for (auto c : f) {
    if (c == 0) break;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back(static_cast<char>(0xC0 | c >> 6));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::optional<AudioInfo> read_mp3(wire::ByteView head, wire::ByteView tail, std::uint64_t file_size) {
  AudioInfo info;
  std::size_t pos = 0;
  // ID3v2 (id3.org id3v2.4.0-structure §3.1): "ID3" ver rev flags size(syncsafe).
  if (head.size() >= 10 && head[0] == 'I' && head[1] == 'D' && head[2] == '3') {
    const int major = head[3];
    const std::size_t size = syncsafe(head.data() + 6);
    const bool footer = head[5] & 0x10;
    std::size_t fp = 10;
    const std::size_t end = std::min<std::size_t>(10 + size, head.size());
    while ((major == 3 || major == 4) && fp + 10 <= end) {
      const std::string_view id = wire::as_chars(head.subspan(fp, 4));
      if (id[0] == 0) break;  // padding
      const std::size_t fsize = major == 4 ? syncsafe(head.data() + fp + 4) : wire::get_be32(head.data() + fp + 4);
      if (fp + 10 + fsize > end) break;
      auto body = head.subspan(fp + 10, fsize);
      if (id == "TIT2") info.title = id3_text(body);
      if (id == "TPE1") info.artist = id3_text(body);
      if (id == "TALB") info.album = id3_text(body);
      fp += 10 + fsize;
    }
    pos = 10 + size + (footer ? 10 : 0);
  }
  // The first frame whose successor also parses (guards against false syncs).
  std::optional<FrameHeader> first;
  std::size_t first_pos = 0;
  for (std::size_t i = pos; i + 4 <= head.size(); ++i) {
    auto h = parse_frame(head.data() + i);
    if (!h) continue;
    const std::size_t next = i + h->length;
    if (next + 4 <= head.size()) {
      auto h2 = parse_frame(head.data() + next);
      if (!h2 || h2->version != h->version || h2->layer != h->layer || h2->sample_rate != h->sample_rate) continue;
    } else if (next != file_size) {
      continue;  // cannot confirm it
    }
    first = h;
    first_pos = i;
    break;
  }
  if (!first) return std::nullopt;
  info.sample_rate = first->sample_rate;
  const bool id3v1 = tail.size() == 128 && tail[0] == 'T' && tail[1] == 'A' && tail[2] == 'G';
  if (id3v1) {
    if (info.title.empty()) info.title = latin1_field(tail.subspan(3, 30));
    if (info.artist.empty()) info.artist = latin1_field(tail.subspan(33, 30));
    if (info.album.empty()) info.album = latin1_field(tail.subspan(63, 30));
  }
  const std::uint64_t audio_bytes = file_size - first_pos - (id3v1 ? 128 : 0);
  // Xing/Info (after the side information) or VBRI (32 bytes in): VBR totals.
  const std::size_t side = first->version == 1 ? (first->mono ? 17 : 32) : (first->mono ? 9 : 17);
  std::uint32_t frames = 0;
  std::uint64_t vbr_bytes = 0;
  const std::size_t x = first_pos + 4 + side;
  if (first->layer == 3 && x + 16 <= head.size()) {
    const std::string_view tag = wire::as_chars(head.subspan(x, 4));
    if (tag == "Xing" || tag == "Info") {
      const std::uint32_t flags = wire::get_be32(head.data() + x + 4);
      std::size_t at = x + 8;
      if (flags & 1) {
        frames = wire::get_be32(head.data() + at);
        at += 4;
      }
      if ((flags & 2) && at + 4 <= head.size()) vbr_bytes = wire::get_be32(head.data() + at);
      info.vbr = tag == "Xing";
    }
  }
  const std::size_t v = first_pos + 4 + 32;
  if (!frames && v + 18 <= head.size() && wire::as_chars(head.subspan(v, 4)) == "VBRI") {
    vbr_bytes = wire::get_be32(head.data() + v + 10);
    frames = wire::get_be32(head.data() + v + 14);
    info.vbr = true;
  }
  if (frames) {
    const double secs = static_cast<double>(frames) * first->samples_per_frame / first->sample_rate;
    info.seconds = static_cast<std::uint32_t>(secs + 0.5);
    const std::uint64_t bytes = vbr_bytes ? vbr_bytes : audio_bytes;
    info.bitrate_kbps = secs > 0 ? static_cast<std::uint32_t>(static_cast<double>(bytes) * 8 / secs / 1000 + 0.5) : 0;
    if (!info.vbr) info.bitrate_kbps = first->bitrate;  // "Info": a CBR file with a LAME header
  } else {
    info.bitrate_kbps = first->bitrate;
    info.seconds = static_cast<std::uint32_t>(static_cast<double>(audio_bytes) * 8 / (first->bitrate * 1000.0) + 0.5);
  }
  return info;
}

std::optional<AudioInfo> read_mp3_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  ::fstat(fd, &st);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::vector<std::uint8_t> head(static_cast<std::size_t>(std::min<std::uint64_t>(size, 64 * 1024)));
  ssize_t n = ::pread(fd, head.data(), head.size(), 0);
  if (n > 0 && head.size() >= 10 && head[0] == 'I' && head[1] == 'D' && head[2] == '3') {
    // A large tag (cover art): read past it.
    const std::size_t need = 10 + syncsafe(head.data() + 6) + 8192;
    if (need > head.size() && need <= 16 * 1024 * 1024) {
      head.resize(static_cast<std::size_t>(std::min<std::uint64_t>(size, need)));
      n = ::pread(fd, head.data(), head.size(), 0);
    }
  }
  std::array<std::uint8_t, 128> tail{};
  ssize_t t = size >= 128 ? ::pread(fd, tail.data(), 128, static_cast<off_t>(size - 128)) : 0;
  ::close(fd);
  if (n <= 0) return std::nullopt;
  head.resize(static_cast<std::size_t>(n));
  return read_mp3(head, t == 128 ? wire::ByteView(tail) : wire::ByteView(), size);
}

std::string audio_summary(const AudioInfo& a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%u kbps %g kHz %u:%02u", a.bitrate_kbps, a.sample_rate / 1000.0, a.seconds / 60,
                a.seconds % 60);
  return buf;
}

}  // namespace sv::share
