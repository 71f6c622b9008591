// `servent get` as a user runs it: killed at any byte and run again, it
// resumes with Range from what it had saved and ends byte-identical; a source
// that drops mid-transfer is retried; a real `servent run` and several sources.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <fstream>
#include <sstream>
#include <thread>

#include "http/text.hpp"
#include "integration/http_source.hpp"
#include "integration/process.hpp"
#include "support/files.hpp"
#include "support/json_line.hpp"
#include "share/partial_file.hpp"
#include "share/sha1.hpp"
#include "wire/common/bytes.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sv::test::HttpSource;
using sv::test::Process;

using sv::test::read_file;

namespace {

std::string random_content(std::size_t n, unsigned seed) { return sv::test::random_bytes(n, seed); }

struct TempDir : sv::test::TempDir {
  TempDir() : sv::test::TempDir("servent-get") {}
};

// Bytes the partial file's metadata claims (0 when there is none yet).
std::uint64_t saved_bytes(const fs::path& state) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state / "downloads", ec)) {
    if (e.path().extension() != ".meta") continue;
    auto m = sv::share::PartialFile::meta_from_text(read_file(e.path()));
    if (m) return m->have.total();
  }
  return 0;
}

}  // namespace

TEST_CASE("get_killed_at_any_byte_resumes_and_ends_byte_identical") {
  const std::string content = random_content(200'000, 1);
  const std::string urn = sv::share::sha1_urn(sv::share::sha1_of(content));
  HttpSource source(content, urn);
  const std::size_t head = source.head_size_for(0, content.size() - 1);
  const std::string url = "http://127.0.0.1:" + std::to_string(source.port()) + "/uri-res/N2R?" + urn;
  // Inside the status line, inside the headers, at the blank line, just after
  // it, and through the body.
  for (std::size_t cut : {std::size_t{5}, std::size_t{40}, head - 2, head, head + 1, head + 4096, head + 100'000,
                          head + content.size() - 1}) {
    CAPTURE(cut);
    TempDir dir;
    const auto state = dir.path / "state";
    const auto out = dir.path / "out";
    std::unique_ptr<Process> first;
    const std::uint64_t body = cut > head ? cut - head : 0;
    source.cut_next(cut, [&] {
      // Let the downloader save what it got (it saves at least every second),
      // then kill it as a crash would.
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      while (body > 0 && saved_bytes(state) < body && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);  // polling a file another process writes, bounded
      }
      ::kill(first->pid(), SIGKILL);
    });
    first = std::make_unique<Process>(std::vector<std::string>{SERVENT_BIN, "get", url, "-o", out.string(),
                                                               "--state-dir", state.string(), "--json"});
    CHECK(first->wait(10s) == 128 + SIGKILL);
    CHECK_FALSE(fs::exists(out / sv::share::base32_encode(sv::share::sha1_of(content).data(), 20)));
    CHECK(saved_bytes(state) == body);

    auto second = sv::test::run({SERVENT_BIN, "get", url, "-o", out.string(), "--state-dir", state.string(), "--json"},
                                20s);
    CHECK(second.status == 0);
    CHECK(second.out.find("\"verified\":true") != std::string::npos);
    auto ranges = source.ranges();
    REQUIRE(!ranges.empty());
    // The second run asked only for what the first had not saved.
    CHECK(ranges.back() == std::to_string(body) + "-" + std::to_string(content.size() - 1));
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(out)) files.push_back(e.path());
    REQUIRE(files.size() == 1);
    CHECK(read_file(files[0]) == content);
  }
}

TEST_CASE("get_retries_a_source_that_drops_mid_transfer") {
  const std::string content = random_content(300'000, 2);
  const std::string urn = sv::share::sha1_urn(sv::share::sha1_of(content));
  HttpSource source(content, urn);
  TempDir dir;
  source.cut_next(100'000);
  auto r = sv::test::run({SERVENT_BIN, "get",
                          "http://127.0.0.1:" + std::to_string(source.port()) + "/get/7/some%20file.bin", "-o",
                          (dir.path / "out").string(), "--state-dir", (dir.path / "state").string()},
                         30s);
  CHECK(r.status == 0);
  CHECK(read_file(dir.path / "out" / "some file.bin") == content);
  auto ranges = source.ranges();
  REQUIRE(ranges.size() == 2);
  const std::size_t head = source.head_size_for(0, content.size() - 1);
  CHECK(ranges[1] == std::to_string(100'000 - head) + "-" + std::to_string(content.size() - 1));
}

TEST_CASE("get_from_several_real_servents_and_a_search_result") {
  TempDir dir;
  const std::string content = random_content(3'000'000, 3);
  std::vector<std::unique_ptr<Process>> nodes;
  std::vector<std::uint16_t> ports;
  for (int i = 0; i < 3; ++i) {
    auto share = dir.path / ("share" + std::to_string(i));
    fs::create_directories(share);
    std::ofstream(share / "multi source.bin", std::ios::binary) << content;
    std::vector<std::string> argv = {SERVENT_BIN, "run", "--listen", "127.0.0.1:0", "--share", share.string(),
                                     "--state-dir", (dir.path / ("state" + std::to_string(i))).string()};
    if (i > 0) {
      argv.push_back("--connect");
      argv.push_back("127.0.0.1:" + std::to_string(ports[0]));
    }
    nodes.push_back(std::make_unique<Process>(argv, (dir.path / ("stderr" + std::to_string(i))).string()));
    auto m = nodes.back()->wait_for(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
    REQUIRE(m);
    ports.push_back(static_cast<std::uint16_t>(std::stoi((*m)[1])));
    // Both lines, in whichever order they come.
    bool hashed = false, up = i == 0;
    while (!hashed || !up) {
      std::string line;
      REQUIRE(nodes.back()->wait_for(std::regex("^(hashed 1 file|peer up )"), 10s, &line));
      hashed = hashed || line.starts_with("hashed");
      up = up || line.starts_with("peer up");
    }
  }
  const std::string urn = sv::share::sha1_urn(sv::share::sha1_of(content));
  // A magnet naming two of the nodes, and the network (through node 0).
  const std::string magnet = "magnet:?xt=" + urn + "&dn=multi+source.bin&xl=" + std::to_string(content.size()) +
                             "&xs=http://127.0.0.1:" + std::to_string(ports[1]) + "/uri-res/N2R?" + urn +
                             "&as=http://127.0.0.1:" + std::to_string(ports[2]) + "/uri-res/N2R?" + urn;
  auto r = sv::test::run({SERVENT_BIN, "get", magnet, "--connect", "127.0.0.1:" + std::to_string(ports[0]), "-o",
                          (dir.path / "out").string(), "--state-dir", (dir.path / "dl").string(), "--json"},
                         30s);
  CHECK(r.status == 0);
  CHECK(r.out.find("\"verified\":true") != std::string::npos);
  CHECK(read_file(dir.path / "out" / "multi source.bin") == content);
  for (auto& n : nodes) CHECK(n->terminate() == 0);
  // Both named nodes served part of it (their counters, printed on exit).
  int served = 0;
  for (int i = 1; i < 3; ++i) {
    served += read_file(dir.path / ("stderr" + std::to_string(i))).find("http_206=") != std::string::npos;
  }
  CHECK(served == 2);
}

TEST_CASE("get_from_a_firewalled_source_by_push_and_giv") {
  TempDir dir;
  const std::string content = random_content(900'000, 4);
  fs::create_directories(dir.path / "fw");
  fs::create_directories(dir.path / "hub");
  std::ofstream(dir.path / "fw" / "behind the wall.bin", std::ios::binary) << content;
  Process hub({SERVENT_BIN, "run", "--listen", "127.0.0.1:0", "--share", (dir.path / "hub").string(), "--state-dir",
               (dir.path / "s-hub").string()});
  auto m = hub.wait_for(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
  REQUIRE(m);
  const std::string hub_addr = "127.0.0.1:" + std::string((*m)[1]);
  // The source has no listener at all.
  Process fw({SERVENT_BIN, "run", "--firewalled", "--connect", hub_addr, "--share", (dir.path / "fw").string(),
              "--state-dir", (dir.path / "s-fw").string()});
  REQUIRE(fw.wait_for(std::regex("firewalled \\(not listening"), 10s));
  bool hashed = false, up = false;
  while (!hashed || !up) {
    std::string line;
    REQUIRE(fw.wait_for(std::regex("^(hashed 1 file|peer up )"), 10s, &line));
    hashed = hashed || line.starts_with("hashed");
    up = up || line.starts_with("peer up");
  }
  auto found = sv::test::run({SERVENT_BIN, "search", "behind", "wall", "--connect", hub_addr, "--timeout", "1s",
                              "--json"},
                             20s);
  REQUIRE(found.status == 0);
  const std::string hit = found.out.substr(0, found.out.find('\n'));
  CHECK(hit.find("\"push\":true") != std::string::npos);
  auto r = sv::test::run({SERVENT_BIN, "get", hit, "--connect", hub_addr, "--listen", "127.0.0.1:0", "-o",
                          (dir.path / "out").string(), "--state-dir", (dir.path / "dl").string(), "--json"},
                         30s);
  CHECK(r.status == 0);
  CHECK(r.out.find("\"verified\":true") != std::string::npos);
  CHECK(read_file(dir.path / "out" / "behind the wall.bin") == content);
  CHECK(fw.wait_for(std::regex("^push for file 1 from 127\\.0\\.0\\.1:"), 5s));
  CHECK(fw.terminate() == 0);
  CHECK(hub.terminate() == 0);
}

TEST_CASE("a_file_over_4_gib_is_found_with_its_real_size_ranged_and_resumed") {
  // Sparse: 4 GiB + 3 MiB + 123 bytes, random at both ends, a hole between.
  const std::uint64_t four_gib = std::uint64_t{1} << 32;
  const std::uint64_t size = four_gib + 3 * 1024 * 1024 + 123;
  const std::string head = random_content(64 * 1024, 11);
  const std::string tail = random_content(static_cast<std::size_t>(size - four_gib), 12);
  TempDir dir;
  const auto share = dir.path / "share";
  fs::create_directories(share);
  const auto big = share / "big disk image.iso";
  {
    std::ofstream f(big, std::ios::binary);
    f.write(head.data(), static_cast<std::streamsize>(head.size()));
    f.seekp(static_cast<std::streamoff>(four_gib));
    f.write(tail.data(), static_cast<std::streamsize>(tail.size()));
  }
  REQUIRE(fs::file_size(big) == size);
  Process node({SERVENT_BIN, "run", "--min-peers", "0", "--listen", "127.0.0.1:0", "--share", share.string(),
                "--state-dir", (dir.path / "node").string()},
               (dir.path / "node.err").string());
  auto m = node.wait_for(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
  REQUIRE(m);
  const std::string port = (*m)[1];
  REQUIRE(node.wait_for(std::regex("^hashed 1 file"), 120s));

  // Searched: the hit carries the real size (GGEP LF), not 0xFFFFFFFF.
  auto found = sv::test::run({SERVENT_BIN, "search", "disk", "image", "--connect", "127.0.0.1:" + port, "--timeout",
                              "2s", "--json"},
                             30s);
  REQUIRE(found.status == 0);
  const std::string line = found.out.substr(0, found.out.find('\n'));
  INFO(line);
  CHECK(sv::test::json_field(line, "size") == std::to_string(size));
  const std::string urn = sv::test::json_field(line, "urn");
  const auto sha1 = sv::share::parse_sha1_urn(urn);
  REQUIRE(sha1);
  const std::string url = "http://127.0.0.1:" + port + "/uri-res/N2R?" + urn;

  // A range across the 4 GiB mark: 6 bytes of the hole, then the tail.
  if (sv::test::have_tool("curl")) {
    const auto piece = dir.path / "piece";
    auto r = sv::test::run({"curl", "-s", "-o", piece.string(), "-r",
                            std::to_string(four_gib - 6) + "-" + std::to_string(four_gib + 9), url},
                           20s);
    CHECK(r.status == 0);
    CHECK(read_file(piece) == std::string(6, '\0') + tail.substr(0, 10));
  }

  // Resumed past 4 GiB: a download that already has everything up to
  // 4 GiB + 1 MiB asks for the rest only and ends verified.
  const auto state = dir.path / "state";
  const std::uint64_t have = four_gib + 1024 * 1024;
  {
    sv::share::DownloadMeta meta;
    meta.name = "big disk image.iso";
    meta.size = size;
    meta.size_known = true;
    meta.sha1 = *sha1;
    meta.have.add(0, have);
    meta.sources.push_back(url);
    std::string error;
    auto part = sv::share::PartialFile::open((state / "downloads").string(),
                                             sv::share::base32_encode(sha1->data(), sha1->size()), meta, error);
    REQUIRE(part);
    REQUIRE(part->write(0, sv::wire::as_bytes(head)));
    REQUIRE(part->write(four_gib, sv::wire::as_bytes(std::string_view(tail).substr(0, 1024 * 1024))));
    REQUIRE(part->save());
    // The hole between is the source's hole too: claim it as a crash after
    // writing it would have left the metadata.
    std::ofstream(state / "downloads" / (part->key() + ".meta"), std::ios::trunc)
        << sv::share::PartialFile::meta_to_text(meta);
  }
  const auto out = dir.path / "out";
  auto got = sv::test::run({SERVENT_BIN, "get", url, "-o", out.string(), "--state-dir", state.string(), "--json"}, 120s);
  INFO(got.out);
  CHECK(got.status == 0);
  CHECK(got.out.find("\"verified\":true") != std::string::npos);
  // Its first progress already counts what the partial file held.
  const auto first = got.out.find("\"have\":");
  REQUIRE(first != std::string::npos);
  CHECK(std::stoull(got.out.substr(first + 7)) >= have);
  const auto file = out / "big disk image.iso";
  REQUIRE(fs::exists(file));
  CHECK(fs::file_size(file) == size);
  std::ifstream in(file, std::ios::binary);
  std::string got_head(head.size(), '\0'), got_tail(tail.size(), '\0');
  in.read(got_head.data(), static_cast<std::streamsize>(got_head.size()));
  in.seekg(static_cast<std::streamoff>(four_gib));
  in.read(got_tail.data(), static_cast<std::streamsize>(got_tail.size()));
  CHECK(got_head == head);
  CHECK(got_tail == tail);
  CHECK(node.terminate() == 0);
}
