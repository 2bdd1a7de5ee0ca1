#include "base/text.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace bertq {

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

size_t common_suffix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[a.size() - 1 - n] == b[b.size() - 1 - n]) ++n;
  return n;
}

}  // namespace

std::optional<std::string> closest(const std::string& word, const std::vector<std::string>& candidates) {
  // Edit distance is quadratic: a name this long is no typo of a short one.
  if (word.size() > 256) return std::nullopt;
  // A third of the word may differ: catches typos, not unrelated names.
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  std::optional<std::string> best;
  size_t best_d = 0;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    // Part of a name ("per_channel") counts as a typo at the limit, so a
    // closer real typo still wins.
    if (word.size() >= 3 && c.find(word) != std::string::npos) d = std::min(d, limit);
    if (!best || d < best_d) {
      best = c;
      best_d = d;
    }
  }
  if (best && best_d <= limit) return best;
  return std::nullopt;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates, const std::string& rest) {
  if (auto near = closest(word, candidates)) return "did you mean \"" + *near + "\"? " + rest;
  return rest;
}

std::vector<std::string> nearest(const std::string& word, const std::vector<std::string>& candidates, size_t n) {
  // Users often give a suffix of the real path ("encoder.layer.0..." for
  // "bert.encoder.layer.0..."), so a shared suffix counts in a name's favour.
  std::vector<std::pair<long, std::string>> scored;
  const std::string w = word.size() > 1024 ? word.substr(word.size() - 1024) : word;  // bounds the cost
  for (const auto& c : candidates)
    scored.push_back({2 * static_cast<long>(edit_distance(w, c)) - static_cast<long>(common_suffix(w, c)), c});
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < n; ++i) out.push_back(scored[i].second);
  return out;
}

std::pair<size_t, size_t> line_column(std::string_view text, size_t byte_offset) {
  size_t line = 1, col = 1;
  // nlohmann's offset points just past the offending character.
  const size_t end = std::min(byte_offset > 0 ? byte_offset - 1 : 0, text.size());
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

Utf8Step utf8_step(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  size_t len = 0;
  int32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  }
  size_t n = 1;
  for (; len && n < len && i + n < s.size(); ++n) {
    const auto b = static_cast<unsigned char>(s[i + n]);
    if (b < (n == 1 ? lo : 0x80) || b > (n == 1 ? hi : 0xBF)) break;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (len && n == len) return {cp, n};
  return {-1, n};
}

bool is_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const Utf8Step step = utf8_step(s, i);
    if (step.code_point < 0) return false;
    i += step.length;
  }
  return true;
}

namespace {

void escape_byte(std::string& out, unsigned char c) { out += fmt::format("\\x{:02x}", c); }

// Appends `text`, escaping what printable() and quoted_value() escape.
// C1 controls (U+0080..U+009F): some terminals obey them as escape sequences
// (U+009B is CSI), like ESC itself.
bool is_c1(int32_t code_point) { return code_point >= 0x80 && code_point <= 0x9f; }

void append_escaped(std::string& out, std::string_view text, bool keep_newlines) {
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const Utf8Step step = utf8_step(text, i);
    const size_t len = step.length;
    const bool control = len == 1 && (c < 0x20 || c == 0x7f) && !(keep_newlines && (c == '\n' || c == '\t'));
    if (step.code_point < 0 || control || is_c1(step.code_point)) {
      for (size_t k = 0; k < std::max<size_t>(1, step.code_point < 0 ? 1 : len); ++k)
        escape_byte(out, static_cast<unsigned char>(text[i + k]));
      i += step.code_point < 0 ? 1 : len;
    } else {
      out.append(text.data() + i, len);
      i += len;
    }
  }
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  append_escaped(out, text, true);
  return out;
}

std::string clipped_value(std::string_view value, size_t max_bytes) {
  const std::string q = quoted_value(value, max_bytes);
  // quoted_value's text without its quotes: "..." or "...\" (N bytes in all)".
  if (value.size() <= max_bytes) return q.substr(1, q.size() - 2);
  const size_t close = q.rfind("...\"");
  return q.substr(1, close - 1) + "..." + q.substr(close + 4);
}

std::string printable_line(std::string_view text) {
  std::string out;
  append_escaped(out, text, false);
  return out;
}

size_t append_terminal_safe(std::string& out, std::string_view text, bool final) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') {
      escape_byte(out, c);
      ++i;
      continue;
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // A multi-byte sequence cut by the end of this chunk waits for the next.
    const size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (!final && i + need > text.size()) break;
    const Utf8Step step = utf8_step(text, i);
    if (step.code_point >= 0 && is_c1(step.code_point)) {
      // As JSON writes it, so that JSON stays JSON.
      out += fmt::format("\\u{:04x}", step.code_point);
      i += step.length;
    } else {
      // Other bytes (valid UTF-8 or not) are text to a terminal.
      const size_t len = step.code_point < 0 ? 1 : step.length;
      out.append(text.data() + i, len);
      i += len;
    }
  }
  return i;
}

std::string quoted_value(std::string_view value, size_t max_bytes) {
  std::string out = "\"";
  if (value.size() <= max_bytes) {
    append_escaped(out, value, false);
    return out + "\"";
  }
  // Cut at a character boundary.
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) >> 6) == 2) --cut;
  append_escaped(out, value.substr(0, cut), false);
  return out + fmt::format("...\" ({} bytes in all)", value.size());
}

std::string first_line(const std::string& text) {
  // LibTorch's messages may start with a newline ("\nSchema not found ...").
  const auto start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  const auto nl = text.find('\n', start);
  return nl == std::string::npos ? text.substr(start) : text.substr(start, nl - start);
}

std::string format_g17(double v) { return fmt::format("{}", v); }

std::string last_line(const std::string& text) {
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

std::string errno_message() {
  const int e = errno;
  char buf[256];
  // GNU strerror_r returns the message pointer.
  return strerror_r(e, buf, sizeof buf);
}

std::string format_shape(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string format_bytes(int64_t bytes) {
  const double b = static_cast<double>(bytes), a = std::fabs(b);
  if (a >= 1e6) return fmt::format("{:.2f} MB", b / 1e6);
  if (a >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{} B", bytes);
}

std::string format_mb(uint64_t bytes) { return fmt::format("{:.2f} MB", static_cast<double>(bytes) / 1e6); }

std::optional<int> compare_versions(std::string_view a, std::string_view b, int components) {
  // The numbers before the first character that is neither a digit nor a dot
  // ("+dfsg", "-7", "a0" are packaging or pre-release tags).
  auto numbers = [](std::string_view v) -> std::optional<std::vector<uint64_t>> {
    std::vector<uint64_t> out;
    size_t i = 0;
    while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) {
      uint64_t n = 0;
      for (; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i)
        n = std::min<uint64_t>(n * 10 + static_cast<uint64_t>(v[i] - '0'), 1u << 30);
      out.push_back(n);
      if (i < v.size() && v[i] == '.') ++i;
    }
    if (out.empty()) return std::nullopt;
    return out;
  };
  const auto x = numbers(a), y = numbers(b);
  if (!x || !y) return std::nullopt;
  for (int i = 0; i < components; ++i) {
    const uint64_t p = static_cast<size_t>(i) < x->size() ? (*x)[i] : 0;
    const uint64_t q = static_cast<size_t>(i) < y->size() ? (*y)[i] : 0;
    if (p != q) return p < q ? -1 : 1;
  }
  return 0;
}

std::string html_escaped(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace bertq
