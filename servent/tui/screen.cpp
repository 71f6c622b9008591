#include "servent/tui/screen.hpp"

#include <cwchar>

namespace sv::tui {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 when the
// bytes there are not valid UTF-8 (overlong, surrogate, above U+10FFFF, cut).
std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len;
  char32_t min;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

void add_ascii(std::vector<Glyph>& out, std::string_view text) {
  for (char c : text) out.push_back({std::string(1, c), 1});
}

}  // namespace

std::vector<Glyph> safe_glyphs(std::string_view text, bool utf8, int max_cols, bool* more) {
  std::vector<Glyph> out;
  int cols = 0;
  if (more) *more = false;
  std::size_t i = 0;
  while (i < text.size()) {
    if (cols >= max_cols) {
      if (more) *more = true;
      break;
    }
    const std::size_t before = out.size();
    char32_t cp = 0;
    const std::size_t len = decode_utf8(text, i, cp);
    if (len == 0) {
      const auto b = static_cast<unsigned char>(text[i]);
      add_ascii(out, std::string{'\\', 'x', kHex[b >> 4], kHex[b & 15]});
      i += 1;
    } else if (cp < 0x20 || cp == 0x7f) {
      add_ascii(out, std::string{'^', static_cast<char>(cp == 0x7f ? '?' : cp + 0x40)});
      i += len;
    } else if (cp < 0x80) {
      out.push_back({std::string(1, static_cast<char>(cp)), 1});
      i += len;
    } else {
      int w = -1;
      if (utf8 && cp >= 0xa0) w = ::wcwidth(static_cast<wchar_t>(cp));
      if (w < 0) {
        // C1 controls, and anything the terminal cannot show: as \uXXXX.
        std::string esc = "\\u";
        for (int shift = cp > 0xFFFF ? 20 : 12; shift >= 0; shift -= 4) esc.push_back(kHex[(cp >> shift) & 15]);
        add_ascii(out, esc);
      } else if (w > 0) {
        out.push_back({std::string(text.substr(i, len)), w});
      }  // zero-width (combining) marks are left out
      i += len;
    }
    for (std::size_t k = before; k < out.size(); ++k) cols += out[k].width;
  }
  return out;
}

int text_width(std::string_view text, bool utf8, int max_cols) {
  int w = 0;
  for (const auto& g : safe_glyphs(text, utf8, max_cols)) w += g.width;
  return w;
}

Screen::Screen(int width, int height, bool utf8)
    : width_(width < 1 ? 1 : width), height_(height < 1 ? 1 : height), utf8_(utf8) {
  cells_.resize(static_cast<std::size_t>(width_ * height_));
}

void Screen::clear() {
  for (auto& c : cells_) c = Cell{};
}

int Screen::put(int x, int y, std::string_view text, Attr attr, int cols) {
  if (y < 0 || y >= height_ || x >= width_) return 0;
  if (x < 0) x = 0;
  if (cols < 0 || x + cols > width_) cols = width_ - x;
  if (cols <= 0) return 0;
  bool more = false;
  auto glyphs = safe_glyphs(text, utf8_, cols + 2, &more);
  int total = 0;
  for (const auto& g : glyphs) total += g.width;
  const bool cut = more || total > cols;
  const int room = cut ? cols - 1 : cols;  // one column for the ellipsis
  int used = 0;
  for (const auto& g : glyphs) {
    if (used + g.width > room) break;
    Cell& c = cells_[static_cast<std::size_t>(y * width_ + x + used)];
    c.glyph = g.text;
    c.attr = attr;
    if (g.width == 2) {
      Cell& right = cells_[static_cast<std::size_t>(y * width_ + x + used + 1)];
      right.glyph.clear();
      right.attr = attr;
    }
    used += g.width;
  }
  if (cut && used < cols) {
    Cell& c = cells_[static_cast<std::size_t>(y * width_ + x + used)];
    c.glyph = utf8_ ? "\u2026" : "~";
    c.attr = attr;
    ++used;
  }
  return used;
}

int Screen::put_right(int x, int y, std::string_view text, Attr attr, int cols) {
  const int w = text_width(text, utf8_, cols + 1);
  const int pad = w < cols ? cols - w : 0;
  fill(x, y, pad, attr);
  return pad + put(x + pad, y, text, attr, cols - pad);
}

void Screen::fill(int x, int y, int cols, Attr attr) {
  if (y < 0 || y >= height_) return;
  for (int i = 0; i < cols && x + i < width_; ++i) {
    if (x + i < 0) continue;
    Cell& c = cells_[static_cast<std::size_t>(y * width_ + x + i)];
    c.glyph = " ";
    c.attr = attr;
  }
}

void Screen::set_attr(int x, int y, int cols, Attr attr) {
  if (y < 0 || y >= height_) return;
  for (int i = 0; i < cols && x + i < width_; ++i) {
    if (x + i >= 0) cells_[static_cast<std::size_t>(y * width_ + x + i)].attr = attr;
  }
}

std::string Screen::row_text(int y) const {
  std::string out;
  for (int x = 0; x < width_; ++x) out += at(x, y).glyph;
  return out;
}

}  // namespace sv::tui
