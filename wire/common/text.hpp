// Text helpers shared by the line-based codecs (Gnutella handshakes, HTTP).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sv::wire {

bool iequals(std::string_view a, std::string_view b);
std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
// A JSON string literal (RFC 8259) for bytes from the network: valid UTF-8
// passes through, control characters and bytes that are not UTF-8 become
// \u00XX escapes, so the result is always valid JSON.
std::string json_quote(std::string_view s);

// An ordered list of "Name: value" headers with case-insensitive lookup.
class Headers {
 public:
  void add(std::string name, std::string value);
  // RFC 822 folding: appends " " + text to the last header (false if none).
  bool append_to_last(std::string_view text);
  // Case-insensitive; repeated headers are joined with ", ".
  std::optional<std::string> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  // Appends "Name: value\r\n" for each header, then the blank line "\r\n".
  void write_to(std::string& out) const;
  const std::vector<std::pair<std::string, std::string>>& all() const { return items_; }
  bool operator==(const Headers&) const = default;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

}  // namespace sv::wire
