#include "share/sha1.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
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

struct BackgroundSha1::State {
  std::mutex mutex;
  std::condition_variable wake, drained;
  std::deque<std::vector<std::uint8_t>> queue;
  std::size_t queued = 0, max_queued = 0;
  bool busy = false, stop = false;
  Sha1Hasher hasher;
  std::thread worker;

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait(lock, [&] { return stop || !queue.empty(); });
      if (queue.empty()) return;  // stopping, nothing left
      auto block = std::move(queue.front());
      queue.pop_front();
      busy = true;
      lock.unlock();
      hasher.update(block.data(), block.size());
      lock.lock();
      busy = false;
      queued -= block.size();
      drained.notify_all();
    }
  }
};

BackgroundSha1::BackgroundSha1(std::size_t max_queued) : state_(std::make_unique<State>()) {
  state_->max_queued = max_queued;
}

BackgroundSha1::~BackgroundSha1() {
  if (!state_->worker.joinable()) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->stop = true;
    state_->queue.clear();
  }
  state_->wake.notify_all();
  state_->worker.join();
}

void BackgroundSha1::update(const void* data, std::size_t n) {
  if (n == 0) return;
  State& st = *state_;
  if (!st.worker.joinable()) st.worker = std::thread([&st] { st.run(); });
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::unique_lock lock(st.mutex);
  st.drained.wait(lock, [&] { return st.queued < st.max_queued; });
  st.queue.emplace_back(p, p + n);
  st.queued += n;
  lock.unlock();
  st.wake.notify_one();
}

Sha1 BackgroundSha1::finish() {
  State& st = *state_;
  std::unique_lock lock(st.mutex);
  st.drained.wait(lock, [&] { return st.queue.empty() && !st.busy; });
  return st.hasher.finish();
}

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

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
}

std::string base32_encode(const std::uint8_t* data, std::size_t n) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    buffer = (buffer << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::optional<Sha1> base32_decode_sha1(std::string_view s) {
  if (s.size() != 32) return std::nullopt;
  Sha1 out{};
  std::uint32_t buffer = 0;
  int bits = 0;
  std::size_t pos = 0;
  for (char c : s) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a';
    } else if (c >= '2' && c <= '7') {
      v = c - '2' + 26;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out[pos++] = static_cast<std::uint8_t>(buffer >> (bits - 8));
      bits -= 8;
    }
  }
  return out;
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
