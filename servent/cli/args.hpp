// Command-line parsing: `--name value`, `--name=value` and boolean flags.
// Unknown options and missing values are reported as one clear line (the
// caller exits with status 2).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "servent/core/types.hpp"

namespace sv::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct OptionSpec {
  std::set<std::string> with_value;  // e.g. "--listen"
  std::set<std::string> flags;       // e.g. "--json"
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> values;
  std::set<std::string> flags;

  bool has(const std::string& name) const { return flags.count(name) || values.count(name); }
  std::optional<std::string> last(const std::string& name) const;
  const std::vector<std::string>& all(const std::string& name) const;
};

Args parse_args(const std::vector<std::string>& argv, const OptionSpec& spec);

// "10", "10s", "1500ms", "2m" -> duration. Throws UsageError naming `what`.
Duration parse_duration(const std::string& text, const std::string& what);
// Integer in [lo, hi]. Throws UsageError naming `what`.
long parse_int(const std::string& text, long lo, long hi, const std::string& what);
// "HOST:PORT" (IPv4 or localhost); throws UsageError naming `what`.
Endpoint parse_endpoint(const std::string& text, const std::string& what);
// JSON string literal with escapes.
std::string json_string(std::string_view s);

}  // namespace sv::cli
