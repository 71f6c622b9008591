// The shared library: what this servent offers.
//
// Scans the shared folders (recursively; hidden files and folders are skipped,
// as are symlinks whose target lies outside the folder they were found in),
// gives each file a stable index (kept across rescans, and across restarts
// when a state directory is given), and answers keyword queries: every query
// word must equal or be a prefix of some word of the file name,
// case-insensitively (0.4 spec §"Query": matching is up to the servent).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "share/mp3.hpp"
#include "share/sha1.hpp"

namespace sv::share {

struct SharedFile {
  std::uint32_t index = 0;
  std::string name;        // file name as shared (last path component)
  std::string path;        // canonical absolute path
  std::string root;        // canonical shared folder it was found in
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  // Which file it is: an upload opens the path and serves it only if it is
  // still this inode (a symlink, hard link, FIFO or other file swapped in
  // since the scan, at any level of the path, is refused).
  std::uint64_t dev = 0, ino = 0;
  std::vector<std::string> words;  // lower-cased name words
  std::optional<Sha1> sha1;        // known once hashed (HUGE urn:sha1)
  std::optional<AudioInfo> audio;  // MP3s: bitrate, sample rate, length, tags
};

// A file whose SHA-1 is not known yet: hash it off the event loop, then
// hand the result to Library::apply_hash().
struct HashJob {
  std::uint32_t index = 0;
  std::string path;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
};

struct ScanReport {
  std::size_t files = 0;
  std::uint64_t bytes = 0;
  std::size_t skipped_hidden = 0;
  std::size_t skipped_symlink_escape = 0;
  std::size_t skipped_special = 0;  // devices, sockets, fifos
  std::size_t errors = 0;
  std::size_t hashes_cached = 0;  // SHA-1 reused from the cache (same path, size, mtime)
  std::size_t to_hash = 0;        // files queued for hashing (take_hash_jobs)
};

// Splits a name or query into lower-case words (ASCII letters and digits;
// bytes >= 0x80 are kept so UTF-8 words stay whole).
std::vector<std::string> keywords(std::string_view text);

class Library {
 public:
  Library() = default;
  // `state_dir` may be empty: indices are then stable only within the process.
  Library(std::vector<std::string> roots, std::string state_dir);

  ScanReport rescan();

  const SharedFile* by_index(std::uint32_t index) const;
  const SharedFile* by_sha1(const Sha1& sha1) const;
  // The name a Napster client shares a file under (real clients send paths):
  // its shared folder's own name and the path below it, '\'-separated, e.g.
  // "Music\Artist\Song.mp3". by_napster_name() finds the file again; a name
  // that is not exactly one of ours (traversal, another folder) finds nothing.
  static std::string napster_name(const SharedFile& f);
  const SharedFile* by_napster_name(std::string_view name) const;
  // Every shared file, in index order.
  std::vector<const SharedFile*> all() const;

  // Files rescan() found without a cached SHA-1. Each job is handed out once.
  std::vector<HashJob> take_hash_jobs();
  // Records a computed SHA-1 (ignored if the file changed or went away since).
  void apply_hash(const HashJob& job, const Sha1& sha1);
  // Writes the SHA-1 cache to the state directory (after a batch of apply_hash).
  void save_hash_cache() const;
  // Hashes every pending file now, on this thread (tests, small libraries).
  std::size_t hash_all_now();
  std::size_t hashed_count() const { return by_sha1_.size(); }
  // Files matching every word of `criteria`, at most `max` of them, in index order.
  std::vector<const SharedFile*> search(std::string_view criteria, std::size_t max) const;

  std::size_t file_count() const { return files_.size(); }
  // Changes whenever what is shared may have changed (rescan, a new hash):
  // what a QRP table built from the library depends on.
  std::uint64_t generation() const { return generation_; }
  std::uint64_t total_bytes() const { return total_bytes_; }
  const std::vector<std::string>& roots() const { return roots_; }

  // Re-checks at serving time that `file` still is the regular file the scan
  // found inside its shared folder: its path names the same inode (a symlink
  // may have been swapped in since; files without an inode, by realpath).
  // Returns its current size.
  std::optional<std::uint64_t> verify_servable(const SharedFile& file) const;

  // Adds a file directly (tests and simulations, no filesystem involved).
  void add_virtual(std::string name, std::uint64_t size, std::optional<Sha1> sha1 = std::nullopt);

 private:
  void load_indices();
  void save_indices() const;
  void index_words();
  void load_hash_cache();

  std::vector<std::string> roots_;
  std::string state_dir_;
  std::map<std::string, std::uint32_t> stable_;  // canonical path -> index
  std::uint32_t next_index_ = 1;
  std::map<std::uint32_t, SharedFile> files_;
  std::vector<std::pair<std::string, std::uint32_t>> word_index_;  // sorted (word, index)
  std::uint64_t total_bytes_ = 0;
  std::uint64_t generation_ = 0;
  struct CachedHash {
    std::uint64_t size;
    std::int64_t mtime_ns;
    Sha1 sha1;
  };
  std::map<std::string, CachedHash> hash_cache_;  // canonical path -> hash
  std::map<Sha1, std::uint32_t> by_sha1_;
  std::vector<HashJob> hash_jobs_;
};

// True when `path` equals `root` or lies below it (both canonical).
bool path_within(std::string_view path, std::string_view root);

}  // namespace sv::share
