#include "base/cpu.h"
#include "catch.hpp"

using bertq::better_openblas_kernel;
using bertq::CpuFeatures;

TEST_CASE("OpenBLAS's generic kernels are replaced by the one the CPU can run", "[base][cpu]") {
  CpuFeatures avx512{true, true, true}, avx2{true, true, false}, avx{true, false, false}, none{};
  // Debian 12's OpenBLAS on a Xeon it does not know.
  CHECK(better_openblas_kernel("Prescott", avx512) == std::optional<std::string>("SkylakeX"));
  CHECK(better_openblas_kernel("Prescott", avx2) == std::optional<std::string>("Haswell"));
  CHECK(better_openblas_kernel("Nehalem", avx2) == std::optional<std::string>("Haswell"));
  CHECK(better_openblas_kernel("Sandybridge", avx512) == std::optional<std::string>("SkylakeX"));
  // Nothing better to run.
  CHECK_FALSE(better_openblas_kernel("Prescott", avx));
  CHECK_FALSE(better_openblas_kernel("Prescott", none));
  // OpenBLAS's own choice among AVX2 and AVX-512 kernels stands, whatever its case.
  for (const char* k : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "HASWELL"})
    CHECK_FALSE(better_openblas_kernel(k, avx512));
  // Not OpenBLAS, or it does not say.
  CHECK_FALSE(better_openblas_kernel("", avx512));
}

TEST_CASE("conversion threads: the user's choice, else every usable CPU shared among the jobs", "[base][cpu]") {
  using bertq::conversion_threads;
  CHECK(conversion_threads(3, false, 8).threads == std::optional<int>(3));
  CHECK(conversion_threads(3, true, 8).threads == std::optional<int>(3));  // --threads beats the environment
  CHECK(conversion_threads(3, false, 8).why == "--threads");
  // OMP_NUM_THREADS is LibTorch's to read.
  CHECK_FALSE(conversion_threads(std::nullopt, true, 8).threads);
  CHECK(conversion_threads(std::nullopt, false, 8).threads == std::optional<int>(8));
  CHECK(conversion_threads(std::nullopt, false, 8, 3).threads == std::optional<int>(2));
  CHECK(conversion_threads(std::nullopt, false, 2, 4).threads == std::optional<int>(1));
  CHECK(conversion_threads(std::nullopt, false, 8, 3).why == "the usable CPUs shared among --jobs 3");
  CHECK(bertq::usable_cpus() >= 1);
}
