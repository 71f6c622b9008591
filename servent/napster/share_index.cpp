#include "servent/napster/share_index.hpp"

#include <algorithm>

namespace sv::napster {

namespace {

bool is_word_char(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

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

std::uint32_t ShareIndex::add(ShareRecord r) {
  if (shares_.size() >= 0xfffffff0u) compact();
  const auto id = static_cast<std::uint32_t>(shares_.size());
  for (const auto& w : words_of(r.name, path_depth_)) postings_[word_id(w)].push_back(id);
  r.live = true;
  bytes_ += r.size;
  ++live_;
  shares_.push_back(std::move(r));
  return id;
}

void ShareIndex::remove(std::uint32_t id) {
  if (id >= shares_.size() || !shares_[id].live) return;
  ShareRecord& r = shares_[id];
  r.live = false;
  bytes_ -= r.size;
  --live_;
  std::string().swap(r.name);  // the tombstone keeps no name
}

void ShareIndex::maybe_compact() {
  if (shares_.size() > 1024 && live_ * 2 < shares_.size()) compact();
}

const ShareRecord* ShareIndex::get(std::uint32_t id) const {
  if (id >= shares_.size() || !shares_[id].live) return nullptr;
  return &shares_[id];
}

void ShareIndex::for_each(const std::function<void(std::uint32_t, const ShareRecord&)>& fn) const {
  for (std::uint32_t id = 0; id < shares_.size(); ++id) {
    if (shares_[id].live) fn(id, shares_[id]);
  }
}

void ShareIndex::compact() {
  std::vector<ShareRecord> live;
  live.reserve(live_);
  for (auto& r : shares_) {
    if (r.live) live.push_back(std::move(r));
  }
  shares_ = std::move(live);
  shares_.shrink_to_fit();
  for (auto& p : postings_) p.clear();
  for (std::uint32_t id = 0; id < shares_.size(); ++id) {
    for (const auto& w : words_of(shares_[id].name, path_depth_)) postings_[word_id(w)].push_back(id);
  }
  // Words no live share has any more are dropped from the dictionary.
  std::vector<std::vector<std::uint32_t>> kept;
  for (auto it = dict_.begin(); it != dict_.end();) {
    auto& list = postings_[it->second];
    if (list.empty()) {
      it = dict_.erase(it);
      continue;
    }
    list.shrink_to_fit();
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
  std::vector<const std::vector<std::uint32_t>*> lists;
  lists.reserve(words.size());
  for (const auto& w : words) {
    auto it = dict_.find(w);
    if (it == dict_.end()) return;  // a word nobody has: no results
    lists.push_back(&postings_[it->second]);
  }
  std::sort(lists.begin(), lists.end(), [](auto* a, auto* b) { return a->size() < b->size(); });
  const auto& rarest = *lists[0];
  // Newest first: walk the rarest list backwards and look each id up in the
  // others by binary search; ids decrease, so each search is bounded by the
  // position the previous one stopped at.
  std::vector<std::size_t> hi(lists.size());
  for (std::size_t k = 0; k < lists.size(); ++k) hi[k] = lists[k]->size();
  for (std::size_t i = rarest.size(); i-- > 0;) {
    const std::uint32_t id = rarest[i];
    bool all = true;
    for (std::size_t k = 1; k < lists.size() && all; ++k) {
      const auto& v = *lists[k];
      // Largest position < hi[k] with v[pos] <= id: binary search in [0, hi[k]).
      auto pos = static_cast<std::size_t>(std::upper_bound(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(hi[k]), id) -
                                          v.begin());
      hi[k] = pos;
      all = pos > 0 && v[pos - 1] == id;
    }
    if (!all) continue;
    const ShareRecord& r = shares_[id];
    if (!r.live) continue;
    if (!visit(id, r)) return;
  }
}

}  // namespace sv::napster
