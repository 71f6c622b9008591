// The download store: the urn:sha1 is computed while bytes arrive in order,
// and stays right whatever order, rewrite or loss the bytes come in.
#include <doctest/doctest.h>

#include <filesystem>

#include "share/partial_file.hpp"
#include "support/files.hpp"

using namespace sv;

namespace {

std::unique_ptr<share::PartialFile> fresh(const test::TempDir& dir, std::uint64_t size) {
  share::DownloadMeta m;
  m.name = "x.bin";
  m.size = size;
  m.size_known = true;
  std::string error;
  auto p = share::PartialFile::open(dir.path.string(), "k", m, error);
  REQUIRE(p);
  return p;
}

wire::ByteView view(const std::string& s, std::size_t from, std::size_t n) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()) + from, n};
}

}  // namespace

TEST_CASE("a_partial_file_hashes_what_arrives_and_stays_right_in_any_order") {
  const std::string data = test::random_bytes(3 * 1024 * 1024 + 77, 5);
  const share::Sha1 want = share::sha1_of(data);
  test::TempDir dir("servent-partial");
  SUBCASE("in order, in pieces") {
    auto p = fresh(dir, data.size());
    for (std::size_t at = 0; at < data.size(); at += 65536) {
      REQUIRE(p->write(at, view(data, at, std::min<std::size_t>(65536, data.size() - at))));
    }
    CHECK(p->complete());
    CHECK(p->hash() == want);
    CHECK(p->hash() == want);  // asked again: the same (read back from the file)
  }
  SUBCASE("the second half first") {
    auto p = fresh(dir, data.size());
    const std::size_t half = data.size() / 2;
    REQUIRE(p->write(half, view(data, half, data.size() - half)));
    REQUIRE(p->write(0, view(data, 0, half)));
    CHECK(p->hash() == want);
  }
  SUBCASE("bad bytes, forgotten, fetched again") {
    auto p = fresh(dir, data.size());
    std::string bad = data;
    bad[1000] ^= 0x55;
    REQUIRE(p->write(0, view(bad, 0, bad.size())));
    CHECK(p->hash() != want);
    p->forget(0, 4096);
    REQUIRE(p->write(0, view(data, 0, 4096)));
    CHECK(p->hash() == want);
  }
  SUBCASE("hashed bytes written again with other content") {
    auto p = fresh(dir, data.size());
    std::string bad = data;
    bad[10] ^= 0x01;
    REQUIRE(p->write(0, view(bad, 0, 8192)));
    REQUIRE(p->write(0, view(data, 0, 8192)));  // overwritten before the rest came
    REQUIRE(p->write(8192, view(data, 8192, data.size() - 8192)));
    CHECK(p->hash() == want);
  }
}
