// Helpers the subcommands share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "servent/core/types.hpp"

namespace sv::cli {

// Prints "servent COMMAND: MSG (see 'servent COMMAND --help')" and exits 2.
[[noreturn]] void usage_error(const std::string& command, const std::string& msg);
std::string home_dir();
// $XDG_STATE_HOME/servent, else ~/.local/state/servent.
std::string default_state_dir();
std::string human_bytes(std::uint64_t b);
// A progress bar of `width` cells ('#' done, '.' to go) and a time left
// ("m:ss", "h:mm:ss", "--:--" when unknown), for the progress lines.
std::string bar(double fraction, int width);
std::string eta(double seconds);
std::uint64_t random_seed();
// Non-zero counters as one "who: name=value ..." line on stderr.
void print_counters(const char* who, const std::vector<Counter>& cs);

int cmd_get(const std::vector<std::string>& argv);
int cmd_tui(const std::vector<std::string>& argv);
int cmd_napster_server(const std::vector<std::string>& argv);
int cmd_browse(const std::vector<std::string>& argv);
int cmd_peers(const std::vector<std::string>& argv);
int cmd_torrent(const std::vector<std::string>& argv);
int cmd_tracker(const std::vector<std::string>& argv);
int cmd_dht(const std::vector<std::string>& argv);

// "HOST:PORT" for a listener: an IPv4 address (or localhost) and a port
// (0 picks a free one). Throws UsageError naming `what`.
struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
};
ListenAddress parse_listen(const std::string& text, const std::string& what);
// Raises the open-file limit to the hard limit (a server with many clients).
void raise_fd_limit();

}  // namespace sv::cli
