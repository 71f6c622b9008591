// HTTP/1.x request parser: llhttp wrapped as feed()/state.
//
// One request at a time: after State::Complete the caller handles request()
// and calls next() to parse the following (pipelined / keep-alive) request.
// Limits: the request line plus headers may not exceed max_header_bytes
// (status 431, or 414 when the request line alone is too long); a body is
// skipped. Errors are final for the connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "wire/common/bytes.hpp"
#include "http/header_collector.hpp"
#include "wire/common/text.hpp"

namespace sv::http {

struct Request {
  std::string method;  // "GET", "HEAD", ...
  std::string target;  // raw request-target, still percent-encoded
  int version_major = 1, version_minor = 1;
  wire::Headers headers;
  bool keep_alive = false;  // llhttp's verdict from version + Connection
};

class RequestParser {
 public:
  enum class State { NeedMore, Complete, Error };
  explicit RequestParser(std::size_t max_header_bytes = 8 * 1024);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Feeds bytes; `consumed` says how many were used. Stops after one complete
  // request (the rest must be fed again after next()).
  State feed(wire::ByteView bytes, std::size_t& consumed);
  const Request& request() const { return req_; }
  void next();
  // On Error: the status to answer with (400, 414, 431) and a reason.
  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }
  // True once any byte of the current request has been seen.
  bool started() const { return header_bytes_ > 0; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Request req_;
  HeaderCollector headers_in_;
  bool headers_done_ = false;
  bool complete_ = false;
  std::size_t header_bytes_ = 0;
  std::size_t max_header_bytes_;
  int error_status_ = 0;
  std::string error_reason_;
  friend struct Callbacks;
};

}  // namespace sv::http
