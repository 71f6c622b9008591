#include <doctest/doctest.h>

#include "servent/control/control_core.hpp"

using namespace sv;

namespace {
struct Fx {
  ControlCore core{200};
  Instant now{Duration(1)};
  ConnId c{1};
  Fx() { core.handle_connected(c, now); }
  void feed(std::string_view s) { core.handle_bytes(c, wire::as_bytes(s), now); }
  std::vector<nlohmann::json> replies() {
    std::vector<nlohmann::json> out;
    std::string all;
    while (auto a = core.poll_action()) {
      if (auto* s = std::get_if<action::Send>(&*a)) all.append(s->bytes->begin(), s->bytes->end());
    }
    std::size_t pos = 0;
    for (auto nl = all.find('\n'); nl != std::string::npos; nl = all.find('\n', pos)) {
      out.push_back(nlohmann::json::parse(all.substr(pos, nl - pos)));
      pos = nl + 1;
    }
    return out;
  }
};
}  // namespace

TEST_CASE("control_lines_become_requests_whatever_the_chunking") {
  Fx f;
  const std::string two = "{\"id\":1,\"cmd\":\"peers\"}\n{\"id\":\"x\",\"cmd\":\"search\",\"query\":\"a b\"}\r\n";
  for (std::size_t cut = 0; cut <= two.size(); ++cut) {
    f.feed(std::string_view(two).substr(0, cut));
    f.feed(std::string_view(two).substr(cut));
    auto r1 = f.core.poll_request();
    auto r2 = f.core.poll_request();
    REQUIRE(r1);
    REQUIRE(r2);
    CHECK(r1->cmd == "peers");
    CHECK(r1->id == 1);
    CHECK(r2->cmd == "search");
    CHECK(r2->id == "x");
    CHECK(r2->args["query"] == "a b");
    CHECK_FALSE(f.core.poll_request());
  }
}

TEST_CASE("control_bad_input_gets_error_objects_and_the_connection_stays") {
  Fx f;
  f.feed("not json\n[1,2]\n{\"cmd\":5}\n{\"id\":9,\"cmd\":\"format-disk\"}\n\n");
  f.feed(std::string(500, 'x') + "\n");  // over the 200-byte limit
  f.feed("{\"id\":10,\"cmd\":\"stats\"}\n");
  auto r = f.replies();
  REQUIRE(r.size() == 5);
  for (const auto& j : r) CHECK(j["ok"] == false);
  CHECK(r[3]["id"] == 9);
  CHECK(r[3]["error"].get<std::string>().find("unknown command") != std::string::npos);
  CHECK(r[4]["error"].get<std::string>().find("longer than") != std::string::npos);
  auto ok = f.core.poll_request();
  REQUIRE(ok);
  CHECK(ok->cmd == "stats");
  CHECK(f.core.stat(ControlCore::kBadJson) == 3);
  CHECK(f.core.stat(ControlCore::kUnknownCommand) == 1);
  CHECK(f.core.stat(ControlCore::kLineTooLong) == 1);
}

TEST_CASE("control_replies_carry_the_id_and_survive_non_utf8_names") {
  Fx f;
  f.core.reply(f.c, 7, {{"name", std::string("bad \xff name")}});
  f.core.error(f.c, "q", "nope");
  auto r = f.replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0]["id"] == 7);
  CHECK(r[0]["ok"] == true);
  CHECK(r[0]["name"].get<std::string>().starts_with("bad "));
  CHECK(r[1]["id"] == "q");
  CHECK(r[1]["error"] == "nope");
}
