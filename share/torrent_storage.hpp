// A torrent's bytes on disk: the torrent is one byte stream cut into pieces;
// the stream is its files end to end (metainfo order), each at
// <root>/<name> (single file) or <root>/<name>/<path...> (multi-file).
//
// Every call here does blocking file I/O and is meant for the thread pool
// (the torrent core asks the Driver to run it; the loop never waits on a
// disk). Calls on one TorrentStorage may run on several threads at once:
// they share only descriptors opened once up front (pread/pwrite).
//
// Paths come from a decoded Metainfo, whose components are already checked
// (no "..", no "/", no NUL): nothing is ever created or read outside <root>.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wire/bt/metainfo.hpp"
#include "wire/common/bytes.hpp"

namespace sv::share {

class TorrentStorage {
 public:
  // `create`: make directories and files (sized, sparse) as needed (a
  // download); else only open what exists (a seed: a missing file is an
  // error). nullptr and `error` set on failure.
  static std::unique_ptr<TorrentStorage> open(const wire::bt::Metainfo& m, const std::string& root, bool create,
                                              std::string& error);
  ~TorrentStorage();
  TorrentStorage(const TorrentStorage&) = delete;
  TorrentStorage& operator=(const TorrentStorage&) = delete;

  // `length` bytes at `offset` of piece `piece` (within the piece); nullopt
  // on a short read or an I/O error.
  std::optional<wire::Bytes> read(std::uint32_t piece, std::uint32_t offset, std::uint32_t length);
  // Writes a block; false on an I/O error or a range outside the piece.
  bool write(std::uint32_t piece, std::uint32_t offset, wire::ByteView data);
  // Whether the piece on disk hashes to its SHA-1 in the metainfo.
  bool verify(std::uint32_t piece);
  // Every piece checked (resume, seeding): which pass.
  std::vector<bool> verify_all();

  // Where each file of the torrent lives.
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  TorrentStorage(const wire::bt::Metainfo& m, std::vector<std::string> paths);
  // Calls fn(fd, file_offset, buffer_offset, n) for each file span of
  // [stream_offset, stream_offset + length).
  template <typename Fn>
  bool spans(std::uint64_t stream_offset, std::uint64_t length, Fn fn);

  std::uint64_t piece_length_, total_;
  std::vector<wire::bt::Sha1> hashes_;
  std::vector<wire::bt::FileEntry> files_;
  std::vector<std::string> paths_;
  std::vector<int> fds_;
};

}  // namespace sv::share
