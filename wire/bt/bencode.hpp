// Bencoding (BEP 3, "bencoding"), strict: the one canonical form of every
// value is accepted and nothing else, because a torrent's info-hash is the
// SHA-1 of the exact bytes and two encodings of one dictionary would be two
// torrents.
//
//   integer     i<decimal>e      "i0e", "i-42e"; no "i-0e", no leading zeros, no "+", fits int64
//   string      <length>:<bytes> "4:spam"; the length has no leading zeros ("0:" is the empty string)
//   list        l<values>e
//   dictionary  d<string><value>...e   keys are strings, sorted as raw bytes, each once
//
// Limits (config): nesting depth, input size, number of values. Every error
// names the byte offset where the input stopped being valid.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "wire/common/bytes.hpp"
#include "wire/common/result.hpp"

namespace sv::wire::bt {

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // sorted by key, keys unique

struct Value {
  std::variant<std::int64_t, std::string, List, Dict> v;
  // Where the value's encoding sits in the decoded input ([begin, end));
  // both 0 for values built in code.
  std::size_t begin = 0, end = 0;

  Value() : v(std::int64_t{0}) {}
  Value(std::int64_t i) : v(i) {}                 // NOLINT: implicit by design
  Value(std::string s) : v(std::move(s)) {}       // NOLINT
  Value(const char* s) : v(std::string(s)) {}     // NOLINT
  Value(List l) : v(std::move(l)) {}              // NOLINT
  Value(Dict d) : v(std::move(d)) {}              // NOLINT

  const std::int64_t* integer() const { return std::get_if<std::int64_t>(&v); }
  const std::string* string() const { return std::get_if<std::string>(&v); }
  const List* list() const { return std::get_if<List>(&v); }
  const Dict* dict() const { return std::get_if<Dict>(&v); }
  // A dictionary's value for `key` (nullptr when absent or not a dictionary).
  const Value* find(std::string_view key) const;
  bool operator==(const Value& o) const { return v == o.v; }
};

struct BencodeLimits {
  std::size_t max_depth = 64;
  std::size_t max_size = 64u << 20;  // input bytes
  std::size_t max_values = 1u << 22;
};

struct BencodeError {
  WireError kind;      // NeedMore (a valid prefix), Malformed, TooLarge
  std::size_t offset;  // the first byte that cannot be right (the input size for NeedMore)
  std::string_view what;
};

struct Decoded {
  Value value;
  std::size_t consumed;  // bytes of the input the value took
};

// One value from the start of `in` (bytes after it are left: `consumed`).
std::variant<Decoded, BencodeError> decode_bencode(ByteView in, const BencodeLimits& limits = {});
// The whole input is one value: trailing bytes are Malformed.
std::variant<Value, BencodeError> decode_bencode_exact(ByteView in, const BencodeLimits& limits = {});

// Canonical encoding. Dictionaries built in code must have sorted unique
// keys (Dict is a vector; use make_dict to sort one).
void encode_bencode(Bytes& out, const Value& v);
Bytes encode_bencode(const Value& v);
Dict make_dict(std::vector<std::pair<std::string, Value>> entries);

// "malformed at byte 12: leading zero in an integer"
std::string describe(const BencodeError& e);

}  // namespace sv::wire::bt
