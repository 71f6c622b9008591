// MP3 metadata the way file-sharing users pick files: bitrate, sample rate
// and length from the MPEG audio frame headers (ISO/IEC 11172-3 §2.4.1.3,
// 13818-3 for MPEG-2/2.5), with VBR files measured from their Xing/Info or
// VBRI header; title/artist/album from ID3v2.3/2.4 and ID3v1 tags.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "wire/common/bytes.hpp"

namespace sv::share {

struct AudioInfo {
  std::uint32_t bitrate_kbps = 0;  // average for VBR
  std::uint32_t sample_rate = 0;   // Hz
  std::uint32_t seconds = 0;
  bool vbr = false;
  std::string title, artist, album;  // UTF-8, empty when unknown
};

// `head`: the first bytes of the file (64 KiB are plenty unless the ID3v2 tag
// is larger: pass at least tag size + 4 KiB); `tail`: its last 128 bytes (or
// empty); `file_size`: the whole size. nullopt when no two consecutive valid
// MPEG audio frames are found.
std::optional<AudioInfo> read_mp3(wire::ByteView head, wire::ByteView tail, std::uint64_t file_size);
// Reads what read_mp3 needs from a file.
std::optional<AudioInfo> read_mp3_file(const std::string& path);

// "192 kbps 44.1 kHz 4:03" (the form servents put in result extensions).
std::string audio_summary(const AudioInfo& a);

}  // namespace sv::share
