// SHA-1 (OpenSSL) and the urn:sha1 form HUGE 0.94 §3 uses: base32 (RFC 4648
// §6, upper case, no padding; 32 characters for 20 bytes).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "wire/common/base32.hpp"

namespace sv::share {

using Sha1 = std::array<std::uint8_t, 20>;

class Sha1Hasher {
 public:
  Sha1Hasher();
  ~Sha1Hasher();
  Sha1Hasher(Sha1Hasher&&) noexcept;
  Sha1Hasher& operator=(Sha1Hasher&&) noexcept;
  void update(const void* data, std::size_t n);
  Sha1 finish();  // the hasher can be reused after finish()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// SHA-1 of a file being written in order, computed on a thread of its own:
// the writer says how far the file holds its bytes (advance) and goes on; the
// thread hashes them through a read-only mapping of the file (the page cache
// itself: no copy, no read-back pass at the end). The descriptor stays the
// caller's and must stay open while the hasher lives.
class FileSha1 {
 public:
  explicit FileSha1(int fd);
  ~FileSha1();
  FileSha1(const FileSha1&) = delete;
  FileSha1& operator=(const FileSha1&) = delete;
  // Bytes [0, end) of the file are written.
  void advance(std::uint64_t end);
  // Waits until everything advanced is hashed: the digest of [0, end), or
  // nullopt when the file could not be mapped. The hasher then starts over.
  std::optional<Sha1> finish();
  // Forgets what was hashed (the bytes are to be written again).
  void restart();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

Sha1 sha1_of(std::string_view data);
// Hashes a file with 1 MiB reads; nullopt when it cannot be read.
std::optional<Sha1> sha1_of_file(const std::string& path);

using wire::base32_encode;
using wire::base32_decode_sha1;  // 32 chars, either case

// "urn:sha1:<base32>"
std::string sha1_urn(const Sha1& h);
// Accepts "urn:sha1:X" (any case for the prefix, as HUGE allows) and, for
// robustness, "sha1:X"; also the 40-hex-digit form some servents send.
std::optional<Sha1> parse_sha1_urn(std::string_view urn);

}  // namespace sv::share
