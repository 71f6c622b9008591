// Bencoding (BEP 3): the spec's examples, round trips, every prefix, the
// canonical-form rules, limits, and the offsets errors report.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "wire/bt/bencode.hpp"

using namespace sv::wire;
using namespace sv::wire::bt;

namespace {

std::variant<Value, BencodeError> dec(std::string_view s, const BencodeLimits& l = {}) {
  return decode_bencode_exact(as_bytes(s), l);
}

BencodeError err(std::string_view s, const BencodeLimits& l = {}) {
  auto r = dec(s, l);
  REQUIRE(std::holds_alternative<BencodeError>(r));
  return std::get<BencodeError>(r);
}

Value val(std::string_view s) {
  auto r = dec(s);
  if (auto* e = std::get_if<BencodeError>(&r)) FAIL(describe(*e));
  return std::get<Value>(r);
}

std::string enc(const Value& v) {
  const Bytes b = encode_bencode(v);
  return std::string(as_chars(b));
}

}  // namespace

TEST_CASE("bencode_decodes_the_examples_of_bep_3") {
  CHECK(*val("4:spam").string() == "spam");
  CHECK(*val("0:").string() == "");
  CHECK(*val("i3e").integer() == 3);
  CHECK(*val("i-3e").integer() == -3);
  CHECK(*val("i0e").integer() == 0);
  const Value l = val("l4:spam4:eggse");
  REQUIRE(l.list());
  CHECK(l.list()->size() == 2);
  CHECK(*(*l.list())[1].string() == "eggs");
  const Value d = val("d3:cow3:moo4:spam4:eggse");
  REQUIRE(d.dict());
  CHECK(*d.find("cow")->string() == "moo");
  CHECK(*d.find("spam")->string() == "eggs");
  CHECK(d.find("none") == nullptr);
  const Value dl = val("d4:spaml1:a1:bee");
  CHECK(dl.find("spam")->list()->size() == 2);
  // Extremes of 64 bits.
  CHECK(*val("i9223372036854775807e").integer() == INT64_MAX);
  CHECK(*val("i-9223372036854775808e").integer() == INT64_MIN);
  // Strings are bytes.
  CHECK(val(std::string_view("3:\0\xff\x01", 5)).string()->size() == 3);
}

TEST_CASE("bencode_round_trips_and_records_where_each_value_sits") {
  for (std::string_view s : {"4:spam", "i-3e", "le", "de", "l4:spam4:eggse", "d3:cow3:moo4:spam4:eggse",
                             "d4:infod6:lengthi5e4:name1:xe1:zli1eli2eeee", "lllleeee"}) {
    CAPTURE(s);
    CHECK(enc(val(s)) == s);
  }
  const std::string t = "d8:announce3:url4:infod6:lengthi5e4:name1:xee";
  const Value v = val(t);
  const Value* info = v.find("info");
  REQUIRE(info);
  CHECK(t.substr(info->begin, info->end - info->begin) == "d6:lengthi5e4:name1:xe");
  // Built in code: make_dict sorts (raw byte order) and keeps one of each key.
  const Value built = Dict(make_dict({{"b", 1}, {"a", "x"}, {"\xff", List{}}, {"a", "y"}}));
  CHECK(enc(built) == "d1:a1:y1:bi1e1:\xff" "lee");
  CHECK(val(enc(built)) == built);
}

TEST_CASE("bencode_every_truncated_prefix_needs_more_and_names_its_end") {
  const std::string t = "d8:announce3:url4:infod6:lengthi-5e4:name1:x5:piecel0:i7eeee";
  REQUIRE(std::holds_alternative<Value>(dec(t)));
  for (std::size_t n = 0; n < t.size(); ++n) {
    CAPTURE(n);
    auto r = decode_bencode(as_bytes(std::string_view(t).substr(0, n)));
    REQUIRE(std::holds_alternative<BencodeError>(r));
    CHECK(std::get<BencodeError>(r).kind == WireError::NeedMore);
    CHECK(std::get<BencodeError>(r).offset == n);
  }
  // One value, then more: decode_bencode stops after it; exact refuses.
  auto r = decode_bencode(as_bytes("i1ei2e"));
  REQUIRE(std::holds_alternative<Decoded>(r));
  CHECK(std::get<Decoded>(r).consumed == 3);
  CHECK(err("i1ei2e").offset == 3);
}

TEST_CASE("bencode_refuses_every_non_canonical_form_with_its_offset") {
  struct Case {
    std::string_view in;
    WireError kind;
    std::size_t offset;
  };
  const Case cases[] = {
      {"i-0e", WireError::Malformed, 0},                     // negative zero
      {"i03e", WireError::Malformed, 1},                     // leading zero
      {"i-03e", WireError::Malformed, 2},
      {"ie", WireError::Malformed, 1},                       // no digits
      {"i-e", WireError::Malformed, 2},
      {"i+3e", WireError::Malformed, 1},
      {"i3.0e", WireError::Malformed, 2},
      {"i9223372036854775808e", WireError::TooLarge, 1},     // past int64
      {"i-9223372036854775809e", WireError::TooLarge, 2},
      {"i99999999999999999999999e", WireError::TooLarge, 1},
      {"03:abc", WireError::Malformed, 0},                   // leading zero in a length
      {"-1:a", WireError::Malformed, 0},
      {"3x:abc", WireError::Malformed, 1},
      {"d1:b1:x1:a1:ye", WireError::Malformed, 7},           // keys out of order
      {"d1:a1:x1:a1:ye", WireError::Malformed, 7},           // key twice
      {"di1e1:xe", WireError::Malformed, 1},                 // key not a string
      {"x", WireError::Malformed, 0},
      {"l4:spamxe", WireError::Malformed, 7},
      {"e", WireError::Malformed, 0},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    const auto e = err(c.in);
    CHECK(e.kind == c.kind);
    CHECK(e.offset == c.offset);
    CHECK(!describe(e).empty());
  }
}

TEST_CASE("bencode_limits_depth_size_and_count") {
  BencodeLimits l;
  l.max_depth = 3;
  CHECK(std::holds_alternative<Value>(dec("llleee", l)));
  CHECK(err("lllleeee", l).kind == WireError::TooLarge);
  // Deeply nested hostile input stops at the limit, without recursion to the end.
  const std::string deep(100000, 'l');
  CHECK(err(deep).kind == WireError::TooLarge);
  l = {};
  l.max_size = 16;
  CHECK(err("20:aaaaaaaaaaaaaaaaaaaa", l).kind == WireError::TooLarge);
  CHECK(err("100000000000:", l).kind == WireError::TooLarge);
  std::string many = "l";
  for (int i = 0; i < 10; ++i) many += "i1e";
  CHECK(err(many + "e", l).kind == WireError::TooLarge);
  l = {};
  l.max_values = 4;
  CHECK(std::holds_alternative<Value>(dec("li1ei2ei3ee", l)));
  CHECK(err("li1ei2ei3ei4ee", l).kind == WireError::TooLarge);
}

TEST_CASE("bencode_split_at_every_point_decodes_the_same_once_complete") {
  const std::string t = "d1:ad1:bli1ei-2e3:xyzee1:c0:e";
  const Value whole = val(t);
  for (std::size_t n = 0; n <= t.size(); ++n) {
    // The prefix needs more; the whole decodes the same as ever.
    auto r = decode_bencode(as_bytes(std::string_view(t).substr(0, n)));
    if (n < t.size()) {
      CHECK(std::holds_alternative<BencodeError>(r));
    } else {
      REQUIRE(std::holds_alternative<Decoded>(r));
      CHECK(std::get<Decoded>(r).value == whole);
    }
  }
}
