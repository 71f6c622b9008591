#include "share/sha1.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "wire/common/bytes.hpp"
#include "wire/common/text.hpp"

namespace sv::share {

struct Sha1Hasher::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Impl() { EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr); }
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha1Hasher::Sha1Hasher() : impl_(std::make_unique<Impl>()) {}
Sha1Hasher::~Sha1Hasher() = default;
Sha1Hasher::Sha1Hasher(Sha1Hasher&&) noexcept = default;
Sha1Hasher& Sha1Hasher::operator=(Sha1Hasher&&) noexcept = default;

void Sha1Hasher::update(const void* data, std::size_t n) { EVP_DigestUpdate(impl_->ctx, data, n); }

Sha1 Sha1Hasher::finish() {
  Sha1 out{};
  unsigned len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out.data(), &len);
  EVP_DigestInit_ex(impl_->ctx, EVP_sha1(), nullptr);
  return out;
}

struct FileSha1::State {
  int fd = -1;
  std::mutex mutex;
  std::condition_variable wake, idle;
  std::uint64_t target = 0, pos = 0;  // [0, pos) hashed, [pos, target) to hash
  bool busy = false, stop = false, failed = false;
  Sha1Hasher hasher;
  std::thread worker;

  static constexpr std::uint64_t kWindow = 8 * 1024 * 1024;

  void run() {
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait(lock, [&] { return stop || (target > pos && !failed); });
      if (stop) return;
      const std::uint64_t from = pos, len = std::min(target - pos, kWindow);
      busy = true;
      lock.unlock();
      const std::uint64_t base = from - from % page, skip = from - base;
      void* map = ::mmap(nullptr, static_cast<std::size_t>(len + skip), PROT_READ, MAP_SHARED, fd,
                         static_cast<off_t>(base));
      const bool ok = map != MAP_FAILED;
      if (ok) {
        ::madvise(map, static_cast<std::size_t>(len + skip), MADV_SEQUENTIAL);
        hasher.update(static_cast<const std::uint8_t*>(map) + skip, static_cast<std::size_t>(len));
        ::munmap(map, static_cast<std::size_t>(len + skip));
      }
      lock.lock();
      busy = false;
      if (ok) {
        pos = from + len;
      } else {
        failed = true;
      }
      idle.notify_all();
    }
  }
};

FileSha1::FileSha1(int fd) : state_(std::make_unique<State>()) {
  state_->fd = fd;
  State& st = *state_;
  st.worker = std::thread([&st] { st.run(); });
}

FileSha1::~FileSha1() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stop = true;
  }
  state_->wake.notify_all();
  state_->worker.join();
}

void FileSha1::advance(std::uint64_t end) {
  {
    std::lock_guard lock(state_->mutex);
    if (end <= state_->target) return;
    state_->target = end;
  }
  state_->wake.notify_one();
}

std::optional<Sha1> FileSha1::finish() {
  State& st = *state_;
  std::unique_lock lock(st.mutex);
  st.idle.wait(lock, [&] { return st.failed || (!st.busy && st.pos >= st.target); });
  std::optional<Sha1> out;
  if (!st.failed) out = st.hasher.finish();
  st.hasher = Sha1Hasher();
  st.pos = st.target = 0;
  st.failed = false;
  return out;
}

void FileSha1::restart() { (void)finish(); }

Sha1 sha1_of(std::string_view data) {
  Sha1Hasher h;
  h.update(data.data(), data.size());
  return h.finish();
}

std::optional<Sha1> sha1_of_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  Sha1Hasher h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return h.finish();
}

std::string sha1_urn(const Sha1& h) { return "urn:sha1:" + base32_encode(h.data(), h.size()); }

std::optional<Sha1> parse_sha1_urn(std::string_view urn) {
  urn = wire::trim(urn);
  if (urn.size() >= 4 && wire::iequals(urn.substr(0, 4), "urn:")) urn.remove_prefix(4);
  if (urn.size() < 5 || !wire::iequals(urn.substr(0, 5), "sha1:")) return std::nullopt;
  urn.remove_prefix(5);
  if (urn.size() == 40) {
    wire::Bytes b;
    if (!wire::from_hex(urn, b)) return std::nullopt;
    Sha1 out{};
    std::copy(b.begin(), b.end(), out.begin());
    return out;
  }
  return base32_decode_sha1(urn);
}

}  // namespace sv::share
