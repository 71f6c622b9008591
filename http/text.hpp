// URL and response helpers for the file server and client.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "wire/common/text.hpp"

namespace sv::http {

// Percent-decodes a path segment (RFC 3986 §2.1). nullopt on a malformed
// escape or a decoded NUL. '+' is kept as is (it is not a space in paths).
std::optional<std::string> percent_decode(std::string_view s);
// Encodes everything but unreserved characters and '/'.
std::string percent_encode(std::string_view s, bool keep_slash = false);

std::string_view reason_phrase(int status);
// "HTTP/1.1 <status> <reason>\r\n" + headers + "\r\n".
std::string build_response_head(int status, const wire::Headers& headers);

}  // namespace sv::http
