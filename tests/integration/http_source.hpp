// A scripted HTTP file source for download tests, on 127.0.0.1: serves one
// content with Range, and can cut the next response after N bytes (and run a
// hook at that moment, e.g. to kill the downloader).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sv::test {

class HttpSource {
 public:
  HttpSource(std::string content, std::string urn);
  ~HttpSource();
  std::uint16_t port() const { return port_; }
  // The next response is cut after `bytes` bytes (head included); `hook`
  // runs after those bytes were written, before the connection is closed.
  void cut_next(std::size_t bytes, std::function<void()> hook = {});
  // "first-last" of every Range received, in order.
  std::vector<std::string> ranges();
  std::size_t head_size_for(std::uint64_t first, std::uint64_t last) const;

 private:
  void serve();
  void handle(int fd);
  std::string head(std::uint64_t first, std::uint64_t last) const;
  std::string content_, urn_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::optional<std::size_t> cut_;
  std::function<void()> hook_;
  std::vector<std::string> ranges_;
  std::thread thread_;
};

}  // namespace sv::test
