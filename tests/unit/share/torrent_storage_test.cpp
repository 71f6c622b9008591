// Torrent storage on real files: Transmission's piece hashes verify our
// layout of its multi-file torrent; blocks across file boundaries read and
// write; a download fills sparse files; corruption and planted links are
// caught.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "share/sha1.hpp"
#include "share/torrent_storage.hpp"
#include "unit/wire/vectors_bt.hpp"

using namespace sv;
using namespace sv::wire;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/servent-ts-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

void write_file(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

bt::Metainfo transmission_album() {
  auto r = bt::decode_metainfo(ByteView(test::kMultiTorrent, sizeof test::kMultiTorrent));
  REQUIRE(std::holds_alternative<bt::Metainfo>(r));
  return std::get<bt::Metainfo>(r);
}

// The files transmission-create hashed (vectors_bt.hpp).
void make_album(const fs::path& root) {
  write_file(root / "album" / "a.txt", "first file\n");
  write_file(root / "album" / "disc1" / "b.bin", std::string(40000, 'x'));
}

}  // namespace

TEST_CASE("torrent_storage_verifies_transmissions_pieces_over_our_file_layout") {
  TempDir d;
  make_album(d.path);
  const auto m = transmission_album();
  std::string error;
  auto s = share::TorrentStorage::open(m, d.path.string(), false, error);
  REQUIRE_MESSAGE(s, error);
  CHECK(s->verify_all() == std::vector<bool>{true, true, true});
  // Piece 0 starts with a.txt (11 bytes) and runs into b.bin.
  auto head = s->read(0, 6, 10);
  REQUIRE(head);
  CHECK(std::string(head->begin(), head->end()) == "file\nxxxxx");
  // Outside a piece: refused.
  CHECK_FALSE(s->read(2, 0, 16384));  // the last piece is shorter
  CHECK_FALSE(s->read(3, 0, 1));
  // One byte changed: that piece no longer verifies.
  write_file(d.path / "album" / "disc1" / "b.bin", std::string(20000, 'x') + "y" + std::string(19999, 'x'));
  CHECK(s->verify_all() == std::vector<bool>{true, false, true});
}

TEST_CASE("torrent_storage_download_writes_blocks_into_sparse_files_and_they_verify") {
  TempDir seed_dir, get_dir;
  make_album(seed_dir.path);
  const auto m = transmission_album();
  std::string error;
  auto seed = share::TorrentStorage::open(m, seed_dir.path.string(), false, error);
  auto get = share::TorrentStorage::open(m, get_dir.path.string(), true, error);
  REQUIRE_MESSAGE(get, error);
  CHECK(fs::file_size(get_dir.path / "album" / "disc1" / "b.bin") == 40000);  // sized up front
  CHECK(get->verify_all() == std::vector<bool>{false, false, false});
  // Blocks in a shuffled order, 7,000 bytes each (crossing the file boundary).
  std::vector<std::pair<std::uint32_t, std::uint32_t>> blocks;
  for (std::uint32_t p = 0; p < m.piece_count(); ++p) {
    for (std::uint32_t at = 0; at < m.piece_size(p); at += 7000) blocks.emplace_back(p, at);
  }
  std::shuffle(blocks.begin(), blocks.end(), std::mt19937(3));
  for (auto [p, at] : blocks) {
    const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(7000, m.piece_size(p) - at));
    auto b = seed->read(p, at, n);
    REQUIRE(b);
    REQUIRE(get->write(p, at, *b));
  }
  CHECK(get->verify_all() == std::vector<bool>{true, true, true});
  CHECK(read_file(get_dir.path / "album" / "a.txt") == "first file\n");
  CHECK_FALSE(get->write(0, 16380, Bytes(10, 0)));  // past the end of the piece
  // Opening again (resume) keeps what is there.
  auto again = share::TorrentStorage::open(m, get_dir.path.string(), true, error);
  REQUIRE(again);
  CHECK(again->verify_all() == std::vector<bool>{true, true, true});
}

TEST_CASE("torrent_storage_refuses_missing_short_and_linked_files") {
  TempDir d;
  const auto m = transmission_album();
  std::string error;
  CHECK_FALSE(share::TorrentStorage::open(m, d.path.string(), false, error));  // nothing there to seed
  CHECK(error.find("a.txt") != std::string::npos);
  write_file(d.path / "album" / "a.txt", "first file\n");
  write_file(d.path / "album" / "disc1" / "b.bin", "short");
  CHECK_FALSE(share::TorrentStorage::open(m, d.path.string(), false, error));
  CHECK(error.find("shorter") != std::string::npos);
  // A symbolic link planted where a file goes is not followed, even to write.
  TempDir outside;
  write_file(outside.path / "secret", "do not touch");
  fs::remove(d.path / "album" / "disc1" / "b.bin");
  fs::create_symlink(outside.path / "secret", d.path / "album" / "disc1" / "b.bin");
  CHECK_FALSE(share::TorrentStorage::open(m, d.path.string(), true, error));
  CHECK(read_file(outside.path / "secret") == "do not touch");
}
