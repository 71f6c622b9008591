#include "wire/gnutella/qrp.hpp"

#include "wire/common/zlib_stream.hpp"

namespace sv::wire::gnutella {

Result<QrpMessage> decode_qrp(ByteView p) {
  if (p.empty()) return WireError::Malformed;
  if (p[0] == kQrpReset) {
    if (p.size() != 6) return WireError::Malformed;
    return QrpMessage{QrpReset{get_le32(p.data() + 1), p[5]}};
  }
  if (p[0] == kQrpPatch) {
    if (p.size() < 5) return WireError::Malformed;
    QrpPatch patch{p[1], p[2], p[3], p[4], Bytes(p.begin() + 5, p.end())};
    return QrpMessage{std::move(patch)};
  }
  return WireError::Unsupported;
}

void encode_qrp(Bytes& out, const QrpMessage& m) {
  if (const auto* r = std::get_if<QrpReset>(&m)) {
    out.push_back(kQrpReset);
    put_le32(out, r->table_length);
    out.push_back(r->infinity);
    return;
  }
  const auto& p = std::get<QrpPatch>(m);
  out.push_back(kQrpPatch);
  out.push_back(p.seq_no);
  out.push_back(p.seq_size);
  out.push_back(p.compressor);
  out.push_back(p.entry_bits);
  put_bytes(out, p.data);
}

std::uint32_t qrp_hash(std::string_view word, int bits) {
  std::uint32_t folded = 0;
  int j = 0;
  for (char ch : word) {
    auto b = static_cast<std::uint32_t>(static_cast<unsigned char>(ch));
    if (b >= 'A' && b <= 'Z') b += 'a' - 'A';
    folded ^= b << (j * 8);
    j = (j + 1) & 3;
  }
  const std::uint32_t product = folded * 0x4F1BBCDCu;
  return bits >= 32 ? product : product >> (32 - bits);
}

int qrp_bits(std::uint32_t table_length) {
  if (table_length == 0 || (table_length & (table_length - 1)) != 0) return -1;
  int bits = 0;
  while ((std::uint32_t{1} << bits) != table_length) ++bits;
  return bits;
}

QrpTable::Error QrpTable::fail(Error e) {
  // A broken sequence leaves the table as it was before that sequence; the
  // next sequence starts over at SeqNo 1.
  next_seq_ = 1;
  pending_.clear();
  return e;
}

QrpTable::Error QrpTable::apply(const QrpMessage& m) {
  if (const auto* r = std::get_if<QrpReset>(&m)) {
    const int bits = qrp_bits(r->table_length);
    if (bits < 1 || r->table_length > max_slots_) return fail(Error::BadTableLength);
    if (r->infinity < 2) return fail(Error::BadInfinity);
    table_.assign(r->table_length, static_cast<std::int8_t>(std::min<int>(r->infinity, 127)));
    infinity_ = r->infinity;
    bits_ = bits;
    reset_ = true;
    ready_ = false;
    next_seq_ = 1;
    pending_.clear();
    return Error::None;
  }
  const auto& p = std::get<QrpPatch>(m);
  if (!reset_) return fail(Error::PatchBeforeReset);
  if (p.seq_no != next_seq_ || p.seq_size == 0 || p.seq_no > p.seq_size ||
      (p.seq_no > 1 && (p.seq_size != seq_size_ || p.compressor != compressor_ || p.entry_bits != entry_bits_))) {
    return fail(Error::BadSequence);
  }
  if (p.entry_bits != 4 && p.entry_bits != 8) return fail(Error::BadEntryBits);
  if (p.compressor != kQrpCompressorNone && p.compressor != kQrpCompressorZlib) return fail(Error::BadCompressor);
  const std::size_t want = table_.size() * p.entry_bits / 8;  // the inflated size of a whole sequence
  if (pending_.size() + p.data.size() > want + 1024 * 1024) return fail(Error::TooLarge);
  seq_size_ = p.seq_size;
  compressor_ = p.compressor;
  entry_bits_ = p.entry_bits;
  pending_.insert(pending_.end(), p.data.begin(), p.data.end());
  if (p.seq_no < p.seq_size) {
    ++next_seq_;
    return Error::None;
  }
  Bytes data;
  if (compressor_ == kQrpCompressorZlib) {
    auto inflated = inflate_bytes(pending_, want);
    if (!inflated) return fail(inflated.error() == WireError::TooLarge ? Error::TooLarge : Error::BadData);
    data = std::move(*inflated);
  } else {
    data = std::move(pending_);
  }
  if (data.size() != want) return fail(Error::BadData);
  std::size_t slot = 0;
  auto add = [&](int delta) {
    const int v = table_[slot] + delta;
    table_[slot++] = static_cast<std::int8_t>(std::clamp(v, -128, 127));
  };
  for (std::uint8_t byte : data) {
    if (entry_bits_ == 8) {
      add(static_cast<std::int8_t>(byte));
    } else {
      const int hi = byte >> 4, lo = byte & 0x0f;
      add(hi >= 8 ? hi - 16 : hi);
      add(lo >= 8 ? lo - 16 : lo);
    }
  }
  ready_ = true;
  next_seq_ = 1;
  pending_.clear();
  return Error::None;
}

std::size_t QrpTable::present_slots() const {
  std::size_t n = 0;
  for (std::int8_t v : table_) n += v < infinity_;
  return n;
}

std::string_view to_string(QrpTable::Error e) {
  switch (e) {
    case QrpTable::Error::None: return "none";
    case QrpTable::Error::PatchBeforeReset: return "patch-before-reset";
    case QrpTable::Error::BadTableLength: return "bad-table-length";
    case QrpTable::Error::BadInfinity: return "bad-infinity";
    case QrpTable::Error::BadSequence: return "bad-sequence";
    case QrpTable::Error::BadEntryBits: return "bad-entry-bits";
    case QrpTable::Error::BadCompressor: return "bad-compressor";
    case QrpTable::Error::BadData: return "bad-data";
    case QrpTable::Error::TooLarge: return "too-large";
  }
  return "?";
}

}  // namespace sv::wire::gnutella
