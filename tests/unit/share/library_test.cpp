#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "share/library.hpp"

namespace fs = std::filesystem;
using namespace sv::share;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/servent-lib-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  void write(const std::string& rel, const std::string& content) {
    fs::create_directories((path / rel).parent_path());
    std::ofstream(path / rel) << content;
  }
};
}  // namespace

TEST_CASE("keywords_split_and_lowercase") {
  CHECK(keywords("Free_Software-Song (1999).OGG") ==
        std::vector<std::string>{"free", "software", "song", "1999", "ogg"});
  CHECK(keywords("  ").empty());
}

TEST_CASE("library_scans_recursively_and_skips_hidden_and_escaping_symlinks") {
  TempDir root, outside;
  root.write("music/free software song.ogg", "abc");
  root.write("docs/readme.txt", "hello");
  root.write(".hidden", "x");
  root.write(".git/config", "x");
  outside.write("secret.txt", "top secret");
  fs::create_symlink(outside.path / "secret.txt", root.path / "link-out.txt");
  fs::create_symlink(root.path / "docs/readme.txt", root.path / "link-in.txt");
  fs::create_directory_symlink(root.path, root.path / "loop");
  Library lib({root.path.string()}, "");
  auto rep = lib.rescan();
  CHECK(rep.files == 2);  // link-in.txt is the same real file as docs/readme.txt
  CHECK(rep.bytes == 8);
  CHECK(rep.skipped_hidden == 2);
  CHECK(rep.skipped_symlink_escape == 1);
  for (std::uint32_t i = 1; i <= 3; ++i) {
    if (auto* f = lib.by_index(i)) CHECK(f->name != "secret.txt");
  }
}

TEST_CASE("library_search_needs_every_word_as_word_or_prefix") {
  TempDir root;
  root.write("Free Software Song.ogg", "1");
  root.write("free_jazz.mp3", "22");
  root.write("other.txt", "333");
  Library lib({root.path.string()}, "");
  lib.rescan();
  CHECK(lib.search("free", 10).size() == 2);
  CHECK(lib.search("FREE soft", 10).size() == 1);
  CHECK(lib.search("fre so", 10).size() == 1);
  CHECK(lib.search("software free song", 10).front()->name == "Free Software Song.ogg");
  CHECK(lib.search("oftware", 10).empty());  // infix is not a prefix
  CHECK(lib.search("free missing", 10).empty());
  CHECK(lib.search("", 10).empty());
  CHECK(lib.search("free", 1).size() == 1);
}

TEST_CASE("library_indices_are_stable_across_rescans_and_restarts") {
  TempDir root, state;
  root.write("b.txt", "b");
  root.write("a.txt", "a");
  std::uint32_t a_index = 0;
  {
    Library lib({root.path.string()}, state.path.string());
    lib.rescan();
    for (std::uint32_t i = 1; i <= 2; ++i) {
      if (lib.by_index(i)->name == "a.txt") a_index = i;
    }
    REQUIRE(a_index != 0);
    root.write("0-new.txt", "n");
    lib.rescan();
    CHECK(lib.by_index(a_index)->name == "a.txt");
    CHECK(lib.by_index(3)->name == "0-new.txt");
  }
  Library again({root.path.string()}, state.path.string());
  again.rescan();
  CHECK(again.by_index(a_index)->name == "a.txt");
  CHECK(again.by_index(3)->name == "0-new.txt");
}

TEST_CASE("library_verify_servable_refuses_swapped_symlink") {
  TempDir root, outside;
  root.write("song.mp3", "music");
  outside.write("passwd", "root:x:0:0");
  Library lib({root.path.string()}, "");
  lib.rescan();
  const SharedFile* f = lib.by_index(1);
  REQUIRE(f);
  CHECK(lib.verify_servable(*f) == 5u);
  fs::remove(root.path / "song.mp3");
  fs::create_symlink(outside.path / "passwd", root.path / "song.mp3");
  CHECK_FALSE(lib.verify_servable(*f));
}

TEST_CASE("library_hashes_once_and_reuses_the_cache_for_unchanged_files") {
  TempDir root, state;
  root.write("a.txt", "Hello from gtk-gnutella over loopback!\n");
  root.write("b.txt", "abc");
  {
    Library lib({root.path.string()}, state.path.string());
    auto rep = lib.rescan();
    CHECK(rep.to_hash == 2);
    CHECK(rep.hashes_cached == 0);
    CHECK(lib.hash_all_now() == 2);
    const auto* a = lib.by_sha1(*base32_decode_sha1("QEXMLRD6GKGWLOQLGT7O4ZEAXARBGBD3"));
    REQUIRE(a);
    CHECK(a->name == "a.txt");
  }
  // A rescan of the unchanged folder (here by a new process) hashes nothing.
  Library again({root.path.string()}, state.path.string());
  auto rep = again.rescan();
  CHECK(rep.to_hash == 0);
  CHECK(rep.hashes_cached == 2);
  CHECK(again.take_hash_jobs().empty());
  CHECK(again.by_sha1(sha1_of("abc"))->name == "b.txt");
  // A changed file is hashed again.
  root.write("b.txt", "abcd");
  rep = again.rescan();
  CHECK(rep.to_hash == 1);
  CHECK(again.by_sha1(sha1_of("abc")) == nullptr);
  CHECK(again.hash_all_now() == 1);
  CHECK(again.by_sha1(sha1_of("abcd"))->name == "b.txt");
}

TEST_CASE("library_ignores_a_hash_for_a_file_that_changed_meanwhile") {
  TempDir root;
  root.write("a.txt", "one");
  Library lib({root.path.string()}, "");
  lib.rescan();
  auto jobs = lib.take_hash_jobs();
  REQUIRE(jobs.size() == 1);
  auto stale = jobs[0];
  stale.size += 1;
  lib.apply_hash(stale, sha1_of("one"));
  CHECK(lib.hashed_count() == 0);
  lib.apply_hash(jobs[0], sha1_of("one"));
  CHECK(lib.hashed_count() == 1);
}
