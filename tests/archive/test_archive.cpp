// The archive checks that run before LibTorch reads a model: zip index,
// checksums, pickle scan, hashing what was loaded.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "archive/archive_file.h"
#include "archive/manifest.h"
#include "archive/pickle_scan.h"
#include "archive/sha256.h"
#include "archive/zip_index.h"
#include "base/error.h"
#include "catch.hpp"
#include "scratch.h"

using namespace bertq;
namespace fs = std::filesystem;

namespace {

const std::string kTestdata = std::string(BERTQ_SOURCE_DIR) + "/testdata/";

std::string scan_error(std::string_view bytes) {
  try {
    scan_pickle(bytes, "t.pkl");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Model);
    return e.what();
  }
  FAIL("expected the pickle to be refused");
  return "";
}

}  // namespace

TEST_CASE("SHA-256 known answers (FIPS 180-2)", "[archive][sha256]") {
  auto hex = [](const std::string& s) {
    Sha256 h;
    h.update(s.data(), s.size());
    return h.hex_digest();
  };
  CHECK(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk.data(), chunk.size());
  CHECK(million.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("the zip index of a TorchScript archive", "[archive][zip]") {
  const ZipIndex z = read_zip_index(kTestdata + "models/submodules.pt");
  CHECK(z.root == "submodules");
  CHECK(z.file_size == fs::file_size(kTestdata + "models/submodules.pt"));
  REQUIRE(z.find("data.pkl") != nullptr);
  CHECK(z.find("data.pkl")->stored);
  const ZipEntry* code = z.find("code/__torch__/testmodels.py");
  REQUIRE(code != nullptr);
  // torch.jit.save deflates code records (over 200 bytes).
  CHECK_FALSE(code->stored);
  CHECK(code->stored_size < code->size);
  const int fd = ::open((kTestdata + "models/submodules.pt").c_str(), O_RDONLY);
  const std::string text = read_zip_record(fd, "submodules.pt", *code);
  ::close(fd);
  CHECK(text.size() == code->size);
  CHECK(text.find("class Submodules(Module):") != std::string::npos);
}

TEST_CASE("checksums of a large archive: every record checked, the first damaged one named", "[archive][zip]") {
  // Large enough (4 x 24 MiB) that the records are checked in two halves
  // on two threads.
  bertq::testing::ScratchDir s;
  const std::string path = s / "big.bin";
  constexpr uint64_t kRecord = 24 << 20;
  ZipIndex index;
  {
    std::ofstream out(path, std::ios::binary);
    std::string data(kRecord, '\0');
    for (int r = 0; r < 4; ++r) {
      for (uint64_t i = 0; i < kRecord; ++i) data[i] = static_cast<char>((i * 131 + static_cast<uint64_t>(r)) >> 3);
      out.write(data.data(), static_cast<std::streamsize>(data.size()));
      ZipEntry e;
      e.name = "data/" + std::to_string(r);
      e.size = e.stored_size = kRecord;
      e.data_offset = r * kRecord;
      e.crc32 = static_cast<uint32_t>(::crc32(0L, reinterpret_cast<const Bytef*>(data.data()), kRecord));
      index.entries.push_back(e);
    }
  }
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const auto error_of = [&](const ZipIndex& z) -> std::string {
    try {
      verify_zip_checksums(fd, "big.bin", z);
      return "";
    } catch (const Error& e) {
      return e.what();
    }
  };
  CHECK(error_of(index).empty());
  for (const std::vector<int>& damaged : std::vector<std::vector<int>>{{3}, {1}, {0, 3}, {2, 3}, {1, 2}}) {
    ZipIndex z = index;
    for (int r : damaged) z.entries[static_cast<size_t>(r)].crc32 ^= 1;
    const std::string first = "data/" + std::to_string(damaged.front());
    INFO("damaged records " << damaged.front() << (damaged.size() > 1 ? " and more" : ""));
    CHECK(error_of(z) == "big.bin: record " + first + " is corrupted (its CRC-32 does not match)");
  }
  ::close(fd);
}

TEST_CASE("the pickle scan finds every storage and tensor of a real model", "[archive][pickle]") {
  const ArchiveFile f(kTestdata + "golden/1.13/tiny_bert__per_channel__onednn.pt");
  const PickleScan s = scan_pickle(f.read_record("constants.pkl"), "constants.pkl");
  CHECK_FALSE(s.storages.empty());
  for (const auto& t : s.tensors) {
    const PickledStorage& st = s.storages.at(t.storage);
    CHECK(storage_extent(t) <= st.numel);
    CHECK(st.itemsize > 0);
  }
  const PickleScan d = scan_pickle(ArchiveFile(kTestdata + "models/submodules.pt").read_record("data.pkl"), "d");
  CHECK(d.storages.size() == 6);  // three weights, three biases
  CHECK(d.tensors.size() == 6);
  CHECK(d.storages[0].dtype == "Float");
  CHECK(d.storages[0].numel == 512);  // sub.fc1.weight: 32 x 16
}

TEST_CASE("malformed pickles are refused with where and why", "[archive][pickle]") {
  CHECK(scan_error("") == "t.pkl is corrupted: the pickle ends early (at byte 0)");
  CHECK(scan_error(std::string("\x80\x03", 2)).find("uses pickle protocol 3") != std::string::npos);
  CHECK(scan_error(std::string("\x80\x02"
                               "0",
                               3))
            .find("holds opcode 0x30") != std::string::npos);
  CHECK(scan_error(std::string("\x80\x02"
                               "t",
                               3))
            .find("closes a MARK that was never opened") != std::string::npos);
  CHECK(scan_error(std::string("\x80\x02"
                               "N"
                               "r\xff\xff\xff\x0f",
                               8))
            .find("skips memo ids") != std::string::npos);
  CHECK(scan_error(std::string("\x80\x02"
                               "h\x05",
                               4))
            .find("never written") != std::string::npos);
  CHECK(scan_error(std::string("\x80\x02"
                               "X\xff\xff\xff\x7f",
                               7))
            .find("ends early") != std::string::npos);
  CHECK(scan_error(std::string("\x80\x02"
                               "NN.",
                               5))
            .find("leaves 2 values on the stack") != std::string::npos);
  // A persistent id that is not a storage tuple.
  CHECK(scan_error(std::string("\x80\x02"
                               "NQ.",
                               5))
            .find("not a storage") != std::string::npos);
}

TEST_CASE("storage_extent: offset plus the farthest element, overflow caught", "[archive][pickle]") {
  PickledTensor t;
  t.offset = 3;
  t.sizes = {32, 16};
  t.strides = {16, 1};
  CHECK(storage_extent(t) == 3 + 31 * 16 + 15 + 1);
  t.sizes = {0, 16};
  CHECK(storage_extent(t) == 0);
  t.sizes = {INT64_MAX, 2};
  t.strides = {INT64_MAX, INT64_MAX};
  CHECK(storage_extent(t) == -1);
}

TEST_CASE("every hostile archive is refused before LibTorch", "[archive]") {
  // testdata/hostile.py's table: each file and what bertq must say of it.
  const auto table = nlohmann::json::parse(bertq::testing::slurp(kTestdata + "bad/hostile/expected.json"));
  const auto& cases = table["cases"];
  const auto later = table["refused_after_archive_check"].get<std::vector<std::string>>();
  REQUIRE(cases.size() >= 27);
  for (const auto& [name, expected] : cases.items()) {
    INFO(name);
    // Sound archives refused when loaded or when their manifest is read
    // (a format version this LibTorch does not read): tests/cli/test_archive.cpp.
    if (std::find(later.begin(), later.end(), name) != later.end()) {
      CHECK_NOTHROW(ArchiveFile(kTestdata + "bad/hostile/" + name));
      continue;
    }
    const std::string what = expected.get<std::string>();
    try {
      ArchiveFile f(kTestdata + "bad/hostile/" + name);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Model);
      CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
  }
  // ... and the models and goldens are all accepted.
  // (Every LibTorch version's: the checks need no LibTorch.)
  for (const char* version : {"golden/1.13", "golden/2.6"})
    for (const auto& e : fs::directory_iterator(kTestdata + version))
      if (e.path().extension() == ".pt") CHECK_NOTHROW(ArchiveFile(e.path().string()));
}

TEST_CASE("what is hashed is what was loaded, even if the path is replaced", "[archive]") {
  const fs::path dir = fs::temp_directory_path() / ("bertq-archive-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "m.pt").string();
  fs::copy_file(kTestdata + "models/submodules.pt", path);
  const ArchiveFile f(path);
  // Another model renamed over the path after the checks.
  fs::copy_file(kTestdata + "models/scripted_if.pt", (dir / "other.pt").string());
  fs::rename(dir / "other.pt", path);
  CHECK(f.sha256() == sha256_file(kTestdata + "models/submodules.pt"));
  CHECK_NOTHROW(f.check_unchanged());
  // Modified in place: detected.
  fs::copy_file(kTestdata + "models/submodules.pt", (dir / "n.pt").string());
  const ArchiveFile g((dir / "n.pt").string());
  std::ofstream((dir / "n.pt").string(), std::ios::app) << "x";
  CHECK_THROWS_AS(g.check_unchanged(), Error);
  fs::remove_all(dir);
}

TEST_CASE("a manifest read back from an archive without LibTorch", "[archive][manifest]") {
  CHECK_FALSE(read_manifest(kTestdata + "golden/1.13/tiny_bert__per_channel__onednn.pt").has_value());
  CHECK_THROWS_AS(parse_manifest("{\"schema\": \"something-else\"}"), Error);
  CHECK_THROWS_AS(parse_manifest("not json"), Error);
}
