// `bertq bench` as a user meets it.
#include <algorithm>
#include <cctype>

#include "cli/cli.h"

using namespace cli;

namespace {
const std::string kMrpcModel = kSource + "/testdata/models/tiny_bert_mrpc.pt";
const std::string kVocab = kSource + "/testdata/tokenizer/vocab.txt";
}  // namespace

TEST_CASE("bench times several models on the same dummy inputs", "[cli][bench]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "q.pt"}).code == 0);
  Result r =
      run({"bench", kModel, s / "q.pt", "--seq-length", "16", "--iters", "3", "--warmup", "1", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = parse_json(r.out);
  CHECK(j["batch"] == 8);
  CHECK(j["seq"] == 16);
  CHECK(j["threads"] == 1);
  CHECK(j["inputs"] == nlohmann::json::array({"input_ids", "attention_mask", "token_type_ids"}));
  CHECK(j["models"][0]["kind"] == "float");
  CHECK(j["models"][1]["kind"] == "quantized");
  CHECK(j["models"][0]["ratio"] == 1.0);
  r = run({"bench", kModel, "--seq-length", "16", "--iters", "2"});
  CHECK(r.code == 0);
  CHECK(r.out.find("batch 8 x seq 16, 1 thread, engine onednn, 2 iterations after 2 warm-up\n") == 0);
}

namespace {

// Whether this CPU has what OpenBLAS's Haswell kernels need, as the kernel
// (and so libgcc's checks) sees it.
bool cpu_has_avx2_fma() {
  const std::string info = slurp("/proc/cpuinfo");
  const size_t flags = info.find("\nflags");
  if (flags == std::string::npos) return false;
  const std::string line = " " + info.substr(flags + 1, info.find('\n', flags + 1) - flags - 1) + " ";
  return contains(line, " avx2 ") && contains(line, " fma ");
}

// bench with `env` (VAR=VALUE or -u VAR, for env(1)) in front.
Result bench_with_env(const std::vector<std::string>& env, const std::string& format) {
  std::vector<std::string> args = {"env"};
  args.insert(args.end(), env.begin(), env.end());
  args.insert(args.end(),
              {kBinary, "bench", kModel, "--seq-length", "8", "--iters", "1", "--warmup", "0", "--format", format});
  Scratch io;
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + quote(a);
  Result r;
  r.code = shell(cmd + " >" + quote(io / "out") + " 2>" + quote(io / "err") + " </dev/null");
  r.out = slurp(io / "out");
  r.err = slurp(io / "err");
  return r;
}

}  // namespace

TEST_CASE("bench runs OpenBLAS's kernel for this CPU when OpenBLAS takes it for an old one", "[cli][bench][blas]") {
  // The preloaded stand-in says Prescott until OPENBLAS_CORETYPE is set; an
  // ASan build accepts a library loaded before its runtime.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::vector<std::string> shim = {
      "-u", "OPENBLAS_CORETYPE", std::string("LD_PRELOAD=") + BERTQ_OPENBLAS_SHIM,
      std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") + "verify_asan_link_order=0"};
  Result r = bench_with_env(shim, "json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = parse_json(r.out);
  if (cpu_has_avx2_fma()) {
    CHECK(j["openblas_kernel_source"] == "bertq");
    CHECK(j["openblas_detected_kernel"] == "Prescott");
    const std::string kernel = j["openblas_kernel"];
    CHECK((kernel == "SkylakeX" || kernel == "Haswell"));
    r = bench_with_env(shim, "text");
    CHECK(contains(r.out, ", kernel " + kernel + " (bertq set OPENBLAS_CORETYPE=" + kernel +
                              ": OpenBLAS had taken this CPU for Prescott; set OPENBLAS_CORETYPE yourself to choose)"));
  } else {
    // Nothing better to run: the generic kernel stays, said as detected.
    CHECK(j["openblas_kernel_source"] == "detected");
    CHECK(j["openblas_kernel"] == "Prescott");
  }
  // The user's choice is theirs, even a slow one.
  r = bench_with_env({"OPENBLAS_CORETYPE=Prescott"}, "json");
  REQUIRE(r.code == 0);
  j = parse_json(r.out);
  CHECK(j["openblas_kernel"] == "Prescott");
  CHECK(j["openblas_kernel_source"] == "OPENBLAS_CORETYPE");
  CHECK(j["openblas_detected_kernel"].is_null());
  // The real detection: never a pre-AVX2 kernel on a CPU with AVX2.
  r = bench_with_env({"-u", "OPENBLAS_CORETYPE"}, "json");
  REQUIRE(r.code == 0);
  j = parse_json(r.out);
  if (cpu_has_avx2_fma()) {
    const std::string kernel = j["openblas_kernel"];
    CHECK((kernel == "SkylakeX" || kernel == "Cooperlake" || kernel == "SapphireRapids" || kernel == "Haswell" ||
           kernel == "Zen"));
  }
}

TEST_CASE("bench says when its BLAS cannot use the threads it is given", "[cli][bench][blas]") {
  Scratch s;
  const Result r = run(
      {"bench", kModel, "--seq-length", "8", "--iters", "1", "--warmup", "0", "--threads", "2", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = parse_json(r.out);
  const std::string threading = j["blas_threading"];
  // bertq is linked to find the OpenMP build first (CMakeLists.txt,
  // BERTQ_BLAS_DIR), which install-deps.sh installs.
  CHECK(threading == "OpenMP");
  CHECK(j["warnings"].empty() == (threading == "OpenMP"));
  CHECK(contains(r.err, "compete with LibTorch's OpenMP threads") == (threading == "pthreads"));
}
