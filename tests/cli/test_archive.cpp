// Damaged and hostile model files (testdata/bad/hostile, made by
// testdata/hostile.py): every command that reads a model refuses them with
// exit 4 and a message saying what is wrong, before LibTorch reads them.
#include "cli/cli.h"

using namespace cli;

namespace {

// File -> what the message must say (the same table as hostile.py's HOSTILE).
const std::vector<std::pair<std::string, std::string>> kHostile = {
    {"code_crc.pt", "record code/__torch__/testmodels.py is corrupted (its CRC-32 does not match)"},
    {"code_bitflip.pt", "record code/__torch__/testmodels.py is corrupted"},
    {"data_crc.pt", "record data/0 is corrupted (its CRC-32 does not match)"},
    {"short_tensor.pt", "tensor record data/0 holds 2032 bytes, but its storage needs 2048"},
    {"empty_tensor.pt", "tensor record data/0 holds 0 bytes, but its storage needs 2048"},
    {"missing_tensor.pt", "refers to tensor record data/0, which the archive does not hold"},
    {"numel_lie.pt", "tensor record data/0 holds 2048 bytes, but its storage needs 16384"},
    {"offset_lie.pt", "reaches element 767 of storage 0, which has 512"},
    {"version_huge.pt", "has a corrupted version record (\"99999999999999999999"},
    {"version_text.pt", "has a corrupted version record (\"3x"},
    {"version_new.pt", "file format version 99 is not one this LibTorch"},
    {"all_deflated.pt", "tensor record data/0 is compressed"},
    {"bomb_declared.pt", "would inflate to more than 256 MiB"},
    {"bomb_lying.pt", "inflates to more than the 100 bytes it declares"},
    {"newline_flood.pt", "holds more than 4096 blank lines in a row"},
    {"memo_jump.pt", "skips memo ids"},
    {"encrypted.pt", "is encrypted"},
};

}  // namespace

TEST_CASE("damaged and hostile archives are refused by convert, inspect and diff", "[cli][archive][errors]") {
  const std::string golden = kSource + "/testdata/" BERTQ_GOLDEN_DIR "/submodules__per_channel__onednn.pt";
  for (const auto& [name, what] : kHostile) {
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
