// `servent tui`: the terminal front end. It draws tui::App with ncurses and
// speaks to a node over its control socket: the running node's, or one it
// starts itself (`servent run` with the given flags, its output going to
// STATE/node.log so nothing scribbles over the screen) and stops on quit.
#define NCURSES_WIDECHAR 1
#include <curses.h>
#include <fcntl.h>
#include <langinfo.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <clocale>
#include <cstring>
#include <filesystem>
#include <thread>

#include <fmt/core.h>

#include "servent/cli/common.hpp"
#include "servent/cli/node_client.hpp"
#include "servent/tui/app.hpp"

namespace sv::cli {

namespace {

constexpr const char* kTuiHelp = R"(usage: servent tui [--node STATE_DIR] [RUN OPTIONS...]

A terminal UI on a servent node: search (several searches as tabs, results
grouped by content with their sources, sorted by any column, filtered as you
type), downloads (progress, rate, ETA, pause/resume/cancel), uploads, peers
and counters. Press ? inside for the keys.

It attaches to the node running with STATE_DIR (--node, or --state-dir, or
the default state directory). When none runs there it starts one, as
'servent run' with the RUN OPTIONS given (--share, --listen, --connect, ...),
writing its output to STATE_DIR/node.log, and stops it on quit.
)";

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

std::int32_t map_key(int kind, wint_t ch) {
  using namespace tui;
  if (kind == KEY_CODE_YES) {
    switch (ch) {
      case KEY_UP: return kKeyUp;
      case KEY_DOWN: return kKeyDown;
      case KEY_LEFT: return kKeyLeft;
      case KEY_RIGHT: return kKeyRight;
      case KEY_PPAGE: return kKeyPageUp;
      case KEY_NPAGE: return kKeyPageDown;
      case KEY_HOME: return kKeyHome;
      case KEY_END: return kKeyEnd;
      case KEY_ENTER: return kKeyEnter;
      case KEY_BTAB: return kKeyBackTab;
      case KEY_BACKSPACE: return kKeyBackspace;
      case KEY_DC: return kKeyDelete;
      default: return 0;
    }
  }
  switch (ch) {
    case '\n': case '\r': return kKeyEnter;
    case '\t': return kKeyTab;
    case 127: case 8: return kKeyBackspace;
    case 27: return kKeyEscape;
    case 3: return 'q';  // Ctrl-C
    default: return static_cast<std::int32_t>(ch);
  }
}

struct Colours {
  attr_t of[16] = {};
};

Colours setup_colours() {
  using tui::Attr;
  Colours c;
  auto set = [&](Attr a, attr_t v) { c.of[static_cast<int>(a)] = v; };
  // Without colour: reverse video and bold carry the meaning.
  set(Attr::Normal, A_NORMAL);
  set(Attr::Title, A_REVERSE);
  set(Attr::TabActive, A_BOLD);
  set(Attr::Header, A_BOLD | A_UNDERLINE);
  set(Attr::Selected, A_REVERSE);
  set(Attr::Status, A_REVERSE);
  set(Attr::Input, A_BOLD);
  set(Attr::Good, A_BOLD);
  set(Attr::Bad, A_BOLD);
  set(Attr::Dim, A_DIM);
  set(Attr::Bar, A_REVERSE);
  if (!has_colors()) return c;
  start_color();
  use_default_colors();
  init_pair(1, COLOR_BLACK, COLOR_CYAN);
  init_pair(2, COLOR_BLACK, COLOR_YELLOW);
  init_pair(3, COLOR_GREEN, -1);
  init_pair(4, COLOR_RED, -1);
  init_pair(5, COLOR_BLACK, COLOR_GREEN);
  init_pair(6, COLOR_CYAN, -1);
  set(Attr::Title, COLOR_PAIR(1));
  set(Attr::TabActive, COLOR_PAIR(2) | A_BOLD);
  set(Attr::Header, COLOR_PAIR(6) | A_BOLD);
  set(Attr::Status, COLOR_PAIR(1));
  set(Attr::Good, COLOR_PAIR(3) | A_BOLD);
  set(Attr::Bad, COLOR_PAIR(4) | A_BOLD);
  set(Attr::Bar, COLOR_PAIR(5));
  return c;
}

// Copies the drawn grid to the terminal, a run of same-attribute cells at a time.
void blit(const tui::Screen& s, const Colours& colours) {
  for (int y = 0; y < s.height(); ++y) {
    int x = 0;
    while (x < s.width()) {
      const tui::Attr a = s.at(x, y).attr;
      std::string run;
      int start = x;
      while (x < s.width() && s.at(x, y).attr == a) run += s.at(x++, y).glyph;
      attrset(colours.of[static_cast<int>(a)]);
      mvaddstr(y, start, run.c_str());
    }
  }
  attrset(A_NORMAL);
}

// Starts `servent run` for the TUI; returns its pid, or -1.
pid_t start_node(const std::string& state_dir, const std::vector<std::string>& run_args) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  const std::string log = (std::filesystem::path(state_dir) / "node.log").string();
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return -1;
  self[n] = 0;
  std::vector<std::string> args = {self, "run", "--state-dir", state_dir};
  args.insert(args.end(), run_args.begin(), run_args.end());
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
  }
  if (null >= 0) ::dup2(null, 0);
  ::setsid();  // the terminal's signals are the TUI's
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(self, argv.data());
  ::_exit(127);
}

}  // namespace

int cmd_tui(const std::vector<std::string>& argv) {
  std::optional<std::string> node_dir;
  std::vector<std::string> run_args;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--help" || argv[i] == "-h") {
      fmt::print("{}", kTuiHelp);
      return 0;
    }
    if (argv[i] == "--node") {
      if (i + 1 >= argv.size()) usage_error("tui", "--node needs a directory");
      node_dir = argv[++i];
    } else if (argv[i] == "--state-dir") {
      if (i + 1 >= argv.size()) usage_error("tui", "--state-dir needs a directory");
      node_dir = argv[++i];
    } else {
      run_args.push_back(argv[i]);
    }
  }
  if (!::isatty(0) || !::isatty(1)) {
    fmt::print(stderr, "servent tui: needs a terminal (use 'servent search' and 'servent get' in scripts)\n");
    return 2;
  }
  const std::string state_dir = node_dir.value_or(default_state_dir());
  auto node = std::make_unique<NodeClient>(state_dir);
  pid_t child = -1;
  if (!node->ok()) {
    child = start_node(state_dir, run_args);
    if (child < 0) {
      fmt::print(stderr, "servent tui: cannot start a node\n");
      return 1;
    }
    // Wait (bounded) for its control socket.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!node->ok() && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(child, &status, WNOHANG) == child) {
        fmt::print(stderr, "servent tui: the node stopped at once; see {}/node.log\n", state_dir);
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      node = std::make_unique<NodeClient>(state_dir);
    }
    if (!node->ok()) {
      ::kill(child, SIGTERM);
      ::waitpid(child, nullptr, 0);
      fmt::print(stderr, "servent tui: the node did not open {}/control.sock\n", state_dir);
      return 1;
    }
  } else if (!run_args.empty()) {
    fmt::print(stderr, "servent tui: a node already runs with {}; its options stay as they are\n", state_dir);
  }

  std::setlocale(LC_ALL, "");
  const bool utf8 = std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
  ::signal(SIGTERM, on_signal);
  ::signal(SIGHUP, on_signal);
  set_escdelay(25);
  initscr();
  raw();
  noecho();
  keypad(stdscr, TRUE);
  nodelay(stdscr, TRUE);
  curs_set(0);
  const Colours colours = setup_colours();

  tui::App app;
  auto last_draw = tui::Clock::time_point{};
  bool dirty = true, gone = false;
  node->watch_input(0);
  while (!app.quitting() && !g_stop) {
    node->wait(std::chrono::milliseconds(100));  // a key, a line from the node, or the next tick
    const auto now = tui::Clock::now();
    wint_t ch = 0;
    int kind;
    while ((kind = get_wch(&ch)) != ERR) {
      if (kind == KEY_CODE_YES && ch == KEY_RESIZE) {
        clear();
      } else if (auto k = map_key(kind, ch); k != 0) {
        app.key(k, now);
      }
      dirty = true;
    }
    while (!gone) {
      auto j = node->next(std::chrono::milliseconds(0));
      if (!j) break;
      app.message(*j, now);
      dirty = true;
    }
    if (!gone && node->closed()) {
      gone = true;
      app.disconnected(now);
      dirty = true;
    }
    app.tick(now);
    for (const auto& r : app.take_requests()) {
      if (!gone) node->send(r);
    }
    // At most ten frames a second however fast results stream in.
    if (dirty && now - last_draw >= std::chrono::milliseconds(100)) {
      int h = 0, w = 0;
      getmaxyx(stdscr, h, w);
      tui::Screen screen(w, h, utf8);
      app.draw(screen);
      erase();
      blit(screen, colours);
      refresh();
      last_draw = now;
      dirty = false;
    }
  }
  endwin();
  if (child > 0) {
    // The node we started goes with us.
    if (!gone) node->call({{"cmd", "quit"}}, std::chrono::seconds(2));
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(child, nullptr, WNOHANG) == child) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(child, SIGTERM);
    ::waitpid(child, nullptr, 0);
  }
  return 0;
}

}  // namespace sv::cli
