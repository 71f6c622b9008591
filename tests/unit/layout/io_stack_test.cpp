// One I/O stack: only servent/uv talks to the operating system's networking
// (sockets, poll/select/epoll, libuv). Every other client, server and tool
// (pcap replay, the control-socket clients, the TUI) goes through the Driver.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// The headers that would open a second networking stack.
const std::regex kForbidden(
    R"(^\s*#\s*include\s*[<"](sys/socket\.h|sys/un\.h|poll\.h|sys/poll\.h|sys/select\.h|sys/epoll\.h|)"
    R"(netinet/[a-z_]+\.h|arpa/inet\.h|netdb\.h|uv\.h|uv/[a-z_-]+\.h)[>"])");

std::vector<std::string> offenders(const fs::path& root) {
  std::vector<std::string> found;
  for (const char* top : {"servent", "wire", "http", "share"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / top)) {
      if (!e.is_regular_file()) continue;
      const auto rel = fs::relative(e.path(), root).generic_string();
      if (rel.starts_with("servent/uv/")) continue;
      const auto ext = e.path().extension();
      if (ext != ".cpp" && ext != ".hpp" && ext != ".h" && ext != ".cc") continue;
      std::ifstream in(e.path());
      std::string line;
      int n = 0;
      while (std::getline(in, line)) {
        ++n;
        if (std::regex_search(line, kForbidden)) found.push_back(rel + ":" + std::to_string(n) + ": " + line);
      }
    }
  }
  return found;
}

}  // namespace

TEST_CASE("no file outside servent/uv includes socket, poll or libuv headers") {
  const fs::path root = SERVENT_SOURCE_DIR;
  REQUIRE(fs::exists(root / "servent/uv/driver.cpp"));
  // The check itself finds what it looks for: the Driver does include them.
  std::ifstream driver(root / "servent/uv/driver.cpp");
  std::string text((std::istreambuf_iterator<char>(driver)), {});
  CHECK(std::regex_search(text, std::regex(R"(#include <uv\.h>)")));
  const auto found = offenders(root);
  for (const auto& f : found) MESSAGE(f);
  CHECK(found.empty());
}
