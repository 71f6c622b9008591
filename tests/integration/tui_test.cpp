// `servent tui` as a person uses it: in a terminal (tmux, on its own server
// socket), against a node on loopback. Keys go in with send-keys, the screen
// comes back with capture-pane; every wait is for something on the screen or
// on disk, with a deadline.
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "integration/process.hpp"
#include "support/files.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sv::test::Process;

namespace {

// MPEG-1 layer III frames at 128 kbps, 44.1 kHz: 417 bytes each.
std::string mp3(std::size_t frames, char fill) {
  std::string f(417, fill);
  f[0] = '\xff';
  f[1] = '\xfb';
  f[2] = '\x90';
  f[3] = '\x00';
  std::string out;
  for (std::size_t i = 0; i < frames; ++i) out += f;
  return out;
}

struct Tmux {
  std::string socket = "servent-test-" + std::to_string(::getpid());
  ~Tmux() { sv::test::run({"tmux", "-L", socket, "kill-server"}, 5s); }
  sv::test::RunResult cmd(std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-L", socket});
    return sv::test::run(args, 10s);
  }
  std::string screen() { return cmd({"capture-pane", "-p", "-t", "tui"}).out; }
  bool alive() { return cmd({"has-session", "-t", "tui"}).status == 0; }
  // Waits until the screen shows everything in `want` and nothing in `not_want`.
  bool wait_screen(const std::vector<std::string>& want, const std::vector<std::string>& not_want = {},
                   std::chrono::seconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string s = screen();
      bool ok = true;
      for (const auto& w : want) ok = ok && s.find(w) != std::string::npos;
      for (const auto& w : not_want) ok = ok && s.find(w) == std::string::npos;
      if (ok) return true;
      if (!alive()) return false;
      ::usleep(100'000);  // the next look at the screen
    }
    MESSAGE("screen was:\n" << screen());
    return false;
  }
  void keys(std::vector<std::string> k) {
    k.insert(k.begin(), {"send-keys", "-t", "tui"});
    cmd(k);
  }
  void text(const std::string& t) { cmd({"send-keys", "-t", "tui", "-l", t}); }
};

}  // namespace

TEST_CASE("tui_search_filter_download_in_a_real_terminal") {
  if (sv::test::run({"tmux", "-V"}, 5s).status != 0) {
    FAIL("tmux is not installed (scripts/test installs it)");
  }
  char tmpl[] = "/tmp/servent-tui-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  fs::create_directories(root / "a");
  fs::create_directories(root / "b");
  fs::create_directories(root / "home");
  const std::string one = mp3(300, '\x01'), two = mp3(250, '\x02');
  std::ofstream(root / "a" / "tui song one.mp3", std::ios::binary) << one;
  std::ofstream(root / "a" / "tui song two.mp3", std::ios::binary) << two;
  // A name made to attack the terminal it is shown on.
  std::ofstream(root / "a" / "evil \x1b[2J\x1b[31mred.txt", std::ios::binary) << "boo";

  auto a = std::make_unique<Process>(std::vector<std::string>{SERVENT_BIN, "run", "--min-peers", "0", "--listen",
                                                               "127.0.0.1:0", "--share", (root / "a").string(),
                                                               "--state-dir", (root / "sa").string()},
                                     (root / "erra").string());
  auto ma = a->wait_for(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
  REQUIRE(ma);
  REQUIRE(a->wait_for(std::regex("^hashed 3 files"), 10s));

  Tmux t;
  const std::string command = "env HOME=" + (root / "home").string() + " LANG=C.UTF-8 " + SERVENT_BIN +
                              " tui --state-dir " + (root / "sb").string() + " --listen 127.0.0.1:0 --min-peers 0" +
                              " --share " + (root / "b").string() + " --connect 127.0.0.1:" + std::string((*ma)[1]);
  REQUIRE(t.cmd({"-u", "-f", "/dev/null", "new-session", "-d", "-s", "tui", "-x", "80", "-y", "24", command}).status == 0);
  // The TUI starts its own node (none runs in sb) and shows it connected.
  REQUIRE(t.wait_screen({"1 Search", "5 Stats", "1 peer"}));
  CHECK(fs::exists(root / "sb" / "control.sock"));

  // A search typed as a person would: the rows arrive live, with the MP3 columns.
  t.keys({"/"});
  t.text("tui song");
  t.keys({"Enter"});
  REQUIRE(t.wait_screen({"tui song (2)", "tui song one.mp3", "tui song two.mp3", "128", "44.1", "0:07"}));
  // Resized, it redraws for the new size: wide enough for the Speed column, then back.
  t.cmd({"resize-window", "-t", "tui", "-x", "120", "-y", "30"});
  REQUIRE(t.wait_screen({"Speed", "tui song one.mp3"}));
  t.cmd({"resize-window", "-t", "tui", "-x", "80", "-y", "24"});
  REQUIRE(t.wait_screen({"tui song one.mp3"}, {"Speed"}));
  // A second search in its own tab: the hostile name is shown, not obeyed.
  t.keys({"/"});
  t.text("evil");
  t.keys({"Enter"});
  REQUIRE(t.wait_screen({"evil (1)", "evil ^[[2J^[[31mred.txt"}));
  CHECK(t.screen().find("tui song (2)") != std::string::npos);  // the first tab is still there
  // Back to the first tab, filter as you type, download with Enter.
  t.keys({"["});
  REQUIRE(t.wait_screen({"Results for \"tui song\""}));
  t.keys({"f"});
  t.text("two");
  REQUIRE(t.wait_screen({"Filter: two", "tui song two.mp3"}, {"tui song one.mp3"}));
  t.keys({"Enter"});
  t.keys({"Enter"});
  t.keys({"Tab"});
  REQUIRE(t.wait_screen({"Progress", "tui song two.mp3", "done"}));
  const fs::path got = root / "home" / "Downloads" / "tui song two.mp3";
  CHECK(sv::test::read_file(got) == two);

  // The Network screen shows the peer; q quits and stops the node it started.
  t.keys({"Tab", "Tab"});
  REQUIRE(t.wait_screen({"Address", "127.0.0.1:" + std::string((*ma)[1]), "servent/"}));
  t.keys({"q"});
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (t.alive() && std::chrono::steady_clock::now() < deadline) ::usleep(100'000);
  CHECK_FALSE(t.alive());
  // Its node is gone: nothing answers on the socket any more.
  auto st = sv::test::run({SERVENT_BIN, "search", "x", "--node", (root / "sb").string(), "--timeout", "1s"}, 10s);
  CHECK(st.status == 1);
  a->terminate();
  fs::remove_all(root);
}
