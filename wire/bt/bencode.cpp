#include "wire/bt/bencode.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace sv::wire::bt {

const Value* Value::find(std::string_view key) const {
  const Dict* d = dict();
  if (!d) return nullptr;
  // Sorted: binary search.
  auto it = std::lower_bound(d->begin(), d->end(), key, [](const auto& kv, std::string_view k) { return kv.first < k; });
  return it != d->end() && it->first == key ? &it->second : nullptr;
}

namespace {

class Parser {
 public:
  Parser(ByteView in, const BencodeLimits& limits) : in_(in), limits_(limits) {}

  // Parses the value at pos_; on failure, err_ is set.
  bool value(Value& out, std::size_t depth) {
    if (++values_ > limits_.max_values) return fail(WireError::TooLarge, pos_, "more values than the limit");
    if (pos_ >= in_.size()) return need_more();
    out.begin = pos_;
    const std::uint8_t c = in_[pos_];
    bool ok = false;
    // (a list or dictionary at depth d is the d+1-th level of nesting)
    if ((c == 'l' || c == 'd') && depth >= limits_.max_depth) {
      return fail(WireError::TooLarge, pos_, "nested deeper than the limit");
    }
    if (c == 'i') {
      std::int64_t i = 0;
      ok = integer(i);
      if (ok) out.v = i;
    } else if (c >= '0' && c <= '9') {
      std::string s;
      ok = string(s);
      if (ok) out.v = std::move(s);
    } else if (c == 'l') {
      ++pos_;
      List l;
      ok = true;
      while (ok) {
        if (pos_ >= in_.size()) return need_more();
        if (in_[pos_] == 'e') {
          ++pos_;
          break;
        }
        l.emplace_back();
        ok = value(l.back(), depth + 1);
      }
      if (ok) out.v = std::move(l);
    } else if (c == 'd') {
      ++pos_;
      Dict d;
      ok = true;
      while (ok) {
        if (pos_ >= in_.size()) return need_more();
        if (in_[pos_] == 'e') {
          ++pos_;
          break;
        }
        const std::size_t key_at = pos_;
        if (in_[pos_] < '0' || in_[pos_] > '9') return fail(WireError::Malformed, pos_, "a dictionary key that is not a string");
        std::string key;
        if (!string(key)) return false;
        if (!d.empty() && !(d.back().first < key)) {
          return fail(WireError::Malformed, key_at,
                      d.back().first == key ? "a dictionary key given twice" : "dictionary keys out of order");
        }
        d.emplace_back(std::move(key), Value{});
        ok = value(d.back().second, depth + 1);
      }
      if (ok) out.v = std::move(d);
    } else {
      return fail(WireError::Malformed, pos_, "not the start of a value (i, l, d or a digit)");
    }
    if (!ok) return false;
    out.end = pos_;
    return true;
  }

  std::size_t pos() const { return pos_; }
  const BencodeError& error() const { return err_; }

 private:
  bool fail(WireError kind, std::size_t at, std::string_view what) {
    err_ = BencodeError{kind, at, what};
    return false;
  }
  bool need_more() {
    if (in_.size() >= limits_.max_size) return fail(WireError::TooLarge, in_.size(), "longer than the limit");
    return fail(WireError::NeedMore, in_.size(), "ends inside a value");
  }

  // Digits up to `stop`; canonical (no leading zero unless the number is 0).
  bool digits(std::uint64_t& n, char stop, std::size_t& start) {
    start = pos_;
    n = 0;
    for (;;) {
      if (pos_ >= in_.size()) return need_more();
      const std::uint8_t c = in_[pos_];
      if (c == static_cast<std::uint8_t>(stop)) break;
      if (c < '0' || c > '9') return fail(WireError::Malformed, pos_, "not a digit");
      if (pos_ > start && in_[start] == '0') return fail(WireError::Malformed, start, "a leading zero");
      if (n > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return fail(WireError::TooLarge, start, "a number too large");
      n = n * 10 + (c - '0');
      ++pos_;
    }
    if (pos_ == start) return fail(WireError::Malformed, pos_, "a number with no digits");
    ++pos_;  // the stop character
    return true;
  }

  bool integer(std::int64_t& out) {
    const std::size_t at = pos_;
    ++pos_;  // 'i'
    bool negative = false;
    if (pos_ < in_.size() && in_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    std::uint64_t n = 0;
    std::size_t start = 0;
    if (!digits(n, 'e', start)) return false;
    if (negative && n == 0) return fail(WireError::Malformed, at, "negative zero");
    const auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (n > max + (negative ? 1 : 0)) return fail(WireError::TooLarge, start, "an integer beyond 64 bits");
    out = negative ? static_cast<std::int64_t>(0 - n) : static_cast<std::int64_t>(n);
    return true;
  }

  bool string(std::string& out) {
    std::uint64_t n = 0;
    std::size_t start = 0;
    if (!digits(n, ':', start)) return false;
    if (n > limits_.max_size) return fail(WireError::TooLarge, start, "a string longer than the limit");
    if (in_.size() - pos_ < n) return need_more();
    out.assign(reinterpret_cast<const char*>(in_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }

  ByteView in_;
  const BencodeLimits& limits_;
  std::size_t pos_ = 0;
  std::size_t values_ = 0;
  BencodeError err_{WireError::Malformed, 0, ""};
};

}  // namespace

std::variant<Decoded, BencodeError> decode_bencode(ByteView in, const BencodeLimits& limits) {
  if (in.size() > limits.max_size) in = in.first(limits.max_size + 1);
  Parser p(in, limits);
  Decoded d{{}, 0};
  if (!p.value(d.value, 0)) return p.error();
  if (p.pos() > limits.max_size) return BencodeError{WireError::TooLarge, limits.max_size, "longer than the limit"};
  d.consumed = p.pos();
  return d;
}

std::variant<Value, BencodeError> decode_bencode_exact(ByteView in, const BencodeLimits& limits) {
  auto r = decode_bencode(in, limits);
  if (auto* e = std::get_if<BencodeError>(&r)) return *e;
  auto& d = std::get<Decoded>(r);
  if (d.consumed != in.size()) return BencodeError{WireError::Malformed, d.consumed, "bytes after the value"};
  return std::move(d.value);
}

void encode_bencode(Bytes& out, const Value& v) {
  if (const auto* i = v.integer()) {
    put_string(out, fmt::format("i{}e", *i));
  } else if (const auto* s = v.string()) {
    put_string(out, fmt::format("{}:", s->size()));
    put_string(out, *s);
  } else if (const auto* l = v.list()) {
    out.push_back('l');
    for (const auto& x : *l) encode_bencode(out, x);
    out.push_back('e');
  } else if (const auto* d = v.dict()) {
    out.push_back('d');
    for (const auto& [k, x] : *d) {
      put_string(out, fmt::format("{}:", k.size()));
      put_string(out, k);
      encode_bencode(out, x);
    }
    out.push_back('e');
  }
}

Bytes encode_bencode(const Value& v) {
  Bytes out;
  encode_bencode(out, v);
  return out;
}

Dict make_dict(std::vector<std::pair<std::string, Value>> entries) {
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // A key given twice keeps its last value.
  Dict d;
  for (auto& e : entries) {
    if (!d.empty() && d.back().first == e.first) {
      d.back().second = std::move(e.second);
    } else {
      d.push_back(std::move(e));
    }
  }
  return d;
}

std::string describe(const BencodeError& e) {
  return fmt::format("{} at byte {}: {}", to_string(e.kind), e.offset, e.what);
}

}  // namespace sv::wire::bt
