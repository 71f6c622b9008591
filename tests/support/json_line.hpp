// Test helper: one field of a flat JSON line as text ("<missing>" when absent).
#pragma once

#include <string>

namespace sv::test {

inline std::string json_field(const std::string& line, const std::string& key) {
  auto k = line.find("\"" + key + "\":");
  if (k == std::string::npos) return "<missing>";
  auto v = k + key.size() + 3;
  if (v < line.size() && line[v] == '"') return line.substr(v + 1, line.find('"', v + 1) - v - 1);
  return line.substr(v, line.find_first_of(",}", v) - v);
}

}  // namespace sv::test
