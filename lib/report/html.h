// One way to write HTML: text is escaped exactly once, markup never.
//
// A page mixes bertq's own markup (tags, entities such as &rarr;) with text
// from the model and the user (module paths, reasons, file names), which can
// hold any character. Writing both through one `std::ostream` makes it easy to
// escape an entity (the page shows "&rarr;" as text) or forget to escape a
// path (the page is broken, or scripted). Here the kind is in the type: a
// string is text and is escaped; markup must be spelled as a `_html` literal,
// so it can only come from bertq's source.
#pragma once

#include <locale>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/text.h"

namespace bertq {

// Markup written as is. Made only by the `_html` literal below.
class Markup {
 public:
  constexpr std::string_view view() const { return s_; }
  // bertq's own resources compiled in from its source tree (report.css).
  static Markup embedded(const char* resource) { return Markup(resource); }

 private:
  constexpr explicit Markup(std::string_view s) : s_(s) {}
  friend constexpr Markup operator""_html(const char* s, size_t n);
  std::string_view s_;
};

constexpr Markup operator""_html(const char* s, size_t n) { return Markup(std::string_view(s, n)); }

class Html;

class HtmlWriter {
 public:
  explicit HtmlWriter(std::ostream& out) : out_(out) {}

  HtmlWriter& operator<<(Markup m) {
    out_ << m.view();
    return *this;
  }
  // Text: escaped.
  HtmlWriter& operator<<(std::string_view text) {
    out_ << html_escaped(text);
    return *this;
  }
  HtmlWriter& operator<<(const std::string& text) { return *this << std::string_view(text); }
  HtmlWriter& operator<<(const char* text) { return *this << std::string_view(text); }
  HtmlWriter& operator<<(char c) { return *this << std::string_view(&c, 1); }
  // A fragment built by writing into it: already markup and escaped text.
  HtmlWriter& operator<<(const Html& fragment);
  // Numbers cannot hold markup.
  template <typename N, typename = std::enable_if_t<std::is_arithmetic_v<N> && !std::is_same_v<N, char>>>
  HtmlWriter& operator<<(N n) {
    out_ << n;
    return *this;
  }

 private:
  std::ostream& out_;
};

// A piece of a page built before it is placed (a path with line-break
// opportunities, a table cell chosen by the data), written with the same
// rules as HtmlWriter: so there is no way to make one from unescaped text.
// Numbers use the classic locale, as SVG coordinates must.
class Html {
 public:
  Html() { s_.imbue(std::locale::classic()); }
  Html(Html&&) = default;
  Html& operator=(Html&&) = default;
  template <typename T>
  Html& operator<<(const T& v) {
    HtmlWriter(s_) << v;
    return *this;
  }
  std::string str() const { return s_.str(); }

 private:
  std::ostringstream s_;
};

inline HtmlWriter& HtmlWriter::operator<<(const Html& fragment) {
  out_ << fragment.str();
  return *this;
}

}  // namespace bertq
