#include "servent/uv/file_job.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "share/sha1.hpp"

namespace sv {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

bool write_all(int fd, const std::uint8_t* p, std::uint64_t n, std::uint64_t offset) {
  while (n > 0) {
    const ssize_t r = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::uint64_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return true;
}

}  // namespace

FileResult run_file_job(const action::FileJob& job) {
  FileResult res;
  share::Sha1Hasher hasher;
  if (job.op == action::FileJob::Op::Write) {
    if (!job.data) return res;
    std::uint64_t total = 0;
    for (const auto& r : job.ranges) total += r.length;
    if (total != job.data->size()) return res;
    if (job.expect) {
      hasher.update(job.data->data(), job.data->size());
      res.sha1 = hasher.finish();
      if (res.sha1 != *job.expect) {
        res.hash_matched = false;
        return res;
      }
    }
    std::uint64_t at = 0;
    for (const auto& r : job.ranges) {
      Fd fd(::open(r.path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (fd.get() < 0 || !write_all(fd.get(), job.data->data() + at, r.length, r.offset)) return res;
      at += r.length;
    }
    res.ok = true;
    return res;
  }
  std::vector<std::uint8_t> buf(1 << 16);
  for (const auto& r : job.ranges) {
    Fd fd(::open(r.path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0) return res;
    std::uint64_t left = r.length, off = r.offset;
    while (left > 0) {
      const ssize_t n = ::pread(fd.get(), buf.data(), std::min<std::uint64_t>(left, buf.size()), static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return res;  // an error, or the file is shorter than the range
      hasher.update(buf.data(), static_cast<std::size_t>(n));
      left -= static_cast<std::uint64_t>(n);
      off += static_cast<std::uint64_t>(n);
    }
  }
  res.sha1 = hasher.finish();
  res.ok = true;
  return res;
}

}  // namespace sv
