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
std::uint64_t random_seed();
// Non-zero counters as one "who: name=value ..." line on stderr.
void print_counters(const char* who, const std::vector<Counter>& cs);

int cmd_get(const std::vector<std::string>& argv);
int cmd_tui(const std::vector<std::string>& argv);

}  // namespace sv::cli
