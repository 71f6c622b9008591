#include "share/torrent_storage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "share/sha1.hpp"

namespace sv::share {

namespace fs = std::filesystem;

TorrentStorage::TorrentStorage(const wire::bt::Metainfo& m, std::vector<std::string> paths)
    : piece_length_(m.piece_length), total_(m.total_length), hashes_(m.pieces), files_(m.files), paths_(std::move(paths)) {}

TorrentStorage::~TorrentStorage() {
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
}

std::unique_ptr<TorrentStorage> TorrentStorage::open(const wire::bt::Metainfo& m, const std::string& root, bool create,
                                                     std::string& error) {
  std::vector<std::string> paths;
  for (const auto& f : m.files) {
    fs::path p(root);
    if (m.multi_file) p /= m.name;
    for (const auto& c : f.path) {
      if (!wire::bt::safe_path_component(c)) {
        error = "unsafe path component in the metainfo: " + c;
        return nullptr;
      }
      p /= c;
    }
    paths.push_back(p.string());
  }
  std::unique_ptr<TorrentStorage> s(new TorrentStorage(m, std::move(paths)));
  for (std::size_t i = 0; i < s->files_.size(); ++i) {
    const std::string& path = s->paths_[i];
    if (create) {
      std::error_code ec;
      fs::create_directories(fs::path(path).parent_path(), ec);
      if (ec) {
        error = path + ": " + ec.message();
        return nullptr;
      }
    }
    // O_NOFOLLOW: a symbolic link planted at a torrent's path is not followed.
    const int fd = ::open(path.c_str(), (create ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
      error = path + ": " + std::strerror(errno);
      return nullptr;
    }
    s->fds_.push_back(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      error = path + ": not a regular file";
      return nullptr;
    }
    const auto want = static_cast<off_t>(s->files_[i].length);
    if (create && st.st_size < want && ::ftruncate(fd, want) != 0) {
      error = path + ": " + std::strerror(errno);
      return nullptr;
    }
    if (!create && st.st_size < want) {
      error = path + ": shorter than the torrent says (" + std::to_string(st.st_size) + " < " +
              std::to_string(s->files_[i].length) + " bytes)";
      return nullptr;
    }
  }
  return s;
}

template <typename Fn>
bool TorrentStorage::spans(std::uint64_t stream_offset, std::uint64_t length, Fn fn) {
  if (stream_offset > total_ || length > total_ - stream_offset) return false;
  std::uint64_t done = 0;
  // Files are in stream order: find the first that holds stream_offset.
  for (std::size_t i = 0; i < files_.size() && done < length; ++i) {
    const auto& f = files_[i];
    const std::uint64_t at = stream_offset + done;
    if (f.length == 0 || at >= f.offset + f.length) continue;
    const std::uint64_t in_file = at - f.offset;
    const std::uint64_t n = std::min(length - done, f.length - in_file);
    if (!fn(fds_[i], in_file, done, n)) return false;
    done += n;
  }
  return done == length;
}

std::optional<wire::Bytes> TorrentStorage::read(std::uint32_t piece, std::uint32_t offset, std::uint32_t length) {
  if (piece >= hashes_.size()) return std::nullopt;
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * piece_length_;
  const std::uint64_t size = std::min<std::uint64_t>(piece_length_, total_ - start);
  if (offset > size || length > size - offset) return std::nullopt;
  wire::Bytes out(length);
  const bool ok = spans(start + offset, length, [&](int fd, std::uint64_t file_off, std::uint64_t buf_off, std::uint64_t n) {
    while (n > 0) {
      const ssize_t r = ::pread(fd, out.data() + buf_off, n, static_cast<off_t>(file_off));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      n -= static_cast<std::uint64_t>(r);
      buf_off += static_cast<std::uint64_t>(r);
      file_off += static_cast<std::uint64_t>(r);
    }
    return true;
  });
  if (!ok) return std::nullopt;
  return out;
}

bool TorrentStorage::write(std::uint32_t piece, std::uint32_t offset, wire::ByteView data) {
  if (piece >= hashes_.size()) return false;
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * piece_length_;
  const std::uint64_t size = std::min<std::uint64_t>(piece_length_, total_ - start);
  if (offset > size || data.size() > size - offset) return false;
  return spans(start + offset, data.size(), [&](int fd, std::uint64_t file_off, std::uint64_t buf_off, std::uint64_t n) {
    while (n > 0) {
      const ssize_t r = ::pwrite(fd, data.data() + buf_off, n, static_cast<off_t>(file_off));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      n -= static_cast<std::uint64_t>(r);
      buf_off += static_cast<std::uint64_t>(r);
      file_off += static_cast<std::uint64_t>(r);
    }
    return true;
  });
}

bool TorrentStorage::verify(std::uint32_t piece) {
  if (piece >= hashes_.size()) return false;
  const std::uint64_t start = static_cast<std::uint64_t>(piece) * piece_length_;
  const auto size = static_cast<std::uint32_t>(std::min<std::uint64_t>(piece_length_, total_ - start));
  auto bytes = read(piece, 0, size);
  if (!bytes) return false;
  Sha1Hasher h;
  h.update(bytes->data(), bytes->size());
  return h.finish() == hashes_[piece];
}

std::vector<bool> TorrentStorage::verify_all() {
  std::vector<bool> ok(hashes_.size());
  for (std::uint32_t i = 0; i < hashes_.size(); ++i) ok[i] = verify(i);
  return ok;
}

}  // namespace sv::share
