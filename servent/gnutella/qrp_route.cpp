#include "servent/gnutella/qrp_route.hpp"

#include <algorithm>
#include <bit>

#include "share/sha1.hpp"
#include "wire/common/zlib_stream.hpp"
#include "wire/gnutella/huge.hpp"

namespace sv {

namespace gn = wire::gnutella;

QrpBits::QrpBits(int bits) : bits_(bits), words_(bits <= 6 ? 1 : (std::size_t{1} << bits) / 64, 0) {}

QrpBits QrpBits::from_table(const gn::QrpTable& t) {
  if (!t.ready() || t.bits() < 1) return {};
  QrpBits out(t.bits());
  for (std::uint32_t s = 0; s < t.slots(); ++s) {
    if (t.present(s)) out.set(s);
  }
  return out;
}

void QrpBits::merge(const QrpBits& other) {
  if (other.empty()) return;
  if (empty()) {
    *this = other;
    return;
  }
  if (other.bits_ == bits_) {
    for (std::size_t i = 0; i < words_.size(); ++i) words_[i] |= other.words_[i];
    return;
  }
  if (other.bits_ > bits_) {
    const int shift = other.bits_ - bits_;
    for (std::uint32_t s = 0; s < other.slots(); ++s) {
      if (other.test(s)) set(s >> shift);
    }
    return;
  }
  const int shift = bits_ - other.bits_;
  for (std::uint32_t s = 0; s < other.slots(); ++s) {
    if (!other.test(s)) continue;
    for (std::uint32_t d = s << shift; d < (s + 1) << shift; ++d) set(d);
  }
}

std::size_t QrpBits::count() const {
  std::size_t n = 0;
  for (auto w : words_) n += static_cast<std::size_t>(std::popcount(w));
  return n;
}

QrpBits qrp_table_for(const share::Library& library, int bits) {
  QrpBits t(bits);
  for (const auto* f : library.all()) {
    for (const auto& w : f->words) {
      if (w.size() < kQrpMinWord) {
        t.add_word(w);
        continue;
      }
      for (std::size_t n = kQrpMinWord; n <= w.size(); ++n) t.add_word(std::string_view(w).substr(0, n));
    }
    if (f->sha1) t.add_word(share::sha1_urn(*f->sha1));
  }
  return t;
}

std::vector<wire::Bytes> qrp_update(const QrpBits* from, const QrpBits& to, std::uint8_t infinity,
                                    std::size_t max_chunk) {
  std::vector<wire::Bytes> out;
  const bool reset = from == nullptr || from->bits() != to.bits();
  if (!reset && *from == to) return out;
  if (reset) {
    wire::Bytes r;
    gn::encode_qrp(r, gn::QrpReset{to.slots(), infinity});
    out.push_back(std::move(r));
  }
  // One signed 4-bit delta per slot, high nibble first: a slot going present
  // moves from infinity to 1, one going absent from 1 to infinity.
  const int down = 1 - infinity, up = infinity - 1;
  auto nibble = [&](std::uint32_t s) -> std::uint8_t {
    const bool now = to.test(s);
    const bool before = reset ? false : from->test(s);
    const int d = now == before ? 0 : (now ? down : up);
    return static_cast<std::uint8_t>(d & 0x0f);
  };
  wire::Bytes raw(to.slots() / 2);
  for (std::uint32_t s = 0; s + 1 < to.slots(); s += 2) {
    raw[s / 2] = static_cast<std::uint8_t>(nibble(s) << 4 | nibble(s + 1));
  }
  const wire::Bytes z = wire::deflate_bytes(raw);
  const std::size_t chunk = std::max<std::size_t>(max_chunk, 1);
  const std::size_t n = std::max<std::size_t>((z.size() + chunk - 1) / chunk, 1);
  // SeqSize is one byte: a table so incompressible that it needs more than
  // 255 chunks gets bigger chunks.
  const std::size_t per = n > 255 ? (z.size() + 254) / 255 : chunk;
  const std::size_t count = (z.size() + per - 1) / per;
  for (std::size_t i = 0; i < count; ++i) {
    gn::QrpPatch p;
    p.seq_no = static_cast<std::uint8_t>(i + 1);
    p.seq_size = static_cast<std::uint8_t>(count);
    p.compressor = gn::kQrpCompressorZlib;
    p.entry_bits = 4;
    const std::size_t b = i * per, e = std::min(z.size(), b + per);
    p.data.assign(z.begin() + static_cast<std::ptrdiff_t>(b), z.begin() + static_cast<std::ptrdiff_t>(e));
    wire::Bytes m;
    gn::encode_qrp(m, p);
    out.push_back(std::move(m));
  }
  return out;
}

QueryTerms query_terms(std::string_view criteria, const gn::Extensions& ext) {
  QueryTerms out;
  for (const auto& urn : gn::all_urns(ext)) {
    if (auto sha = share::parse_sha1_urn(urn)) {
      if (std::find(out.sha1s.begin(), out.sha1s.end(), *sha) == out.sha1s.end()) out.sha1s.push_back(*sha);
    }
  }
  if (out.sha1s.empty()) out.words = share::keywords(criteria);
  return out;
}

QueryTerms query_terms(const gn::Query& q) {
  return query_terms(q.criteria, q.extensions.empty() ? gn::Extensions{} : gn::decode_extensions(q.extensions));
}

bool qrp_matches(const QrpBits& t, const QueryTerms& q) {
  if (t.empty()) return false;
  if (!q.sha1s.empty()) {
    for (const auto& sha : q.sha1s) {
      if (t.has_word(share::sha1_urn(sha))) return true;
    }
    return false;
  }
  for (const auto& w : q.words) {
    if (w.size() >= kQrpMinWord && !t.has_word(w)) return false;
  }
  // Every long word is there (or only short ones: nothing to decide on).
  return !q.words.empty();
}

}  // namespace sv
