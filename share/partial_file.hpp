// A download in progress: the data file (<key>.part) and its metadata
// (<key>.meta) in the downloads folder of the state directory.
//
// Crash safety: data is written (pwrite) before the metadata that claims it
// is saved (write to a temporary file, then rename), so after the process is
// killed at any point the metadata never claims bytes that are not in the
// .part file; at worst it claims fewer and they are fetched again. On open,
// claims beyond the .part file's length are dropped.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "share/range_set.hpp"
#include "share/sha1.hpp"
#include "wire/common/bytes.hpp"

namespace sv::share {

struct DownloadMeta {
  std::string name;
  std::uint64_t size = 0;  // 0 while unknown
  bool size_known = false;
  std::optional<Sha1> sha1;
  RangeSet have;
  std::vector<std::string> sources;  // URLs, for resuming with the same sources
};

class PartialFile {
 public:
  // Opens (or creates) the download named `key` in `dir`. An existing .meta
  // wins over `initial` (except that new sources are added). nullopt and
  // `error` set when the folder or files cannot be used.
  static std::unique_ptr<PartialFile> open(const std::string& dir, const std::string& key, DownloadMeta initial,
                                           std::string& error);
  ~PartialFile();
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  const DownloadMeta& meta() const { return meta_; }
  const std::string& key() const { return key_; }
  bool complete() const { return meta_.size_known && meta_.have.total() == meta_.size; }

  // Writes `data` at `offset` (clipped to the known size). False on I/O error.
  bool write(std::uint64_t offset, wire::ByteView data);
  void set_size(std::uint64_t size);
  void set_sha1(const Sha1& sha1) { meta_.sha1 = sha1; dirty_ = true; }
  void set_name(std::string name) { meta_.name = std::move(name); dirty_ = true; }
  bool add_source(const std::string& url);
  // Marks bytes as missing again (they were found bad).
  void forget(std::uint64_t first, std::uint64_t end);
  // Persists the metadata if it changed. False on I/O error.
  bool save();
  std::uint64_t unsaved_bytes() const { return unsaved_; }

  // `length` bytes at `offset` of the .part file (only bytes it has are
  // meaningful); nullopt on a short read or an I/O error.
  std::optional<wire::Bytes> read(std::uint64_t offset, std::size_t length) const;
  // SHA-1 of the first `size` bytes of the .part file. Bytes written in
  // order from the start were hashed as they came (write(), on another
  // thread); only the rest is read back here.
  std::optional<Sha1> hash();
  // Moves the complete file into `out_dir` under its name (" (1)", " (2)"...
  // added when taken) and removes the metadata. Returns the final path.
  std::optional<std::string> finish(const std::string& out_dir, std::string& error);
  // Deletes the .part and .meta files.
  void discard();

  static std::string meta_to_text(const DownloadMeta& m);
  static std::optional<DownloadMeta> meta_from_text(const std::string& text);

 private:
  PartialFile() = default;
  std::string dir_, key_;
  int fd_ = -1;
  DownloadMeta meta_;
  bool dirty_ = false;
  std::uint64_t unsaved_ = 0;
  std::unique_ptr<FileSha1> hasher_;  // over [0, hashed_) of the .part file, on a thread of its own
  std::uint64_t hashed_ = 0;
};

}  // namespace sv::share
