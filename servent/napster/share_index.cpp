#include "servent/napster/share_index.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace sv::napster {

namespace {

bool is_word_char(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

ShareRecord::ShareRecord(std::string_view name, std::string_view extra, std::uint64_t sz, std::uint32_t own,
                         std::uint32_t br, std::uint32_t fr, std::uint32_t len)
    : size(sz), owner(own), bitrate(br), freq(fr), length(len) {
  name = name.substr(0, 0xffff);
  extra = extra.substr(0, 0xffff);
  text_ = std::make_unique_for_overwrite<char[]>(4 + name.size() + extra.size());
  char* p = text_.get();
  p[0] = static_cast<char>(name.size() & 0xff);
  p[1] = static_cast<char>(name.size() >> 8);
  p[2] = static_cast<char>(extra.size() & 0xff);
  p[3] = static_cast<char>(extra.size() >> 8);
  std::memcpy(p + 4, name.data(), name.size());
  std::memcpy(p + 4 + name.size(), extra.data(), extra.size());
}

std::string_view ShareRecord::name() const {
  if (!text_) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(text_.get());
  return {text_.get() + 4, static_cast<std::size_t>(p[0] | (p[1] << 8))};
}

std::string_view ShareRecord::extra() const {
  if (!text_) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(text_.get());
  const std::size_t n = static_cast<std::size_t>(p[0] | (p[1] << 8));
  return {text_.get() + 4 + n, static_cast<std::size_t>(p[2] | (p[3] << 8))};
}

std::vector<std::string> ShareIndex::words_of(std::string_view text, std::size_t path_depth) {
  if (path_depth > 0) {
    // Keep the last path_depth components.
    std::size_t start = 0, pos = text.size();
    for (std::size_t seen = 0; seen < path_depth; ++seen) {
      const std::size_t sep = pos == 0 ? std::string_view::npos : text.find_last_of("\\/", pos - 1);
      if (sep == std::string_view::npos) {
        start = 0;
        break;
      }
      start = sep + 1;
      pos = sep;
    }
    text = text.substr(start);
  }
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !is_word_char(text[i])) ++i;
    std::size_t j = i;
    while (j < text.size() && is_word_char(text[j])) ++j;
    if (j - i >= 2) {
      std::string w(text.substr(i, j - i));
      for (char& c : w) c = lower(c);
      if (std::find(out.begin(), out.end(), w) == out.end()) out.push_back(std::move(w));
    }
    i = j;
  }
  return out;
}

std::uint32_t ShareIndex::word_id(const std::string& w) {
  auto [it, fresh] = dict_.try_emplace(w, static_cast<std::uint32_t>(postings_.size()));
  if (fresh) postings_.emplace_back();
  return it->second;
}

void ShareIndex::add_posting(Posting& p, std::uint32_t id) {
  p.ids.push_back(id);
  if (!p.bits.empty()) {
    if ((id >> 6) >= p.bits.size()) p.bits.resize(std::max<std::size_t>((id >> 6) + 1, p.bits.size() * 2), 0);
    p.bits[id >> 6] |= std::uint64_t{1} << (id & 63);
  } else if (p.ids.size() >= 4096 && p.ids.size() * 32 > shares_.size() + 1) {
    // Common enough: the bitmap is no bigger than the list.
    p.bits.assign((std::max<std::size_t>(id, shares_.size()) >> 6) + 1, 0);
    for (std::uint32_t x : p.ids) p.bits[x >> 6] |= std::uint64_t{1} << (x & 63);
  }
}

std::uint32_t ShareIndex::add(ShareRecord r) {
  if (shares_.size() >= 0xfffffff0u) compact();
  const auto id = static_cast<std::uint32_t>(shares_.size());
  if (r.live()) {
    for (const auto& w : words_of(r.name(), path_depth_)) add_posting(postings_[word_id(w)], id);
    bytes_ += r.size;
    ++live_;
  }
  shares_.push_back(std::move(r));  // an empty record is a tombstone from the start
  return id;
}

void ShareIndex::remove(std::uint32_t id) {
  if (id >= shares_.size() || !shares_[id].live()) return;
  ShareRecord& r = shares_[id];
  bytes_ -= r.size;
  --live_;
  r.clear();  // the tombstone keeps no text
}

void ShareIndex::maybe_compact() {
  if (shares_.size() > 1024 && live_ * 2 < shares_.size()) compact();
}

const ShareRecord* ShareIndex::get(std::uint32_t id) const {
  if (id >= shares_.size() || !shares_[id].live()) return nullptr;
  return &shares_[id];
}

void ShareIndex::for_each(const std::function<void(std::uint32_t, const ShareRecord&)>& fn) const {
  for (std::uint32_t id = 0; id < shares_.size(); ++id) {
    if (shares_[id].live()) fn(id, shares_[id]);
  }
}

void ShareIndex::compact() {
  std::vector<ShareRecord> live;
  live.reserve(live_);
  for (auto& r : shares_) {
    if (r.live()) live.push_back(std::move(r));
  }
  shares_ = std::move(live);
  shares_.shrink_to_fit();
  for (auto& p : postings_) p = Posting{};
  for (std::uint32_t id = 0; id < shares_.size(); ++id) {
    for (const auto& w : words_of(shares_[id].name(), path_depth_)) add_posting(postings_[word_id(w)], id);
  }
  // Words no live share has any more are dropped from the dictionary.
  std::vector<Posting> kept;
  for (auto it = dict_.begin(); it != dict_.end();) {
    auto& list = postings_[it->second];
    if (list.ids.empty()) {
      it = dict_.erase(it);
      continue;
    }
    list.ids.shrink_to_fit();
    kept.push_back(std::move(list));
    it->second = static_cast<std::uint32_t>(kept.size() - 1);
    ++it;
  }
  postings_ = std::move(kept);
  if (on_compacted) on_compacted();
}

void ShareIndex::search(const std::vector<std::string>& words,
                        const std::function<bool(std::uint32_t, const ShareRecord&)>& visit) const {
  if (words.empty()) return;
  std::vector<const Posting*> lists;
  lists.reserve(words.size());
  for (const auto& w : words) {
    auto it = dict_.find(w);
    if (it == dict_.end()) return;  // a word nobody has: no results
    lists.push_back(&postings_[it->second]);
  }
  std::sort(lists.begin(), lists.end(), [](auto* a, auto* b) { return a->ids.size() < b->ids.size(); });
  const auto& rarest = lists[0]->ids;
  // Newest first: walk the rarest list backwards and look each id up in the
  // others. Ids decrease, so each other list has a cursor that only moves
  // down: gallop back from it (a few nearby probes, cache-friendly) rather
  // than binary-search the whole list each time.
  std::vector<std::size_t> hi(lists.size());
  for (std::size_t k = 0; k < lists.size(); ++k) hi[k] = lists[k]->ids.size();
  // Matches are visited in batches: the records of a batch, then their
  // texts, are prefetched together, so their cache misses overlap instead
  // of coming one after another.
  constexpr std::size_t kBatch = 16;
  std::array<std::uint32_t, kBatch> batch;
  std::size_t in_batch = 0;
  auto flush = [&]() -> bool {
    for (std::size_t b = 0; b < in_batch; ++b) __builtin_prefetch(&shares_[batch[b]]);
    for (std::size_t b = 0; b < in_batch; ++b) {
      if (const void* t = shares_[batch[b]].text_address()) __builtin_prefetch(t);
    }
    for (std::size_t b = 0; b < in_batch; ++b) {
      const ShareRecord& r = shares_[batch[b]];
      if (r.live() && !visit(batch[b], r)) {
        in_batch = 0;
        return false;
      }
    }
    in_batch = 0;
    return true;
  };
  std::size_t looked = 0;
  // Bitmap words of candidates a little ahead are fetched early: the probes
  // then hit the cache instead of waiting on memory one after another.
  constexpr std::size_t kAhead = 16;
  const Posting* bitmap = nullptr;
  for (std::size_t k = 1; k < lists.size(); ++k) {
    if (!lists[k]->bits.empty()) bitmap = lists[k];
  }
  for (std::size_t i = rarest.size(); i-- > 0;) {
    ++looked;
    const std::uint32_t id = rarest[i];
    if (bitmap && i >= kAhead) {
      const std::uint32_t ahead = rarest[i - kAhead] >> 6;
      if (ahead < bitmap->bits.size()) __builtin_prefetch(&bitmap->bits[ahead]);
    }
    bool all = true;
    bool exhausted = false;
    for (std::size_t k = 1; k < lists.size() && all; ++k) {
      if (!lists[k]->bits.empty()) {
        all = lists[k]->has(id);
        continue;
      }
      const std::uint32_t* v = lists[k]->ids.data();
      std::size_t top = hi[k];  // answer: number of entries <= id, within [0, top]
      if (top == 0) {           // this list is exhausted: no more matches at all
        exhausted = true;
        break;
      }
      // A few linear steps first (lists of similar length move together),
      // then gallop.
      for (int step = 0; step < 8 && top > 0 && v[top - 1] > id; ++step) --top;
      if (top > 0 && v[top - 1] > id) {
        // Find lo with v[lo - 1] <= id (or lo == 0), doubling the step.
        std::size_t step = 1, lo = top - 1;
        while (lo > 0 && v[lo - 1] > id) {
          top = lo;
          lo = lo > step ? lo - step : 0;
          step *= 2;
        }
        // v[lo - 1] <= id (or lo == 0) and v[top - 1] > id: binary search in [lo, top).
        top = static_cast<std::size_t>(std::upper_bound(v + lo, v + top, id) - v);
      }
      hi[k] = top;
      all = top > 0 && v[top - 1] == id;
    }
    if (exhausted) break;
    if (!all) continue;
    batch[in_batch++] = id;
    if (in_batch == kBatch && !flush()) break;
  }
  if (in_batch > 0) flush();
  candidates_ += looked;
}

}  // namespace sv::napster
