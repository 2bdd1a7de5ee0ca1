// Message helpers: escaping, quoting, did-you-mean, formatting.
#include "base/error.h"
#include "base/text.h"
#include "catch.hpp"

using namespace bertq;

TEST_CASE("printable escapes control bytes and invalid UTF-8, keeps text", "[text]") {
  CHECK(printable("plain ascii") == "plain ascii");
  CHECK(printable("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(printable("line\nnext\ttab") == "line\nnext\ttab");
  CHECK(printable("\x1b[31mred") == "\\x1b[31mred");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(printable("\xff\xfe") == "\\xff\\xfe");
  CHECK(printable("\xc3") == "\\xc3");  // a cut multi-byte character
}

TEST_CASE("quoted_value escapes newlines too and cuts long values", "[text]") {
  CHECK(quoted_value("bert.encoder") == "\"bert.encoder\"");
  CHECK(quoted_value("a\nb") == "\"a\\x0ab\"");
  const std::string long_value(1000, 'x');
  CHECK(quoted_value(long_value, 10) == "\"xxxxxxxxxx...\" (1000 bytes in all)");
  // Never cut inside a UTF-8 character.
  CHECK(quoted_value("\xc3\xa9\xc3\xa9", 3) == "\"\xc3\xa9...\" (4 bytes in all)");
}

TEST_CASE("an Error's message can carry any bytes safely", "[text]") {
  const Error e(ErrorKind::Config, std::string("key \"a\0b\x1b\" is bad", 17), "hint\x07");
  CHECK(std::string(e.what()) == "key \"a\\x00b\\x1b\" is bad");
  CHECK(e.hint() == "hint\\x07");
  const Error huge(ErrorKind::Config, std::string(100000, 'y'));
  CHECK(std::string(huge.what()).size() < 4200);
}

TEST_CASE("closest suggests typos, not unrelated names", "[text]") {
  CHECK(closest("qconfg", {"qconfig", "engine", "debug"}) == "qconfig");
  CHECK(closest("per_channel", {"per_channel_dynamic", "default_dynamic"}) == "per_channel_dynamic");
  CHECK_FALSE(closest("zzzzzz", {"qconfig", "engine"}).has_value());
  CHECK_FALSE(closest(std::string(100000, 'q'), {"qconfig"}).has_value());  // bounded cost
  const auto near = nearest("encoder.layer.0.attention.self.query",
                            {"bert.encoder.layer.0.attention.self.query", "bert.pooler.dense", "classifier"}, 2);
  REQUIRE(near.size() == 2);
  CHECK(near[0] == "bert.encoder.layer.0.attention.self.query");
}

TEST_CASE("shapes, byte counts and sizes are formatted one way", "[text]") {
  CHECK(format_shape({768, 3072}) == "[768, 3072]");
  CHECK(format_shape({}) == "[]");
  CHECK(format_bytes(12) == "12 B");
  CHECK(format_bytes(4500) == "4.5 kB");
  CHECK(format_bytes(1234567) == "1.23 MB");
  CHECK(format_bytes(-4500) == "-4.5 kB");
  CHECK(format_mb(438240000) == "438.24 MB");
  CHECK(format_g17(0.1) == "0.1");
  CHECK(std::stod(format_g17(1.0 / 3)) == 1.0 / 3);
  CHECK(first_line("one\ntwo") == "one");
  CHECK(last_line("a\nb\n\n") == "b");
  CHECK(line_column("ab\ncd", 5) == std::pair<size_t, size_t>{2, 2});
}

TEST_CASE("release numbers compare by their numeric parts", "[text]") {
  CHECK(compare_versions("1.13.1", "2.6.0") == -1);
  CHECK(compare_versions("2.6.0", "1.13.1") == 1);
  CHECK(compare_versions("1.13.1", "1.9.0") == 1);    // not a string comparison
  CHECK(compare_versions("2.6.0+dfsg", "2.6") == 0);  // tags and missing parts
  CHECK(compare_versions("2.6.1", "2.6.0") == 1);
  CHECK(compare_versions("2.6.1", "2.6.0", 2) == 0);  // same release line
  CHECK_FALSE(compare_versions("", "1.0").has_value());
  CHECK_FALSE(compare_versions("v2", "1.0").has_value());
  CHECK(compare_versions("99999999999999999999999.0", "1.0") == 1);  // no overflow
}

TEST_CASE("one UTF-8 decoder: code points, and Python's maximal invalid subsequences", "[text]") {
  const std::string euro = "\xe2\x82\xac";
  CHECK(utf8_step(euro, 0).code_point == 0x20AC);
  CHECK(utf8_step(euro, 0).length == 3);
  CHECK(utf8_step("\xf0\x9f\x98\x80", 0).code_point == 0x1F600);
  // A truncated sequence is one invalid run (one U+FFFD in Python), the rest
  // starts afresh.
  CHECK(utf8_step("\xe2\x82x", 0).code_point == -1);
  CHECK(utf8_step("\xe2\x82x", 0).length == 2);
  CHECK(utf8_step("\xc0\xaf", 0).length == 1);               // overlong: C0 is never valid
  CHECK(utf8_step("\xed\xa0\x80", 0).code_point == -1);      // a surrogate
  CHECK(utf8_step("\xf4\x90\x80\x80", 0).code_point == -1);  // past U+10FFFF
  CHECK(is_utf8("plain " + euro));
  CHECK_FALSE(is_utf8("\xed\xa0\x80"));
  // printable escapes what is not well-formed, surrogates included.
  CHECK(printable("a\xed\xa0\x80"
                  "b") == "a\\xed\\xa0\\x80b");
  CHECK(printable(euro) == euro);
}
