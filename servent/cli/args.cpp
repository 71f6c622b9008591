#include "servent/cli/args.hpp"

#include "wire/common/text.hpp"

#include <charconv>

namespace sv::cli {

std::optional<std::string> Args::last(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

const std::vector<std::string>& Args::all(const std::string& name) const {
  static const std::vector<std::string> kEmpty;
  auto it = values.find(name);
  return it == values.end() ? kEmpty : it->second;
}

Args parse_args(const std::vector<std::string>& argv, const OptionSpec& spec) {
  Args a;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") {
      a.positional.insert(a.positional.end(), argv.begin() + static_cast<std::ptrdiff_t>(i) + 1, argv.end());
      break;
    }
    if (arg.size() > 2 && arg.starts_with("--")) {
      std::string name = arg, value;
      bool inline_value = false;
      if (auto eq = arg.find('='); eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        inline_value = true;
      }
      if (spec.flags.count(name)) {
        if (inline_value) throw UsageError("option " + name + " takes no value");
        a.flags.insert(name);
        continue;
      }
      if (!spec.with_value.count(name)) throw UsageError("unknown option " + name);
      if (!inline_value) {
        if (i + 1 >= argv.size()) throw UsageError("option " + name + " needs a value");
        value = argv[++i];
      }
      a.values[name].push_back(value);
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-' && arg != "-") {
      if (spec.flags.count(arg)) {
        a.flags.insert(arg);
        continue;
      }
      if (spec.with_value.count(arg)) {
        if (i + 1 >= argv.size()) throw UsageError("option " + arg + " needs a value");
        a.values[arg].push_back(argv[++i]);
        continue;
      }
      throw UsageError("unknown option " + arg);
    }
    a.positional.push_back(arg);
  }
  return a;
}

Duration parse_duration(const std::string& text, const std::string& what) {
  double v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc{} || v < 0) throw UsageError(what + ": not a duration: '" + text + "'");
  std::string_view unit(r.ptr, static_cast<std::size_t>(text.data() + text.size() - r.ptr));
  double ms = 0;
  if (unit.empty() || unit == "s") {
    ms = v * 1000;
  } else if (unit == "ms") {
    ms = v;
  } else if (unit == "m") {
    ms = v * 60'000;
  } else {
    throw UsageError(what + ": not a duration: '" + text + "' (use 10, 10s, 500ms or 2m)");
  }
  return Duration(static_cast<std::int64_t>(ms));
}

long parse_int(const std::string& text, long lo, long hi, const std::string& what) {
  long v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || v < lo || v > hi) {
    throw UsageError(what + ": expected a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", got '" + text + "'");
  }
  return v;
}

Endpoint parse_endpoint(const std::string& text, const std::string& what) {
  auto e = Endpoint::parse(text);
  if (!e) throw UsageError(what + ": expected HOST:PORT with an IPv4 host, got '" + text + "'");
  return *e;
}

std::string json_string(std::string_view s) { return wire::json_quote(s); }

}  // namespace sv::cli
