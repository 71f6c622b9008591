#include "http/response_parser.hpp"

#include <llhttp.h>

#include <charconv>

namespace sv::http {

struct ResponseParser::Impl {
  llhttp_t parser;
  llhttp_settings_t settings;
};

struct ResponseCallbacks {
  static ResponseParser& self(llhttp_t* p) { return *static_cast<ResponseParser*>(p->data); }
  static int on_status(llhttp_t* p, const char* at, std::size_t len) {
    self(p).resp_.reason.append(at, len);
    return 0;
  }
  static int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
    auto& r = self(p);
    r.headers_in_.field(at, len, r.resp_.headers);
    return 0;
  }
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    self(p).headers_in_.value(at, len);
    return 0;
  }
  static int on_headers_complete(llhttp_t* p) {
    auto& r = self(p);
    r.headers_in_.flush(r.resp_.headers);
    if (p->status_code < 100) return -1;  // RFC 9110 §15: three digits, first 1-5
    r.resp_.status = p->status_code;
    r.resp_.version_major = p->http_major;
    r.resp_.version_minor = p->http_minor;
    r.resp_.keep_alive = llhttp_should_keep_alive(p) != 0;
    r.complete_ = true;
    return HPE_PAUSED;  // the body is ours to frame
  }
};

ResponseParser::ResponseParser(std::size_t max_header_bytes)
    : impl_(std::make_unique<Impl>()), max_header_bytes_(max_header_bytes) {
  llhttp_settings_init(&impl_->settings);
  impl_->settings.on_status = &ResponseCallbacks::on_status;
  impl_->settings.on_header_field = &ResponseCallbacks::on_header_field;
  impl_->settings.on_header_value = &ResponseCallbacks::on_header_value;
  impl_->settings.on_headers_complete = &ResponseCallbacks::on_headers_complete;
  next();
}

ResponseParser::~ResponseParser() = default;

void ResponseParser::next() {
  llhttp_init(&impl_->parser, HTTP_RESPONSE, &impl_->settings);
  impl_->parser.data = this;
  resp_ = Response{};
  headers_in_.reset();
  complete_ = failed_ = false;
  head_bytes_ = 0;
  error_.clear();
}

ResponseParser::State ResponseParser::feed(wire::ByteView bytes, std::size_t& consumed) {
  consumed = 0;
  if (failed_) return State::Error;
  if (complete_) return State::Complete;
  std::size_t n = std::min(bytes.size(), max_header_bytes_ - head_bytes_);
  const char* data = reinterpret_cast<const char*>(bytes.data());
  auto err = llhttp_execute(&impl_->parser, data, n);
  if (err == HPE_PAUSED) {
    consumed = static_cast<std::size_t>(llhttp_get_error_pos(&impl_->parser) - data);
  } else if (err == HPE_OK) {
    consumed = n;
  } else {
    failed_ = true;
    error_ = std::string(llhttp_errno_name(err)) + ": " + llhttp_get_error_reason(&impl_->parser);
    return State::Error;
  }
  head_bytes_ += consumed;
  if (complete_) {
    if (auto cl = resp_.headers.get("Content-Length")) {
      std::uint64_t v = 0;
      auto t = wire::trim(*cl);
      auto r = std::from_chars(t.data(), t.data() + t.size(), v);
      if (r.ec != std::errc{} || r.ptr != t.data() + t.size()) {
        failed_ = true;
        error_ = "bad Content-Length";
        return State::Error;
      }
      resp_.content_length = v;
    }
    return State::Complete;
  }
  if (head_bytes_ >= max_header_bytes_) {
    failed_ = true;
    error_ = "response head too large";
    return State::Error;
  }
  return State::NeedMore;
}

}  // namespace sv::http
