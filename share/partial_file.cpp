#include "share/partial_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace sv::share {

namespace {

// Names go into a line-based file: escape what would break a line.
std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '%' || c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::optional<std::string> unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    wire::Bytes b;
    if (!wire::from_hex(s.substr(i + 1, 2), b)) return std::nullopt;
    out.push_back(static_cast<char>(b[0]));
    i += 2;
  }
  return out;
}

}  // namespace

std::string PartialFile::meta_to_text(const DownloadMeta& m) {
  std::ostringstream o;
  o << "servent-download 1\n";
  o << "name " << escape(m.name) << "\n";
  if (m.size_known) o << "size " << m.size << "\n";
  if (m.sha1) o << "sha1 " << base32_encode(m.sha1->data(), m.sha1->size()) << "\n";
  o << "have " << m.have.to_string() << "\n";
  for (const auto& s : m.sources) o << "source " << escape(s) << "\n";
  return o.str();
}

std::optional<DownloadMeta> PartialFile::meta_from_text(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != "servent-download 1") return std::nullopt;
  DownloadMeta m;
  while (std::getline(in, line)) {
    auto sp = line.find(' ');
    std::string key = line.substr(0, sp), value = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (key == "name") {
      auto n = unescape(value);
      if (!n) return std::nullopt;
      m.name = *n;
    } else if (key == "size") {
      try {
        m.size = std::stoull(value);
      } catch (...) {
        return std::nullopt;
      }
      m.size_known = true;
    } else if (key == "sha1") {
      m.sha1 = base32_decode_sha1(value);
      if (!m.sha1) return std::nullopt;
    } else if (key == "have") {
      auto r = RangeSet::parse(value);
      if (!r) return std::nullopt;
      m.have = *r;
    } else if (key == "source") {
      auto s = unescape(value);
      if (s) m.sources.push_back(*s);
    }
  }
  if (m.size_known && !m.have.empty() && m.have.intervals().back().end > m.size) return std::nullopt;
  return m;
}

std::unique_ptr<PartialFile> PartialFile::open(const std::string& dir, const std::string& key, DownloadMeta initial,
                                               std::string& error) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    error = "cannot create " + dir + ": " + ec.message();
    return nullptr;
  }
  std::unique_ptr<PartialFile> p(new PartialFile);
  p->dir_ = dir;
  p->key_ = key;
  const auto meta_path = fs::path(dir) / (key + ".meta");
  const auto part_path = fs::path(dir) / (key + ".part");
  std::optional<DownloadMeta> loaded;
  {
    std::ifstream in(meta_path);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      loaded = meta_from_text(ss.str());
    }
  }
  p->fd_ = ::open(part_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (p->fd_ < 0) {
    error = "cannot open " + part_path.string() + ": " + std::strerror(errno);
    return nullptr;
  }
  if (loaded) {
    p->meta_ = std::move(*loaded);
    // Never trust a claim beyond what the data file holds.
    struct stat st {};
    if (::fstat(p->fd_, &st) == 0) p->meta_.have.remove(static_cast<std::uint64_t>(st.st_size), UINT64_MAX);
    if (!p->meta_.sha1 && initial.sha1) p->meta_.sha1 = initial.sha1;
    if (!p->meta_.size_known && initial.size_known) p->set_size(initial.size);
    for (const auto& s : initial.sources) p->add_source(s);
    if (p->meta_.name.empty()) p->meta_.name = initial.name;
  } else {
    initial.have.clear();
    p->meta_ = std::move(initial);
    // Data left without metadata is not trusted: start from an empty file.
    // A new file rather than a truncate to 0, after which ext4 writes the
    // whole file out when it is closed (auto_da_alloc), stalling the loop.
    struct stat st {};
    if (::fstat(p->fd_, &st) == 0 && st.st_size > 0) {
      ::close(p->fd_);
      ::unlink(part_path.c_str());
      p->fd_ = ::open(part_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (p->fd_ < 0) {
        error = "cannot recreate " + part_path.string() + ": " + std::strerror(errno);
        return nullptr;
      }
    }
  }
  p->hasher_ = std::make_unique<FileSha1>(p->fd_);
  p->dirty_ = true;
  if (!p->save()) {
    error = "cannot write " + meta_path.string();
    return nullptr;
  }
  return p;
}

PartialFile::~PartialFile() {
  hasher_.reset();  // its thread maps fd_: stopped before fd_ closes
  if (fd_ >= 0) {
    save();
    ::close(fd_);
  }
}

bool PartialFile::write(std::uint64_t offset, wire::ByteView data) {
  if (meta_.size_known) {
    if (offset >= meta_.size) return true;
    if (offset + data.size() > meta_.size) data = data.first(static_cast<std::size_t>(meta_.size - offset));
  }
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  // Bytes that extend the hashed prefix are hashed now, while they are at
  // hand: a download received in order is verified by the time it ends.
  if (offset < hashed_ && !data.empty()) {
    // Hashed bytes written again (and maybe different): start over.
    hasher_->restart();
    hashed_ = 0;
  }
  if (offset == hashed_) {
    hashed_ += data.size();
    hasher_->advance(hashed_);  // written above: the hasher's mapping sees it
  }
  meta_.have.add(offset, offset + data.size());
  unsaved_ += data.size();
  dirty_ = true;
  return true;
}

void PartialFile::set_size(std::uint64_t size) {
  meta_.size = size;
  meta_.size_known = true;
  meta_.have.remove(size, UINT64_MAX);
  dirty_ = true;
}

bool PartialFile::add_source(const std::string& url) {
  for (const auto& s : meta_.sources) {
    if (s == url) return false;
  }
  meta_.sources.push_back(url);
  dirty_ = true;
  return true;
}

void PartialFile::forget(std::uint64_t first, std::uint64_t end) {
  if (first < hashed_) {
    // Those bytes will be fetched again: hash from the start then.
    hasher_->restart();
    hashed_ = 0;
  }
  meta_.have.remove(first, end);
  dirty_ = true;
  save();
}

bool PartialFile::save() {
  if (!dirty_ || fd_ < 0) return true;
  const auto tmp = fs::path(dir_) / (key_ + ".meta.tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << meta_to_text(meta_);
    out.flush();
    if (!out) return false;
  }
  std::error_code ec;
  fs::rename(tmp, fs::path(dir_) / (key_ + ".meta"), ec);
  if (ec) return false;
  dirty_ = false;
  unsaved_ = 0;
  return true;
}

std::optional<wire::Bytes> PartialFile::read(std::uint64_t offset, std::size_t length) const {
  wire::Bytes out(length);
  std::size_t got = 0;
  while (got < length) {
    const ssize_t n = ::pread(fd_, out.data() + got, length - got, static_cast<off_t>(offset + got));
    if (n <= 0) return std::nullopt;
    got += static_cast<std::size_t>(n);
  }
  return out;
}

std::optional<Sha1> PartialFile::hash() {
  // The prefix was hashed as it arrived; what came out of order is hashed now.
  hasher_->advance(meta_.size);
  const auto h = hasher_->finish();
  hashed_ = 0;  // a next call (after a failed check and a re-fetch) starts over
  return h;
}

std::optional<std::string> PartialFile::finish(const std::string& out_dir, std::string& error) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  const auto part_path = fs::path(dir_) / (key_ + ".part");
  if (::ftruncate(fd_, static_cast<off_t>(meta_.size)) != 0) {
    error = "cannot size " + part_path.string();
    return std::nullopt;
  }
  // A name from the network must not pick the folder: keep its last component.
  std::string name = fs::path(meta_.name).filename().string();
  if (name.empty() || name == "." || name == "..") name = key_;
  fs::path stem = fs::path(name).stem(), ext = fs::path(name).extension();
  fs::path target = fs::path(out_dir) / name;
  for (int i = 1; fs::exists(target, ec); ++i) {
    target = fs::path(out_dir) / (stem.string() + " (" + std::to_string(i) + ")" + ext.string());
  }
  fs::rename(part_path, target, ec);
  if (ec) {
    // Another filesystem: copy, then remove.
    fs::copy_file(part_path, target, ec);
    if (ec) {
      error = "cannot move to " + target.string() + ": " + ec.message();
      return std::nullopt;
    }
    fs::remove(part_path, ec);
  }
  hasher_.reset();
  ::close(fd_);
  fd_ = -1;
  fs::remove(fs::path(dir_) / (key_ + ".meta"), ec);
  return target.string();
}

void PartialFile::discard() {
  std::error_code ec;
  hasher_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  fs::remove(fs::path(dir_) / (key_ + ".part"), ec);
  fs::remove(fs::path(dir_) / (key_ + ".meta"), ec);
}

}  // namespace sv::share
