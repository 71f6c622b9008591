// BitTorrent pieces the commands share: reading a metainfo file, our client
// settings, and a watched folder of .torrent files (servent run --torrent-dir).
#pragma once

#include <optional>
#include <set>
#include <string>

#include "servent/torrent/torrent_core.hpp"

namespace sv::cli {

struct LoadedTorrent {
  wire::bt::Metainfo meta;
  wire::bt::Sha1 info_hash;
  wire::Bytes info;  // the info dictionary's exact bytes
};
// A metainfo file, or nullopt with `error` saying why.
std::optional<LoadedTorrent> load_torrent_file(const std::string& path, std::string& error);

// Our peer id ("-SV0100-" and 12 random characters) and defaults.
TorrentConfig torrent_config();

// Every *.torrent in a folder, seeded from (or fetched into) that folder:
// the data sits next to its metainfo file (FOLDER/NAME, a file or a
// directory), as in a client's watch folder. scan() adds the files not yet
// added and returns what it printed about them (one line each).
class TorrentDir {
 public:
  TorrentDir(std::string dir, TorrentCore& core) : dir_(std::move(dir)), core_(core) {}
  std::vector<std::string> scan();
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  TorrentCore& core_;
  std::set<std::string> seen_;  // files looked at (added, or refused once)
};

}  // namespace sv::cli
