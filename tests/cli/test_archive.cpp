// Damaged and hostile model files (testdata/bad/hostile, made by
// testdata/hostile.py): every command that reads a model refuses them with
// exit 4 and a message saying what is wrong, before LibTorch reads them.
#include "cli/cli.h"

using namespace cli;

namespace {

// File -> what the message must say: testdata/hostile.py's table.
std::vector<std::pair<std::string, std::string>> hostile_cases() {
  std::vector<std::pair<std::string, std::string>> out;
  const auto table = parse_json(slurp(kSource + "/testdata/bad/hostile/expected.json"));
  for (const auto& [name, what] : table["cases"].items()) out.emplace_back(name, what.get<std::string>());
  REQUIRE(out.size() >= 27);
  return out;
}

}  // namespace

TEST_CASE("damaged and hostile archives are refused by convert, inspect and diff", "[cli][archive][errors]") {
  const std::string golden = kSource + "/testdata/" BERTQ_GOLDEN_DIR "/submodules__per_channel__onednn.pt";
  for (const auto& [name, what] : hostile_cases()) {
    Scratch s;
    const std::string file = kSource + "/testdata/bad/hostile/" + name;
    INFO(file);
    for (const std::vector<std::string>& args : {std::vector<std::string>{"convert", file, s / "out.pt"},
                                                 {"convert", file, s / "out.pt", "--dry-run"},
                                                 {"inspect", file},
                                                 {"diff", golden, file},
                                                 {"bench", file, "--iters", "1"}}) {
      INFO(args[0]);
      const Result r = run(args);
      CHECK(r.code == 4);
      CHECK(r.err.find("bertq: error: ") == 0);
      CHECK(contains(r.err, file));
      CHECK(contains(r.err, what));
      // LibTorch's own texts are never the explanation.
      CHECK_FALSE(contains(r.err, "enforce fail"));
      CHECK_FALSE(contains(r.err, "INTERNAL ASSERT"));
      CHECK_FALSE(contains(r.err, "internal error"));
    }
    CHECK_FALSE(fs::exists(s / "out.pt"));
  }
}

TEST_CASE("a corrupted archive is refused, never a crash", "[cli][archive][errors]") {
  Scratch s;
  std::string bytes = slurp(kModel);
  // Flip bytes inside the first record's data: the zip stays well formed,
  // its checksum no longer matches.
  const size_t at = bytes.find("PK\x03\x04", 0);
  REQUIRE(at != std::string::npos);
  for (size_t i = at + 200; i < at + 260 && i < bytes.size(); ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
  write_file(s / "corrupt.pt", bytes);
  Result r = run({"convert", s / "corrupt.pt", s / "out.pt"});
  CHECK(r.code == 4);
  CHECK(r.err.find("bertq: error: " + s / "corrupt.pt" + ": ") == 0);
  CHECK_FALSE(fs::exists(s / "out.pt"));
  // A central directory pointing past the end of the file.
  std::string cd = slurp(kModel);
  const size_t eocd = cd.rfind(std::string("PK\x05\x06", 4));
  REQUIRE(eocd != std::string::npos);
  cd[eocd + 16] = '\xff';
  cd[eocd + 17] = '\xff';
  cd[eocd + 18] = '\xff';
  cd[eocd + 19] = '\x7f';
  write_file(s / "cd.pt", cd);
  r = run({"convert", s / "cd.pt", s / "out.pt"});
  CHECK(r.code == 4);
  CHECK(contains(r.err, "corrupted zip archive"));
  r = run({"inspect", s / "cd.pt"});
  CHECK(r.code == 4);
  // A model read from a FIFO is refused, not waited for.
  REQUIRE(::mkfifo((s / "fifo").c_str(), 0600) == 0);
  r = run({"convert", s / "fifo", s / "out.pt"});
  CHECK(r.code == 4);
  CHECK(contains(r.err, "is not a regular file"));
}

TEST_CASE("archives found by fuzz_archive are refused, never a crash", "[cli][archive][errors]") {
  // testdata/bad/fuzz: reproducers of bugs the fuzzer found (sizes and offsets
  // from zip64 records that wrapped 64-bit sums; a version record that is not a number).
  for (const char* name : {"cd_size_wrap.pt", "entry_size_wrap.pt", "bad_version.pt"}) {
    Scratch s;
    const std::string file = kSource + "/testdata/bad/fuzz/" + name;
    INFO(file);
    Result r = run({"inspect", file});
    CHECK(r.code == 4);
    CHECK(r.err.find("bertq: error: " + file + ": ") == 0);
    r = run({"convert", file, s / "out.pt"});
    CHECK(r.code == 4);
    CHECK_FALSE(fs::exists(s / "out.pt"));
  }
}
