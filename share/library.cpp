#include "share/library.hpp"

#include "wire/common/text.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <system_error>
#include <utility>

namespace fs = std::filesystem;

namespace sv::share {

std::vector<std::string> keywords(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (unsigned char c : text) {
    bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<unsigned char>(c - 'A' + 'a');
      word = true;
    }
    if (word) {
      cur.push_back(static_cast<char>(c));
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

bool path_within(std::string_view path, std::string_view root) {
  if (!path.starts_with(root)) return false;
  if (path.size() == root.size()) return true;
  return root.ends_with('/') || path[root.size()] == '/';
}

Library::Library(std::vector<std::string> roots, std::string state_dir) : state_dir_(std::move(state_dir)) {
  for (auto& r : roots) {
    std::error_code ec;
    auto c = fs::canonical(r, ec);
    roots_.push_back(ec ? r : c.string());
  }
  load_indices();
  load_hash_cache();
}

void Library::load_indices() {
  if (state_dir_.empty()) return;
  std::ifstream in(fs::path(state_dir_) / "file-indices");
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::uint32_t idx = 0;
    try {
      idx = static_cast<std::uint32_t>(std::stoul(line.substr(0, tab)));
    } catch (...) {
      continue;
    }
    if (idx == 0) continue;
    stable_[line.substr(tab + 1)] = idx;
    next_index_ = std::max(next_index_, idx + 1);
  }
}

void Library::load_hash_cache() {
  if (state_dir_.empty()) return;
  std::ifstream in(fs::path(state_dir_) / "sha1-cache");
  std::string line;
  while (std::getline(in, line)) {
    // <base32 sha1> TAB <size> TAB <mtime ns> TAB <path>
    std::size_t t1 = line.find('\t'), t2 = line.find('\t', t1 + 1), t3 = line.find('\t', t2 + 1);
    if (t3 == std::string::npos) continue;
    auto sha = base32_decode_sha1(line.substr(0, t1));
    if (!sha) continue;
    try {
      hash_cache_[line.substr(t3 + 1)] = CachedHash{std::stoull(line.substr(t1 + 1, t2 - t1 - 1)),
                                                    std::stoll(line.substr(t2 + 1, t3 - t2 - 1)), *sha};
    } catch (...) {
      continue;
    }
  }
}

void Library::save_hash_cache() const {
  if (state_dir_.empty()) return;
  std::error_code ec;
  fs::create_directories(state_dir_, ec);
  auto tmp = fs::path(state_dir_) / "sha1-cache.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [path, c] : hash_cache_) {
      out << base32_encode(c.sha1.data(), c.sha1.size()) << '\t' << c.size << '\t' << c.mtime_ns << '\t' << path
          << '\n';
    }
    if (!out) return;
  }
  fs::rename(tmp, fs::path(state_dir_) / "sha1-cache", ec);
}

void Library::save_indices() const {
  if (state_dir_.empty()) return;
  std::error_code ec;
  fs::create_directories(state_dir_, ec);
  auto tmp = fs::path(state_dir_) / "file-indices.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [path, idx] : stable_) out << idx << '\t' << path << '\n';
    if (!out) return;
  }
  fs::rename(tmp, fs::path(state_dir_) / "file-indices", ec);
}

ScanReport Library::rescan() {
  ++generation_;
  ScanReport rep;
  std::map<std::uint32_t, SharedFile> found;
  for (const auto& root : roots_) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      ++rep.errors;
      continue;
    }
    std::set<std::string> visited_dirs{root};
    std::vector<std::string> stack{root};
    while (!stack.empty()) {
      auto dir = stack.back();
      stack.pop_back();
      fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
      if (ec) {
        ++rep.errors;
        continue;
      }
      for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) {
          ++rep.errors;
          break;
        }
        const auto& entry = it->path();
        std::string name = entry.filename().string();
        if (name.empty() || name[0] == '.') {
          ++rep.skipped_hidden;
          continue;
        }
        // Follow symlinks only when they stay inside this shared folder.
        auto real = fs::canonical(entry, ec);
        if (ec) {
          ++rep.errors;
          ec.clear();
          continue;
        }
        if (!path_within(real.string(), root)) {
          ++rep.skipped_symlink_escape;
          continue;
        }
        auto st = fs::status(real, ec);
        if (ec) {
          ++rep.errors;
          ec.clear();
          continue;
        }
        if (fs::is_directory(st)) {
          if (visited_dirs.insert(real.string()).second) stack.push_back(real.string());
          continue;
        }
        if (!fs::is_regular_file(st)) {
          ++rep.skipped_special;
          continue;
        }
        struct stat st_buf {};
        if (::stat(real.c_str(), &st_buf) != 0) {
          ++rep.errors;
          continue;
        }
        const auto size = static_cast<std::uint64_t>(st_buf.st_size);
        const std::int64_t mtime_ns =
            static_cast<std::int64_t>(st_buf.st_mtim.tv_sec) * 1'000'000'000 + st_buf.st_mtim.tv_nsec;
        // One entry per real file, even when reachable by several names.
        auto key = real.string();
        auto [sit, inserted] = stable_.try_emplace(key, next_index_);
        if (inserted) ++next_index_;
        if (found.count(sit->second)) continue;
        SharedFile f;
        f.index = sit->second;
        f.name = real.filename().string();
        f.path = key;
        f.root = root;
        f.size = size;
        f.mtime_ns = mtime_ns;
        f.dev = static_cast<std::uint64_t>(st_buf.st_dev);
        f.ino = static_cast<std::uint64_t>(st_buf.st_ino);
        f.words = keywords(f.name);
        if (f.name.size() > 4 && wire::iequals(std::string_view(f.name).substr(f.name.size() - 4), ".mp3")) {
          f.audio = read_mp3_file(key);
          // Tags are searchable too: artist and title words.
          if (f.audio) {
            for (auto& w : keywords(f.audio->artist + " " + f.audio->title + " " + f.audio->album)) {
              f.words.push_back(std::move(w));
            }
          }
        }
        if (auto c = hash_cache_.find(key);
            c != hash_cache_.end() && c->second.size == size && c->second.mtime_ns == mtime_ns) {
          f.sha1 = c->second.sha1;
          ++rep.hashes_cached;
        }
        found.emplace(f.index, std::move(f));
      }
    }
  }
  files_ = std::move(found);
  total_bytes_ = 0;
  by_sha1_.clear();
  hash_jobs_.clear();
  for (const auto& [_, f] : files_) {
    total_bytes_ += f.size;
    if (f.sha1) {
      by_sha1_[*f.sha1] = f.index;
    } else {
      hash_jobs_.push_back(HashJob{f.index, f.path, f.size, f.mtime_ns});
    }
  }
  rep.to_hash = hash_jobs_.size();
  rep.files = files_.size();
  rep.bytes = total_bytes_;
  index_words();
  save_indices();
  return rep;
}

void Library::add_virtual(std::string name, std::uint64_t size, std::optional<Sha1> sha1) {
  ++generation_;
  SharedFile f;
  f.index = next_index_++;
  f.sha1 = sha1;
  if (sha1) by_sha1_[*sha1] = f.index;
  f.words = keywords(name);
  f.name = std::move(name);
  f.size = size;
  total_bytes_ += size;
  // Insert this file's words in place: adding n files costs O(n * words).
  for (const auto& w : f.words) {
    auto entry = std::make_pair(w, f.index);
    auto it = std::lower_bound(word_index_.begin(), word_index_.end(), entry);
    if (it == word_index_.end() || *it != entry) word_index_.insert(it, std::move(entry));
  }
  files_.emplace(f.index, std::move(f));
}

void Library::index_words() {
  word_index_.clear();
  for (const auto& [idx, f] : files_) {
    for (const auto& w : f.words) word_index_.emplace_back(w, idx);
  }
  std::sort(word_index_.begin(), word_index_.end());
  word_index_.erase(std::unique(word_index_.begin(), word_index_.end()), word_index_.end());
}

const SharedFile* Library::by_sha1(const Sha1& sha1) const {
  auto it = by_sha1_.find(sha1);
  return it == by_sha1_.end() ? nullptr : by_index(it->second);
}

std::vector<HashJob> Library::take_hash_jobs() { return std::exchange(hash_jobs_, {}); }

void Library::apply_hash(const HashJob& job, const Sha1& sha1) {
  auto it = files_.find(job.index);
  if (it == files_.end() || it->second.path != job.path || it->second.size != job.size ||
      it->second.mtime_ns != job.mtime_ns) {
    return;  // changed since the job was handed out; the next rescan sees it
  }
  ++generation_;
  it->second.sha1 = sha1;
  by_sha1_[sha1] = job.index;
  hash_cache_[job.path] = CachedHash{job.size, job.mtime_ns, sha1};
}

std::size_t Library::hash_all_now() {
  std::size_t n = 0;
  for (const auto& job : take_hash_jobs()) {
    if (auto h = sha1_of_file(job.path)) {
      apply_hash(job, *h);
      ++n;
    }
  }
  save_hash_cache();
  return n;
}

std::string Library::napster_name(const SharedFile& f) {
  std::string root = f.root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  const auto slash = root.rfind('/');
  std::string out = slash == std::string::npos ? root : root.substr(slash + 1);
  std::string rel = f.path.size() > f.root.size() ? f.path.substr(f.root.size()) : "/" + f.name;
  if (!rel.starts_with('/')) rel.insert(rel.begin(), '/');
  out += rel;
  std::replace(out.begin(), out.end(), '/', '\\');
  return out;
}

const SharedFile* Library::by_napster_name(std::string_view name) const {
  // "<folder name>\<path below it>": a canonical path to look up, never opened here.
  const auto sep = name.find('\\');
  if (sep == std::string_view::npos || sep == 0) return nullptr;
  const std::string_view folder = name.substr(0, sep);
  std::string rel(name.substr(sep));
  std::replace(rel.begin(), rel.end(), '\\', '/');
  for (const auto& root : roots_) {
    std::string r = root;
    while (r.size() > 1 && r.back() == '/') r.pop_back();
    const auto slash = r.rfind('/');
    if ((slash == std::string::npos ? r : r.substr(slash + 1)) != folder) continue;
    auto it = stable_.find(r + rel);  // canonical paths only: "..", "//" and the like match nothing
    if (it == stable_.end()) continue;
    if (const SharedFile* f = by_index(it->second); f && f->path == r + rel) return f;
  }
  return nullptr;
}

std::vector<const SharedFile*> Library::all() const {
  std::vector<const SharedFile*> out;
  out.reserve(files_.size());
  for (const auto& [index, f] : files_) out.push_back(&f);
  return out;
}

const SharedFile* Library::by_index(std::uint32_t index) const {
  auto it = files_.find(index);
  return it == files_.end() ? nullptr : &it->second;
}

std::vector<const SharedFile*> Library::search(std::string_view criteria, std::size_t max) const {
  std::vector<const SharedFile*> out;
  auto words = keywords(criteria);
  if (words.empty() || max == 0) return out;
  // Candidates from the most selective-looking (longest) word, then filter
  // by the others.
  std::sort(words.begin(), words.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  std::set<std::uint32_t> candidates;
  const auto& w0 = words.front();
  for (auto it = std::lower_bound(word_index_.begin(), word_index_.end(), std::make_pair(w0, std::uint32_t{0}));
       it != word_index_.end() && it->first.starts_with(w0); ++it) {
    candidates.insert(it->second);
  }
  for (auto idx : candidates) {
    const auto& f = files_.at(idx);
    bool all = true;
    for (std::size_t i = 1; i < words.size() && all; ++i) {
      all = std::any_of(f.words.begin(), f.words.end(), [&](const auto& fw) { return fw.starts_with(words[i]); });
    }
    if (!all) continue;
    out.push_back(&f);
    if (out.size() >= max) break;
  }
  return out;
}

std::optional<std::uint64_t> Library::verify_servable(const SharedFile& file) const {
  struct stat st {};
  if (::lstat(file.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  if (file.ino != 0) {
    // The path still names the very inode the scan found inside the shared
    // folder (whatever a directory on the way was swapped for): one lstat,
    // no realpath per request. The driver checks the same on the opened file.
    if (static_cast<std::uint64_t>(st.st_dev) != file.dev || static_cast<std::uint64_t>(st.st_ino) != file.ino) {
      return std::nullopt;
    }
    return static_cast<std::uint64_t>(st.st_size);
  }
  std::error_code ec;
  auto real = fs::canonical(file.path, ec);
  if (ec || real.string() != file.path || !path_within(file.path, file.root)) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace sv::share
