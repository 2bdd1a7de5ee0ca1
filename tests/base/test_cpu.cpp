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
