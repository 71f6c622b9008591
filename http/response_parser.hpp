// HTTP/1.x response head parser (llhttp), for the download client.
//
// Parses the status line and headers only; the caller frames the body itself
// from Content-Length (or until close), so a 1 GiB body never passes through
// llhttp. After a response, next() re-arms the parser for the following one
// on a keep-alive connection.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "wire/common/bytes.hpp"
#include "http/header_collector.hpp"
#include "wire/common/text.hpp"

namespace sv::http {

struct Response {
  int status = 0;
  std::string reason;
  int version_major = 1, version_minor = 1;
  wire::Headers headers;
  bool keep_alive = false;
  std::optional<std::uint64_t> content_length;
};

class ResponseParser {
 public:
  enum class State { NeedMore, Complete, Error };
  explicit ResponseParser(std::size_t max_header_bytes = 16 * 1024);
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Feeds bytes; on Complete, `consumed` is the size of the head and the rest
  // of `bytes` is body.
  State feed(wire::ByteView bytes, std::size_t& consumed);
  const Response& response() const { return resp_; }
  const std::string& error() const { return error_; }
  void next();

 private:
  struct Impl;
  friend struct ResponseCallbacks;
  std::unique_ptr<Impl> impl_;
  Response resp_;
  HeaderCollector headers_in_;
  bool complete_ = false;
  bool failed_ = false;
  std::size_t head_bytes_ = 0;
  std::size_t max_header_bytes_;
  std::string error_;
};

}  // namespace sv::http
