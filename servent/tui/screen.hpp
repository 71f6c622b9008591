// A fixed-size grid of terminal cells that the TUI draws into, so the drawing
// can be tested without a terminal; the ncurses front end copies it out.
//
// Everything shown comes from peers, so text is made safe here: invalid
// UTF-8 bytes become \xNN, control characters ^X (ESC is ^[, so no escape
// sequence ever reaches the terminal), C1 controls \u0085, and text is cut
// to its columns with an ellipsis, looking at no more of it than fits (a
// 10 KB name costs what its visible part costs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sv::tui {

enum class Attr : std::uint8_t {
  Normal,
  Title,      // the screen tabs' bar
  TabActive,  // the current screen or search tab
  Header,     // column headers
  Selected,   // the selected row
  Status,     // the bottom line
  Input,      // the search / filter line
  Good,
  Bad,
  Dim,
  Bar,        // the filled part of a progress bar
};

struct Cell {
  std::string glyph = " ";  // one character in UTF-8; "" for the right half of a wide one
  Attr attr = Attr::Normal;
  bool operator==(const Cell&) const = default;
};

class Screen {
 public:
  Screen(int width, int height, bool utf8 = true);
  int width() const { return width_; }
  int height() const { return height_; }
  bool utf8() const { return utf8_; }

  void clear();
  // Writes `text` made safe at (x, y), in at most `cols` columns (to the
  // right edge when negative); cut text ends with an ellipsis. Returns the
  // columns used.
  int put(int x, int y, std::string_view text, Attr attr = Attr::Normal, int cols = -1);
  // Right-aligned in `cols` columns.
  int put_right(int x, int y, std::string_view text, Attr attr, int cols);
  // Paints `cols` cells from (x, y) with `attr`, as spaces.
  void fill(int x, int y, int cols, Attr attr);
  void set_attr(int x, int y, int cols, Attr attr);

  const Cell& at(int x, int y) const { return cells_[static_cast<std::size_t>(y * width_ + x)]; }
  std::string row_text(int y) const;  // the row as UTF-8 (tests, and tmux users see the same)

 private:
  int width_, height_;
  bool utf8_;
  std::vector<Cell> cells_;
};

// One visible unit of safe text: its UTF-8 and its width in columns (1 or 2).
struct Glyph {
  std::string text;
  int width = 1;
};
// The safe glyphs of `text`, stopping once `max_cols` columns are filled
// (sets *more when text was left over).
std::vector<Glyph> safe_glyphs(std::string_view text, bool utf8, int max_cols, bool* more = nullptr);
// Columns `text` takes once made safe (counts at most `max_cols`).
int text_width(std::string_view text, bool utf8, int max_cols = 1 << 20);

}  // namespace sv::tui
