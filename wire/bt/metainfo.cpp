#include "wire/bt/metainfo.hpp"

#include <fmt/format.h>

namespace sv::wire::bt {

std::uint64_t Metainfo::piece_size(std::size_t i) const {
  if (i >= pieces.size() || piece_length == 0) return 0;
  const std::uint64_t start = static_cast<std::uint64_t>(i) * piece_length;
  return std::min(piece_length, total_length - start);
}

bool safe_path_component(std::string_view c) {
  if (c.empty() || c == "." || c == "..") return false;
  for (char ch : c) {
    if (ch == '/' || ch == '\\' || ch == '\0') return false;
  }
  return true;
}

namespace {

MetainfoError bad(std::string what) { return MetainfoError{WireError::Malformed, std::move(what)}; }

// A non-negative integer field.
bool get_size(const Value* v, std::uint64_t& out) {
  if (!v || !v->integer() || *v->integer() < 0) return false;
  out = static_cast<std::uint64_t>(*v->integer());
  return true;
}

}  // namespace

std::variant<Metainfo, MetainfoError> decode_metainfo(ByteView in, const MetainfoLimits& limits) {
  auto decoded = decode_bencode_exact(in, limits.bencode);
  if (auto* e = std::get_if<BencodeError>(&decoded)) return MetainfoError{e->kind, "bencode: " + describe(*e)};
  const Value& root = std::get<Value>(decoded);
  if (!root.dict()) return bad("not a dictionary");
  Metainfo m;
  if (const Value* a = root.find("announce")) {
    if (!a->string()) return bad("announce: not a string");
    m.announce = *a->string();
  }
  if (const Value* al = root.find("announce-list")) {
    if (!al->list()) return bad("announce-list: not a list");
    for (const Value& tier : *al->list()) {
      if (!tier.list()) return bad("announce-list: a tier that is not a list");
      std::vector<std::string> urls;
      for (const Value& u : *tier.list()) {
        if (!u.string()) return bad("announce-list: a URL that is not a string");
        urls.push_back(*u.string());
      }
      if (!urls.empty()) m.announce_list.push_back(std::move(urls));
    }
  }
  if (const Value* c = root.find("comment"); c && c->string()) m.comment = *c->string();
  if (const Value* c = root.find("created by"); c && c->string()) m.created_by = *c->string();
  if (const Value* c = root.find("creation date"); c && c->integer()) m.creation_date = *c->integer();
  if (const Value* c = root.find("encoding"); c && c->string()) m.encoding = *c->string();

  const Value* info = root.find("info");
  if (!info) return bad("info: missing");
  if (!info->dict()) return bad("info: not a dictionary");
  m.info_begin = info->begin;
  m.info_end = info->end;
  const Value* name = info->find("name");
  if (!name || !name->string()) return bad("info.name: missing or not a string");
  if (!safe_path_component(*name->string())) return bad("info.name: not a safe file name");
  m.name = *name->string();
  if (!get_size(info->find("piece length"), m.piece_length) || m.piece_length == 0) {
    return bad("info.piece length: missing or not a positive integer");
  }
  if (m.piece_length > limits.max_piece_length) {
    return MetainfoError{WireError::TooLarge, fmt::format("info.piece length: {} is over the limit", m.piece_length)};
  }
  const Value* pieces = info->find("pieces");
  if (!pieces || !pieces->string()) return bad("info.pieces: missing or not a string");
  if (pieces->string()->size() % 20 != 0) return bad("info.pieces: length not a multiple of 20");
  if (const Value* p = info->find("private")) {
    if (!p->integer()) return bad("info.private: not an integer");
    m.is_private = *p->integer() == 1;
    m.private_key = true;
  }
  const Value* length = info->find("length");
  const Value* files = info->find("files");
  if ((length != nullptr) == (files != nullptr)) return bad("info: needs exactly one of length and files");
  if (length) {
    std::uint64_t n = 0;
    if (!get_size(length, n)) return bad("info.length: not a non-negative integer");
    if (n > limits.max_total) return MetainfoError{WireError::TooLarge, "info.length: over the limit"};
    m.files.push_back(FileEntry{{m.name}, n, 0});
    m.total_length = n;
  } else {
    if (!files->list()) return bad("info.files: not a list");
    if (files->list()->empty()) return bad("info.files: empty");
    if (files->list()->size() > limits.max_files) return MetainfoError{WireError::TooLarge, "info.files: more than the limit"};
    m.multi_file = true;
    for (std::size_t i = 0; i < files->list()->size(); ++i) {
      const Value& f = (*files->list())[i];
      const std::string where = fmt::format("info.files[{}]", i);
      if (!f.dict()) return bad(where + ": not a dictionary");
      FileEntry e;
      if (!get_size(f.find("length"), e.length)) return bad(where + ".length: missing or not a non-negative integer");
      const Value* path = f.find("path");
      if (!path || !path->list() || path->list()->empty()) return bad(where + ".path: missing, not a list or empty");
      for (const Value& c : *path->list()) {
        if (!c.string()) return bad(where + ".path: a component that is not a string");
        if (!safe_path_component(*c.string())) return bad(where + ".path: a component that is not a safe name");
        e.path.push_back(*c.string());
      }
      if (e.length > limits.max_total - m.total_length) return MetainfoError{WireError::TooLarge, where + ".length: total over the limit"};
      e.offset = m.total_length;
      m.total_length += e.length;
      m.files.push_back(std::move(e));
    }
  }
  const std::uint64_t want = (m.total_length + m.piece_length - 1) / m.piece_length;
  if (pieces->string()->size() / 20 != want) {
    return bad(fmt::format("info.pieces: {} hashes for {} bytes in pieces of {} (needs {})", pieces->string()->size() / 20,
                           m.total_length, m.piece_length, want));
  }
  const std::string& ps = *pieces->string();
  m.pieces.resize(ps.size() / 20);
  for (std::size_t i = 0; i < m.pieces.size(); ++i) {
    for (std::size_t k = 0; k < 20; ++k) m.pieces[i][k] = static_cast<std::uint8_t>(ps[i * 20 + k]);
  }
  return m;
}

Value info_value(const Metainfo& m) {
  std::string pieces;
  pieces.reserve(m.pieces.size() * 20);
  for (const auto& p : m.pieces) pieces.append(reinterpret_cast<const char*>(p.data()), p.size());
  std::vector<std::pair<std::string, Value>> info{
      {"name", m.name},
      {"piece length", static_cast<std::int64_t>(m.piece_length)},
      {"pieces", std::move(pieces)},
  };
  if (m.is_private || m.private_key) info.emplace_back("private", std::int64_t{m.is_private ? 1 : 0});
  if (m.multi_file) {
    List files;
    for (const auto& f : m.files) {
      List path;
      for (const auto& c : f.path) path.emplace_back(c);
      files.emplace_back(make_dict({{"length", static_cast<std::int64_t>(f.length)}, {"path", std::move(path)}}));
    }
    info.emplace_back("files", std::move(files));
  } else {
    info.emplace_back("length", static_cast<std::int64_t>(m.total_length));
  }
  return make_dict(std::move(info));
}

Bytes encode_metainfo(const Metainfo& m) {
  std::vector<std::pair<std::string, Value>> root{{"info", info_value(m)}};
  if (!m.announce.empty()) root.emplace_back("announce", m.announce);
  if (!m.announce_list.empty()) {
    List tiers;
    for (const auto& t : m.announce_list) {
      List urls;
      for (const auto& u : t) urls.emplace_back(u);
      tiers.emplace_back(std::move(urls));
    }
    root.emplace_back("announce-list", std::move(tiers));
  }
  if (!m.comment.empty()) root.emplace_back("comment", m.comment);
  if (!m.created_by.empty()) root.emplace_back("created by", m.created_by);
  if (m.creation_date != 0) root.emplace_back("creation date", m.creation_date);
  if (!m.encoding.empty()) root.emplace_back("encoding", m.encoding);
  return encode_bencode(Value(make_dict(std::move(root))));
}

}  // namespace sv::wire::bt
