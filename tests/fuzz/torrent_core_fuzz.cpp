// libFuzzer target: bytes from one peer into a TorrentCore, after a valid
// handshake (extension protocol and fast extension on) for a torrent it
// serves: a complete seed (first input byte even) or a magnet link whose
// metadata is still unknown (odd), next to a quiet second peer. File jobs
// run at once, as the Driver's pool would. Invariants over every action:
// nothing goes to a connection after it was closed or to one that never
// existed; every block sent lies inside the torrent's files; every Send is
// whole peer-wire messages.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "servent/torrent/torrent_core.hpp"
#include "servent/uv/file_job.hpp"
#include "share/sha1.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "wire/bt/tracker.hpp"

namespace fs = std::filesystem;
using namespace sv;
namespace bt = sv::wire::bt;

namespace {

struct Seed {
  std::string root;
  bt::Metainfo meta;
  bt::Sha1 info_hash;
  std::uint64_t file_size = 0;
  Seed() {
    char t[] = "/tmp/servent-fuzz-bt-XXXXXX";
    root = mkdtemp(t);
    std::string data(40000, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
    std::ofstream(fs::path(root) / "f.bin", std::ios::binary) << data;
    file_size = data.size();
    meta.name = "f.bin";
    meta.piece_length = 16384;
    meta.total_length = data.size();
    meta.files.push_back(bt::FileEntry{{"f.bin"}, data.size(), 0});
    for (std::size_t at = 0; at < data.size(); at += meta.piece_length) {
      share::Sha1Hasher h;
      h.update(data.data() + at, std::min<std::size_t>(meta.piece_length, data.size() - at));
      meta.pieces.push_back(h.finish());
    }
    const auto info = bt::encode_bencode(bt::info_value(meta));
    share::Sha1Hasher h;
    h.update(info.data(), info.size());
    info_hash = h.finish();
  }
};

Seed& seed() {
  static Seed s;
  return s;
}

const ConnId kFuzzed{1}, kQuiet{2};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool magnet = (data[0] & 1) != 0;
  Seed& s = seed();
  TorrentConfig cfg;
  cfg.peer_id.fill('s');
  TorrentCore core(cfg, 42);
  Instant now{Duration(1'000'000)};
  std::size_t t = 0;
  if (magnet) {
    bt::Magnet m;
    m.info_hash = s.info_hash;
    t = core.add_magnet(m, s.root + "/nowhere", now);
  } else {
    t = core.add_torrent(s.meta, s.info_hash, s.root);
  }
  std::set<std::uint64_t> open = {kFuzzed.value, kQuiet.value}, closed;
  auto drain = [&] {
    while (auto a = core.poll_action()) {
      if (auto* j = std::get_if<action::FileJob>(&*a)) {
        // Writes only ever land in the torrent's own files.
        for (const auto& r : j->ranges) FUZZ_CHECK(r.path.starts_with(s.root + "/"));
        core.handle_file_done(j->job, run_file_job(*j), now);
      } else if (auto* snd = std::get_if<action::Send>(&*a)) {
        FUZZ_CHECK(open.count(snd->conn.value) == 1 && closed.count(snd->conn.value) == 0);
        // Whole messages (after the 68-byte handshake, which goes alone).
        wire::ByteView b(*snd->bytes);
        if (b.size() == bt::kHandshakeSize && b[0] == 19) continue;
        while (!b.empty()) {
          auto r = bt::decode_peer_message(b, 1 << 20);
          FUZZ_CHECK(static_cast<bool>(r));
          b = b.subspan(r->consumed);
        }
      } else if (auto* f = std::get_if<action::SendFile>(&*a)) {
        FUZZ_CHECK(open.count(f->conn.value) == 1 && closed.count(f->conn.value) == 0);
        FUZZ_CHECK(f->path == s.root + "/f.bin");
        FUZZ_CHECK(f->offset + f->length <= s.file_size);
        core.handle_send_done(f->conn, true, now);
      } else if (auto* c = std::get_if<action::Close>(&*a)) {
        FUZZ_CHECK(open.count(c->conn.value) == 1);
        closed.insert(c->conn.value);
      }
    }
  };
  drain();  // the resume check
  bt::Handshake h;
  h.reserved[5] |= 0x10;
  h.reserved[7] |= 0x04;
  h.info_hash = s.info_hash;
  h.peer_id.fill('q');
  wire::Bytes hs;
  bt::encode_handshake(hs, h);
  core.handle_connected(kQuiet, Endpoint{0x7f000002, 6882}, Direction::Inbound, now);
  core.handle_bytes(kQuiet, hs, now);
  drain();
  core.handle_connected(kFuzzed, Endpoint{0x7f000001, 6881}, Direction::Inbound, now);
  core.handle_bytes(kFuzzed, hs, now);
  drain();
  // The rest in two reads, split where the second byte says.
  const std::size_t rest = size - 1;
  const std::size_t cut = rest > 1 ? 1 + data[1] % rest : rest;
  for (auto [from, n] : {std::pair{std::size_t{1}, cut}, std::pair{1 + cut, rest - cut}}) {
    if (n == 0 || closed.count(kFuzzed.value)) continue;
    core.handle_bytes(kFuzzed, wire::ByteView(data + from, n), now);
    drain();
    now = now + std::chrono::seconds(11);
    core.handle_timeout(now);
    drain();
  }
  // The quiet peer is still served.
  FUZZ_CHECK(closed.count(kQuiet.value) == 0);
  FUZZ_CHECK(core.torrents()[t].peers >= 1);
  return 0;
}
