// Small string helpers shared by the library's messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bertq {

std::string join(const std::vector<std::string>& parts, const std::string& sep);

// The candidate nearest to `word` by edit distance, if it is near enough to be
// a plausible typo.
std::optional<std::string> closest(const std::string& word, const std::vector<std::string>& candidates);

// A hint for a word that is not one of `candidates`: `did you mean "X"? ` in
// front of `rest` when one is near enough to be a typo, else `rest` alone.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates, const std::string& rest);

// Up to `n` candidates ordered by how well they match `word` (shared suffix
// first, then edit distance), for "did you mean" lists of module names.
std::vector<std::string> nearest(const std::string& word, const std::vector<std::string>& candidates, size_t n);

// 1-based line and column of a byte offset (nlohmann reports offsets).
std::pair<size_t, size_t> line_column(std::string_view text, size_t byte_offset);

// `s` with & < > " ' as HTML entities: safe in element text and quoted
// attributes of the HTML pages bertq writes.
std::string html_escaped(std::string_view s);

// `text` with control characters (but newline and tab) and bytes that are not
// valid UTF-8 written as \xNN, so a message never sends raw binary or an
// escape sequence to a terminal or a log.
std::string printable(std::string_view text);

// What bertq writes to a terminal, with what a terminal would obey escaped:
// C0 controls but newline, tab and carriage return as \xNN, C1 controls
// (U+0080..U+009F) as \u00NN (a JSON escape: JSON output stays valid). Appends
// to `out` and returns how much of `text` it took: unless `final`, a UTF-8
// sequence cut at the end is left for the next call.
size_t append_terminal_safe(std::string& out, std::string_view text, bool final);

// A name from the user's input (a path, a module name) for one line of
// output: every control character, newline too, escaped as by printable.
std::string printable_line(std::string_view text);

// A JSON value or number from the user's input as written, for a message:
// escaped as by printable_line, cut to `max_bytes` with the length noted.
std::string clipped_value(std::string_view value, size_t max_bytes = 200);

// A value from the user's input, for a message: in double quotes, every
// control character (newline too) escaped as by printable, and cut to
// `max_bytes` with the full length noted, so a 10 MB name stays one line.
std::string quoted_value(std::string_view value, size_t max_bytes = 200);

// The first non-blank line of a message (LibTorch's errors may start with a
// newline and go on with C++ backtraces).
std::string first_line(const std::string& text);

// A double written so that reading it back gives the same value.
std::string format_g17(double v);

// The last non-empty line of a message: LibTorch's interpreter errors end
// with the exception itself, after a TorchScript traceback.
std::string last_line(const std::string& text);

// strerror(errno) in a thread-safe way.
std::string errno_message();

// A tensor shape as PyTorch prints torch.Size: "[768, 3072]".
std::string format_shape(const std::vector<int64_t>& shape);

// A byte count for tables and charts: "1.23 MB", "4.5 kB", "12 B" (10^3 steps).
std::string format_bytes(int64_t bytes);

// Formats a byte count as MB (1e6 bytes, as the PyTorch tutorial prints sizes).
std::string format_mb(uint64_t bytes);

// One step of a UTF-8 decoder: the code point at s[i] and the bytes it takes,
// or, for bytes that are not well-formed UTF-8 (overlong forms, surrogates and
// values past U+10FFFF included), code_point -1 and the length of the maximal
// invalid subsequence (what Python's errors="replace" turns into one U+FFFD).
struct Utf8Step {
  int32_t code_point;
  size_t length;
};
Utf8Step utf8_step(std::string_view s, size_t i);

// Whether `s` is well-formed UTF-8.
bool is_utf8(std::string_view s);

// Compares dotted release numbers ("1.13.1", "2.6.0+dfsg") by their numeric
// components, a missing component counting as 0: <0, 0 or >0. The first
// `components` are compared (3 for the full version, 2 for major.minor).
// Returns nullopt if either does not start with a number.
std::optional<int> compare_versions(std::string_view a, std::string_view b, int components = 3);

}  // namespace bertq
