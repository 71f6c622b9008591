#include "http/request_parser.hpp"

#include <llhttp.h>

namespace sv::http {

struct RequestParser::Impl {
  llhttp_t parser;
  llhttp_settings_t settings;
};

struct Callbacks {
  static RequestParser& self(llhttp_t* p) { return *static_cast<RequestParser*>(p->data); }
  static int on_url(llhttp_t* p, const char* at, std::size_t len) {
    self(p).req_.target.append(at, len);
    return 0;
  }
  static int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
    auto& r = self(p);
    r.headers_in_.field(at, len, r.req_.headers);
    return 0;
  }
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    self(p).headers_in_.value(at, len);
    return 0;
  }
  static int on_headers_complete(llhttp_t* p) {
    auto& r = self(p);
    r.headers_in_.flush(r.req_.headers);
    r.headers_done_ = true;
    r.req_.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    r.req_.version_major = p->http_major;
    r.req_.version_minor = p->http_minor;
    r.req_.keep_alive = llhttp_should_keep_alive(p) != 0;
    return 0;
  }
  static int on_message_complete(llhttp_t* p) {
    auto& r = self(p);
    r.complete_ = true;
    return HPE_PAUSED;  // hand one request at a time to the caller
  }
};

RequestParser::RequestParser(std::size_t max_header_bytes)
    : impl_(std::make_unique<Impl>()), max_header_bytes_(max_header_bytes) {
  llhttp_settings_init(&impl_->settings);
  impl_->settings.on_url = &Callbacks::on_url;
  impl_->settings.on_header_field = &Callbacks::on_header_field;
  impl_->settings.on_header_value = &Callbacks::on_header_value;
  impl_->settings.on_headers_complete = &Callbacks::on_headers_complete;
  impl_->settings.on_message_complete = &Callbacks::on_message_complete;
  llhttp_init(&impl_->parser, HTTP_REQUEST, &impl_->settings);
  impl_->parser.data = this;
}

RequestParser::~RequestParser() = default;

RequestParser::State RequestParser::feed(wire::ByteView bytes, std::size_t& consumed) {
  consumed = 0;
  if (error_status_ != 0) return State::Error;
  if (complete_) return State::Complete;
  // Bound the header section: only feed as much as the budget allows, so an
  // endless request line never grows our buffers. When the head ends inside
  // the budget, the rest (a body) is fed on: NeedMore always takes all.
  const char* data = reinterpret_cast<const char*>(bytes.data());
  while (consumed < bytes.size()) {
    std::size_t n = bytes.size() - consumed;
    const bool in_head = !headers_done_;
    if (in_head) n = std::min(n, max_header_bytes_ - header_bytes_);
    if (n == 0) break;
    auto err = llhttp_execute(&impl_->parser, data + consumed, n);
    std::size_t used = n;
    if (err == HPE_PAUSED) {
      used = static_cast<std::size_t>(llhttp_get_error_pos(&impl_->parser) - (data + consumed));
    } else if (err != HPE_OK) {
      error_status_ = 400;
      error_reason_ = llhttp_errno_name(err);
      return State::Error;
    }
    consumed += used;
    if (in_head) header_bytes_ += used;
    if (complete_ || err == HPE_PAUSED) break;
    if (in_head && headers_done_) continue;  // the head ended: the rest is body
    if (!headers_done_) break;              // the budget is spent
  }
  if (complete_) return State::Complete;
  if (!headers_done_ && header_bytes_ >= max_header_bytes_) {
    error_status_ = req_.method.empty() && headers_in_.none_started() && req_.headers.all().empty() ? 414 : 431;
    error_reason_ = error_status_ == 414 ? "request line too long" : "request headers too large";
    return State::Error;
  }
  return State::NeedMore;
}

void RequestParser::next() {
  req_ = Request{};
  headers_in_.reset();
  headers_done_ = false;
  complete_ = false;
  header_bytes_ = 0;
  llhttp_resume(&impl_->parser);
}

}  // namespace sv::http
