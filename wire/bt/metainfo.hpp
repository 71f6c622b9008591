// Metainfo files (.torrent), version 1 (BEP 3 "metainfo files", BEP 12
// announce-list, BEP 27 private):
//
//   d announce      string   tracker URL (optional when announce-list or for trackerless torrents)
//     announce-list list of lists of strings (tiers)
//     comment, created by, encoding: strings; creation date: integer (all optional)
//     info          d name          string   suggested file (single) or directory (multi) name
//                     piece length  integer  bytes per piece (> 0)
//                     pieces        string   20-byte SHA-1 per piece, concatenated
//                     private       integer  1: use only the listed trackers (optional)
//                     length        integer  single file: its size                        } exactly
//                     files         list of d length integer, path list of strings e  } one
//   e
//
// The info-hash is the SHA-1 of the exact bytes of the info dictionary as
// they are in the file (`info_begin`/`info_end`; this layer hashes nothing).
// Names and path components are checked so that no file can land outside
// the download directory: no "", ".", "..", "/", "\" or NUL in any of them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "wire/bt/bencode.hpp"
#include "wire/bt/ids.hpp"

namespace sv::wire::bt {

struct FileEntry {
  std::vector<std::string> path;  // components under the torrent's directory (single file: {name})
  std::uint64_t length = 0;
  std::uint64_t offset = 0;       // where it starts in the torrent's byte stream
};

struct MetainfoLimits {
  BencodeLimits bencode{};
  std::uint64_t max_piece_length = 1u << 28;  // 256 MiB
  std::size_t max_files = 100000;
  std::uint64_t max_total = std::uint64_t{1} << 50;
};

struct Metainfo {
  std::string announce;
  std::vector<std::vector<std::string>> announce_list;
  std::string comment, created_by, encoding;
  std::int64_t creation_date = 0;
  // info
  std::string name;
  std::uint64_t piece_length = 0;
  std::vector<Sha1> pieces;
  bool is_private = false;
  bool private_key = false;  // "private" was there (some clients write 0): kept for re-encoding
  bool multi_file = false;
  std::vector<FileEntry> files;
  std::uint64_t total_length = 0;
  std::size_t info_begin = 0, info_end = 0;  // the info dictionary's bytes in the decoded input

  std::size_t piece_count() const { return pieces.size(); }
  // Bytes in piece i (the last one may be short).
  std::uint64_t piece_size(std::size_t i) const;
};

struct MetainfoError {
  WireError kind;
  std::string what;  // "info.pieces: length not a multiple of 20", "bencode: malformed at byte 7: ..."
};

std::variant<Metainfo, MetainfoError> decode_metainfo(ByteView in, const MetainfoLimits& limits = {});

// The info dictionary for the fields above, and a whole file around it.
Value info_value(const Metainfo& m);
Bytes encode_metainfo(const Metainfo& m);

// Whether a name or path component is safe to create under a directory.
bool safe_path_component(std::string_view c);

}  // namespace sv::wire::bt
