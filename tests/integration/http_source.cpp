#include "integration/http_source.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "http/range.hpp"
#include "wire/common/text.hpp"

namespace sv::test {

HttpSource::HttpSource(std::string content, std::string urn) : content_(std::move(content)), urn_(std::move(urn)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("HttpSource: cannot listen");
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { serve(); });
}

HttpSource::~HttpSource() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

void HttpSource::cut_next(std::size_t bytes, std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  cut_ = bytes;
  hook_ = std::move(hook);
}

std::vector<std::string> HttpSource::ranges() {
  std::lock_guard<std::mutex> lock(mu_);
  return ranges_;
}

std::string HttpSource::head(std::uint64_t first, std::uint64_t last) const {
  return "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(first) + "-" +
         std::to_string(last) + "/" + std::to_string(content_.size()) +
         "\r\nContent-Length: " + std::to_string(last - first + 1) + "\r\nX-Gnutella-Content-URN: " + urn_ +
         "\r\nConnection: keep-alive\r\n\r\n";
}

std::size_t HttpSource::head_size_for(std::uint64_t first, std::uint64_t last) const { return head(first, last).size(); }

void HttpSource::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    handle(fd);
    ::close(fd);
  }
}

void HttpSource::handle(int fd) {
  std::string buf;
  while (!stop_) {
    auto end = buf.find("\r\n\r\n");
    if (end == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) < 0) return;
      if (!(p.revents & (POLLIN | POLLHUP))) continue;
      char tmp[4096];
      ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0 || buf.size() > 65536) return;
      buf.append(tmp, static_cast<std::size_t>(n));
      continue;
    }
    std::string req = buf.substr(0, end + 4);
    buf.erase(0, end + 4);
    std::string range_value;
    for (std::size_t pos = req.find("\r\n"); pos != std::string::npos && pos + 2 < req.size();) {
      auto next = req.find("\r\n", pos + 2);
      auto line = std::string_view(req).substr(pos + 2, next - pos - 2);
      if (line.size() > 6 && wire::iequals(line.substr(0, 6), "Range:")) range_value = line.substr(6);
      pos = next;
    }
    auto rr = http::parse_range(range_value, content_.size());
    if (rr.kind != http::RangeRequest::Kind::Satisfiable) return;
    std::string resp = head(rr.range.first, rr.range.last) +
                       content_.substr(rr.range.first, rr.range.length());
    std::optional<std::size_t> cut;
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ranges_.push_back(std::to_string(rr.range.first) + "-" + std::to_string(rr.range.last));
      cut = std::exchange(cut_, std::nullopt);
      hook = std::exchange(hook_, nullptr);
    }
    if (cut && *cut < resp.size()) resp.resize(*cut);
    std::size_t sent = 0;
    while (sent < resp.size()) {
      ssize_t n = ::send(fd, resp.data() + sent, resp.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
    if (cut) {
      if (hook) hook();
      return;
    }
  }
}

}  // namespace sv::test
